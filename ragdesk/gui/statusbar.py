"""The main window's status bar widgets: indexing progress (with cancel and the problems button)
and the Ollama indicator.

They only show what they are given; the controllers (gui/controllers/) decide when.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

from ragdesk.gui import icons
from ragdesk.gui.render import tooltip
from ragdesk.gui.workers import OllamaStatus

if TYPE_CHECKING:
    from ragdesk.core.indexing import Progress


class IndexStatus(QWidget):
    """The status bar's indexing display: counts, rate, ETA, a progress bar, cancel, problems."""

    cancel = Signal()
    show_problems = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("indexStatus")
        self.setAccessibleName("Indexing progress")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setAccessibleName("Indexing status")
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(160)
        self.bar.setMaximumHeight(14)
        self.bar.setTextVisible(False)
        self.bar.setAccessibleName("Indexing progress")
        self.cancel_button = QToolButton()
        self.cancel_button.setIcon(icons.icon("cancel"))
        self.cancel_button.setToolTip("Stop indexing; what is already indexed is kept")
        self.cancel_button.setAccessibleName("Cancel indexing")
        self.cancel_button.setAutoRaise(True)
        self.cancel_button.clicked.connect(self.cancel)
        self.problems_button = QToolButton()
        self.problems_button.setIcon(icons.icon("status-failed"))
        self.problems_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.problems_button.setAutoRaise(True)
        self.problems_button.setToolTip("Show the files that could not be indexed, with the reason")
        self.problems_button.setAccessibleName("Show files that could not be indexed")
        self.problems_button.clicked.connect(self.show_problems)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        layout.addWidget(self.problems_button)
        self.reset()

    def reset(self) -> None:
        self.label.clear()
        self.bar.hide()
        self.cancel_button.hide()
        self.problems_button.hide()
        self.hide()

    def starting(self, problems: int = 0) -> None:
        """A run has begun and its files are still being listed: a busy bar."""
        self.show()
        self.bar.show()
        self.cancel_button.show()
        self.bar.setRange(0, 0)
        self.label.setText("Looking for files…")
        self._problems(problems)

    def running(self, p: Progress, problems: int) -> None:
        if not p.files_total:
            self.starting(problems)
            return
        self.show()
        self.bar.show()
        self.cancel_button.show()
        self.bar.setRange(0, p.files_total)
        self.bar.setValue(p.files_done)
        parts = [f"Indexing {p.files_done} of {p.files_total} files", f"{p.pages} pages"]
        if p.files_done:
            parts.append(f"{p.rate:.1f} files/s")
        if p.eta is not None:
            parts.append(f"about {_duration(p.eta)} left")
        self.label.setText(" · ".join(parts))
        self.bar.setAccessibleDescription(self.label.text())
        self._problems(problems)

    def finished(self, p: Progress, problems: int) -> None:
        self.show()
        self.bar.hide()
        self.cancel_button.hide()
        verb = "Stopped" if p.cancelled else "Indexed"
        text = f"{verb}: {p.indexed} new or changed, {p.unchanged} unchanged ({p.pages} pages)"
        if p.removed:
            text += f", {p.removed} removed"
        text += f" in {_duration(p.elapsed)}"
        self.label.setText(text)
        self._problems(problems)

    def _problems(self, problems: int) -> None:
        self.problems_button.setVisible(problems > 0)
        self.problems_button.setText(f"{problems} could not be indexed")


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class OllamaIndicator(QWidget):
    """Status bar: icon and text saying whether Ollama answers, its version and the model."""

    clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ollamaIndicator")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 4, 0)
        layout.setSpacing(5)
        self.icon = QLabel()
        self.text = QLabel("Ollama: checking…")
        self.text.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.icon)
        layout.addWidget(self.text)
        self.setAccessibleName("Ollama status")
        self.status: OllamaStatus | None = None

    def show_status(self, status: OllamaStatus | None) -> None:
        self.status = status
        ratio = self.devicePixelRatioF()
        if status is None:
            self.icon.clear()
            self.text.setText("Ollama: checking…")
            self.setToolTip("")
            return
        if status.reachable and not status.model_missing:
            self.icon.setPixmap(icons.pixmap("ollama-ok", 14, ratio))
            version = f"Ollama {status.version}" if status.version else "Ollama"
            self.text.setText(f"{version} · {status.model}" if status.model else version)
            lines = [f"{version} answers at {status.host}",
                     f"Chat model: {status.model or 'the first installed'}"]
            if status.models:
                lines.append(f"Installed: {', '.join(status.models)}")
            self.setToolTip(tooltip("\n".join(lines)))
        elif status.reachable:
            self.icon.setPixmap(icons.pixmap("ollama-down", 14, ratio))
            version = f"Ollama {status.version}" if status.version else "Ollama"
            self.text.setText(f"{version} · no model — extractive answers")
            self.setToolTip(tooltip(f"{status.message}\n{status.remedy}"))
        else:
            self.icon.setPixmap(icons.pixmap("ollama-down", 14, ratio))
            self.text.setText("Ollama not reachable — extractive answers")
            self.setToolTip(tooltip(f"{status.message}\n{status.remedy}"))
        self.setAccessibleDescription(self.text.text())

    def mousePressEvent(self, event: Any) -> None:
        self.clicked.emit()
        super().mousePressEvent(event)
