"""The two doors into a vault: "create your vault" on first start, "unlock" afterwards.

Key derivation (Argon2id, about 0.7 s) runs on a worker thread while the dialog shows a busy
state; a wrong passphrase is reported inline and leaves the vault's files untouched (the core
only reads them). The passphrase is never stored anywhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ragdesk.core.passphrase import MIN_LENGTH, MIN_SCORE, estimate
from ragdesk.core.store.base import Store
from ragdesk.core.store.keys import KdfParams
from ragdesk.core.store.open import open_store, store_exists
from ragdesk.errors import VaultExists
from ragdesk.gui import icons
from ragdesk.gui.workers import WorkerError, WorkerPool

log = logging.getLogger("ragdesk.gui.unlock")

@dataclass(frozen=True)
class Strength:
    score: int  # 0..4
    label: str
    hint: str


def passphrase_strength(text: str) -> Strength:
    """How hard the passphrase is to guess, by the estimate the command line enforces
    (core/passphrase.py, zxcvbn), with its advice as the hint."""
    if not text:
        return Strength(0, "Empty", "Type a passphrase.")
    s = estimate(text)
    if s.score < MIN_SCORE:
        hint = s.feedback or "add another word or two: length beats complexity."
    elif s.score == MIN_SCORE:
        hint = "one more word would make it strong."
    else:
        hint = "hard to guess."
    return Strength(s.score, s.label, hint)


class PassphraseField(QLineEdit):
    """A password line edit with a show/hide toggle."""

    def __init__(self, accessible_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setEchoMode(QLineEdit.EchoMode.Password)
        self.setAccessibleName(accessible_name)
        self.setMinimumWidth(300)
        self._toggle = QAction(icons.icon("eye"), "Show passphrase", self)
        self._toggle.setCheckable(True)
        self._toggle.setToolTip("Show or hide the passphrase")
        self._toggle.toggled.connect(self._show)
        self.addAction(self._toggle, QLineEdit.ActionPosition.TrailingPosition)

    def _show(self, visible: bool) -> None:
        self.setEchoMode(QLineEdit.EchoMode.Normal if visible else QLineEdit.EchoMode.Password)
        self._toggle.setIcon(icons.icon("eye-off" if visible else "eye"))
        self._toggle.setText("Hide passphrase" if visible else "Show passphrase")


class _Banner(QFrame):
    """An icon and a line of text: an inline error, a warning or a note."""

    def __init__(self, icon_name: str, accessible_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("inlineBanner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.setSpacing(10)
        self.icon_label = QLabel()
        self.icon_label.setPixmap(icons.pixmap(icon_name, 20, self.devicePixelRatioF()))
        self.icon_label.setAlignment(Qt.AlignmentFlag.AlignTop)
        words = QVBoxLayout()
        words.setSpacing(3)
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.title.hide()
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.PlainText)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        words.addWidget(self.title)
        words.addWidget(self.text)
        layout.addWidget(self.icon_label)
        layout.addLayout(words, 1)
        self.setAccessibleName(accessible_name)

    def show_text(self, text: str, title: str | None = None) -> None:
        self.title.setText(title or "")
        self.title.setVisible(bool(title))
        self.text.setText(text)
        self.setAccessibleDescription(f"{title} {text}" if title else text)
        self.show()


def _header(title: str, text: str) -> QWidget:
    box = QWidget()
    layout = QHBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(14)
    logo = QLabel()
    logo.setPixmap(icons.pixmap("app", 48, box.devicePixelRatioF()))
    logo.setAlignment(Qt.AlignmentFlag.AlignTop)
    logo.setAccessibleName("RagDesk")
    words = QVBoxLayout()
    words.setSpacing(4)
    heading = QLabel(title)
    font = heading.font()
    font.setPointSizeF(font.pointSizeF() * 1.45)
    font.setBold(True)
    heading.setFont(font)
    heading.setAccessibleName(title)
    body = QLabel(text)
    body.setWordWrap(True)
    body.setTextFormat(Qt.TextFormat.PlainText)
    words.addWidget(heading)
    words.addWidget(body)
    layout.addWidget(logo)
    layout.addLayout(words, 1)
    return box


class _VaultDialog(QDialog):
    """Shared busy state and error display for the two dialogs."""

    opened = Signal(object)  # the unlocked Store

    def __init__(self, home: Path, pool: WorkerPool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.home = home
        self.pool = pool
        self._busy = False
        self.setWindowIcon(icons.icon("app"))
        self.setWindowFlag(Qt.WindowType.WindowContextHelpButtonHint, False)
        self.error = _Banner("warning", "Error")
        self.error.setObjectName("errorBanner")
        self.error.hide()
        self.busy_row = QWidget()
        busy = QHBoxLayout(self.busy_row)
        busy.setContentsMargins(0, 0, 0, 0)
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setTextVisible(False)
        self.busy_bar.setMaximumHeight(8)
        self.busy_bar.setAccessibleName("Working")
        self.busy_label = QLabel()
        busy.addWidget(self.busy_label)
        busy.addWidget(self.busy_bar, 1)
        self.busy_row.setVisible(False)
        self.location = QLabel(f"Vault folder: {home}")
        self.location.setTextFormat(Qt.TextFormat.PlainText)
        self.location.setWordWrap(True)
        self.location.setForegroundRole(self.location.foregroundRole())
        self.location.setEnabled(False)  # drawn in the palette's secondary text colour
        self.location.setAccessibleName("Vault folder")

    @property
    def busy(self) -> bool:
        return self._busy

    def _inputs(self) -> list[QWidget]:
        return []

    def submit(self) -> None:
        raise NotImplementedError

    def _button_box(self, icon_name: str, text: str, tip: str, quit_tip: str) -> QPushButton:
        """`self.buttons`: `text` (the default, for Enter; returned) and Quit."""
        self.buttons = QDialogButtonBox()
        button = QPushButton(icons.icon(icon_name), text)
        button.setDefault(True)
        button.setAccessibleName(text)
        button.setToolTip(tip)
        self.quit_button = QPushButton("Quit")
        self.quit_button.setAccessibleName("Quit")
        self.quit_button.setAutoDefault(False)  # Enter never quits, whatever had focus before
        self.quit_button.setToolTip(quit_tip)
        self.buttons.addButton(button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(self.quit_button, QDialogButtonBox.ButtonRole.RejectRole)
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        return button

    def set_busy(self, busy: bool, text: str = "") -> None:
        self._busy = busy
        self.busy_label.setText(text)
        self.busy_row.setVisible(busy)
        for w in self._inputs():
            w.setEnabled(not busy)
        if busy:
            self.error.hide()
            self.setCursor(Qt.CursorShape.BusyCursor)
        else:
            self.unsetCursor()

    def show_error(self, text: str) -> None:
        self.error.show_text(text)

    def _opened(self, store: Store) -> None:
        self.set_busy(False)
        if not self.isVisible():  # closed meanwhile: nobody wants it
            store.lock()
            return
        self.opened.emit(store)
        self.accept()

    def reject(self) -> None:
        if self._busy:
            return  # the key is being derived; the window stays until it is done
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._busy:
            event.ignore()
            return
        super().closeEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if self._busy and event.key() == Qt.Key.Key_Escape:
            return
        super().keyPressEvent(event)


class CreateVaultDialog(_VaultDialog):
    """First start: choose a passphrase (twice), see its strength, acknowledge it is unrecoverable."""

    def __init__(self, home: Path, pool: WorkerPool, kdf: KdfParams | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(home, pool, parent)
        self._kdf = kdf
        self.setWindowTitle("Create your vault — RagDesk")
        self.setObjectName("createVaultDialog")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(22, 20, 22, 18)
        layout.setSpacing(14)
        layout.addWidget(_header(
            "Create your vault",
            "RagDesk keeps your documents, their index and your conversations in one encrypted "
            "file on this computer. Choose a passphrase to protect it.",
        ))

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.setHorizontalSpacing(12)
        form.setVerticalSpacing(8)
        self.passphrase = PassphraseField("Passphrase")
        self.passphrase.setPlaceholderText("Four or more random words work well")
        self.passphrase.setToolTip("The passphrase that encrypts the vault")
        self.repeat = PassphraseField("Repeat passphrase")
        self.repeat.setPlaceholderText("Type it again")
        self.repeat.setToolTip("Type the passphrase again, to be sure it is the one you meant")
        form.addRow("&Passphrase:", self.passphrase)
        form.addRow("&Repeat:", self.repeat)

        meter_row = QWidget()
        meter = QHBoxLayout(meter_row)
        meter.setContentsMargins(0, 0, 0, 0)
        meter.setSpacing(10)
        self.meter = QProgressBar()
        self.meter.setRange(0, 4)
        self.meter.setTextVisible(False)
        self.meter.setMaximumHeight(10)
        self.meter.setMaximumWidth(120)
        self.meter.setAccessibleName("Passphrase strength")
        self.strength_label = QLabel()
        self.strength_label.setTextFormat(Qt.TextFormat.PlainText)
        self.strength_label.setWordWrap(True)
        self.strength_label.setAccessibleName("Passphrase strength")
        meter.addWidget(self.meter)
        meter.addWidget(self.strength_label, 1)
        form.addRow("Strength:", meter_row)
        self.match_label = QLabel()
        self.match_label.setTextFormat(Qt.TextFormat.PlainText)
        self.match_label.setAccessibleName("Do the passphrases match")
        # Its line is there from the start, empty until the passphrase is typed again: a row that
        # appeared then moved the warning and the checkbox down under the user's pointer.
        self.match_label.setMinimumHeight(self.match_label.fontMetrics().height())
        form.addRow("", self.match_label)
        layout.addLayout(form)

        warning = _Banner("warning", "Warning: a forgotten passphrase cannot be recovered")
        warning.setObjectName("forgetWarning")
        warning.show_text(
            "There is no reset and no back door: nobody, not even the makers of RagDesk, can open "
            "the vault without it. Write it down and keep it somewhere safe.",
            title="If you forget this passphrase, your data cannot be recovered.",
        )
        self.forget_warning = warning
        layout.addWidget(warning)
        self.understood = QCheckBox("I understand that a forgotten passphrase cannot be recovered")
        self.understood.setAccessibleName("I understand that a forgotten passphrase cannot be recovered")
        self.understood.setToolTip("Required: RagDesk cannot recover a forgotten passphrase")
        layout.addWidget(self.understood)
        layout.addWidget(self.error)
        layout.addWidget(self.busy_row)
        layout.addStretch(1)  # a taller window leaves its room here, not between the rows
        layout.addWidget(self.location)

        self.create_button = self._button_box("lock", "Create vault",
                                              "Create the encrypted vault with this passphrase",
                                              "Close RagDesk without creating a vault")
        layout.addWidget(self.buttons)

        for w in (self.passphrase, self.repeat):
            w.textChanged.connect(self._update)
        self.understood.toggled.connect(self._update)
        self._update()
        self.setMinimumWidth(540)

    def _inputs(self) -> list[QWidget]:
        return [self.passphrase, self.repeat, self.understood, self.create_button, self.quit_button]

    def _update(self) -> None:
        s = passphrase_strength(self.passphrase.text())
        self.meter.setValue(s.score if self.passphrase.text() else 0)
        self.meter.setAccessibleDescription(s.label)
        self.strength_label.setText(f"{s.label} — {s.hint}" if self.passphrase.text() else s.hint)
        repeat = self.repeat.text()
        if not repeat:
            self.match_label.setText("")
        elif repeat == self.passphrase.text():
            self.match_label.setText("✓ The passphrases match.")
        else:
            self.match_label.setText("✗ The passphrases do not match yet.")
        self.create_button.setEnabled(self.problem() is None and not self.busy)

    def problem(self) -> str | None:
        """Why the vault cannot be created yet, or None."""
        text = self.passphrase.text()
        s = passphrase_strength(text)
        if len(text) < MIN_LENGTH:
            return f"The passphrase must have at least {MIN_LENGTH} characters."
        if s.score < MIN_SCORE:
            return f"The passphrase is too easy to guess: {s.hint}"
        if self.repeat.text() != text:
            return "The two passphrases differ."
        if not self.understood.isChecked():
            return "Please confirm that you understand a forgotten passphrase cannot be recovered."
        return None

    def submit(self) -> None:
        if self.busy:
            return
        problem = self.problem()
        if problem:
            self.show_error(problem)
            return
        secret = self.passphrase.text()
        home, kdf = self.home, self._kdf
        self.set_busy(True, "Creating the encrypted vault…")

        def create() -> Store:
            if store_exists(home):  # made meanwhile by another RagDesk: not to be opened as new
                raise VaultExists(f"a vault already exists in {home}")
            return open_store(home, secret, create=True, kdf=kdf)

        self.pool.run(create, "create vault", on_result=self._opened, on_error=self._failed)

    def _failed(self, error: WorkerError) -> None:
        self.set_busy(False)
        self._update()
        self.show_error(f"The vault could not be created: {error.message}")


class UnlockDialog(_VaultDialog):
    """Later starts, and after a lock: the passphrase opens the vault."""

    def __init__(self, home: Path, pool: WorkerPool, note: str | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(home, pool, parent)
        self.setWindowTitle("Unlock — RagDesk")
        self.setObjectName("unlockDialog")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(22, 20, 22, 18)
        layout.setSpacing(14)
        layout.addWidget(_header(
            "Unlock your vault",
            "Enter your passphrase to open your documents and conversations.",
        ))
        self.note = _Banner("lock", "Note")
        self.note.setObjectName("lockNote")
        if note:
            self.note.show_text(note)
        else:
            self.note.hide()
        layout.addWidget(self.note)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        self.passphrase = PassphraseField("Passphrase")
        self.passphrase.setToolTip("The passphrase you chose when you created the vault")
        form.addRow("&Passphrase:", self.passphrase)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.busy_row)
        layout.addStretch(1)  # a taller window leaves its room here, not between the rows
        layout.addWidget(self.location)
        self.unlock_button = self._button_box("unlock", "Unlock", "Open the vault with this passphrase",
                                              "Close RagDesk")
        layout.addWidget(self.buttons)
        self.passphrase.textChanged.connect(
            lambda text: self.unlock_button.setEnabled(bool(text) and not self.busy))
        self.unlock_button.setEnabled(False)
        self.setMinimumWidth(460)
        self.passphrase.setFocus()

    def _inputs(self) -> list[QWidget]:
        return [self.passphrase, self.unlock_button, self.quit_button]

    def sizeHint(self) -> QSize:
        return QSize(480, super().sizeHint().height())

    def submit(self) -> None:
        if self.busy or not self.passphrase.text():
            return
        secret = self.passphrase.text()
        home = self.home
        self.set_busy(True, "Unlocking…")
        self.pool.run(lambda: open_store(home, secret), "unlock",
                      on_result=self._opened, on_error=self._failed)

    def _opened(self, store: Store) -> None:
        self.passphrase.clear()
        super()._opened(store)

    def _failed(self, error: WorkerError) -> None:
        self.set_busy(False)
        self.unlock_button.setEnabled(bool(self.passphrase.text()))
        self.unlock_button.setDefault(True)
        if error.kind == "WrongPassphrase":
            text = "Wrong passphrase. Please try again — nothing in the vault was changed."
        elif error.kind == "VaultInUse":
            text = f"{error.message[:1].upper()}{error.message[1:]}."
        else:
            text = f"The vault could not be opened: {error.message}"
        self.show_error(text)
        self.passphrase.selectAll()
        self.passphrase.setFocus()
