"""What RagDesk knows about Ollama: one state, updated by every outcome -- the probe on unlock,
every 30 seconds while the vault is open (when polling is on) and on request, and the result of
every question asked (an answer that fell back to passages because Ollama could not be reached
marks it down at once; a model's answer marks it up). The status bar's indicator and the banner
both show this one state: `changed` goes out when it changes, `checked` after every probe."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal

from ragdesk.gui.controllers.host import Host
from ragdesk.gui.workers import OllamaStatus, Worker, WorkerPool, probe_ollama

if TYPE_CHECKING:
    from ragdesk.app import Services


OLLAMA_POLL_MS = 30_000

# How the core names the failures of an answer (ragdesk.core.ollama.describe_error).
_UNREACHABLE = "Ollama is not reachable at "
_NOT_INSTALLED = "is not installed"


def same_state(a: OllamaStatus | None, b: OllamaStatus | None) -> bool:
    """Whether two statuses say the same to the user (what the indicator and banner show)."""
    if a is None or b is None:
        return a is b
    return (a.host, a.reachable, a.model_missing, a.model, a.version, a.message) == \
        (b.host, b.reachable, b.model_missing, b.model, b.version, b.message)


class OllamaController(QObject):
    """Keeps `status` (Ollama's reachability, version and chat model): the one source of truth."""

    checked = Signal(object)  # OllamaStatus, after every probe
    changed = Signal(object)  # OllamaStatus, whenever what is known changes (probe or answer)

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
        self.status = None
        if self.poll_enabled:
            self.check()
            self._poll_timer.start()

    def detach(self) -> None:
        self._poll_timer.stop()
        if self._worker is not None:
            self._worker.cancel()
        self._worker = None
        self.services = None
        self.status = None

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
        self._set(status)
        self.checked.emit(status)

    def _set(self, status: OllamaStatus) -> None:
        if self._poll_timer.isActive():
            self._poll_timer.start()  # the next probe a full interval after what was just learnt
        if same_state(self.status, status):
            self.status = status
            return
        self.status = status
        self.changed.emit(status)

    # --- what answers tell ----------------------------------------------------------------

    def answered(self, event: Any) -> None:
        """Learn from a finished answer (the core's "done" ChatEvent): a model's text means
        Ollama answers; a fallback because it could not be reached means it is down, now."""
        if self.services is None:
            return
        notice = str(event.notice or "")
        old = self.status
        if event.mode == "extractive":
            if notice.startswith(_UNREACHABLE):
                host = notice[len(_UNREACHABLE):].split(" — ")[0].strip() or self._host()
                message, _, remedy = notice.partition(" — ")
                self._set(OllamaStatus(host, False, message=message, remedy=remedy or None))
            elif _NOT_INSTALLED in notice and old is not None and old.reachable:
                message, _, remedy = notice.partition(" — ")
                self._set(replace(old, model=event.model or old.model, model_missing=True,
                                  message=message, remedy=remedy or None))
                self.check()
            else:
                self.check()  # some other failure: ask Ollama how it is
        elif event.answer and event.status in ("complete", "stopped"):
            if old is not None and old.reachable and not old.model_missing \
                    and (event.model is None or event.model == old.model):
                return  # nothing new
            if old is not None and old.reachable:
                self._set(replace(old, model=event.model or old.model, model_missing=False,
                                  message=None, remedy=None))
            else:
                self._set(OllamaStatus(self._host(), True, model=event.model))
            self.check()  # its version and models
        elif event.status == "failed":
            self.check()

    def _host(self) -> str:
        return self.services.chat_settings().host if self.services is not None else ""
