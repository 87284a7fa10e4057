"""The desktop app opens a real X11 window (Qt's xcb platform under Xvfb), not only offscreen: the
class of failure where a stock desktop lacks the xcb plugin's libraries cannot hide again."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.timeout(120)


def test_the_window_opens_through_xcb_under_xvfb(tmp_path: Path) -> None:
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        if os.environ.get("CI"):
            pytest.fail("Xvfb is missing: scripts/install-system-deps installs it for this test")
        pytest.skip("Xvfb is not installed (scripts/install-system-deps installs it)")
    read, write = os.pipe()
    server = subprocess.Popen(
        [xvfb, "-displayfd", str(write), "-screen", "0", "1366x768x24", "-nolisten", "tcp"],
        pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        with os.fdopen(read) as pipe:
            display = pipe.readline().strip()
        assert display, "Xvfb did not say which display it took"
        env = {**os.environ, "DISPLAY": f":{display}", "QT_QPA_PLATFORM": "xcb",
               "RAGDESK_HOME": str(tmp_path / "home")}
        env.pop("WAYLAND_DISPLAY", None)
        proc = subprocess.run([sys.executable, "-m", "ragdesk", "gui", "--self-test"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=90)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "could not load the Qt platform plugin" not in proc.stderr
    finally:
        server.terminate()
        server.wait(10)
