"""The PyInstaller bundle and the Linux installer scripts.

The bundle smoke test runs only when a bundle was built (`make bundle`; CI builds it and runs
the full smoke test with `make bundle-test` after `make test`). Here it indexes a handful of the
corpus's files, so that `make test` stays short; `make bundle-test` indexes the whole corpus.
The install/uninstall scripts are tested on a stand-in bundle, always.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CORPUS, REPO

BUNDLE = REPO / "dist" / "ragdesk"
INSTALLER = REPO / "installer"
# One file per parser family in the bundle: EPUB, DOCX, HTML, PDF, Markdown, plus a legacy .doc
# that must be rejected with a reason.
SAMPLE = ["Bezier.epub", "test_open2.docx", "test_open2.html", "small-table.pdf",
          "github_sample.pdf", "test_markdown_bad_unicode.md", "test_open2.doc"]


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(not (BUNDLE / "ragdesk").exists(), reason="no bundle in dist/ragdesk (make bundle)")
def test_bundle_smoke(tmp_path: Path) -> None:
    sample = tmp_path / "corpus"
    sample.mkdir()
    for name in SAMPLE:
        shutil.copy(CORPUS / name, sample / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["MIN_DOCUMENTS"] = "5"
    proc = subprocess.run(
        ["sh", str(REPO / "scripts" / "bundle-smoke-test"), str(BUNDLE), str(sample)],
        capture_output=True, text=True, env=env, timeout=900, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ", 0 failed" in proc.stdout


def test_bundle_entry_point_runs_unfrozen() -> None:
    """The bundle's entry script is the normal CLI behind multiprocessing.freeze_support()."""
    proc = subprocess.run(
        [sys.executable, str(INSTALLER / "pyinstaller" / "entry.py"), "--version"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("RagDesk ")


def _fake_bundle(folder: Path) -> Path:
    """Stands in for dist/ragdesk: an executable that answers --version, and the icon."""
    folder.mkdir(parents=True)
    exe = folder / "ragdesk"
    exe.write_text("#!/bin/sh\necho 'RagDesk 0.0-test'\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    icons = folder / "_internal" / "resources" / "icons"
    icons.mkdir(parents=True)
    shutil.copy(REPO / "resources" / "icons" / "app.svg", icons / "app.svg")
    return folder


def test_per_user_install_and_uninstall(tmp_path: Path) -> None:
    bundle = _fake_bundle(tmp_path / "bundle")
    user = tmp_path / "user"
    vault = user / ".local" / "share" / "RagDesk"
    vault.mkdir(parents=True)
    (vault / "vault.db").write_bytes(b"encrypted")
    env = {"HOME": str(user), "PATH": "/usr/bin:/bin"}

    proc = subprocess.run(["sh", str(INSTALLER / "linux" / "install.sh"), str(bundle)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Installed RagDesk 0.0-test" in proc.stdout
    app = user / ".local" / "lib" / "ragdesk"
    link = user / ".local" / "bin" / "ragdesk"
    desktop = user / ".local" / "share" / "applications" / "ragdesk.desktop"
    icon = user / ".local" / "share" / "icons" / "hicolor" / "scalable" / "apps" / "ragdesk.svg"
    assert (app / "ragdesk").exists() and link.is_symlink() and icon.exists()
    assert os.readlink(link) == str(app / "ragdesk")
    entry = desktop.read_text()
    assert f"Exec={app / 'ragdesk'} gui" in entry and "Icon=ragdesk" in entry and "@" not in entry
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(desktop)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr

    # Installing again replaces the program in place.
    (bundle / "new-file").write_text("v2")
    proc = subprocess.run(["sh", str(INSTALLER / "linux" / "install.sh"), str(bundle)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (app / "new-file").exists() and not (app.parent / "ragdesk.old").exists()

    proc = subprocess.run(["sh", str(INSTALLER / "linux" / "uninstall.sh")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert not app.exists() and not link.exists() and not link.is_symlink()
    assert not desktop.exists() and not icon.exists()
    assert (vault / "vault.db").exists(), "the vault is never removed"
    assert str(vault) in proc.stdout


def test_uninstall_leaves_a_foreign_ragdesk_command_alone(tmp_path: Path) -> None:
    user = tmp_path / "user"
    other = user / ".local" / "bin" / "ragdesk"
    other.parent.mkdir(parents=True)
    other.symlink_to("/opt/somewhere-else/ragdesk")
    proc = subprocess.run(["sh", str(INSTALLER / "linux" / "uninstall.sh")], capture_output=True,
                          text=True, env={"HOME": str(user), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert other.is_symlink()


def test_service_units_name_real_commands_and_hardening() -> None:
    serve = (INSTALLER / "systemd" / "ragdesk-serve@.service").read_text()
    assert "Restart=on-failure" in serve and "NoNewPrivileges=yes" in serve
    assert "ProtectSystem=strict" in serve and "--passphrase-file %d/passphrase" in serve
    backup_unit = (INSTALLER / "systemd" / "ragdesk-backup@.service").read_text()
    assert "ragdesk backup /var/backups/ragdesk/%i --keep 7" in backup_unit
    timer = (INSTALLER / "systemd" / "ragdesk-backup@.timer").read_text()
    assert "OnCalendar=" in timer and "Persistent=true" in timer
    # The options the units pass exist in the command line.
    from ragdesk.cli.main import build_parser

    parser = build_parser()
    args = parser.parse_args(["backup", "/tmp/b", "--keep", "7", "--passphrase-file", "/p"])
    assert args.keep == 7 and args.passphrase_file == "/p"
    args = parser.parse_args(["serve", "--host", "127.0.0.1", "--port", "8101", "--insecure-http",
                              "--passphrase-file", "/p"])
    assert args.port == 8101 and args.insecure_http
