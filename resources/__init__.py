"""Icons and the LAN web client's static files, carried into the wheel as `ragdesk.resources`
(see setup.py); `ragdesk.paths.resource_dir` finds them in a wheel, a checkout or a bundle."""
