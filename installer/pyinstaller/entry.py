"""Entry point of the PyInstaller bundle: `ragdesk` with no Python installed.

The indexer parses files in worker processes started with the "spawn" method; in a frozen
program each worker is this same executable started with special arguments, which
`multiprocessing.freeze_support()` recognises and turns into a worker instead of the CLI.
"""

from __future__ import annotations

import multiprocessing


def main() -> None:
    multiprocessing.freeze_support()
    from ragdesk.__main__ import main as ragdesk_main

    ragdesk_main()


if __name__ == "__main__":
    main()
