"""Auto-lock's clock: notices when the user has not touched keyboard, mouse or screen for a
while. The vault's `autolock_minutes` setting says how long (0: never)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication

DEFAULT_AUTOLOCK_MINUTES = 10
_INPUT_EVENTS = frozenset({
    QEvent.Type.KeyPress, QEvent.Type.MouseButtonPress, QEvent.Type.MouseMove, QEvent.Type.Wheel,
    QEvent.Type.TouchBegin, QEvent.Type.TabletPress, QEvent.Type.ShortcutOverride,
})


class IdleWatcher(QObject):
    """Fires `idle` after `interval_ms` without keyboard, mouse or touch input."""

    idle = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.idle)
        self._installed = False

    @property
    def active(self) -> bool:
        return self._timer.isActive()

    @property
    def interval_ms(self) -> int:
        return self._timer.interval()

    def start(self, interval_ms: int) -> None:
        self.stop()
        if interval_ms <= 0:
            return
        self._timer.setInterval(interval_ms)
        self._timer.start()
        app = QApplication.instance()
        if app is not None and not self._installed:
            app.installEventFilter(self)
            self._installed = True

    def stop(self) -> None:
        self._timer.stop()
        app = QApplication.instance()
        if app is not None and self._installed:
            app.removeEventFilter(self)
        self._installed = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # Restarting a timer on every mouse move is wasteful; once a second is plenty.
        timer = self._timer
        if event.type() in _INPUT_EVENTS and timer.isActive() \
                and (timer.remainingTime() < timer.interval() - 1000 or timer.interval() < 2000):
            timer.start()
        return False
