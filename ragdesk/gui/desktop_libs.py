"""Whether this Linux machine has the system libraries Qt's X11 (xcb) window plugin needs.

PySide6 ships Qt itself, but its xcb plugin links against X11 client libraries that a stock
desktop may lack (Qt 6.5+ needs libxcb-cursor0, which many do not install). Without them Qt aborts
with "could not load the Qt platform plugin xcb ... Reinstalling the application may fix this",
which is wrong advice. This module finds the missing libraries before Qt is started (with `ldd`
on the plugin, no Qt import) and names the packages and the command that installs them, for the
desktop app, `ragdesk doctor` and `make run`. It imports no Qt, so the doctor can use it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# soname -> package, per distribution family (the libraries libqxcb.so links to that a minimal
# install may lack; anything else missing is named by its soname).
PACKAGES: dict[str, dict[str, str]] = {
    "debian": {
        "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4",
        "libxcb-keysyms.so.1": "libxcb-keysyms1", "libxcb-image.so.0": "libxcb-image0",
        "libxcb-render-util.so.0": "libxcb-render-util0", "libxcb-randr.so.0": "libxcb-randr0",
        "libxcb-shape.so.0": "libxcb-shape0", "libxcb-xkb.so.1": "libxcb-xkb1",
        "libxcb-util.so.1": "libxcb-util1", "libxcb-sync.so.1": "libxcb-sync1",
        "libxcb-xfixes.so.0": "libxcb-xfixes0", "libxcb-shm.so.0": "libxcb-shm0",
        "libxcb-render.so.0": "libxcb-render0", "libxcb.so.1": "libxcb1",
        "libxkbcommon-x11.so.0": "libxkbcommon-x11-0", "libxkbcommon.so.0": "libxkbcommon0",
        "libX11-xcb.so.1": "libx11-xcb1", "libX11.so.6": "libx11-6", "libEGL.so.1": "libegl1",
        "libGL.so.1": "libgl1", "libfontconfig.so.1": "libfontconfig1",
        "libfreetype.so.6": "libfreetype6", "libdbus-1.so.3": "libdbus-1-3",
        "libglib-2.0.so.0": "libglib2.0-0", "libgthread-2.0.so.0": "libglib2.0-0",
    },
    "fedora": {
        "libxcb-cursor.so.0": "xcb-util-cursor", "libxcb-icccm.so.4": "xcb-util-wm",
        "libxcb-keysyms.so.1": "xcb-util-keysyms", "libxcb-image.so.0": "xcb-util-image",
        "libxcb-render-util.so.0": "xcb-util-renderutil", "libxcb-util.so.1": "xcb-util",
        "libxkbcommon-x11.so.0": "libxkbcommon-x11", "libxkbcommon.so.0": "libxkbcommon",
        "libX11-xcb.so.1": "libX11-xcb", "libX11.so.6": "libX11", "libEGL.so.1": "libglvnd-egl",
        "libGL.so.1": "libglvnd-glx", "libfontconfig.so.1": "fontconfig",
        "libdbus-1.so.3": "dbus-libs",
    },
    "arch": {
        "libxcb-cursor.so.0": "xcb-util-cursor", "libxcb-icccm.so.4": "xcb-util-wm",
        "libxcb-keysyms.so.1": "xcb-util-keysyms", "libxcb-image.so.0": "xcb-util-image",
        "libxcb-render-util.so.0": "xcb-util-renderutil", "libxcb-util.so.1": "xcb-util",
        "libxkbcommon-x11.so.0": "libxkbcommon-x11", "libxkbcommon.so.0": "libxkbcommon",
        "libX11-xcb.so.1": "libx11", "libX11.so.6": "libx11", "libEGL.so.1": "libglvnd",
        "libGL.so.1": "libglvnd", "libfontconfig.so.1": "fontconfig", "libdbus-1.so.3": "dbus",
    },
    "suse": {
        "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4",
        "libxcb-keysyms.so.1": "libxcb-keysyms1", "libxcb-image.so.0": "libxcb-image0",
        "libxcb-render-util.so.0": "libxcb-render-util0", "libxcb-util.so.1": "libxcb-util1",
        "libxkbcommon-x11.so.0": "libxkbcommon-x11-0", "libxkbcommon.so.0": "libxkbcommon0",
        "libX11-xcb.so.1": "libX11-xcb1", "libEGL.so.1": "libEGL1", "libGL.so.1": "libGL1",
        "libfontconfig.so.1": "libfontconfig1", "libdbus-1.so.3": "libdbus-1-3",
    },
}
INSTALLERS = {
    "debian": "sudo apt-get install", "fedora": "sudo dnf install", "arch": "sudo pacman -S --needed",
    "suse": "sudo zypper install",
}


@dataclass(frozen=True)
class Missing:
    """The libraries the xcb plugin cannot find, and what installs them here."""

    libraries: tuple[str, ...]
    packages: tuple[str, ...]  # empty when the distribution family is not known
    command: str | None  # e.g. "sudo apt-get install libxcb-cursor0", None when not known

    def message(self) -> str:
        lines = ["RagDesk's window cannot open: the Qt X11 (xcb) plugin needs system libraries"
                 " that are missing: " + ", ".join(self.libraries) + "."]
        if self.command:
            lines.append(f"Install them with:\n    {self.command}")
        else:
            lines.append("Install the packages of your distribution that provide them"
                         " (X11 xcb client libraries).")
        lines.append("Then start RagDesk again. The command line (`ragdesk --help`) works without them.")
        return "\n".join(lines)


def wants_xcb(environ: Mapping[str, str] | None = None) -> bool:
    """Whether Qt will use its xcb plugin: on Linux, when QT_QPA_PLATFORM says xcb, or says
    nothing and the session is X11 (Qt 6 prefers Wayland when WAYLAND_DISPLAY is set)."""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return False
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(";")[0].split(":")[0] == "xcb"
    return not env.get("WAYLAND_DISPLAY")


def xcb_plugin() -> Path | None:
    """PySide6's libqxcb.so, found without importing Qt."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        plugin = Path(root) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if plugin.is_file():
            return plugin
    return None


def not_found(ldd_output: str) -> list[str]:
    """The sonames `ldd` reports as "not found", in order, once each."""
    found: list[str] = []
    for line in ldd_output.splitlines():
        name, _, rest = line.strip().partition(" => ")
        if rest.strip() == "not found" and name not in found:
            found.append(name)
    return found


def distro_family(os_release: str | None = None) -> str | None:
    """debian, fedora, arch or suse from /etc/os-release (ID and ID_LIKE), else None."""
    if os_release is None:
        try:
            os_release = Path("/etc/os-release").read_text(encoding="utf-8")
        except OSError:
            return None
    ids: list[str] = []
    for line in os_release.splitlines():
        key, _, value = line.partition("=")
        if key in ("ID", "ID_LIKE"):
            ids += value.strip().strip('"').lower().split()
    for family, names in (("debian", {"debian", "ubuntu"}), ("fedora", {"fedora", "rhel", "centos"}),
                          ("arch", {"arch"}), ("suse", {"suse", "opensuse"})):
        if any(i in names or i.startswith(tuple(names)) for i in ids):
            return family
    return None


def describe(libraries: list[str], family: str | None) -> Missing:
    """The packages and the install command for these missing sonames on this family."""
    table = PACKAGES.get(family or "", {})
    packages = tuple(dict.fromkeys(table[lib] for lib in libraries if lib in table))
    unknown = [lib for lib in libraries if lib not in table]
    command = None
    if family and packages and not unknown:
        command = f"{INSTALLERS[family]} {' '.join(packages)}"
    return Missing(tuple(libraries), packages, command)


def check(environ: Mapping[str, str] | None = None) -> Missing | None:
    """What is missing for the window on this machine, or None (nothing missing, not xcb, or it
    cannot be told: no plugin or no ldd, in which case Qt gets its chance)."""
    if not wants_xcb(environ):
        return None
    plugin = xcb_plugin()
    ldd = shutil.which("ldd")
    if plugin is None or ldd is None:
        return None
    try:
        out = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    missing = not_found(out)
    return describe(missing, distro_family()) if missing else None


if __name__ == "__main__":  # `python -m ragdesk.gui.desktop_libs`: used by `make run`
    found = check()
    if found is not None:
        print(found.message(), file=sys.stderr)
        if found.command and "--print-command" in sys.argv:
            print(found.command)
    sys.exit(1 if found else 0)
