"""The one place that opens a keyed vault file: its sidecar, its key and its connections.

A vault folder holds vault.db, the SQLCipher 4 database, and vault.json, the sidecar with the
Argon2id parameters and salt its key is derived with (not secret). While a passphrase change
runs, the sidecar also carries `pending`, the parameters of the new key: whichever key the file
holds after a crash, the passphrase derives it, so the current key is tried first and the
pending one after it.

Every keyed connection is made here: the vault's own (`connect_working`), read-only looks at a
vault or a backup (`connect`) and the copy a backup writes (`apply_key`). The key reaches
SQLCipher as a raw key, and its literal is built in one function only.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlcipher3
import sqlite_vec

from ragdesk import paths
from ragdesk.core.store.keys import KdfParams, derive_key, hex_into, wipe, wipe_immutable
from ragdesk.core.store.sqlite import schema
from ragdesk.core.store.sqlite.errors import sorted_errors
from ragdesk.core.store.sqlite.lock import LOCK_NAME
from ragdesk.errors import StorageError, VaultMissing, VaultTooNew, WrongPassphrase

DB_NAME = "vault.db"
SIDECAR_NAME = "vault.json"
SIDECAR_FORMAT = 1

# Page cache of each of the vault's own connections, in KiB. Every page read from disk is
# decrypted again, so the hot vector and keyword pages must fit; the cache grows only as used.
DEFAULT_CACHE_KIB = 512 * 1024
# Enough that an integrity check of a mid-sized vault does not decrypt pages twice.
_INSPECT_CACHE_KIB = 64 * 1024

T = TypeVar("T")

log = logging.getLogger("ragdesk.store")


def vault_files(home: Path) -> list[Path]:
    """The data folder and the vault's files in it that exist: what must be private (0700/0600)."""
    names = (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", f"{DB_NAME}-journal", SIDECAR_NAME,
             f"{SIDECAR_NAME}.tmp", LOCK_NAME)
    return [home, *(p for p in (home / name for name in names) if p.exists())]


def tighten_vault(home: Path) -> None:
    """Make an existing vault private (folder 0700, files 0600): vaults made before RagDesk set
    the modes itself were 0755/0644, readable by every local user."""
    changed = paths.tighten(vault_files(home))
    if changed:
        log.info("restricted the permissions of %s", ", ".join(p.name for p in changed))


def create_db_file(db_file: Path) -> None:
    """The empty vault file, 0600 from the start: SQLite gives the -wal and -shm files it makes
    beside it the same mode."""
    paths.create_private_file(db_file)


def exists(home: Path) -> bool:
    """Whether `home` holds a vault database."""
    return (home / DB_NAME).exists()


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in `folder` durable (POSIX; a no-op elsewhere)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` with `data` as JSON: a crash leaves the old content or the new, whole."""
    tmp = path.with_name(path.name + ".tmp")
    fd = paths.open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with open(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


# --- the sidecar: KDF parameters and salt -----------------------------------------------------


@dataclass(frozen=True)
class Sidecar:
    """The parsed vault.json: the key's KDF parameters (and a pending set mid passphrase
    change); `data` is the whole file, kept so that fields of a later release survive."""

    data: dict[str, Any]
    kdf: KdfParams
    pending: KdfParams | None = None

    @classmethod
    def new(cls, params: KdfParams) -> Sidecar:
        """The sidecar of a vault made now whose key `params` derive."""
        data = {"format": SIDECAR_FORMAT, "kdf": params.to_json(), "created_at": time.time()}
        return cls(data, params)

    @classmethod
    def read(cls, folder: Path) -> Sidecar:
        """The sidecar in `folder`. Missing: VaultMissing; from a newer release: VaultTooNew;
        unreadable or damaged: StorageError."""
        path = folder / SIDECAR_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except FileNotFoundError:
            raise VaultMissing(
                f"the key file {path} is missing; without it the vault cannot be opened"
            ) from None
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot read {path}: {exc}") from exc
        fmt = data.get("format", 0)
        if isinstance(fmt, int) and fmt > SIDECAR_FORMAT:
            raise VaultTooNew(
                "this vault was written by a newer RagDesk; it was not opened or changed."
                " Please update RagDesk."
            )
        try:
            if not isinstance(fmt, int):
                raise ValueError(f"format {fmt!r}")
            kdf = KdfParams.from_json(data["kdf"])
            pending = KdfParams.from_json(data["pending"]) if "pending" in data else None
        except (KeyError, TypeError, ValueError) as exc:
            raise StorageError(f"{path} is damaged ({exc}); restore it from a backup") from exc
        return cls(data, kdf, pending)

    def candidates(self) -> list[KdfParams]:
        """The parameters whose key may open the file: the current ones, then the pending."""
        return [self.kdf] if self.pending is None else [self.kdf, self.pending]

    def with_pending(self, params: KdfParams) -> Sidecar:
        """This sidecar with `params` recorded as the pending key's (before a rekey)."""
        return Sidecar({**self.data, "pending": params.to_json()}, self.kdf, params)

    def settled(self, params: KdfParams) -> Sidecar:
        """This sidecar for a file whose key `params` derive, with no pending key."""
        data = {k: v for k, v in self.data.items() if k != "pending"}
        data["kdf"] = params.to_json()
        return Sidecar(data, params)

    def write(self, folder: Path) -> None:
        write_json_atomically(folder / SIDECAR_NAME, self.data)


def open_with_passphrase(passphrase: str, sidecar: Sidecar,
                         attempt: Callable[[bytearray, KdfParams], T]) -> T:
    """What `attempt(key, params)` returns for the first key that opens the file: the current
    parameters' key, then the pending ones' (an interrupted passphrase change). `attempt` raises
    WrongPassphrase when the key does not open it; that key is wiped and the next one tried. A
    key whose attempt succeeded belongs to what it returned."""
    for params in sidecar.candidates():
        key = derive_key(passphrase, params)
        try:
            return attempt(key, params)
        except WrongPassphrase:
            wipe(key)
        except BaseException:
            wipe(key)
            raise
    raise WrongPassphrase()


def matching_key(db_file: Path, passphrase: str, sidecar: Sidecar) -> tuple[bytearray, KdfParams]:
    """The key (and its parameters) that opens `db_file`; WrongPassphrase if none does."""

    def opens(key: bytearray, params: KdfParams) -> tuple[bytearray, KdfParams]:
        connect(db_file, key).close()
        return key, params

    return open_with_passphrase(passphrase, sidecar, opens)


# --- keyed connections ------------------------------------------------------------------------


def _key_pragma(conn: sqlcipher3.Connection, pragma: str, key: bytes | bytearray) -> None:
    """Run `PRAGMA <pragma> = "x'<64 hex digits>'"`: SQLCipher takes the key as a raw key (its
    own PBKDF2 is skipped). The only place the key's hex is written.

    The statement is built in a bytearray and wiped; the one str SQLite must be given is run
    outside the statement cache (executescript: nothing keeps a reference to it) and its
    characters zeroed right after. SQLite's own copies of the text are freed through SQLCipher's
    allocator, which zeroes what it frees once cipher_memory_security is on (apply_key)."""
    head, tail = f'PRAGMA {pragma} = "x\''.encode("ascii"), b"'\""
    text = bytearray(len(head) + 2 * len(key) + len(tail))
    text[:len(head)] = head
    hex_into(key, text, len(head))
    text[len(text) - len(tail):] = tail
    sql = text.decode("ascii")
    wipe(text)
    try:
        conn.executescript(sql)
    finally:
        wipe_immutable(sql)
        del sql


def apply_key(conn: sqlcipher3.Connection, key: bytes | bytearray) -> None:
    """Key a connection before its first read."""
    # SQLCipher logs decryption failures to stderr; a wrong passphrase is reported once, as a
    # clear message, by the caller.
    conn.execute("PRAGMA cipher_log_level = NONE")
    # Before the key: from here on SQLCipher zeroes every allocation it frees, so the copies of
    # the key's text that SQLite's parser makes do not outlive the statement.
    conn.execute("PRAGMA cipher_memory_security = ON")
    _key_pragma(conn, "key", key)


def rekey(conn: sqlcipher3.Connection, key: bytes | bytearray) -> None:
    """Re-encrypt the whole file under `key` (every other connection must be closed)."""
    _key_pragma(conn, "rekey", key)


def _open(db_file: Path, key: bytes | bytearray, mode: str, timeout: float) -> sqlcipher3.Connection:
    """A connection keyed with `key` whose first page was read: WrongPassphrase if the key does
    not decrypt it. `mode` is SQLite's URI mode: ro, rw or rwc (create)."""
    if mode != "rwc" and not db_file.is_file():
        raise VaultMissing(f"no vault file at {db_file}")
    conn = sqlcipher3.connect(f"{db_file.resolve().as_uri()}?mode={mode}", uri=True,
                              isolation_level=None, check_same_thread=False, timeout=timeout)
    try:
        apply_key(conn, key)
        # Sorting (an integrity check, a search) must not spill decrypted rows into temp files.
        conn.execute("PRAGMA temp_store = MEMORY")
        with sorted_errors(f"cannot read {db_file}"):
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn


def load_sqlite_vec(conn: sqlcipher3.Connection) -> None:
    """sqlite-vec into this connection (vault connections and the doctor's engine probe)."""
    conn.enable_load_extension(True)
    sqlite_vec.load(conn)
    conn.enable_load_extension(False)


def connect(db_file: Path, key: bytes | bytearray, read_only: bool = True) -> sqlcipher3.Connection:
    """A keyed connection to a vault file as it is, with sqlite-vec loaded: for backups, their
    checks and the doctor. No process lock is taken, nothing is written by opening it, and any
    schema version is accepted (the caller reports it). WrongPassphrase if the key is not the
    file's."""
    conn = _open(db_file, key, "ro" if read_only else "rw", timeout=30.0)
    try:
        conn.execute(f"PRAGMA cache_size = -{_INSPECT_CACHE_KIB}")
        load_sqlite_vec(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def connect_working(db_file: Path, key: bytes | bytearray, read_only: bool,
                    cache_kib: int = DEFAULT_CACHE_KIB) -> sqlcipher3.Connection:
    """One of the vault's own connections; `read_only` opens the file read-only. A file whose
    schema is newer than this release's is refused (VaultTooNew) before anything is set."""
    conn = _open(db_file, key, "ro" if read_only else "rwc", timeout=10.0)
    try:
        with sorted_errors():
            found = conn.execute("PRAGMA user_version").fetchone()[0]
        schema.check_version(found)
        load_sqlite_vec(conn)
        with sorted_errors():
            if not read_only:  # WAL is recorded in the file; a reader need not set it
                conn.execute("PRAGMA journal_mode = WAL")
            for pragma in (
                "secure_delete = ON",  # what is deleted is zeroed, not left in free pages
                "foreign_keys = ON",
                # WAL + NORMAL: a commit survives the process being killed at any moment and
                # the file is never left inconsistent; only a power cut can take back the last
                # commits. FULL would cost a disk sync on every commit.
                "synchronous = NORMAL",
                f"cache_size = -{int(cache_kib)}",
            ):
                conn.execute(f"PRAGMA {pragma}")
    except BaseException:
        conn.close()
        raise
    return conn
