"""A notice above the panes that asks something without stopping the user: a sentence and two
buttons (e.g. "Update now" / "Later"). The window goes on working while it is shown."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from ragdesk.gui import icons


class Notice(QFrame):
    """A non-blocking question: `accepted` or `declined` when a button is clicked (it hides)."""

    accepted = Signal()
    declined = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("notice")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 12, 6)
        layout.setSpacing(12)
        self.icon = QLabel()
        self.icon.setPixmap(icons.pixmap("info", 20, self.devicePixelRatioF()))
        self.icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.text = QLabel()
        self.text.setTextFormat(Qt.TextFormat.PlainText)
        self.text.setWordWrap(True)
        self.accept_button = QPushButton("OK")
        self.accept_button.clicked.connect(self._accept)
        self.decline_button = QPushButton("Later")
        self.decline_button.clicked.connect(self._decline)
        for button in (self.accept_button, self.decline_button):  # (set again by `ask`)
            button.setAccessibleName(button.text())
            button.setToolTip(button.text())
        self.setAccessibleName("Notice")
        layout.addWidget(self.icon)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.accept_button, 0, Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(self.decline_button, 0, Qt.AlignmentFlag.AlignVCenter)
        self.hide()

    def ask(self, text: str, accept: str, decline: str, accept_tip: str = "", decline_tip: str = "") -> None:
        self.text.setText(text)
        self.accept_button.setText(accept)
        self.accept_button.setToolTip(accept_tip or accept)
        self.accept_button.setAccessibleName(accept)
        self.decline_button.setText(decline)
        self.decline_button.setToolTip(decline_tip or decline)
        self.decline_button.setAccessibleName(decline)
        self.setAccessibleName(text)
        self.show()

    def _accept(self) -> None:
        self.hide()
        self.accepted.emit()

    def _decline(self) -> None:
        self.hide()
        self.declined.emit()
