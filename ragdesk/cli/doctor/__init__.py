"""`ragdesk doctor`: checks the installation, the vault and the machine, and says what to do.

Each check ends as pass, warn, fail or skip, with a one-line finding and, unless it passed, a
remedy. Checks that need the vault's contents run only when a passphrase is given; they open the
database read-only without its process lock (see core/store/snapshot.py), so the doctor also
works while the GUI or a server has the vault open. Without a passphrase they are reported as
skipped. Nothing here writes to the vault.

With a PostgreSQL team server (`--database` / $RAGDESK_DATABASE_URL) the vault checks give way to
the database's: connection, server version, pgvector, schema version, TLS (`sslmode`), the
passphrase and contents (read-only), and encryption at rest. PostgreSQL does not encrypt its
files; the doctor says so plainly, and when the server runs on this machine it looks whether the
data directory sits on a dm-crypt (LUKS) device. Of a remote server it cannot see the disks.

The doctor sits beside app.py rather than in the core because it looks at the whole composition:
the configured embedder, the Ollama host, the OS (disk, memory, Tesseract).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ragdesk import __version__
from ragdesk.core.system import available_memory
from ragdesk.core.units import format_bytes

log = logging.getLogger("ragdesk.cli.doctor")

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"

MIB = 1 << 20
GIB = 1 << 30
DISK_FAIL_BYTES = 512 * MIB
DISK_WARN_BYTES = 2 * GIB
MEMORY_FAIL_BYTES = 256 * MIB
MEMORY_WARN_BYTES = 1 * GIB

RESTORE_REMEDY = (
    "restore the latest backup: `ragdesk restore BACKUP_FOLDER --yes` (the damaged vault is kept"
    " aside); without a backup, create a new vault and index the documents again"
)


@dataclass
class Check:
    name: str  # stable identifier, e.g. "vault.integrity"
    status: str  # pass | warn | fail | skip
    summary: str
    remedy: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    checks: list[Check]
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not any(c.status == FAIL for c in self.checks)

    @property
    def skipped(self) -> list[Check]:
        return [c for c in self.checks if c.status == SKIP]

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "version": __version__, "seconds": round(self.seconds, 3),
                "checks": [asdict(c) for c in self.checks],
                "skipped": [c.name for c in self.skipped]}


@dataclass
class _Context:
    """What the checks learn along the way and pass on to later ones."""

    home: Path
    passphrase: str | None
    ollama_host: str | None
    timeout: float
    vault_file: Path = field(init=False)
    has_vault: bool = False
    settings: dict[str, Any] = field(default_factory=dict)
    health: Any = None  # snapshot.Health once the vault was opened
    mismatched_documents: int = 0
    builtin_dimension: int | None = None
    database: str | None = None  # a PostgreSQL URL: its checks replace the vault's
    pg: Any = None  # the psycopg connection the database checks share

    def __post_init__(self) -> None:
        from ragdesk.core.store.sqlite.vault import DB_NAME

        self.vault_file = self.home / DB_NAME

    @property
    def embedder_choice(self) -> dict[str, Any]:
        choice = self.settings.get("embedder") or {"kind": "builtin"}
        return choice if isinstance(choice, dict) else {"kind": "builtin"}


def run(
    home: Path,
    passphrase: str | None = None,
    ollama_host: str | None = None,
    timeout: float = 3.0,
    database: str | None = None,
) -> Report:
    """Run every check; `ollama_host` None means $OLLAMA_HOST, the vault's setting or the default.
    `database`: a postgresql:// URL, checked instead of the vault in `home`."""
    t0 = time.perf_counter()
    ctx = _Context(home, passphrase or None, ollama_host, timeout, database=database or None)
    try:
        checks = list(_checks(ctx))
    finally:
        if ctx.pg is not None:
            ctx.pg.close()
    return Report(checks, time.perf_counter() - t0)


def _checks(ctx: _Context) -> Iterator[Check]:
    store_steps: list[Callable[[_Context], Check | list[Check]]] = (
        [_pg_connection, _pg_server, _pg_vector, _pg_schema, _pg_tls, _pg_encryption,
         _pg_contents] if ctx.database else [_data_folder, _vault_files, _vault_contents])
    steps: list[Callable[[_Context], Check | list[Check]]] = [
        _runtime, _builtin_model, *store_steps, _embedder, _ollama, _tesseract, _disk, _memory,
    ]
    for step in steps:
        try:
            result = step(ctx)
        except Exception as exc:  # a check that crashes is a finding, not the end of the report
            log.exception("check %s crashed", step.__name__)
            result = Check(step.__name__.strip("_"), FAIL, f"the check itself failed: {exc!r}",
                           "report this as a bug (run with --verbose for details)")
        yield from (result if isinstance(result, list) else [result])


# --- installation -------------------------------------------------------------------------------


def _runtime(ctx: _Context) -> Check:
    """SQLCipher with FTS5 and the sqlite-vec extension load: without them nothing works."""
    import sqlcipher3
    import sqlite_vec

    details: dict[str, Any] = {
        "ragdesk": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "bundled": bool(getattr(sys, "frozen", False)),
    }
    conn = sqlcipher3.connect(":memory:")
    try:
        details["sqlcipher"] = conn.execute("PRAGMA cipher_version").fetchone()[0]
        conn.enable_load_extension(True)
        sqlite_vec.load(conn)
        conn.enable_load_extension(False)
        details["sqlite_vec"] = conn.execute("SELECT vec_version()").fetchone()[0]
        conn.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize = 'porter unicode61')")
    except Exception as exc:  # noqa: BLE001 - any failure here means a broken installation
        return Check("runtime", FAIL, f"the database engine is incomplete: {exc}",
                     "reinstall RagDesk (SQLCipher, sqlite-vec and FTS5 are part of it)", details)
    finally:
        conn.close()
    if not details["sqlcipher"]:
        return Check("runtime", FAIL, "SQLite was loaded without SQLCipher: vaults cannot be opened",
                     "reinstall RagDesk", details)
    return Check("runtime", PASS,
                 f"RagDesk {__version__}, SQLCipher {details['sqlcipher']}, "
                 f"sqlite-vec {details['sqlite_vec']}, FTS5", details=details)


def _builtin_model(ctx: _Context) -> Check:
    from ragdesk.core.embedding import BuiltinModelMissing, builtin_model_dir

    try:
        model_dir = builtin_model_dir()
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except BuiltinModelMissing as exc:
        return Check("embedder.builtin", FAIL, str(exc).split(":")[0],
                     str(exc).split(": ", 1)[-1])
    ctx.builtin_dimension = int(config["hidden_size"])
    return Check("embedder.builtin", PASS,
                 f"built-in embedding model installed ({ctx.builtin_dimension} dimensions)",
                 details={"folder": str(model_dir)})


# --- the vault ------------------------------------------------------------------------------------


def _data_folder(ctx: _Context) -> Check:
    home = ctx.home
    if not home.exists():
        return Check("data.folder", WARN, f"the data folder {home} does not exist yet",
                     "create a vault with `ragdesk init` (or start RagDesk)", {"path": str(home)})
    if not home.is_dir():
        return Check("data.folder", FAIL, f"{home} is not a folder",
                     "point --home or RAGDESK_HOME at a folder", {"path": str(home)})
    if not os.access(home, os.W_OK | os.X_OK):
        return Check("data.folder", FAIL, f"the data folder {home} is not writable",
                     "give your user write access to it, or choose another with RAGDESK_HOME",
                     {"path": str(home)})
    return Check("data.folder", PASS, f"data folder {home}", details={"path": str(home)})


def _vault_files(ctx: _Context) -> Check:
    from ragdesk.core.store.sqlite import snapshot
    from ragdesk.core.store.sqlite.vault import SIDECAR_NAME

    vault_file, sidecar = ctx.vault_file, ctx.home / SIDECAR_NAME
    if not vault_file.exists():
        if sidecar.exists():
            return Check("vault.files", FAIL, f"{SIDECAR_NAME} is there but vault.db is missing",
                         RESTORE_REMEDY)
        return Check("vault.files", WARN, f"no vault in {ctx.home} yet",
                     "create one with `ragdesk init`, or restore a backup with `ragdesk restore`")
    ctx.has_vault = True
    size = vault_file.stat().st_size
    details = {"path": str(vault_file), "bytes": size}
    try:
        if snapshot.has_plaintext_header(vault_file):
            return Check("vault.files", FAIL, "vault.db is NOT encrypted (a plain SQLite file)",
                         "this is not a RagDesk vault; move it away and restore a backup", details)
        snapshot.Sidecar.read(ctx.home)
    except Exception as exc:  # noqa: BLE001 - RagdeskError or OSError: both a finding
        return Check("vault.files", FAIL, str(exc), RESTORE_REMEDY, details)
    return Check("vault.files", PASS, f"encrypted vault found ({format_bytes(size)})", details=details)


_VAULT_CHECKS = ("vault.unlock", "vault.cipher_integrity", "vault.integrity", "vault.schema",
                 "vault.vectors")


def _skip_vault(reason: str, remedy: str = "") -> list[Check]:
    return [Check(name, SKIP, reason, remedy) for name in _VAULT_CHECKS]


def _vault_contents(ctx: _Context) -> list[Check]:
    from ragdesk.core.store.sqlite import schema as migrations, snapshot
    from ragdesk.errors import RagdeskError, WrongPassphrase

    if not ctx.has_vault:
        return _skip_vault("skipped: there is no vault")
    if ctx.passphrase is None:
        return _skip_vault(
            "skipped: needs the passphrase",
            "run again with RAGDESK_PASSPHRASE set, --passphrase-file FILE, or on a terminal",
        )
    checks: list[Check] = []
    try:
        with snapshot.open_snapshot(ctx.home, ctx.passphrase) as snap:
            checks.append(Check("vault.unlock", PASS, "the passphrase opens the vault",
                                details={"kdf": {k: v for k, v in snap.params.to_json().items()
                                                 if k != "salt"}}))
            health = snap.health()
            ctx.health = health
            if not health.problems and health.schema_version <= migrations.SCHEMA_VERSION:
                ctx.settings = {"embedder": snapshot.setting(snap.conn, "embedder"),
                                "chat_model": snapshot.setting(snap.conn, "chat_model"),
                                "ollama_host": snapshot.setting(snap.conn, "ollama_host")}
                ctx.mismatched_documents = snapshot.chunk_count_mismatches(snap.conn)
    except WrongPassphrase:
        return [Check("vault.unlock", FAIL,
                      "the passphrase does not open the vault (or its first page is damaged)",
                      "check the passphrase (it is case-sensitive); if it is right, " + RESTORE_REMEDY),
                *_skip_vault("skipped: the vault could not be opened")[1:]]
    except RagdeskError as exc:
        return [Check("vault.unlock", FAIL, str(exc), RESTORE_REMEDY),
                *_skip_vault("skipped: the vault could not be opened")[1:]]

    if health.cipher_errors:
        checks.append(Check("vault.cipher_integrity", FAIL,
                            f"{len(health.cipher_errors)} page(s) fail their authentication code"
                            " (damaged or tampered with)", RESTORE_REMEDY,
                            {"errors": health.cipher_errors[:20]}))
    else:
        checks.append(Check("vault.cipher_integrity", PASS, "every page decrypts and authenticates"))
    if health.integrity_errors:
        checks.append(Check("vault.integrity", FAIL, "the database structure is damaged",
                            RESTORE_REMEDY, {"errors": health.integrity_errors[:20]}))
    else:
        checks.append(Check("vault.integrity", PASS, "integrity check ok"))

    found, known = health.schema_version, migrations.SCHEMA_VERSION
    if found > known:
        checks.append(Check("vault.schema", FAIL,
                            f"schema version {found} is newer than this release knows ({known})",
                            "update RagDesk; this release will not open or change the vault"))
    elif found < known:
        checks.append(Check("vault.schema", WARN, f"schema version {found}; this release uses {known}",
                            "it is upgraded automatically the next time the vault is opened"))
    else:
        checks.append(Check("vault.schema", PASS, f"schema version {found} (current)"))
    checks.append(_vectors(ctx))
    return checks


def _vectors(ctx: _Context) -> Check:
    health = ctx.health
    if health is None or health.problems or not health.counts:
        return Check("vault.vectors", SKIP, "skipped: the vault's tables could not be read")
    details = {"documents": health.documents, "chunks": health.chunks, "vectors": health.vectors}
    if ctx.mismatched_documents:
        return Check("vault.vectors", FAIL,
                     f"{ctx.mismatched_documents} document(s) disagree with their chunk count",
                     "index those folders again (`ragdesk sync`), or " + RESTORE_REMEDY, details)
    vectors = health.vectors or 0
    if vectors != health.chunks:
        return Check("vault.vectors", FAIL,
                     f"{health.chunks} chunks but {vectors} vectors: search misses part of the text",
                     "index the affected folders again (`ragdesk index FOLDER`), or " + RESTORE_REMEDY,
                     details)
    if not health.chunks:
        return Check("vault.vectors", PASS, "no documents indexed yet", details=details)
    return Check("vault.vectors", PASS,
                 f"{health.documents} documents, {health.chunks} chunks, one vector each",
                 details=details)


def _embedder(ctx: _Context) -> Check:
    """The configured embedder and the vault's vectors agree on model and dimension."""
    from ragdesk.core.embedding import BUILTIN_MODEL

    health = ctx.health
    name = "db.embedder" if ctx.database else "vault.embedder"
    if health is None or health.problems or not health.counts:
        reason = "needs the passphrase" if ctx.passphrase is None and ctx.has_vault else (
            "there is no vault" if not ctx.has_vault else "the vault could not be read")
        if ctx.database:
            reason = "needs the passphrase" if ctx.passphrase is None else \
                "the database's contents could not be read"
        return Check(name, SKIP, f"skipped: {reason}")
    choice = ctx.embedder_choice
    if choice.get("kind") == "ollama":
        expected_name, expected_dim = f"ollama:{choice.get('model')}", None
    else:
        expected_name, expected_dim = f"builtin:{BUILTIN_MODEL}", ctx.builtin_dimension
    space = health.vector_space
    details = {"configured": expected_name, "vault": asdict(space) if space else None}
    if space is None:
        if health.chunks:
            return Check(name, FAIL, "the vault has chunks but no record of their embedder",
                         "index the folders again, or " + RESTORE_REMEDY, details)
        return Check(name, PASS, f"no vectors yet; {expected_name} will make them",
                     details=details)
    if space.embedder != expected_name:
        return Check(name, WARN,
                     f"the vectors were made by {space.embedder}, but {expected_name} is configured",
                     "run `ragdesk sync` to re-embed with the configured model, or switch back in"
                     " Settings", details)
    if expected_dim is not None and space.dimension != expected_dim:
        return Check(name, FAIL,
                     f"the vault's vectors have {space.dimension} dimensions, the model makes"
                     f" {expected_dim}", "re-index the collections (`ragdesk sync`)", details)
    return Check(name, PASS, f"{space.embedder}, {space.dimension} dimensions",
                 details=details)


# --- a PostgreSQL team server -----------------------------------------------------------------------

POSTGRES_README = "installer/postgres/README.md"
MIN_SERVER_VERSION = 130000  # pgvector 0.8 supports PostgreSQL 13 and later
MIN_PGVECTOR = (0, 8)  # iterative index scans: a collection filter still returns k rows
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def _redacted(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{user}{parts.hostname or ''}{port}{parts.path}"


def _pg_skip(names: tuple[str, ...], reason: str) -> list[Check]:
    return [Check(n, SKIP, f"skipped: {reason}") for n in names]


def _pg_connection(ctx: _Context) -> Check:
    try:
        import psycopg
    except ImportError:
        return Check("db.connection", FAIL, "the PostgreSQL client library (psycopg) is missing",
                     "pip install 'ragdesk[postgres]'")
    where = _redacted(ctx.database or "")
    try:
        ctx.pg = psycopg.connect(ctx.database or "", connect_timeout=max(1, int(ctx.timeout)),
                                 autocommit=True)
    except psycopg.Error as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        lowered = text.lower()
        if "password" in lowered or "authentication" in lowered:
            remedy = ("check the user and password (~/.pgpass, mode 0600) or the client"
                      " certificate, and that pg_hba.conf lets this user in from this host")
        elif "ssl" in lowered or "certificate" in lowered:
            remedy = ("check sslrootcert= (the CA that signed the server's certificate) and that"
                      f" the URL names the host the certificate is for ({POSTGRES_README})")
        elif "does not exist" in lowered:
            remedy = f"create the database and the role as the PostgreSQL admin ({POSTGRES_README})"
        else:
            remedy = ("check the URL (--database or RAGDESK_DATABASE_URL), that PostgreSQL runs and"
                      " listens there (listen_addresses, port), and that no firewall is in the way")
        return Check("db.connection", FAIL, f"cannot connect to {where}: {text}", remedy,
                     {"url": where})
    info = ctx.pg.info
    socket = info.host.startswith("/")
    details = {"url": where, "host": info.host, "port": info.port, "database": info.dbname,
               "user": info.user, "unix_socket": socket}
    via = f"the Unix socket in {info.host}" if socket else f"{info.host}:{info.port}"
    return Check("db.connection", PASS, f"connected to database {info.dbname} as {info.user} via {via}",
                 details=details)


def _pg_server(ctx: _Context) -> Check:
    if ctx.pg is None:
        return Check("db.server", SKIP, "skipped: no connection")
    number = int(ctx.pg.info.server_version)
    text = ctx.pg.execute("SHOW server_version").fetchone()[0]
    details = {"version": text, "version_num": number}
    if number < MIN_SERVER_VERSION:
        return Check("db.server", FAIL, f"PostgreSQL {text} is too old for pgvector 0.8",
                     "upgrade to PostgreSQL 13 or later (17 or 18 recommended)", details)
    return Check("db.server", PASS, f"PostgreSQL {text}", details=details)


def _pg_vector(ctx: _Context) -> Check:
    if ctx.pg is None:
        return Check("db.pgvector", SKIP, "skipped: no connection")
    row = ctx.pg.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    if row is None:
        available = ctx.pg.execute(
            "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'").fetchone()
        if available is None:
            return Check("db.pgvector", FAIL, "pgvector is not installed on the database server",
                         "install it there (Debian/Ubuntu: `apt install postgresql-NN-pgvector`),"
                         f" then `CREATE EXTENSION vector;` in the database ({POSTGRES_README})")
        return Check("db.pgvector", FAIL,
                     f"pgvector {available[0]} is installed but not created in this database",
                     f"as the PostgreSQL admin: `CREATE EXTENSION vector;` in it ({POSTGRES_README})",
                     {"available": available[0]})
    version = str(row[0])
    details = {"version": version}
    numbers = tuple(int(x) for x in version.split(".")[:2] if x.isdigit())
    if numbers < MIN_PGVECTOR:
        return Check("db.pgvector", WARN,
                     f"pgvector {version}: older than 0.8, so a search within a collection may"
                     " return fewer passages than asked for",
                     "upgrade pgvector to 0.8 or later, then `ALTER EXTENSION vector UPDATE;`", details)
    return Check("db.pgvector", PASS, f"pgvector {version}", details=details)


def _pg_schema(ctx: _Context) -> Check:
    if ctx.pg is None:
        return Check("db.schema", SKIP, "skipped: no connection")
    from ragdesk.core.store import postgres

    found, known = postgres.schema_version(ctx.pg), postgres.SCHEMA_VERSION
    details = {"found": found, "known": known}
    if found == 0:
        return Check("db.schema", WARN, "the database holds no RagDesk schema yet",
                     "create it with `ragdesk --database URL init` (asks for the server passphrase)",
                     details)
    ctx.has_vault = True
    if found > known:
        return Check("db.schema", FAIL, f"schema version {found} is newer than this release knows ({known})",
                     "update RagDesk on this machine; this release will not change the database", details)
    if found < known:
        return Check("db.schema", WARN, f"schema version {found}; this release uses {known}",
                     "it is upgraded (under an advisory lock) the next time RagDesk opens it", details)
    return Check("db.schema", PASS, f"schema version {found} (current)", details=details)


def _pg_tls(ctx: _Context) -> Check:
    if ctx.pg is None:
        return Check("db.tls", SKIP, "skipped: no connection")
    info = ctx.pg.info
    sslmode = info.get_parameters().get("sslmode", "prefer")  # only non-defaults are listed
    in_use = bool(ctx.pg.pgconn.ssl_in_use)
    details = {"sslmode": sslmode, "tls_in_use": in_use}
    remedy = ("use `sslmode=verify-full` with `sslrootcert=` the CA that signed the server's"
              " certificate, e.g. RAGDESK_DATABASE_URL=postgresql://ragdesk@db.example.internal/ragdesk"
              f"?sslmode=verify-full&sslrootcert=/etc/ragdesk/db-ca.pem ({POSTGRES_README})")
    if info.host.startswith("/"):
        return Check("db.tls", PASS, "Unix socket: the connection does not cross a network, so"
                     " TLS is not needed", details=details)
    if sslmode == "verify-full" and in_use:
        return Check("db.tls", PASS, "TLS with the server's certificate and host name verified"
                     " (sslmode=verify-full)", details=details)
    if sslmode == "verify-ca":
        return Check("db.tls", WARN, "TLS, but the server's host name is not checked"
                     " (sslmode=verify-ca)", remedy, details)
    what = "encrypted but the server is not authenticated" if in_use else "NOT encrypted"
    return Check("db.tls", WARN, f"the connection is {what} (sslmode={sslmode}): a machine on the"
                 " path could read or change answers", remedy, details)


def _is_local(ctx: _Context) -> bool:
    host = ctx.pg.info.host if ctx.pg is not None else ""
    return host.startswith("/") or host in _LOCAL_HOSTS


def block_device_encrypted(device: str, sys_block: Path = Path("/sys/block")) -> bool | None:
    """True if `device` (e.g. /dev/mapper/pgdata, /dev/dm-0) is dm-crypt or stacked on it (LVM on
    LUKS); False if it is not; None if this machine cannot tell (not a block device here)."""
    try:
        real = Path(device).resolve()
    except OSError:
        return None
    if not str(real).startswith("/dev/"):
        return None
    name = real.name
    seen: set[str] = set()

    def crypt(node: str) -> bool:
        if node in seen:
            return False
        seen.add(node)
        base = sys_block / node
        if not base.exists():  # a partition: /sys/class/block knows its parent
            part = Path("/sys/class/block") / node
            if not part.exists():
                return False
            base = part.resolve()
        try:
            uuid = (base / "dm" / "uuid").read_text(encoding="ascii").strip()
        except OSError:
            uuid = ""
        if uuid.startswith("CRYPT-"):
            return True
        slaves = base / "slaves"
        return slaves.is_dir() and any(crypt(s.name) for s in slaves.iterdir())

    if not (sys_block / name).exists() and not (Path("/sys/class/block") / name).exists():
        return None
    return crypt(name)


def mount_of(path: str, mounts: str | None = None) -> tuple[str, str, str] | None:
    """(device, mount point, file system type) of the mount holding `path`, from /proc/mounts."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    best: tuple[str, str, str] | None = None
    target = os.path.realpath(path)
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        device, point, fstype = (f.replace("\\040", " ") for f in fields[:3])
        if (target == point or target.startswith(point.rstrip("/") + "/")) and (
                best is None or len(point) >= len(best[1])):
            best = (device, point, fstype)
    return best


def _pg_encryption(ctx: _Context) -> Check:
    statement = ("PostgreSQL does not encrypt its files: text, chunks and vectors are plain in"
                 " its data directory, WAL and backups, which must sit on an encrypted volume")
    remedy = (f"put the data directory on LUKS (recipe in {POSTGRES_README}); check on the"
              " database server with `lsblk -o NAME,TYPE,MOUNTPOINT` (a `crypt` device above it)")
    if ctx.pg is None:
        return Check("db.encryption", WARN, statement + "; this could not be checked", remedy)
    if not _is_local(ctx):
        return Check("db.encryption", WARN,
                     statement + f"; the server {ctx.pg.info.host} is another machine, whose disks"
                     " the doctor cannot see", remedy, {"local": False})
    try:
        data_dir = str(ctx.pg.execute("SHOW data_directory").fetchone()[0])
    except Exception as exc:  # noqa: BLE001 - needs superuser or pg_read_all_settings
        return Check("db.encryption", WARN,
                     statement + "; the server is on this machine but does not tell this user"
                     " where its data directory is", remedy + " (or grant pg_read_all_settings"
                     " to let the doctor look)", {"local": True, "error": str(exc).strip()})
    details: dict[str, Any] = {"local": True, "data_directory": data_dir}
    mount = mount_of(data_dir)
    if mount is None or not os.path.exists(data_dir):
        return Check("db.encryption", WARN, statement + f"; its data directory {data_dir} is not"
                     " visible from here (another container or namespace?)", remedy, details)
    device, point, fstype = mount
    details.update(device=device, mount_point=point, fs_type=fstype)
    encrypted = block_device_encrypted(device)
    details["dm_crypt"] = encrypted
    if encrypted:
        return Check("db.encryption", PASS, f"the data directory {data_dir} is on the dm-crypt"
                     f" volume {device} (mounted at {point})", details=details)
    if encrypted is False:
        return Check("db.encryption", WARN, statement + f"; {data_dir} is on {device}, which is"
                     " NOT encrypted", remedy, details)
    return Check("db.encryption", WARN, statement + f"; {data_dir} is on {device} ({fstype}), whose"
                 " encryption this machine cannot tell", remedy, details)


def _pg_contents(ctx: _Context) -> list[Check]:
    """With the passphrase: it opens the store (read-only), and chunks and vectors agree."""
    from ragdesk.core.store import postgres
    from ragdesk.core.store.sqlite import snapshot
    from ragdesk.errors import RagdeskError, WrongPassphrase

    names = ("db.unlock", "db.vectors")
    if ctx.pg is None or not ctx.has_vault:
        return _pg_skip(names, "no RagDesk schema to open" if ctx.pg is not None else "no connection")
    if ctx.passphrase is None:
        return [Check("db.unlock", SKIP, "skipped: needs the server passphrase",
                      "run again with RAGDESK_PASSPHRASE set, --passphrase-file FILE, or on a terminal"),
                Check("db.vectors", SKIP, "skipped: needs the server passphrase")]
    try:
        store = postgres.connect(ctx.database or "", ctx.passphrase, create=False, read_only=True,
                                 max_connections=1)
    except WrongPassphrase:
        return [Check("db.unlock", FAIL, "the passphrase does not open the server's originals",
                      "check the passphrase (it is case-sensitive)"),
                *_pg_skip(names[1:], "the store could not be opened")]
    except RagdeskError as exc:
        return [Check("db.unlock", FAIL, str(exc), f"see {POSTGRES_README}"),
                *_pg_skip(names[1:], "the store could not be opened")]
    try:
        status = store.status()
        settings = store.settings()
    finally:
        store.close()
    ctx.settings = {k: settings.get(k) for k in ("embedder", "chat_model", "ollama_host")}
    vectors = None
    if ctx.pg.execute("SELECT to_regclass('chunk_vectors') IS NOT NULL").fetchone()[0]:
        vectors = int(ctx.pg.execute("SELECT count(*) FROM chunk_vectors").fetchone()[0])
    ctx.mismatched_documents = int(ctx.pg.execute(
        "SELECT count(*) FROM documents d WHERE d.chunk_count !="
        " (SELECT count(*) FROM chunks c WHERE c.document_id = d.id)").fetchone()[0])
    ctx.health = snapshot.Health(
        schema_version=status.schema_version, counts={"chunks": status.chunks},
        vector_space=status.vector_space, chunks=status.chunks, vectors=vectors,
        documents=status.documents, conversations=status.conversations, messages=status.messages)
    unlock = Check("db.unlock", PASS,
                   f"the passphrase opens the store: {status.documents} documents,"
                   f" {status.chunks} chunks, {status.conversations} conversations",
                   details={"kdf": status.kdf, "database_bytes": status.database_bytes})
    vectors_check = _vectors(ctx)
    vectors_check.name = "db.vectors"
    if vectors_check.status != PASS:  # no vault backup to restore here: index again
        vectors_check.remedy = "index the affected folders again (`ragdesk --database URL sync`)"
    return [unlock, vectors_check]


# --- the machine ----------------------------------------------------------------------------------


def _ollama(ctx: _Context) -> Check:
    from ragdesk.core.ollama import describe_error, make_client, missing_model_remedy, normalise_host, ollama_host

    if ctx.ollama_host:
        host = normalise_host(ctx.ollama_host)
        origin = "given"
    elif os.environ.get("OLLAMA_HOST"):
        host, origin = ollama_host(None), "OLLAMA_HOST"
    elif ctx.settings.get("ollama_host"):
        host, origin = normalise_host(ctx.settings["ollama_host"]), "the vault's settings"
    else:
        host = ollama_host(None)
        origin = "default" if ctx.passphrase or not ctx.has_vault else \
            "default (the vault's own setting was not read: no passphrase)"
    details: dict[str, Any] = {"host": host, "from": origin}
    client = make_client(host, timeout=ctx.timeout, connect_timeout=ctx.timeout)
    try:
        listing = client.list()
        try:
            details["version"] = client._client.get("/api/version").json().get("version")
        except Exception:  # noqa: BLE001 - the version is a nicety
            details["version"] = None
    except Exception as exc:  # noqa: BLE001 - sorted into a message
        problem = describe_error(exc, host, None)
        if ctx.embedder_choice.get("kind") == "ollama":  # then indexing and search need it too
            return Check("ollama", FAIL,
                         f"{problem.message}: the vault's embedding model "
                         f"{ctx.embedder_choice.get('model')} runs there, so indexing and search"
                         " cannot work", problem.remedy, details)
        return Check("ollama", WARN,
                     f"{problem.message}: answers fall back to the best passages (extractive mode)",
                     problem.remedy, details)
    finally:
        client.close()
    models = [m.model for m in listing.models]
    details["models"] = models
    chat_models = [m for m in models if "embed" not in (m or "")]
    wanted = ctx.settings.get("chat_model")
    choice = ctx.embedder_choice
    if choice.get("kind") == "ollama":
        embed_model = choice.get("model")
        if not _has_model(models, embed_model):
            return Check("ollama", FAIL, f"the embedding model {embed_model} is not in Ollama at {host}",
                         missing_model_remedy(str(embed_model)), details)
    if wanted and not _has_model(models, wanted):
        return Check("ollama", WARN, f"the chat model {wanted} is not in Ollama at {host}",
                     missing_model_remedy(wanted), details)
    if not chat_models:
        return Check("ollama", WARN, f"Ollama {details.get('version') or ''} at {host} has no chat model",
                     missing_model_remedy("llama3.2"), details)
    return Check("ollama", PASS,
                 f"Ollama {details.get('version') or ''} at {host}: {len(models)} model(s)"
                 + (f", chat model {wanted}" if wanted else f", e.g. {chat_models[0]}"),
                 details=details)


def _has_model(models: list[str], name: str | None) -> bool:
    if not name:
        return False
    return name in models or f"{name}:latest" in models


def _tesseract(ctx: _Context) -> Check:
    from ragdesk.core.extract import ocr_available

    if not ocr_available("eng"):
        return Check("tesseract", WARN, "Tesseract OCR is not installed: scanned pages are skipped"
                     " with a 'no text layer' report",
                     "install Tesseract with its English data (Debian/Ubuntu: `apt install"
                     " tesseract-ocr tesseract-ocr-eng`; macOS: `brew install tesseract`;"
                     " Windows: the UB Mannheim installer)")
    return Check("tesseract", PASS, "Tesseract OCR is installed (English data found)")


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _disk(ctx: _Context) -> Check:
    where = _existing(ctx.home)
    usage = shutil.disk_usage(where)
    vault_bytes = ctx.vault_file.stat().st_size if ctx.vault_file.exists() else 0
    details = {"path": str(where), "free": usage.free, "total": usage.total,
               "vault": vault_bytes}
    free = f"{format_bytes(usage.free)} free of {format_bytes(usage.total)} at {where}"
    if usage.free < DISK_FAIL_BYTES:
        return Check("disk", FAIL, f"only {free}: indexing and saving will fail",
                     "free some space on that disk, or move the data folder (RAGDESK_HOME)", details)
    if usage.free < max(DISK_WARN_BYTES, vault_bytes):
        return Check("disk", WARN, f"{free}: little room to grow",
                     "free some space; the vault grows with each document (about the size of the"
                     " originals plus their text)", details)
    return Check("disk", PASS, free, details=details)


def _memory(ctx: _Context) -> Check:
    available = available_memory()
    if available is None:
        return Check("memory", SKIP, "skipped: free memory cannot be read on this system")
    needed = 0
    health = ctx.health
    # The vault holds its vectors in RAM; PostgreSQL keeps them on the database server.
    if not ctx.database and health is not None and health.vectors and health.vector_space:
        needed = health.vectors * health.vector_space.dimension * 4  # the in-memory vector index
    details = {"available": available, "vector_index": needed}
    text = f"{format_bytes(available)} available"
    if needed:
        text += f"; the vector index needs about {format_bytes(needed)}"
    if available < MEMORY_FAIL_BYTES:
        return Check("memory", FAIL, f"only {text}", "close other programs or add memory", details)
    if available < max(MEMORY_WARN_BYTES, 2 * needed):
        return Check("memory", WARN, text,
                     "close other programs; searches fall back to the slower on-disk index when"
                     " the vectors do not fit", details)
    return Check("memory", PASS, text, details=details)


# --- output ---------------------------------------------------------------------------------------

_MARK = {PASS: "ok  ", WARN: "warn", FAIL: "FAIL", SKIP: "skip"}


def render(report: Report) -> str:
    """Plain-text report: one line per check, remedies indented below."""
    lines = []
    for c in report.checks:
        lines.append(f"[{_MARK[c.status]}] {c.name:<22} {c.summary}")
        if c.remedy and c.status != PASS:
            lines.append(f"       {'':<22} -> {c.remedy}")
    fails = sum(c.status == FAIL for c in report.checks)
    warns = sum(c.status == WARN for c in report.checks)
    skips = len(report.skipped)
    lines.append("")
    lines.append(f"{'No problems' if not fails else f'{fails} problem(s)'}"
                 f", {warns} warning(s), {skips} check(s) skipped ({report.seconds:.1f} s)")
    return "\n".join(lines)
