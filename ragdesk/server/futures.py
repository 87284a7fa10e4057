"""One asyncio helper the server's modules share: marking a future's outcome as seen."""

from __future__ import annotations

import asyncio
from typing import Any


def retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a finished future's outcome as seen (it was delivered, or nobody is listening), so
    asyncio does not log "exception was never retrieved" for a lookup every waiter left."""
    if not future.cancelled():
        future.exception()
