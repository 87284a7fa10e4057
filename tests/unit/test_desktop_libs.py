"""Missing X11 libraries are named, with the packages and the command that installs them, before
Qt would abort with its misleading "reinstalling the application may fix this"."""

from __future__ import annotations

from ragdesk.gui import desktop_libs

LDD = """\
\tlinux-vdso.so.1 (0x00007ffd6b5f2000)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f2f1c000000)
\tlibxcb-cursor.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxkbcommon-x11.so.0 => /lib/x86_64-linux-gnu/libxkbcommon-x11.so.0 (0x00007f2f1bf00000)
\tlibxcb-cursor.so.0 => not found
"""


def test_not_found_libraries_are_read_from_ldd_once_each() -> None:
    assert desktop_libs.not_found(LDD) == ["libxcb-cursor.so.0", "libxcb-icccm.so.4"]
    assert desktop_libs.not_found("\tlibc.so.6 => /lib/libc.so.6 (0x1)\n") == []


def test_distribution_family_from_os_release() -> None:
    assert desktop_libs.distro_family('ID=ubuntu\nID_LIKE=debian\n') == "debian"
    assert desktop_libs.distro_family('ID=debian\n') == "debian"
    assert desktop_libs.distro_family('ID="fedora"\n') == "fedora"
    assert desktop_libs.distro_family('ID=rocky\nID_LIKE="rhel centos fedora"\n') == "fedora"
    assert desktop_libs.distro_family('ID=arch\n') == "arch"
    assert desktop_libs.distro_family('ID="opensuse-tumbleweed"\nID_LIKE="opensuse suse"\n') == "suse"
    assert desktop_libs.distro_family('ID=nixos\n') is None


def test_the_message_names_libraries_packages_and_the_command() -> None:
    missing = desktop_libs.describe(["libxcb-cursor.so.0", "libxcb-icccm.so.4"], "debian")
    assert missing.command == "sudo apt-get install libxcb-cursor0 libxcb-icccm4"
    text = missing.message()
    assert "libxcb-cursor.so.0, libxcb-icccm.so.4" in text and missing.command in text
    assert "reinstall" not in text.lower()
    fedora = desktop_libs.describe(["libxcb-cursor.so.0", "libxcb-icccm.so.4"], "fedora")
    assert fedora.command == "sudo dnf install xcb-util-cursor xcb-util-wm"


def test_an_unknown_library_or_distribution_gives_no_half_command() -> None:
    unknown = desktop_libs.describe(["libxcb-cursor.so.0", "libweird.so.9"], "debian")
    assert unknown.command is None and "libweird.so.9" in unknown.message()
    nowhere = desktop_libs.describe(["libxcb-cursor.so.0"], None)
    assert nowhere.command is None and "distribution" in nowhere.message()


def test_which_sessions_use_xcb() -> None:
    assert desktop_libs.wants_xcb({"DISPLAY": ":0"})
    assert desktop_libs.wants_xcb({"QT_QPA_PLATFORM": "xcb"})
    assert not desktop_libs.wants_xcb({"QT_QPA_PLATFORM": "offscreen"})
    assert not desktop_libs.wants_xcb({"WAYLAND_DISPLAY": "wayland-0"})
    assert desktop_libs.wants_xcb({"WAYLAND_DISPLAY": "wayland-0", "QT_QPA_PLATFORM": "xcb"})


def test_this_machine_has_what_the_window_needs() -> None:
    # make test installs the libraries (scripts/install-system-deps): nothing may be missing here.
    assert desktop_libs.xcb_plugin() is not None
    assert desktop_libs.check({"QT_QPA_PLATFORM": "xcb"}) is None
