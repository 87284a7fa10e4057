"""Only what pyproject.toml cannot say: resources/ (top level, as the project is laid out) is
installed as the package `ragdesk.resources`, so a wheel carries the icons and the web client."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["ragdesk", "ragdesk.*"]), "ragdesk.resources"],
    package_dir={"ragdesk.resources": "resources"},
    package_data={"ragdesk.resources": ["icons/*.svg", "web/*"]},
)
