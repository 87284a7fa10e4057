"""The doctor's checks of a PostgreSQL team server (`--database`): connection, server version,
pgvector, schema version, TLS, encryption at rest, and with the passphrase the contents.

PostgreSQL does not encrypt its files; the doctor says so plainly, and when the server runs on
this machine it looks whether the data directory sits on a dm-crypt (LUKS) device. Of a remote
server it cannot see the disks.

What the server says is read by the store (core/store/postgres/health.py); these checks judge it.
psycopg is imported only once a database is checked, so the command line starts without it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragdesk.cli.common import describe_location, open_store_at
from ragdesk.cli.doctor.audit import audit_check
from ragdesk.cli.doctor.checks import (
    FAIL,
    PASS,
    PASSPHRASE_REMEDY,
    SKIP,
    WARN,
    Check,
    Context,
    schema_check,
    skipped,
)
from ragdesk.cli.doctor.index import vectors
from ragdesk.core.store.open import backend_available
from ragdesk.errors import StorageError

if TYPE_CHECKING:
    from ragdesk.core.store.postgres.health import Link

POSTGRES_README = "installer/postgres/README.md"
MIN_SERVER_VERSION = 130000  # pgvector 0.8 supports PostgreSQL 13 and later
MIN_PGVECTOR = (0, 8)  # iterative index scans: a collection filter still returns k rows
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def pg_connection(ctx: Context) -> Check:
    if backend_available(ctx.database or "") is not None:
        return Check("db.connection", FAIL, "the PostgreSQL client library (psycopg) is missing",
                     "pip install 'ragdesk[postgres]'")
    from ragdesk.core.store.postgres import health

    where = describe_location(ctx.database or "")
    try:
        ctx.pg = health.connect(ctx.database or "", ctx.timeout)
    except StorageError as exc:
        text = str(exc)
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
    link = ctx.pg_link = health.link(ctx.pg)
    details = {"url": where, "host": link.host, "port": link.port, "database": link.dbname,
               "user": link.user, "unix_socket": link.unix_socket}
    via = f"the Unix socket in {link.host}" if link.unix_socket else f"{link.host}:{link.port}"
    return Check("db.connection", PASS, f"connected to database {link.dbname} as {link.user} via {via}",
                 details=details)


def pg_server(ctx: Context) -> Check:
    if ctx.pg is None:
        return Check("db.server", SKIP, "skipped: no connection")
    from ragdesk.core.store.postgres import health

    version = health.server_version(ctx.pg)
    details = {"version": version.text, "version_num": version.number}
    if version.number < MIN_SERVER_VERSION:
        return Check("db.server", FAIL, f"PostgreSQL {version.text} is too old for pgvector 0.8",
                     "upgrade to PostgreSQL 13 or later (17 or 18 recommended)", details)
    return Check("db.server", PASS, f"PostgreSQL {version.text}", details=details)


def pg_vector(ctx: Context) -> Check:
    if ctx.pg is None:
        return Check("db.pgvector", SKIP, "skipped: no connection")
    from ragdesk.core.store.postgres import health

    found = health.pgvector(ctx.pg)
    if found.installed is None:
        if found.available is None:
            return Check("db.pgvector", FAIL, "pgvector is not installed on the database server",
                         "install it there (Debian/Ubuntu: `apt install postgresql-NN-pgvector`),"
                         f" then `CREATE EXTENSION vector;` in the database ({POSTGRES_README})")
        return Check("db.pgvector", FAIL,
                     f"pgvector {found.available} is installed but not created in this database",
                     f"as the PostgreSQL admin: `CREATE EXTENSION vector;` in it ({POSTGRES_README})",
                     {"available": found.available})
    version = found.installed
    details = {"version": version}
    numbers = tuple(int(x) for x in version.split(".")[:2] if x.isdigit())
    if numbers < MIN_PGVECTOR:
        return Check("db.pgvector", WARN,
                     f"pgvector {version}: older than 0.8, so a search within a collection may"
                     " return fewer passages than asked for",
                     "upgrade pgvector to 0.8 or later, then `ALTER EXTENSION vector UPDATE;`", details)
    return Check("db.pgvector", PASS, f"pgvector {version}", details=details)


def pg_schema(ctx: Context) -> Check:
    if ctx.pg is None:
        return Check("db.schema", SKIP, "skipped: no connection")
    from ragdesk.core.store.postgres import SCHEMA_VERSION, schema_version

    found, known = schema_version(ctx.pg), SCHEMA_VERSION
    details = {"found": found, "known": known}
    if found == 0:
        return Check("db.schema", WARN, "the database holds no RagDesk schema yet",
                     "create it with `ragdesk --database URL init` (asks for the server passphrase)",
                     details)
    ctx.has_vault = True
    return schema_check(
        "db.schema", found, known, details=details,
        newer="update RagDesk on this machine; this release will not change the database",
        older="it is upgraded (under an advisory lock) the next time RagDesk opens it")


def pg_tls(ctx: Context) -> Check:
    link = ctx.pg_link
    if link is None:
        return Check("db.tls", SKIP, "skipped: no connection")
    sslmode, in_use = link.sslmode, link.tls_in_use
    details = {"sslmode": sslmode, "tls_in_use": in_use}
    remedy = ("use `sslmode=verify-full` with `sslrootcert=` the CA that signed the server's"
              " certificate, e.g. RAGDESK_DATABASE_URL=postgresql://ragdesk@db.example.internal/ragdesk"
              f"?sslmode=verify-full&sslrootcert=/etc/ragdesk/db-ca.pem ({POSTGRES_README})")
    if link.unix_socket:
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


def _is_local(link: Link) -> bool:
    return link.unix_socket or link.host in _LOCAL_HOSTS


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


def pg_encryption(ctx: Context) -> Check:
    statement = ("PostgreSQL does not encrypt its files: text, chunks and vectors are plain in"
                 " its data directory, WAL and backups, which must sit on an encrypted volume")
    remedy = (f"put the data directory on LUKS (recipe in {POSTGRES_README}); check on the"
              " database server with `lsblk -o NAME,TYPE,MOUNTPOINT` (a `crypt` device above it)")
    if ctx.pg is None or ctx.pg_link is None:
        return Check("db.encryption", WARN, statement + "; this could not be checked", remedy)
    if not _is_local(ctx.pg_link):
        return Check("db.encryption", WARN,
                     statement + f"; the server {ctx.pg_link.host} is another machine, whose disks"
                     " the doctor cannot see", remedy, {"local": False})
    from ragdesk.core.store.postgres import health

    try:
        data_dir = health.data_directory(ctx.pg)
    except StorageError as exc:  # needs superuser or pg_read_all_settings
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


def pg_contents(ctx: Context) -> list[Check]:
    """With the passphrase: it opens the store (read-only), and chunks and vectors agree."""
    from ragdesk.core.store.sqlite.inspect import Health
    from ragdesk.errors import RagdeskError, WrongPassphrase

    names = ("db.unlock", "db.vectors", "db.audit")
    if ctx.pg is None or not ctx.has_vault or not ctx.database:
        return skipped(names, "no RagDesk schema to open" if ctx.pg is not None else "no connection")
    if ctx.passphrase is None:
        return [Check("db.unlock", SKIP, "skipped: needs the server passphrase", PASSPHRASE_REMEDY),
                *skipped(names[1:], "needs the server passphrase")]
    try:
        store = open_store_at(ctx.database, ctx.passphrase, read_only=True)
    except WrongPassphrase:
        return [Check("db.unlock", FAIL, "the passphrase does not open the server's originals",
                      "check the passphrase (it is case-sensitive)"),
                *skipped(names[1:], "the store could not be opened")]
    except RagdeskError as exc:
        return [Check("db.unlock", FAIL, str(exc), f"see {POSTGRES_README}"),
                *skipped(names[1:], "the store could not be opened")]
    try:
        status = store.status()
        settings = store.settings()
        audit = audit_check("db.audit", store.verify_audit())
    finally:
        store.close()
    ctx.settings = {k: settings.get(k) for k in ("embedder", "chat_model", "ollama_host")}
    from ragdesk.core.store.postgres import health

    index = health.index_counts(ctx.pg)
    ctx.mismatched_documents = index.mismatched_documents
    ctx.health = Health(
        schema_version=status.schema_version, counts={"chunks": status.chunks},
        vector_space=status.vector_space, chunks=status.chunks, vectors=index.vectors,
        documents=status.documents, conversations=status.conversations, messages=status.messages)
    unlock = Check("db.unlock", PASS,
                   f"the passphrase opens the store: {status.documents} documents,"
                   f" {status.chunks} chunks, {status.conversations} conversations",
                   details={"kdf": status.kdf, "database_bytes": status.database_bytes})
    vectors_check = vectors(ctx)
    vectors_check.name = "db.vectors"
    if vectors_check.status != PASS:  # no vault backup to restore here: index again
        vectors_check.remedy = "index the affected folders again (`ragdesk --database URL sync`)"
    return [unlock, vectors_check, audit]
