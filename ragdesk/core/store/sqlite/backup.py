"""Encrypted backups of a vault taken while it is in use, pruning, and restore.

A backup is a folder ``DEST/ragdesk-backup-<UTC time>/`` holding

  vault.db       a consistent copy of the vault, encrypted with the same key by SQLCipher
  vault.json     the sidecar (Argon2id salt and cost) that derives that key from the passphrase
  manifest.json  format, time, RagDesk version, schema version, size and SHA-256 of vault.db

and nothing in plain text beyond that. It opens only with the passphrase the vault had when the
backup was taken.

How the copy is made: the process using the vault holds vault.lock, so the backup does not take
it. It opens the database file read-only with the key (inspect.open_readonly), starts one read
transaction (WAL mode shows it one fixed state while the other process keeps writing), counts
every table, and copies
the pages with SQLite's online backup API into a new file keyed with the same key -- pages are
decrypted and re-encrypted in memory only. The copy is written into a hidden ``.partial`` folder,
verified (cipher_integrity_check, integrity_check, every table's row count equal to the
source's), and only then renamed into place: a backup folder without the dot is complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlcipher3

from ragdesk import __version__, paths
from ragdesk.core.store.keys import wipe
from ragdesk.core.store.sqlite import inspect, keyfile, schema
from ragdesk.core.store.sqlite.keyfile import DB_NAME, SIDECAR_NAME, Sidecar, exists, fsync_dir
from ragdesk.core.store.sqlite.lock import LOCK_NAME, ProcessLock
from ragdesk.errors import RagdeskError, VaultMissing, WrongPassphrase

log = logging.getLogger("ragdesk.store.backup")

MANIFEST_NAME = "manifest.json"
# In the data folder: when the last verified backup finished, for the server's metrics (no content).
LAST_BACKUP_NAME = "last-backup.json"
MANIFEST_FORMAT = 1
PREFIX = "ragdesk-backup-"
_NAME = re.compile(rf"^{PREFIX}(\d{{8}}T\d{{6}}Z)(?:-(\d+))?$")
_STALE_PARTIAL_SECONDS = 24 * 3600
# Pages copied per backup step: progress is reported between steps.
_STEP_PAGES = 4096

Progress = Callable[[str, float], None]  # (stage, fraction done of that stage)


class BackupError(RagdeskError):
    """A backup or restore could not be made or verified; nothing was replaced."""


class NeedsConfirmation(RagdeskError):
    """Restoring would replace an existing vault and that was not confirmed."""


@dataclass
class BackupInfo:
    """A completed backup folder found in a destination."""

    path: Path
    created: datetime
    size: int
    manifest: dict[str, Any] = field(default_factory=dict)


@dataclass
class BackupResult:
    path: Path
    size: int
    seconds: float
    counts: dict[str, int]
    pruned: list[Path] = field(default_factory=list)


@dataclass
class RestoreResult:
    source: Path
    home: Path
    replaced: Path | None  # where the vault that was there before now is
    counts: dict[str, int]
    # The audit entry the restore wrote in the restored vault: its head after (SEQ:HASH), and
    # the heads of the restored copy and of the vault it replaced as they were.
    audit: dict[str, Any] = field(default_factory=dict)


# --- helpers ----------------------------------------------------------------------------------


def _utc_stamp(now: float) -> str:
    return datetime.fromtimestamp(now, tz=UTC).strftime("%Y%m%dT%H%M%SZ")


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _quiet(progress: Progress | None) -> Progress:
    return progress or (lambda stage, fraction: None)


def _sorted_sqlite_error(exc: sqlcipher3.Error, what: str) -> RagdeskError:
    text = str(exc).lower()
    if "full" in text:
        return BackupError(f"{what}: the disk is full; free some space and try again")
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return BackupError(f"{what}: cannot write there ({exc})")
    return BackupError(f"{what}: {exc}")


# --- the last backup, as the server's metrics see it --------------------------------------------


def _record_last_backup(home: Path, path: Path, size: int) -> None:
    """Note in the data folder when this backup finished: a backup runs in its own process
    (timer, cron), and the server's `ragdesk_backup_last_success_timestamp_seconds` reads it."""
    try:
        keyfile.write_json_atomically(home / LAST_BACKUP_NAME,
                                      {"at": time.time(), "path": str(path), "bytes": size})
    except OSError as exc:  # the backup itself is complete and verified
        log.warning("could not note the backup in %s: %s", home, exc.strerror)


def last_backup(home: Path) -> dict[str, Any] | None:
    """{"at", "path", "bytes"} of the last verified backup of the vault in `home`, or None."""
    try:
        data = json.loads((home / LAST_BACKUP_NAME).read_text(encoding="utf-8"))
        return {"at": float(data["at"]), "path": str(data["path"]), "bytes": int(data["bytes"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


# --- listing and pruning ----------------------------------------------------------------------


def list_backups(dest: Path) -> list[BackupInfo]:
    """Completed backups in `dest`, oldest first (only folders this module named)."""
    found: list[tuple[tuple[str, int], BackupInfo]] = []
    if not dest.is_dir():
        return []
    for entry in dest.iterdir():
        m = _NAME.match(entry.name)
        if not m or not entry.is_dir() or not (entry / DB_NAME).is_file():
            continue
        created = datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        try:
            manifest = json.loads((entry / MANIFEST_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            manifest = {}
        size = sum(p.stat().st_size for p in entry.iterdir() if p.is_file())
        found.append(((m.group(1), int(m.group(2) or 0)), BackupInfo(entry, created, size, manifest)))
    return [info for _, info in sorted(found, key=lambda item: item[0])]


def prune(dest: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups in `dest` (and stale unfinished ones)."""
    if keep < 1:
        raise RagdeskError("--keep must be at least 1")
    removed: list[Path] = []
    for info in list_backups(dest)[:-keep]:
        shutil.rmtree(info.path)
        removed.append(info.path)
        log.info("pruned old backup %s", info.path)
    now = time.time()
    for entry in dest.glob(f".{PREFIX}*.partial"):
        with contextlib.suppress(OSError):
            if now - entry.stat().st_mtime > _STALE_PARTIAL_SECONDS:
                shutil.rmtree(entry)
                log.info("removed an unfinished backup %s", entry)
    return removed


def _new_name(dest: Path, now: float) -> str:
    """A name that sorts after every backup already made in the same second: names order the
    backups (pruning keeps the last ones), so a name freed by pruning is never used again."""
    stamp = _utc_stamp(now)
    taken = [0]  # suffixes used this second (none = 1)
    for entry in dest.iterdir():
        m = _NAME.match(entry.name.removeprefix(".").removesuffix(".partial"))
        if m and m.group(1) == stamp:
            taken.append(int(m.group(2) or 1))
    n = max(taken) + 1
    return PREFIX + stamp if n == 1 else f"{PREFIX}{stamp}-{n}"


# --- backup -----------------------------------------------------------------------------------


def create_backup(
    home: Path,
    passphrase: str,
    dest: Path,
    keep: int | None = None,
    progress: Progress | None = None,
) -> BackupResult:
    """Write a verified, encrypted backup of the vault in `home` into a new folder under `dest`.

    Works while another process has the vault open. `keep` prunes to the newest N afterwards.
    """
    report = _quiet(progress)
    if keep is not None and keep < 1:
        raise RagdeskError("--keep must be at least 1")
    if not exists(home):
        raise VaultMissing(f"no vault in {home}; nothing to back up")
    t0 = time.perf_counter()
    try:
        if not dest.exists():  # a folder made here is private; the user's own stays theirs
            paths.make_private_dir(dest)
    except OSError as exc:
        raise BackupError(f"cannot create the backup folder {dest}: {exc.strerror}") from exc
    name = _new_name(dest, time.time())
    partial = dest / f".{name}.partial"
    final = dest / name
    try:
        partial.mkdir(mode=0o700)
    except OSError as exc:
        raise BackupError(f"cannot write into {dest}: {exc.strerror}") from exc
    try:
        with inspect.open_readonly(home, passphrase) as source:
            copy = partial / DB_NAME
            source_counts = _copy(source, copy, report)
            source.sidecar.settled(source.params).write(partial)
            report("verifying", 0.0)
            verified = verify_copy(copy, source.key, expected=source_counts)
            report("verifying", 1.0)
        keyfile.write_json_atomically(partial / MANIFEST_NAME, {
            "format": MANIFEST_FORMAT,
            "created_at": time.time(),
            "ragdesk_version": __version__,
            "schema_version": verified.schema_version,
            "vault_db_bytes": copy.stat().st_size,
            "vault_db_sha256": _sha256(copy),
        })
        fsync_dir(partial)
        os.replace(partial, final)
        fsync_dir(dest)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    pruned = prune(dest, keep) if keep is not None else []
    size = sum(p.stat().st_size for p in final.iterdir() if p.is_file())
    log.info("backup written to %s (%d bytes)", final, size)
    _record_last_backup(home, final, size)
    return BackupResult(final, size, time.perf_counter() - t0, source_counts, pruned)


def _copy(source: inspect.VaultFile, target: Path, report: Progress) -> dict[str, int]:
    """Copy one consistent state of `source` into `target`; return that state's row counts."""
    conn = source.conn
    keyfile.create_db_file(target)  # 0600 before SQLite writes into it
    dst = sqlcipher3.connect(str(target), isolation_level=None)
    try:
        keyfile.apply_key(dst, source.key)
        # Same page size (both SQLCipher defaults unless set otherwise): the backup API requires it.
        page_size = conn.execute("PRAGMA cipher_page_size").fetchone()[0]
        dst.execute(f"PRAGMA cipher_page_size = {int(page_size)}")
        report("copying", 0.0)
        # One read transaction for the counts and the copy: both see the same state, and the
        # copy never restarts however busy the writer in the other process is.
        conn.execute("BEGIN")
        try:
            counts = inspect.counts(conn)

            def step(status: int, remaining: int, total: int) -> None:
                report("copying", (total - remaining) / total if total else 1.0)

            conn.backup(dst, pages=_STEP_PAGES, progress=step, sleep=0)
        finally:
            conn.execute("COMMIT")
        # A single self-contained file: no -wal beside it.
        dst.execute("PRAGMA journal_mode = DELETE")
    except sqlcipher3.Error as exc:
        raise _sorted_sqlite_error(exc, "the backup could not be written") from exc
    finally:
        dst.close()
    _fsync_file(target)
    report("copying", 1.0)
    return counts


def verify_copy(db_file: Path, key: bytes | bytearray,
                expected: dict[str, int] | None = None) -> inspect.Health:
    """Open a copy with the key and check it page by page; BackupError if anything is off."""
    if inspect.has_plaintext_header(db_file):
        raise BackupError(f"{db_file} is not encrypted; it was not used")
    try:
        conn = keyfile.connect(db_file, key)
    except WrongPassphrase:
        raise BackupError(f"{db_file} does not open with the vault's key") from None
    try:
        health = inspect.health(conn)
    finally:
        conn.close()
    if health.problems:
        raise BackupError(f"{db_file} failed its integrity check: {'; '.join(health.problems[:3])}")
    if expected is not None and health.counts != expected:
        diff = sorted(k for k in set(expected) | set(health.counts)
                      if expected.get(k) != health.counts.get(k))
        raise BackupError(f"{db_file} differs from the vault in: {', '.join(diff)}")
    return health


# --- restore ----------------------------------------------------------------------------------


def resolve_source(src: Path) -> Path:
    """A backup folder, or the newest backup in a folder of backups."""
    if (src / DB_NAME).is_file() and (src / SIDECAR_NAME).is_file():
        return src
    backups = list_backups(src) if src.is_dir() else []
    if backups:
        return backups[-1].path
    if src.is_dir() and (src / DB_NAME).is_file():
        raise BackupError(f"{src} has no {SIDECAR_NAME}; without it the backup cannot be opened")
    raise BackupError(f"no RagDesk backup in {src}")


def check_backup(src: Path, passphrase: str) -> inspect.Health:
    """Verify a backup folder (checksum, passphrase, integrity) without changing anything."""
    db_file = src / DB_NAME
    try:
        manifest = json.loads((src / MANIFEST_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        manifest = {}
    except (OSError, ValueError) as exc:
        raise BackupError(f"the backup's {MANIFEST_NAME} is unreadable: {exc}") from exc
    expected = manifest.get("vault_db_sha256")
    if expected and _sha256(db_file) != expected:
        raise BackupError(f"{db_file} has changed since it was written (checksum mismatch)")
    try:
        key, _params = keyfile.matching_key(db_file, passphrase, Sidecar.read(src))
    except WrongPassphrase:
        raise WrongPassphrase() from None
    try:
        health = verify_copy(db_file, key)
    finally:
        wipe(key)
    if health.schema_version > schema.SCHEMA_VERSION:
        raise BackupError(
            f"this backup was written by a newer RagDesk (schema {health.schema_version}, this"
            f" release knows {schema.SCHEMA_VERSION}); restore it with that release or newer"
        )
    return health


def restore(
    src: Path,
    home: Path,
    passphrase: str,
    replace: bool | Callable[[Path, Path], bool] = False,
    now: float | None = None,
) -> RestoreResult:
    """Put the backup `src` in place as the vault in `home`, verified.

    An existing vault is replaced only if `replace` is True, or a callable that returns True
    when asked with (backup folder, home) after the backup was verified. The replaced vault is
    moved aside into ``home/replaced-<UTC time>/``, not deleted. If the restored vault fails
    verification the previous one is put back.
    """
    src = resolve_source(src)
    health = check_backup(src, passphrase)
    had_vault = vault_present(home)
    replaced_head = _audit_head(home, passphrase) if had_vault else None
    if had_vault and not (replace(src, home) if callable(replace) else replace):
        raise NeedsConfirmation(
            f"a vault already exists in {home}; confirm to replace it (it is kept aside)"
        )
    paths.make_private_dir(home)
    lock = ProcessLock(home / LOCK_NAME)  # VaultInUse if the GUI or a server has it open
    aside: Path | None = None
    try:
        if had_vault:
            aside = home / f"replaced-{_utc_stamp(now or time.time())}"
            n = 1
            while aside.exists():
                n += 1
                aside = aside.with_name(f"replaced-{_utc_stamp(now or time.time())}-{n}")
            aside.mkdir(mode=0o700)
            for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", SIDECAR_NAME):
                if (home / name).exists():
                    os.replace(home / name, aside / name)
            fsync_dir(aside)
        try:
            for name in (DB_NAME, SIDECAR_NAME):
                tmp = home / f"{name}.restoring"
                paths.create_private_file(tmp)  # copyfile keeps the mode of a file it overwrites
                shutil.copyfile(src / name, tmp)
                _fsync_file(tmp)
                os.replace(tmp, home / name)
            fsync_dir(home)
            key, _params = keyfile.matching_key(home / DB_NAME, passphrase, Sidecar.read(home))
            try:
                restored = verify_copy(home / DB_NAME, key, expected=health.counts)
                restored_head = _audit_head_of(home / DB_NAME, key)
            finally:
                wipe(key)
        except BaseException:
            _undo(home, aside)
            raise
    finally:
        lock.release()
    log.info("restored %s into %s (previous vault: %s)", src, home, aside)
    return RestoreResult(src, home, aside, restored.counts,
                         _record_restore(home, passphrase, src, restored_head, replaced_head, aside))


def _head_on(conn: sqlcipher3.Connection) -> str | None:
    """The audit log's head (SEQ:HASH), None if it is empty or not chained yet."""
    from ragdesk.core.store.sqlite import auditlog

    head = auditlog.head(conn) if auditlog.is_chained(conn) else None
    return str(head) if head else None


def _audit_head_of(db_file: Path, key: bytes | bytearray) -> str | None:
    conn = keyfile.connect(db_file, key)
    try:
        return _head_on(conn)
    finally:
        conn.close()


def _audit_head(home: Path, passphrase: str) -> str | None:
    """The head of the vault about to be replaced, if the passphrase opens it (else None)."""
    try:
        with inspect.open_readonly(home, passphrase) as opened:
            return _head_on(opened.conn)
    except (RagdeskError, sqlcipher3.DatabaseError):
        return None


def _record_restore(home: Path, passphrase: str, src: Path, restored_head: str | None,
                    replaced_head: str | None, aside: Path | None) -> dict[str, Any]:
    """Write the restore into the restored vault's audit log: an older copy put back drops the
    entries written after it, and this entry says so (which heads, from where). Opening the vault
    also upgrades an older backup's schema."""
    from ragdesk.core.store.sqlite import vault as vault_store

    detail = {"source": str(src), "restored_head": restored_head, "replaced_head": replaced_head,
              "replaced_kept_in": str(aside) if aside else None}
    with vault_store.unlock(home, passphrase) as opened:
        opened.audit("backup restored", **detail)
        head = opened.audit_head()
    return {**detail, "head": str(head) if head else None}


def _undo(home: Path, aside: Path | None) -> None:
    """Put the previous vault back after a failed restore."""
    for name in (DB_NAME, SIDECAR_NAME, f"{DB_NAME}.restoring", f"{SIDECAR_NAME}.restoring",
                 f"{DB_NAME}-wal", f"{DB_NAME}-shm"):
        with contextlib.suppress(FileNotFoundError):
            (home / name).unlink()
    if aside is None:
        return
    for entry in aside.iterdir():
        os.replace(entry, home / entry.name)
    with contextlib.suppress(OSError):
        aside.rmdir()


def vault_present(home: Path) -> bool:
    """Whether restoring into `home` would replace something."""
    return exists(home) or (home / SIDECAR_NAME).exists()

