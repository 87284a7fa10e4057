"""The Ollama banner above the panes: what is wrong with Ollama, what answers look like
meanwhile (extractive passages), and buttons to retry or open the settings."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ragdesk.gui import icons
from ragdesk.gui.workers import OllamaStatus


class Banner(QFrame):
    """The Ollama banner: what is wrong, what answers look like meanwhile, how to fix it."""

    retry = Signal()
    settings = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ollamaBanner")
        self.setAccessibleName("Ollama is not available")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.setSpacing(12)
        self.icon = QLabel()
        self.icon.setPixmap(icons.pixmap("ollama-down", 22, self.devicePixelRatioF()))
        self.icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.icon.setAccessibleName("Warning")
        words = QVBoxLayout()
        words.setSpacing(2)
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.title.setWordWrap(True)
        self.body = QLabel()
        self.body.setTextFormat(Qt.TextFormat.PlainText)
        self.body.setWordWrap(True)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        words.addWidget(self.title)
        words.addWidget(self.body)
        self.retry_button = QPushButton(icons.icon("sync"), "Retry")
        self.retry_button.setToolTip("Check again whether Ollama is reachable")
        self.retry_button.setAccessibleName("Retry connecting to Ollama")
        self.retry_button.clicked.connect(self.retry)
        self.settings_button = QPushButton(icons.icon("settings"), "Settings…")
        self.settings_button.setToolTip("Set Ollama's address and model")
        self.settings_button.setAccessibleName("Open settings")
        self.settings_button.clicked.connect(self.settings)
        layout.addWidget(self.icon)
        layout.addLayout(words, 1)
        layout.addWidget(self.retry_button, 0, Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(self.settings_button, 0, Qt.AlignmentFlag.AlignVCenter)
        self.shown: tuple[str, bool, str | None] | None = None  # the state on show
        self.shown_count = 0  # how many times a warning was put up (tests count repeats)
        self.hide()

    def show_status(self, status: OllamaStatus | None) -> None:
        """Show what is wrong, once per change of state; hide when Ollama answers again."""
        if status is None or (status.reachable and not status.model_missing):
            self.shown = None
            self.hide()
            return
        state = (status.host, status.reachable, status.message)
        if state == self.shown and not self.isHidden():
            return  # already says so: no repeat
        self.shown = state
        self.shown_count += 1
        if not status.reachable:
            self.title.setText(f"Ollama is not reachable at {status.host}.")
            self.body.setText(
                "To have answers written by a model, start Ollama (run “ollama serve”) or set its "
                "address in Settings. Search and indexing work as usual.")
        else:
            self.title.setText(f"Ollama is running, but {status.message}.")
            self.body.setText(f"To fix it, {status.remedy}, or choose another model in Settings.")
        self.setAccessibleDescription(f"{self.title.text()} {self.body.text()}")
        self.show()
