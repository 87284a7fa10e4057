"""`ragdesk doctor`: checks the installation, the vault and the machine, and says what to do.

Each check ends as pass, warn, fail or skip, with a one-line finding and, unless it passed, a
remedy. Checks that need the vault's contents run only when a passphrase is given; they open the
database read-only without its process lock (see core/store/snapshot.py), so the doctor also
works while the GUI or a server has the vault open. Without a passphrase they are reported as
skipped. Nothing here writes to the vault.

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

log = logging.getLogger("ragdesk.doctor")

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

    def __post_init__(self) -> None:
        from ragdesk.core.store.vault import DB_NAME

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
) -> Report:
    """Run every check; `ollama_host` None means $OLLAMA_HOST, the vault's setting or the default."""
    t0 = time.perf_counter()
    ctx = _Context(home, passphrase or None, ollama_host, timeout)
    checks = list(_checks(ctx))
    return Report(checks, time.perf_counter() - t0)


def _checks(ctx: _Context) -> Iterator[Check]:
    steps: list[Callable[[_Context], Check | list[Check]]] = [
        _runtime, _builtin_model, _data_folder, _vault_files, _vault_contents, _embedder,
        _ollama, _tesseract, _disk, _memory,
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
    from ragdesk.core.embedders import BuiltinModelMissing, builtin_model_dir

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
    from ragdesk.core.store import snapshot
    from ragdesk.core.store.vault import SIDECAR_NAME

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
    return Check("vault.files", PASS, f"encrypted vault found ({_size(size)})", details=details)


_VAULT_CHECKS = ("vault.unlock", "vault.cipher_integrity", "vault.integrity", "vault.schema",
                 "vault.vectors")


def _skip_vault(reason: str, remedy: str = "") -> list[Check]:
    return [Check(name, SKIP, reason, remedy) for name in _VAULT_CHECKS]


def _vault_contents(ctx: _Context) -> list[Check]:
    from ragdesk.core.store import migrations, snapshot
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
    from ragdesk.core.embedders import BUILTIN_MODEL

    health = ctx.health
    if health is None or health.problems or not health.counts:
        reason = "needs the passphrase" if ctx.passphrase is None and ctx.has_vault else (
            "there is no vault" if not ctx.has_vault else "the vault could not be read")
        return Check("vault.embedder", SKIP, f"skipped: {reason}")
    choice = ctx.embedder_choice
    if choice.get("kind") == "ollama":
        expected_name, expected_dim = f"ollama:{choice.get('model')}", None
    else:
        expected_name, expected_dim = f"builtin:{BUILTIN_MODEL}", ctx.builtin_dimension
    space = health.vector_space
    details = {"configured": expected_name, "vault": asdict(space) if space else None}
    if space is None:
        if health.chunks:
            return Check("vault.embedder", FAIL, "the vault has chunks but no record of their embedder",
                         "index the folders again, or " + RESTORE_REMEDY, details)
        return Check("vault.embedder", PASS, f"no vectors yet; {expected_name} will make them",
                     details=details)
    if space.embedder != expected_name:
        return Check("vault.embedder", WARN,
                     f"the vectors were made by {space.embedder}, but {expected_name} is configured",
                     "run `ragdesk sync` to re-embed with the configured model, or switch back in"
                     " Settings", details)
    if expected_dim is not None and space.dimension != expected_dim:
        return Check("vault.embedder", FAIL,
                     f"the vault's vectors have {space.dimension} dimensions, the model makes"
                     f" {expected_dim}", "re-index the collections (`ragdesk sync`)", details)
    return Check("vault.embedder", PASS, f"{space.embedder}, {space.dimension} dimensions",
                 details=details)


# --- the machine ----------------------------------------------------------------------------------


def _ollama(ctx: _Context) -> Check:
    from ragdesk.app import ollama_host
    from ragdesk.core.chat import describe_error, make_client, missing_model_remedy

    if ctx.ollama_host:
        host = ollama_host_url(ctx.ollama_host)
        origin = "given"
    elif os.environ.get("OLLAMA_HOST"):
        host, origin = ollama_host(None), "OLLAMA_HOST"
    elif ctx.settings.get("ollama_host"):
        host, origin = ollama_host_url(ctx.settings["ollama_host"]), "the vault's settings"
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


def ollama_host_url(host: str) -> str:
    return host if "://" in host else "http://" + host


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
    free = f"{_size(usage.free)} free of {_size(usage.total)} at {where}"
    if usage.free < DISK_FAIL_BYTES:
        return Check("disk", FAIL, f"only {free}: indexing and saving will fail",
                     "free some space on that disk, or move the data folder (RAGDESK_HOME)", details)
    if usage.free < max(DISK_WARN_BYTES, vault_bytes):
        return Check("disk", WARN, f"{free}: little room to grow",
                     "free some space; the vault grows with each document (about the size of the"
                     " originals plus their text)", details)
    return Check("disk", PASS, free, details=details)


def available_memory() -> int | None:
    """Bytes of memory available to new work, or None where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil  # optional: present on some installs (and in the Windows/macOS bundles)
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def _memory(ctx: _Context) -> Check:
    available = available_memory()
    if available is None:
        return Check("memory", SKIP, "skipped: free memory cannot be read on this system")
    needed = 0
    health = ctx.health
    if health is not None and health.vectors and health.vector_space:
        needed = health.vectors * health.vector_space.dimension * 4  # the in-memory vector index
    details = {"available": available, "vector_index": needed}
    text = f"{_size(available)} available"
    if needed:
        text += f"; the vector index needs about {_size(needed)}"
    if available < MEMORY_FAIL_BYTES:
        return Check("memory", FAIL, f"only {text}", "close other programs or add memory", details)
    if available < max(MEMORY_WARN_BYTES, 2 * needed):
        return Check("memory", WARN, text,
                     "close other programs; searches fall back to the slower on-disk index when"
                     " the vectors do not fit", details)
    return Check("memory", PASS, text, details=details)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


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
