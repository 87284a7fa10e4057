"""`ragdesk doctor`: checks the installation, the store and the machine, and says what to do.

Each check ends as pass, warn, fail or skip, with a one-line finding and, unless it passed, a
remedy. Checks that need the store's contents run only when a passphrase is given; without one
they are reported as skipped. Nothing here writes to the store.

With a PostgreSQL team server (`--database` / $RAGDESK_DATABASE_URL) the vault checks give way
to the database's. The doctor sits beside the command line rather than in the core because it
looks at the whole composition: the configured embedder, the Ollama host, the OS.

Modules: checks (Check, Context), report (Report, render), runner (run: the order), command
(the sub-command), and the checks by concern: system, vault, postgres, index, ollama.
"""

from ragdesk.cli.doctor.checks import Check
from ragdesk.cli.doctor.command import register
from ragdesk.cli.doctor.report import Report, render
from ragdesk.cli.doctor.runner import run

__all__ = ["Check", "Report", "register", "render", "run"]
