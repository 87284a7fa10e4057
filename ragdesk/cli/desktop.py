"""`ragdesk gui` (also what `ragdesk` with no command runs): the desktop application.

Qt is imported only when the desktop application is asked for, so the other commands start
without it and work on machines with no display.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ragdesk.cli.common import EXIT_FAIL, Subcommands, add_command, home_of

if TYPE_CHECKING:
    from ragdesk.app import Services
    from ragdesk.server.runner import ServerHandle


def cmd_gui(args: argparse.Namespace) -> int:
    from ragdesk.gui import desktop_libs

    missing = desktop_libs.check()  # before Qt starts: its own message would say "reinstall"
    if missing is not None:
        print(missing.message(), file=sys.stderr)
        return EXIT_FAIL
    from ragdesk.gui.app import run

    return run(home_of(args), argv=[sys.argv[0]], self_test=getattr(args, "self_test", False),
               share=share_on_lan)


def share_on_lan(services: Services, host: str, port: int) -> ServerHandle:
    """The GUI's File › Share on the network…: the LAN server over the unlocked vault (handed
    to the GUI from here: the GUI and the server do not import each other)."""
    from ragdesk.server.config import ServerConfig
    from ragdesk.server.runner import ServerHandle

    return ServerHandle(services, ServerConfig(host=host, port=port))


def register(commands: Subcommands) -> None:
    p = add_command(commands, "gui", cmd_gui, "start the desktop application (the default)")
    p.add_argument("--self-test", action="store_true", default=argparse.SUPPRESS,
                   help="open the main window offscreen on a throw-away vault, then exit (0 = works)")
