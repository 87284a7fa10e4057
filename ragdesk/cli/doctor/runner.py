"""Running the doctor: the checks in their order (each may use what earlier ones learnt), a check
that crashes reported as a failure rather than ending the report."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

from ragdesk.cli.doctor.bundle import bundle
from ragdesk.cli.doctor.checks import FAIL, Check, Context, Step
from ragdesk.cli.doctor.index import embedder
from ragdesk.cli.doctor.ollama import ollama
from ragdesk.cli.doctor.postgres import (
    pg_connection,
    pg_contents,
    pg_encryption,
    pg_schema,
    pg_server,
    pg_tls,
    pg_vector,
)
from ragdesk.cli.doctor.report import Report
from ragdesk.cli.doctor.system import builtin_model, desktop, disk, memory, runtime, tesseract
from ragdesk.cli.doctor.vault import data_folder, vault_contents, vault_files

log = logging.getLogger("ragdesk.cli.doctor")

VAULT_STEPS: list[Step] = [data_folder, vault_files, vault_contents]
DATABASE_STEPS: list[Step] = [pg_connection, pg_server, pg_vector, pg_schema, pg_tls, pg_encryption,
                              pg_contents]


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
    ctx = Context(home, passphrase or None, ollama_host, timeout, database=database or None)
    try:
        checks = list(_checks(ctx))
    finally:
        if ctx.pg is not None:
            ctx.pg.close()
    return Report(checks, time.perf_counter() - t0)


def _checks(ctx: Context) -> Iterator[Check]:
    steps: list[Step] = [
        runtime, bundle, builtin_model, *(DATABASE_STEPS if ctx.database else VAULT_STEPS),
        embedder, ollama, tesseract, desktop, disk, memory,
    ]
    for step in steps:
        try:
            result = step(ctx)
        except Exception as exc:  # a check that crashes is a finding, not the end of the report
            log.exception("check %s crashed", step.__name__)
            result = Check(step.__name__.strip("_"), FAIL, f"the check itself failed: {exc!r}",
                           "report this as a bug (run with --verbose for details)")
        yield from (result if isinstance(result, list) else [result])
