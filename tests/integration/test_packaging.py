"""A wheel built from the project (not an editable install) carries everything RagDesk needs at
run time: the icons and the LAN web client in resources/ travel as package data, so the desktop
app's self-test and `ragdesk serve`'s web client work from any directory."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSPHRASE, REPO

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's tracked files built into a wheel and installed into a folder of its own."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    # the working tree as git sees it (tracked and new files, not ignored ones like .venv)
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True)
    for name in listed.stdout.decode().split("\0"):
        if name and (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    dist = work / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(dist), str(source)], check=True, capture_output=True)
    wheel = next(dist.glob("ragdesk-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "ragdesk/resources/web/index.html" in names
    assert "ragdesk/resources/icons/app.svg" in names
    target = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    return target


def _env(target: Path, home: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(target), "RAGDESK_HOME": str(home),
            "RAGDESK_PASSPHRASE": PASSPHRASE, "QT_QPA_PLATFORM": "offscreen"}


def test_the_wheel_runs_the_gui_self_test_from_another_directory(installed: Path, tmp_path: Path) -> None:
    env = _env(installed, tmp_path / "home")
    where = subprocess.run([sys.executable, "-c", "import ragdesk.paths as p; print(p.__file__);"
                            " print(p.resource_dir('icons'))"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    module, icons = where.stdout.split()
    assert Path(module).is_relative_to(installed) and Path(icons).is_relative_to(installed)
    assert (Path(icons) / "app.svg").is_file()

    proc = subprocess.run([sys.executable, "-m", "ragdesk", "gui", "--self-test"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "icon" not in proc.stderr.lower(), proc.stderr


def test_the_wheel_serves_the_web_client_from_another_directory(installed: Path, tmp_path: Path) -> None:
    env = _env(installed, tmp_path / "home")
    init = subprocess.run([sys.executable, "-m", "ragdesk", "init"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert init.returncode == 0, init.stderr
    proc = subprocess.Popen([sys.executable, "-m", "ragdesk", "serve", "--port", "0", "--insecure-http"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if m := re.search(r"serving this vault on (\S+)", line):
                url = m.group(1)
        assert url, proc.stderr.read() if proc.stderr else "serve printed no address"
        page = httpx.get(url, timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()
        script = re.search(r'src="([^"]+\.js)"', page.text)
        assert script, page.text[:500]
        assert httpx.get(httpx.URL(url).join(script.group(1)), timeout=10).status_code == 200
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
