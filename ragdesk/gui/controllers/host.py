"""What a controller may ask of the window it works for (the narrow interface back)."""

from __future__ import annotations

from typing import Protocol

from ragdesk.gui.workers import WorkerError


class Host(Protocol):
    """The window, as the controllers see it."""

    def confirm(self, title: str, text: str) -> bool:
        """Ask the user a yes/no question; True for yes."""
        ...

    def report_error(self, error: WorkerError, what: str = "Something went wrong") -> None:
        """Tell the user that background work failed (ignored once the vault is locked)."""
        ...

    def show_message(self, text: str, timeout_ms: int) -> None:
        """A passing note in the status bar."""
        ...
