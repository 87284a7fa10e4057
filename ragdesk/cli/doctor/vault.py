"""The doctor's checks of the encrypted vault: the data folder (and that only its owner may read
it: `ragdesk doctor --fix` tightens it), the vault's files, and with the passphrase what is inside
(unlock, page authentication, integrity, schema version, vectors).

The vault is opened read-only without its process lock (core/store/sqlite/inspect.py), so these
checks also run while the GUI or a server has it open; nothing here writes to it.
"""

from __future__ import annotations

import os
from pathlib import Path

from ragdesk import paths
from ragdesk.cli.doctor.audit import audit_check
from ragdesk.cli.doctor.checks import (
    FAIL,
    PASS,
    PASSPHRASE_REMEDY,
    RESTORE_REMEDY,
    WARN,
    Check,
    Context,
    schema_check,
    skipped,
)
from ragdesk.cli.doctor.index import vectors
from ragdesk.core.units import format_bytes

VAULT_CHECKS = ("vault.unlock", "vault.cipher_integrity", "vault.integrity", "vault.schema",
                "vault.vectors", "vault.audit")


def data_folder(ctx: Context) -> Check | list[Check]:
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
    return [Check("data.folder", PASS, f"data folder {home}", details={"path": str(home)}),
            permissions(ctx)]


PERMISSIONS_REMEDY = "run `ragdesk doctor --fix` (or `chmod -R go= FOLDER`) so that only you can read them"


def private_paths(home: Path) -> list[Path]:
    """What only the user may read: the data folder and everything in it (the vault's files, the
    vaults a restore kept aside, with their contents), and the built-in embedder's cache."""
    from ragdesk.core.embedding import default_cache_dir
    from ragdesk.core.store.sqlite.keyfile import vault_files

    found = vault_files(home)
    if home.is_dir():
        found.extend(p for p in sorted(home.iterdir()) if p not in found)  # all of it is RagDesk's
        for aside in sorted(home.glob("replaced-*")):
            found.extend(paths.private_entries(aside)[1:])
    cache = default_cache_dir()
    if cache.is_dir():
        found.extend(paths.private_entries(cache))
    return found


def permissions(ctx: Context) -> Check:
    """Files and folders of the vault that other local users may read (a copy of the vault is
    what an offline passphrase guess starts from): a failure. Only the embedder's cache (the
    model's graph, nothing of the user's) wider than it should be: a warning."""
    from ragdesk.core.embedding import default_cache_dir

    wide = {str(p): oct(mode) for p in private_paths(ctx.home)
            if (mode := paths.too_open(p)) is not None}
    if wide:
        cache = default_cache_dir()
        only_cache = all(Path(p).is_relative_to(cache) for p in wide)
        listed = ", ".join(f"{path} ({mode[2:]})" for path, mode in list(wide.items())[:5])
        more = f" and {len(wide) - 5} more" if len(wide) > 5 else ""
        what = "the embedder's cache" if only_cache else "the vault's files"
        return Check("data.permissions", WARN if only_cache else FAIL,
                     f"other local users may read {what}: {listed}{more}",
                     PERMISSIONS_REMEDY, {"paths": wide})
    return Check("data.permissions", PASS, "the data folder and the vault's files are private (0700/0600)")


def vault_files(ctx: Context) -> Check:
    from ragdesk.core.store.sqlite import inspect
    from ragdesk.core.store.sqlite.keyfile import SIDECAR_NAME, Sidecar

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
        if inspect.has_plaintext_header(vault_file):
            return Check("vault.files", FAIL, "vault.db is NOT encrypted (a plain SQLite file)",
                         "this is not a RagDesk vault; move it away and restore a backup", details)
        Sidecar.read(ctx.home)
    except Exception as exc:  # RagdeskError or OSError: both a finding
        return Check("vault.files", FAIL, str(exc), RESTORE_REMEDY, details)
    return Check("vault.files", PASS, f"encrypted vault found ({format_bytes(size)})", details=details)


def vault_contents(ctx: Context) -> list[Check]:
    from ragdesk.core.store.sqlite import auditlog, inspect, schema
    from ragdesk.errors import RagdeskError, WrongPassphrase

    if not ctx.has_vault:
        return skipped(VAULT_CHECKS, "there is no vault")
    if ctx.passphrase is None:
        return skipped(VAULT_CHECKS, "needs the passphrase", PASSPHRASE_REMEDY)
    checks: list[Check] = []
    try:
        with inspect.open_readonly(ctx.home, ctx.passphrase) as opened:
            checks.append(Check("vault.unlock", PASS, "the passphrase opens the vault",
                                details={"kdf": {k: v for k, v in opened.params.to_json().items()
                                                 if k != "salt"}}))
            health = opened.health()
            ctx.health = health
            if not health.problems and health.schema_version <= schema.SCHEMA_VERSION:
                ctx.settings = {key: inspect.setting(opened.conn, key)
                                for key in ("embedder", "chat_model", "ollama_host")}
                ctx.mismatched_documents = inspect.chunk_count_mismatches(opened.conn)
                audit = audit_check("vault.audit", auditlog.verify(opened.conn)
                                    if auditlog.is_chained(opened.conn) else None)
            else:
                audit = skipped(["vault.audit"], "the vault is damaged or newer than this release")[0]
    except WrongPassphrase:
        return [Check("vault.unlock", FAIL,
                      "the passphrase does not open the vault (or its first page is damaged)",
                      "check the passphrase (it is case-sensitive); if it is right, " + RESTORE_REMEDY),
                *skipped(VAULT_CHECKS[1:], "the vault could not be opened")]
    except RagdeskError as exc:
        return [Check("vault.unlock", FAIL, str(exc), RESTORE_REMEDY),
                *skipped(VAULT_CHECKS[1:], "the vault could not be opened")]

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

    checks.append(schema_check(
        "vault.schema", health.schema_version, schema.SCHEMA_VERSION,
        newer="update RagDesk; this release will not open or change the vault",
        older="it is upgraded automatically the next time the vault is opened"))
    checks.append(vectors(ctx))
    checks.append(audit)
    return checks
