"""The vault's settings as the window uses them: loaded on unlock and when the settings dialog
opens, saved on a worker (with an audit entry) when the dialog's Save is pressed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from ragdesk.gui.controllers.host import Host
from ragdesk.gui.settings import SettingsValues
from ragdesk.gui.workers import WorkerPool

if TYPE_CHECKING:
    from ragdesk.app import Services


class SettingsController(QObject):
    """Holds the current `values` and stores new ones."""

    saved = Signal(object)  # SettingsValues, once stored

    def __init__(self, pool: WorkerPool, host: Host, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = pool
        self.host = host
        self.services: Services | None = None
        self.values = SettingsValues()

    def attach(self, services: Services) -> None:
        self.services = services
        self.reload()

    def detach(self) -> None:
        self.services = None

    def reload(self) -> SettingsValues:
        """Read the settings from the vault again (the CLI may have changed them)."""
        if self.services is not None:
            self.values = SettingsValues.load(self.services.store)
        return self.values

    def save(self, values: SettingsValues) -> None:
        if self.services is None:
            return
        services = self.services
        store = services.store
        old = self.values
        self.values = values

        def save() -> SettingsValues:
            values.save(store)
            store.audit("settings changed")
            return values

        def stored(_v: SettingsValues) -> None:
            if old.embedder != values.embedder and services is self.services:
                services.forget_embedder()
            self.saved.emit(values)

        self.pool.run(save, "save settings", on_result=stored, on_error=self.host.report_error)
