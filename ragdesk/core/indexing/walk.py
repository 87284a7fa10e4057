"""Finding the files to index: every regular file under the given paths, and paths as text the
store can hold."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ragdesk.core.indexing.progress import FileOutcome
from ragdesk.core.records import FAILED


def path_text(path: Path | str) -> str:
    """A path as text the store can hold. Names that are not valid UTF-8 (possible on Linux)
    keep their undecodable bytes as surrogate escapes, which are stored escaped; see
    `path_from_text`."""
    text = os.fsdecode(path)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class FoundFile:
    path: Path
    size: int
    mtime: float


def walk(paths: Iterable[Path]) -> Iterator[FoundFile | FileOutcome]:
    """Every regular file under `paths` (recursively), or an outcome for what cannot be walked.

    Hidden files and folders inside folders are skipped (an explicit path is always taken).
    Symbolic links are followed, each real folder once, so a link loop ends.
    """
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()

    def one_file(p: Path) -> FoundFile | FileOutcome | None:
        try:
            st = p.stat()
        except OSError as exc:
            return FileOutcome(path_text(p), FAILED, os_reason(exc))
        if not stat.S_ISREG(st.st_mode):
            return None
        key = (st.st_dev, st.st_ino)
        if key in seen_files:
            return None
        seen_files.add(key)
        return FoundFile(p, st.st_size, st.st_mtime)

    def folder(d: Path) -> Iterator[FoundFile | FileOutcome]:
        try:
            st = d.stat()
        except OSError as exc:
            yield FileOutcome(path_text(d), FAILED, os_reason(exc))
            return
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            return
        seen_dirs.add(key)
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as exc:
            yield FileOutcome(path_text(d), FAILED, os_reason(exc))
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            p = Path(entry.path)
            try:
                is_dir = entry.is_dir()  # follows links
            except OSError as exc:
                yield FileOutcome(path_text(p), FAILED, os_reason(exc))
                continue
            if is_dir:
                yield from folder(p)
            else:
                found = one_file(p)
                if found is not None:
                    yield found

    for raw in paths:
        p = Path(os.path.abspath(raw))
        if p.is_dir():
            yield from folder(p)
        else:
            found = one_file(p)
            if found is not None:
                yield found


def os_reason(exc: OSError) -> str:
    """Why the OS would not let us read a file or folder, as the user sees it."""
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "cannot read the file (permission denied)"
    if exc.errno == errno.ENOENT:
        return "file not found (a broken link, or it was removed)"
    return f"cannot read the file ({exc.strerror or exc})"
