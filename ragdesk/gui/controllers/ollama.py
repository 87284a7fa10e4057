"""Whether Ollama answers: probed on unlock, every 30 seconds while the vault is open (when
polling is on) and on request; the result goes out as `checked` for the window to show."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal

from ragdesk.gui.controllers.host import Host
from ragdesk.gui.workers import OllamaStatus, Worker, WorkerPool, probe_ollama

if TYPE_CHECKING:
    from ragdesk.app import Services


OLLAMA_POLL_MS = 30_000


class OllamaController(QObject):
    """Keeps `status` (Ollama's reachability, version and chat model) up to date."""

    checked = Signal(object)  # OllamaStatus

    def __init__(self, pool: WorkerPool, host: Host, *, poll: bool = True,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = pool
        self.host = host
        self.poll_enabled = poll
        self.services: Services | None = None
        self.status: OllamaStatus | None = None
        self._worker: Worker | None = None
        self._again = False
        self._poll_timer = QTimer(self)
        self._poll_timer.setInterval(OLLAMA_POLL_MS)
        self._poll_timer.timeout.connect(self.check)

    def attach(self, services: Services) -> None:
        self.services = services
        if self.poll_enabled:
            self.check()
            self._poll_timer.start()

    def detach(self) -> None:
        self._poll_timer.stop()
        if self._worker is not None:
            self._worker.cancel()
        self._worker = None
        self.services = None

    def check(self) -> None:
        """Probe Ollama now (once more after the running probe, if one runs)."""
        if self.services is None:
            return
        if self._worker is not None:
            self._again = True  # the settings may have changed since it started
            return
        services = self.services
        worker = Worker(lambda: probe_ollama(services), "probe ollama")
        self._worker = worker
        self._again = False
        self.pool.submit(worker, on_result=self._status, on_error=self.host.report_error,
                         on_finished=self._probe_done)

    def _probe_done(self) -> None:
        self._worker = None
        if self._again:
            self._again = False
            self.check()

    def _status(self, status: OllamaStatus) -> None:
        if self.services is None:
            return
        self.status = status
        self.checked.emit(status)
