"""Entry point: `ragdesk` and `python -m ragdesk` hand over to the command line."""

from __future__ import annotations

import sys

from ragdesk.cli.main import main as cli_main


def main() -> None:
    sys.exit(cli_main(sys.argv[1:]))


if __name__ == "__main__":
    main()
