"""Starts the desktop application and owns the vault's life cycle in it.

`RagdeskApp` shows "create your vault" on first start and "unlock" afterwards, builds the core
services over the unlocked vault (the composition root in ragdesk/app.py) and hands them to the
main window. Locking -- from the menu, Ctrl+L or after the idle time -- stops all background
work, clears every widget, closes the database (`Vault.lock()`: connections closed, key wiped)
and shows the unlock dialog again.

Start-up stays light: only the unlock dialog's modules are imported before it is on screen;
the main window, PyMuPDF, the embedder and the Ollama client come after the passphrase.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QSettings, QTimer, Signal
from PySide6.QtWidgets import QApplication

from ragdesk.core.store.keys import KdfParams
from ragdesk.core.store.open import store_exists
from ragdesk.gui.application import application
from ragdesk.gui.idle import DEFAULT_AUTOLOCK_MINUTES, IdleWatcher
from ragdesk.gui.unlock import CreateVaultDialog, UnlockDialog
from ragdesk.gui.workers import WorkerPool

if TYPE_CHECKING:
    from ragdesk.app import Services
    from ragdesk.core.store.base import Store
    from ragdesk.gui.mainwindow import MainWindow
    from ragdesk.gui.sharing import ServerFactory

log = logging.getLogger("ragdesk.gui")

class RagdeskApp(QObject):
    """The vault's life cycle in the GUI: create or unlock, use, lock, unlock again."""

    unlocked = Signal()
    locked = Signal()

    def __init__(
        self,
        home: Path,
        ui_settings: QSettings | None = None,
        *,
        embedder: Any = None,
        kdf: KdfParams | None = None,
        index_options: dict[str, Any] | None = None,
        poll_ollama: bool = True,
        watch_folders: bool = True,
        idle_ms: int | None = None,
        share: ServerFactory | None = None,
    ) -> None:
        super().__init__()
        self.home = home
        self.ui_settings = ui_settings or QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                                                    "RagDesk", "RagDesk")
        self.pool = WorkerPool(parent=self)
        self.services: Services | None = None
        self.window: MainWindow | None = None
        self.dialog: CreateVaultDialog | UnlockDialog | None = None
        self.idle = IdleWatcher(self)
        self.idle.idle.connect(self._idle_lock)
        self._embedder = embedder
        self._kdf = kdf
        self._index_options = index_options
        self._poll = poll_ollama
        self._watch = watch_folders
        self._idle_ms_override = idle_ms
        self._share = share  # serves the vault on the LAN (File › Share on the network…)
        self._locking = False
        self._quitting = False
        self._resume: list[tuple[list[str] | None, str | None]] = []

    # --- start ----------------------------------------------------------------------------

    def start(self) -> None:
        if store_exists(self.home):
            self.show_unlock()
        else:
            self.show_create()

    def show_create(self) -> None:
        dialog = CreateVaultDialog(self.home, self.pool, kdf=self._kdf)
        self._show_dialog(dialog)

    def show_unlock(self, note: str | None = None) -> None:
        dialog = UnlockDialog(self.home, self.pool, note=note)
        self._show_dialog(dialog)

    def _show_dialog(self, dialog: CreateVaultDialog | UnlockDialog) -> None:
        self.dialog = dialog
        dialog.opened.connect(self._opened)
        dialog.rejected.connect(self.quit)
        geometry = self.ui_settings.value("dialog/geometry")
        if geometry is not None:
            dialog.restoreGeometry(geometry)
            # Where it was, but its own height: the create dialog is taller than the unlock
            # dialog, and a stretched dialog spreads its rows apart (seen under xcb).
            dialog.resize(dialog.width(), dialog.sizeHint().height())
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()

    # --- unlocked -------------------------------------------------------------------------

    def _opened(self, store: Store) -> None:
        from ragdesk.app import Services

        if self.dialog is not None:
            self.ui_settings.setValue("dialog/geometry", self.dialog.saveGeometry())
            self.dialog.deleteLater()
            self.dialog = None
        self.services = Services(store, self.home, _embedder=self._embedder)
        window = self.main_window()
        window.attach(self.services, resume=self._resume)
        self._resume = []
        window.show()
        window.raise_()
        window.activateWindow()
        self.apply_idle_time()
        self.unlocked.emit()

    def main_window(self) -> MainWindow:
        if self.window is None:
            from ragdesk.gui.mainwindow import MainWindow  # after unlock: keeps start-up light

            self.window = MainWindow(self.pool, self.ui_settings, index_options=self._index_options,
                                     poll_ollama=self._poll, watch_folders=self._watch, share=self._share)
            self.window.lock_requested.connect(self.lock)
            self.window.quit_requested.connect(self.quit)
            self.window.settings_saved.connect(lambda _v: self.apply_idle_time())
        return self.window

    def apply_idle_time(self) -> None:
        if self.services is None:
            return
        if self._idle_ms_override is not None:
            ms = self._idle_ms_override
        else:
            minutes = self.services.store.get_setting("autolock_minutes", DEFAULT_AUTOLOCK_MINUTES)
            ms = int(float(minutes) * 60_000)
        self.idle.start(ms)

    def set_idle_ms(self, ms: int | None) -> None:
        """Override the vault's auto-lock time (tests, benchmarks)."""
        self._idle_ms_override = ms
        self.apply_idle_time()

    # --- lock -----------------------------------------------------------------------------

    @property
    def is_locked(self) -> bool:
        return self.services is None

    def _idle_lock(self) -> None:
        minutes = self.idle.interval_ms / 60_000
        span = f"{minutes:.0f} minutes" if minutes >= 1 else "a short while"
        self.lock(f"The vault was locked after {span} without activity.")

    def lock(self, reason: str | None = None) -> None:
        """Stop all work, clear every widget, close the database, ask for the passphrase."""
        if self.services is None or self._locking:
            return
        self._locking = True
        self.idle.stop()
        if self.window is not None:
            self._resume = self.window.detach()
        self.pool.cancel_all()
        log.info("locking the vault")
        self.pool.when_idle(lambda: self._finish_lock(reason))

    def _finish_lock(self, reason: str | None) -> None:
        services, self.services = self.services, None
        if services is not None:
            services.store.lock()
        self._locking = False
        self.locked.emit()
        if self._quitting:
            QApplication.quit()
            return
        self.show_unlock(note=reason or "The vault is locked.")

    # --- quit -----------------------------------------------------------------------------

    def quit(self) -> None:
        if self._quitting:
            return
        self._quitting = True
        if self.services is not None:
            self.lock()
        else:
            QApplication.quit()

    def shutdown(self, timeout_ms: int = 15000) -> None:
        """Close everything synchronously (tests and the end of `run`)."""
        self.idle.stop()
        if self.window is not None and self.services is not None:
            self.window.detach()
        self.pool.cancel_all()
        self.pool.wait(timeout_ms)
        if self.services is not None:
            self.services.store.lock()
            self.services = None
        for widget in (self.dialog, self.window):
            if widget is not None:
                widget.hide()
                widget.deleteLater()
        self.dialog = None
        self.window = None


def _startup_probe(app: QApplication, controller: RagdeskApp, started: float) -> None:
    """For benchmarks/bench_gui.py: report once the first window is on screen, then quit."""

    def check() -> None:
        dialog = controller.dialog
        if dialog is not None and dialog.isVisible() and dialog.windowHandle() is not None \
                and dialog.windowHandle().isExposed():
            print(f"ragdesk-startup window-visible {time.perf_counter() - started:.4f}", flush=True)
            app.quit()
        else:
            QTimer.singleShot(5, check)

    QTimer.singleShot(0, check)


def run(home: Path, argv: list[str], self_test: bool = False, share: ServerFactory | None = None) -> int:
    started = time.perf_counter()
    if self_test:
        from ragdesk.gui.selftest import run_self_test

        return run_self_test(argv)
    app = application(argv)
    controller = RagdeskApp(home, share=share)
    controller.start()
    if os.environ.get("RAGDESK_STARTUP_PROBE"):
        _startup_probe(app, controller, started)
    code = app.exec()
    controller.shutdown()
    return code


if __name__ == "__main__":  # pragma: no cover - `ragdesk gui` is the entry point
    from ragdesk import paths

    sys.exit(run(paths.home(), sys.argv))
