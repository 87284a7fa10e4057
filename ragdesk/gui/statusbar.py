"""The main window's status bar widgets: indexing progress (with cancel and the problems button)
and the Ollama indicator.

They only show what they are given; the controllers (gui/controllers/) decide when.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QSizePolicy, QStatusBar, QToolButton, QWidget

from ragdesk.gui import icons
from ragdesk.gui.pace import Estimate, describe_left
from ragdesk.gui.render import tooltip
from ragdesk.gui.workers import OllamaStatus

if TYPE_CHECKING:
    from ragdesk.core.indexing import Progress


def counted(n: int, noun: str) -> str:
    """ "1 page", "2 pages": a count and its noun, singular for one."""
    return f"{n} {noun}{'s' if n != 1 else ''}"


class ElidedLabel(QLabel):
    """A one-line label that ends in "…" when the status bar is too narrow for its text (a
    plain QLabel cuts it mid-letter); the whole text stays in `text()` and the tooltip."""

    def paintEvent(self, event: Any) -> None:
        painter = QPainter(self)
        rect = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, rect.width())
        painter.drawText(rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), text)
        painter.end()


class IndexStatus(QWidget):
    """The status bar's indexing display: why a run is going (when it is not the user's own
    drop), counts, the file and page in work, a rate and time left once they mean something, a
    progress bar, cancel, and the library's files that could not be indexed."""

    cancel = Signal()
    show_problems = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("indexStatus")
        self.setAccessibleName("Indexing progress")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        self.note = QLabel()
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        self.note.setAccessibleName("Why documents are being indexed")
        font = self.note.font()
        font.setItalic(True)
        self.note.setFont(font)
        self.label = ElidedLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setAccessibleName("Indexing status")
        # A long file name is cut rather than pushing the Ollama indicator off the bar.
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.label.setMinimumWidth(120)
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
        layout.addWidget(self.note)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.problems_button)
        self.problems = 0
        self._wanted = False  # whether it would be shown, were no status-bar message over it
        self.reset()

    def _appear(self) -> None:
        """Show it, unless the status bar is showing a message (a toolbar button's tip while the
        mouse rests on it, an error): Qt hides the bar's normal widgets then, and one shown over
        the message drew its text across the message's. `message_changed` shows it afterwards."""
        self._wanted = True
        bar = self.parentWidget()
        if not (isinstance(bar, QStatusBar) and bar.currentMessage()):
            self.show()

    def message_changed(self, text: str) -> None:
        """The status bar's message came or went (its `messageChanged` signal)."""
        if not text and self._wanted:
            self.show()

    def reset(self) -> None:
        self._wanted = False
        self.label.clear()
        self.label.setToolTip("")
        self.note.clear()
        self.note.hide()
        self.bar.hide()
        self.cancel_button.hide()
        self.problems = 0
        self.problems_button.hide()
        self.hide()

    def set_note(self, text: str | None) -> None:
        """Why this run indexes (e.g. documents of an older version); None for the user's own."""
        self.note.setText(text or "")
        self.note.setVisible(bool(text))

    def starting(self) -> None:
        """A run has begun and its files are still being listed: a busy bar."""
        self._appear()
        self.bar.show()
        self.cancel_button.show()
        self.bar.setRange(0, 0)
        self.label.setText("Starting: listing the files…")
        self.label.setToolTip("")

    def running(self, p: Progress, estimate: Estimate | None = None) -> None:
        if not p.files_total:
            self.starting()
            return
        self._appear()
        self.bar.show()
        self.cancel_button.show()
        self.bar.setRange(0, p.files_total)
        self.bar.setValue(p.files_done)
        parts = [f"Indexing {p.files_done} of {counted(p.files_total, 'file')}", counted(p.pages, "page")]
        if estimate is not None:
            parts.append(describe_rate(estimate.rate))
            if estimate.left is not None:
                parts.append(describe_left(estimate.left))
        work, paths = in_work(p)
        if work:  # last: a narrow bar cuts the file's name, not the time left
            parts.append(work)
        self.label.setText(" · ".join(parts))
        self.label.setToolTip(tooltip("\n".join([self.label.text(), *paths])))
        self.bar.setAccessibleDescription(self.label.text())

    def finished(self, p: Progress) -> None:
        self._appear()
        self.bar.hide()
        self.cancel_button.hide()
        verb = "Stopped" if p.cancelled else "Indexed"
        text = f"{verb}: {p.indexed} new or changed, {p.unchanged} unchanged ({counted(p.pages, 'page')})"
        if p.removed:
            text += f", {p.removed} removed"
        text += f" in {_duration(p.elapsed)}"
        self.label.setText(text)
        self.label.setToolTip("")

    def set_problems(self, problems: int) -> None:
        """The library's documents that could not be indexed (they stay, with their reason,
        whatever happens to a run: a cancelled one too)."""
        self.problems = problems
        self.problems_button.setVisible(problems > 0)
        self.problems_button.setText(f"{problems} could not be indexed")
        if problems > 0:
            self._appear()


def in_work(p: Progress) -> tuple[str, list[str]]:
    """The file(s) being read now, with their page (short, for the bar), and their full paths
    (for the tooltip). With none being read, the file last read, which is being added."""
    if p.in_work:
        work = sorted(p.in_work, key=lambda w: w.seconds, reverse=True)
        first = work[0]
        where = _file_name(first.path)
        if first.page and first.pages:
            where += f", page {first.page} of {first.pages}"
        elif first.page:
            where += f", page {first.page}"
        if first.step == "ocr":
            where += " (OCR)"
        text = f"reading {where}"
        if len(work) > 1:
            text += f" and {len(work) - 1} more"
        return text, [w.path for w in work]
    if p.current and not p.done:  # read: its passages are being embedded and stored
        return f"adding {_file_name(p.current)}", [p.current]
    return "", []


def _file_name(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def describe_rate(rate: float) -> str:
    if rate >= 1:
        return f"{rate:.1f} files/s"
    return f"{rate * 60:.0f} files/min" if rate * 60 >= 1 else f"{rate * 3600:.0f} files/h"


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
            self.text.setText(f"{version} · no chat model")
            self.setToolTip(tooltip(f"{status.message}\n{status.remedy}"))
        else:
            self.icon.setPixmap(icons.pixmap("ollama-down", 14, ratio))
            self.text.setText("Ollama not reachable")
            self.setToolTip(tooltip(f"{status.message}\n{status.remedy}"))
        self.setAccessibleDescription(self.text.text())

    def mousePressEvent(self, event: Any) -> None:
        self.clicked.emit()
        super().mousePressEvent(event)
