"""The installed bundle checked against its own manifest: is this the program that was shipped?

The build (scripts/build-bundle) writes `SHA256SUMS` at the bundle's root: one line per file,
in `sha256sum`'s format, so the same check can be made with coreutils on a machine without
RagDesk. `ragdesk --self-test` and `ragdesk doctor` call `verify` on the running bundle: a
flipped byte in any bundled file, a missing file, or a file that was not shipped (a library
planted beside the others is loaded like them) is named. The manifest's own digest is what a
user compares with the one published for the release: whoever can change a file can also
change the manifest.

Only a frozen program has a manifest; a development install has nothing to check.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = "SHA256SUMS"


class ManifestError(Exception):
    """The manifest is missing or cannot be read: nothing could be verified."""


@dataclass
class Verification:
    """The bundle's files against its manifest; `ok` when every listed file is there unchanged
    and nothing else is."""

    root: Path
    manifest_digest: str  # SHA-256 of SHA256SUMS itself: compare with the published one
    checked: int = 0
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.unlisted)

    def problems(self, limit: int = 10) -> str:
        """The findings in one line, naming at most `limit` files of each kind."""
        parts = []
        for label, names in (("changed", self.changed), ("missing", self.missing),
                             ("not shipped", self.unlisted)):
            if names:
                more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
                shown = ", ".join(names[:limit]) + more
                parts.append(f"{len(names)} {label}: {shown}")
        return "; ".join(parts)


def bundle_root() -> Path | None:
    """The folder of the running bundle (where its executable and SHA256SUMS are), or None when
    this is not a frozen program (a development or pip install)."""
    if not getattr(sys, "frozen", False):
        return None
    return Path(sys.executable).resolve().parent


def file_digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def bundled_files(root: Path) -> Iterator[str]:
    """Every regular file under `root` except the manifest, as a relative '/'-separated path,
    in a stable order. Symbolic links are listed as files (their target's bytes are hashed)."""
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            rel = Path(folder, name).relative_to(root).as_posix()
            if rel != MANIFEST:
                yield rel


def write_manifest(root: Path) -> str:
    """Write `root`/SHA256SUMS over every file under `root` (call it last, after everything
    else is in place); returns the manifest's own digest."""
    lines = []
    for rel in bundled_files(root):
        if "\n" in rel or "\\" in rel:
            raise ManifestError(f"a file name sha256sum cannot list plainly: {rel!r}")
        lines.append(f"{file_digest(root / rel)}  {rel}\n")
    (root / MANIFEST).write_text("".join(lines), encoding="utf-8", newline="\n")
    return file_digest(root / MANIFEST)


def read_manifest(root: Path) -> dict[str, str]:
    """The manifest's entries: relative path -> SHA-256 (hex)."""
    path = root / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"no {MANIFEST} in {root}: this bundle carries no manifest") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path} cannot be read: {exc}") from exc
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        digest, sep, rel = line.partition("  ")
        if not sep:  # sha256sum's binary mode marks the name with '*'
            digest, sep, rel = line.partition(" *")
        if not sep or len(digest) != 64 or not rel or rel.startswith("/") or ".." in rel.split("/"):
            raise ManifestError(f"{path}, line {number}: not a 'SHA256  FILE' line")
        entries[rel] = digest.lower()
    if not entries:
        raise ManifestError(f"{path} lists no files")
    return entries


def verify(root: Path) -> Verification:
    """Check every file under `root` against `root`/SHA256SUMS. Raises ManifestError when the
    manifest is missing or malformed."""
    entries = read_manifest(root)
    result = Verification(root, file_digest(root / MANIFEST))
    present = set()
    for rel in bundled_files(root):
        present.add(rel)
        expected = entries.get(rel)
        if expected is None:
            result.unlisted.append(rel)
            continue
        try:
            actual = file_digest(root / rel)
        except OSError:
            result.missing.append(rel)  # (a dangling link, an unreadable file)
            continue
        result.checked += 1
        if actual != expected:
            result.changed.append(rel)
    result.missing.extend(sorted(rel for rel in entries if rel not in present))
    return result
