"""The bundle's manifest (core/bundle.py): what `ragdesk --self-test` and `doctor` check in an
installed bundle. A stand-in bundle in a temporary folder, written and verified as the build does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ragdesk.cli.doctor.bundle import bundle as bundle_check
from ragdesk.cli.doctor.checks import Context
from ragdesk.core import bundle


def _stand_in(root: Path) -> Path:
    (root / "_internal" / "lib").mkdir(parents=True)
    (root / "ragdesk").write_bytes(b"\x7fELF executable")
    (root / "_internal" / "lib" / "libfoo.so.1").write_bytes(bytes(range(256)) * 40)
    (root / "_internal" / "model.safetensors").write_bytes(b"weights" * 1000)
    (root / "sbom.cdx.json").write_text("{}")
    return root


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_an_untouched_bundle_verifies(tmp_path: Path) -> None:
    root = _stand_in(tmp_path / "ragdesk")
    digest = bundle.write_manifest(root)
    result = bundle.verify(root)
    assert result.ok and result.checked == 4
    assert result.manifest_digest == digest == bundle.file_digest(root / bundle.MANIFEST)


def test_a_flipped_byte_is_reported_by_name(tmp_path: Path) -> None:
    root = _stand_in(tmp_path / "ragdesk")
    bundle.write_manifest(root)
    _flip(root / "_internal" / "lib" / "libfoo.so.1", 5000)
    result = bundle.verify(root)
    assert not result.ok
    assert result.changed == ["_internal/lib/libfoo.so.1"]
    assert "1 changed: _internal/lib/libfoo.so.1" in result.problems()


def test_missing_and_planted_files_are_named(tmp_path: Path) -> None:
    root = _stand_in(tmp_path / "ragdesk")
    bundle.write_manifest(root)
    (root / "_internal" / "model.safetensors").unlink()
    (root / "_internal" / "lib" / "libevil.so").write_bytes(b"planted")
    result = bundle.verify(root)
    assert result.missing == ["_internal/model.safetensors"]
    assert result.unlisted == ["_internal/lib/libevil.so"]
    assert result.changed == []


def test_the_manifest_is_sha256sum_compatible(tmp_path: Path) -> None:
    """Someone without RagDesk checks the same files with coreutils."""
    root = _stand_in(tmp_path / "ragdesk")
    bundle.write_manifest(root)
    ok = subprocess.run(["sha256sum", "--check", "--quiet", bundle.MANIFEST], cwd=root,
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    _flip(root / "ragdesk", 0)
    bad = subprocess.run(["sha256sum", "--check", "--quiet", bundle.MANIFEST], cwd=root,
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "ragdesk: FAILED" in bad.stdout


def test_a_missing_or_malformed_manifest_is_a_clear_error(tmp_path: Path) -> None:
    root = _stand_in(tmp_path / "ragdesk")
    with pytest.raises(bundle.ManifestError, match="carries no manifest"):
        bundle.verify(root)
    (root / bundle.MANIFEST).write_text("not a digest line\n")
    with pytest.raises(bundle.ManifestError, match="line 1"):
        bundle.verify(root)
    (root / bundle.MANIFEST).write_text("0" * 64 + "  ../../etc/passwd\n")
    with pytest.raises(bundle.ManifestError, match="line 1"):
        bundle.verify(root)


def test_doctor_in_a_dev_install_says_not_a_bundle(tmp_path: Path) -> None:
    check = bundle_check(Context(tmp_path, None, None, 1.0))
    assert check.status == "skip" and check.summary.startswith("not a bundle, skipped")


def test_doctor_names_the_changed_file_in_a_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _stand_in(tmp_path / "ragdesk")
    bundle.write_manifest(root)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(root / "ragdesk"))
    assert bundle_check(Context(tmp_path, None, None, 1.0)).status == "pass"
    _flip(root / "_internal" / "model.safetensors", 10)
    check = bundle_check(Context(tmp_path, None, None, 1.0))
    assert check.status == "fail" and "_internal/model.safetensors" in check.summary
    assert check.details["changed"] == ["_internal/model.safetensors"]
