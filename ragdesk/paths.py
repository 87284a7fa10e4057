"""Where RagDesk keeps its files: one data folder, chosen by --home, RAGDESK_HOME or platformdirs;
and who may read them: only their owner.

The data folder is 0700 and every file RagDesk writes into it (the vault, its WAL and shared
memory, the key's sidecar, the lock, backups, the embedder's cache) 0600. The vault is encrypted,
but a copy of it is what an offline passphrase guess starts from, so another local user must not
be able to take one. POSIX only: on Windows the user's profile folders are private already.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import logging
import os
import stat
import sys
from collections.abc import Iterable
from pathlib import Path

import platformdirs

APP_NAME = "RagDesk"
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600

log = logging.getLogger("ragdesk.paths")
_POSIX = os.name == "posix"


def home(override: str | os.PathLike[str] | None = None) -> Path:
    """The data folder: the explicit override, else $RAGDESK_HOME, else the platform data dir."""
    chosen = override or os.environ.get("RAGDESK_HOME")
    if chosen:
        return Path(chosen).expanduser().resolve()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def resource_dir(name: str) -> Path:
    """A folder of resources/ ("icons", "web"): inside a frozen bundle, else the package data
    `ragdesk.resources` (installed from a wheel, or mapped onto resources/ in a checkout)."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources" / name
    return Path(str(importlib.resources.files("ragdesk.resources") / name))


def make_private_dir(folder: Path) -> Path:
    """Create `folder` (and missing parents) if needed; the folder itself ends up 0700 when this
    user owns it. Parents that already existed are left as they are."""
    folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    tighten([folder])
    return folder


def create_private_file(path: Path) -> None:
    """Create an empty file readable by its owner only, unless it exists (then tighten it)."""
    if not _POSIX:
        path.touch()
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        tighten([path])
    else:
        os.close(fd)


def open_private(path: Path, flags: int) -> int:
    """`os.open` of a file that gets mode 0600 if created, and is tightened if it existed wider."""
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    if _POSIX:
        with contextlib.suppress(OSError):
            if stat.S_IMODE(os.fstat(fd).st_mode) & ~PRIVATE_FILE_MODE:
                os.fchmod(fd, PRIVATE_FILE_MODE)
    return fd


def too_open(path: Path) -> int | None:
    """The mode of `path` if group or others may use it (None if not, or if it is missing)."""
    if not _POSIX:
        return None
    try:
        mode = stat.S_IMODE(path.lstat().st_mode)
    except OSError:
        return None
    return mode if mode & 0o077 else None


def tighten(entries: Iterable[Path]) -> list[Path]:
    """Take group and other permissions away from each existing folder (-> 0700) and file
    (-> 0600) this user owns; symbolic links and others' files are left alone. Returns what was
    changed."""
    changed: list[Path] = []
    if not _POSIX:
        return changed
    for path in entries:
        try:
            st = path.lstat()
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode) or st.st_uid != os.getuid() or not stat.S_IMODE(st.st_mode) & 0o077:
            continue
        wanted = PRIVATE_DIR_MODE if stat.S_ISDIR(st.st_mode) else PRIVATE_FILE_MODE
        try:
            os.chmod(path, stat.S_IMODE(st.st_mode) & wanted)
        except OSError as exc:
            log.warning("could not restrict the permissions of %s: %s", path, exc.strerror)
            continue
        changed.append(path)
    return changed


def private_entries(folder: Path) -> list[Path]:
    """`folder` and everything under it (not following links): what must be private."""
    found = [folder]
    if folder.is_dir() and not folder.is_symlink():
        for root, dirs, files in os.walk(folder):
            found.extend(Path(root, name) for name in (*dirs, *files))
    return found
