"""Where RagDesk keeps its files: one data folder, chosen by --home, RAGDESK_HOME or platformdirs."""

from __future__ import annotations

import importlib.resources
import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "RagDesk"


def home(override: str | os.PathLike[str] | None = None) -> Path:
    """The data folder: the explicit override, else $RAGDESK_HOME, else the platform data dir."""
    chosen = override or os.environ.get("RAGDESK_HOME")
    if chosen:
        return Path(chosen).expanduser().resolve()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def resource_dir(name: str) -> Path:
    """A folder of resources/ ("icons", "web"): inside a frozen bundle, else the package data
    `ragdesk.resources` (installed from a wheel, or mapped onto resources/ in a checkout)."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources" / name
    return Path(str(importlib.resources.files("ragdesk.resources") / name))
