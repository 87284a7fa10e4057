"""The doctor's checks of the installation and the machine: the database engine (SQLCipher,
FTS5, sqlite-vec; probed by core/store/sqlite/inspect.py), the built-in embedding model's weights,
Tesseract, free disk and memory."""

from __future__ import annotations

import json
import platform
import shutil
import sys
from pathlib import Path
from typing import Any

from ragdesk import __version__
from ragdesk.cli.doctor.checks import FAIL, PASS, SKIP, WARN, Check, Context
from ragdesk.core.system import available_memory
from ragdesk.core.units import format_bytes

MIB = 1 << 20
GIB = 1 << 30
DISK_FAIL_BYTES = 512 * MIB
DISK_WARN_BYTES = 2 * GIB
MEMORY_FAIL_BYTES = 256 * MIB
MEMORY_WARN_BYTES = 1 * GIB


def runtime(ctx: Context) -> Check:
    """SQLCipher with FTS5 and the sqlite-vec extension load: without them nothing works."""
    from ragdesk.core.store.sqlite.inspect import engine_versions

    details: dict[str, Any] = {
        "ragdesk": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "bundled": bool(getattr(sys, "frozen", False)),
    }
    engine = engine_versions()
    details.update({name: version for name, version in (("sqlcipher", engine.sqlcipher),
                                                        ("sqlite_vec", engine.sqlite_vec))
                    if version is not None})
    if engine.error is not None:
        return Check("runtime", FAIL, f"the database engine is incomplete: {engine.error}",
                     "reinstall RagDesk (SQLCipher, sqlite-vec and FTS5 are part of it)", details)
    if not engine.sqlcipher:
        return Check("runtime", FAIL, "SQLite was loaded without SQLCipher: vaults cannot be opened",
                     "reinstall RagDesk", details)
    return Check("runtime", PASS,
                 f"RagDesk {__version__}, SQLCipher {engine.sqlcipher}, "
                 f"sqlite-vec {engine.sqlite_vec}, FTS5", details=details)


def builtin_model(ctx: Context) -> Check:
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


def tesseract(ctx: Context) -> Check:
    from ragdesk.core.extract import ocr_available

    if not ocr_available("eng"):
        return Check("tesseract", WARN, "Tesseract OCR is not installed: scanned pages are skipped"
                     " with a 'no text layer' report",
                     "install Tesseract with its English data (Debian/Ubuntu: `apt install"
                     " tesseract-ocr tesseract-ocr-eng`; macOS: `brew install tesseract`;"
                     " Windows: the UB Mannheim installer)")
    return Check("tesseract", PASS, "Tesseract OCR is installed (English data found)")


def desktop(ctx: Context) -> Check:
    """The system libraries the desktop app's X11 window needs (Linux): looked for even on a
    machine with no display, so a headless install learns it before someone opens the app."""
    from ragdesk.gui import desktop_libs

    if not sys.platform.startswith("linux"):
        return Check("desktop", SKIP, "skipped: the window needs no extra libraries on this system")
    missing = desktop_libs.check({"QT_QPA_PLATFORM": "xcb"})
    if missing is not None:
        return Check("desktop", WARN,
                     "the desktop app cannot open its window: missing " + ", ".join(missing.libraries)
                     + " (the command line and `ragdesk serve` work)",
                     missing.command or "install your distribution's X11 xcb client libraries",
                     {"libraries": list(missing.libraries), "packages": list(missing.packages)})
    return Check("desktop", PASS, "the libraries the desktop app's window needs are installed")


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def disk(ctx: Context) -> Check:
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


def memory(ctx: Context) -> Check:
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
