"""File › Share on the network…: serve the unlocked vault to colleagues (the LAN server), show
the address and the certificate's SHA-256 fingerprint they compare before trusting it, and make
and revoke their client tokens.

The GUI does not import the server (the two front ends are independent layers): whoever starts
the GUI passes in a `ServerFactory` (cli/desktop.py passes one over `ragdesk.server`), and this
dialog drives what it returns through the `LanServer` protocol. Without a factory there is no
sharing menu entry.

Starting, stopping and every token change run on the worker pool; the server itself runs on its
own thread until stopped, and is stopped before the vault locks (`shutdown`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ragdesk.gui.workers import WorkerError, WorkerPool

if TYPE_CHECKING:
    from ragdesk.app import Services

LOCAL_ONLY = "127.0.0.1"
EVERY_INTERFACE = "0.0.0.0"
DEFAULT_PORT = 8443


class TokenManager(Protocol):
    def create(self, name: str, collections: Sequence[str] | None = None,
               admin: bool = False) -> tuple[Any, str]: ...
    def list(self) -> list[Any]: ...
    def revoke(self, name: str) -> bool: ...


class LanServer(Protocol):
    """What the dialog needs of a server (ragdesk.server.runner.ServerHandle has it)."""

    @property
    def tokens(self) -> TokenManager: ...
    @property
    def identity(self) -> Any: ...  # .names: the host names and addresses the certificate is for
    @property
    def url(self) -> str: ...
    @property
    def fingerprint(self) -> str | None: ...
    @property
    def running(self) -> bool: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


ServerFactory = Callable[["Services", str, int], LanServer]  # (services, host, port) -> a server


class SharingDialog(QDialog):
    """See the module docstring."""

    sharing_changed = Signal(bool)  # True once serving, False once stopped
    tokens_changed = Signal()

    def __init__(self, services: Services, pool: WorkerPool, factory: ServerFactory,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sharingDialog")
        self.setWindowTitle("Share on the network")
        self.services = services
        self.pool = pool
        self.factory = factory
        self.server: LanServer | None = None
        self._busy = False
        self._closed = False  # shut down for a lock: a start still under way stops at once

        self.scope = QComboBox()
        self.scope.addItem("This computer only", LOCAL_ONLY)
        self.scope.addItem("The local network (every interface)", EVERY_INTERFACE)
        self.scope.setAccessibleName("Share with")
        self.scope.setToolTip("Who can connect: programs on this computer, or colleagues on the network")
        self.port = QSpinBox()
        self.port.setRange(0, 65535)
        self.port.setValue(DEFAULT_PORT)
        self.port.setSpecialValueText("any free port")
        self.port.setAccessibleName("Port")
        self.port.setToolTip("The port to listen on (0: any free port)")
        self.toggle = QPushButton("Start sharing")
        self.toggle.setObjectName("shareToggle")
        self.toggle.setToolTip("Start or stop serving this vault (HTTPS, token sign-in)")
        self.toggle.clicked.connect(self._toggle)
        self.status = QLabel("Not shared.")
        self.status.setObjectName("shareStatus")
        self.status.setWordWrap(True)
        self.address = QLineEdit()
        self.address.setReadOnly(True)
        self.address.setAccessibleName("Address")
        self.address.setToolTip("The address colleagues open in a browser or give their client")
        self.fingerprint = QLineEdit()
        self.fingerprint.setObjectName("shareFingerprint")
        self.fingerprint.setReadOnly(True)
        self.fingerprint.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.fingerprint.setAccessibleName("Certificate fingerprint (SHA-256)")
        self.fingerprint.setToolTip("When a browser or client asks whether to trust this server's "
                                    "certificate, its SHA-256 fingerprint must be exactly this")
        self.copy_fingerprint = QPushButton("Copy")
        self.copy_fingerprint.setToolTip("Copy the fingerprint, to send it to colleagues")
        self.copy_fingerprint.clicked.connect(
            lambda: QGuiApplication.clipboard().setText(self.fingerprint.text()))
        self.names = QLabel()
        self.names.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Share &with:", self.scope)
        form.addRow("&Port:", self.port)
        fp_row = QHBoxLayout()
        fp_row.addWidget(self.fingerprint, 1)
        fp_row.addWidget(self.copy_fingerprint)
        form.addRow("Address:", self.address)
        form.addRow("Certificate SHA-256:", fp_row)
        form.addRow("Valid for:", self.names)

        tokens_box = QGroupBox("Client tokens")
        self.token_list = QListWidget()
        self.token_list.setAccessibleName("Client tokens")
        self.token_name = QLineEdit()
        self.token_name.setPlaceholderText("name, e.g. ana")
        self.token_name.setAccessibleName("New token's name")
        self.token_admin = QCheckBox("May add and remove documents")
        self.token_admin.setToolTip("An admin token; otherwise the token may only ask and search")
        self.create_token = QPushButton("Create token")
        self.create_token.setToolTip("Make a token for a colleague; its secret is shown once")
        self.create_token.clicked.connect(self._create_token)
        self.revoke_token = QPushButton("Revoke")
        self.revoke_token.setToolTip("Refuse the selected token from its next request on")
        self.revoke_token.clicked.connect(self._revoke_token)
        self.secret = QLineEdit()
        self.secret.setObjectName("tokenSecret")
        self.secret.setReadOnly(True)
        self.secret.setAccessibleName("New token's secret")
        self.secret.setToolTip("Give this to the colleague now: it is shown only this once")
        self.secret_note = QLabel()
        self.secret_note.setWordWrap(True)
        new_row = QHBoxLayout()
        new_row.addWidget(self.token_name, 1)
        new_row.addWidget(self.token_admin)
        new_row.addWidget(self.create_token)
        tokens_layout = QVBoxLayout(tokens_box)
        tokens_layout.addWidget(self.token_list)
        tokens_layout.addWidget(self.revoke_token)
        tokens_layout.addLayout(new_row)
        tokens_layout.addWidget(self.secret)
        tokens_layout.addWidget(self.secret_note)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.toggle)
        layout.addWidget(self.status)
        layout.addWidget(tokens_box, 1)
        layout.addWidget(buttons)
        self._show_state()
        self._load_tokens()

    # --- state ----------------------------------------------------------------------------------

    @property
    def sharing(self) -> bool:
        return self.server is not None and self.server.running

    def _show_state(self, status: str | None = None) -> None:
        sharing = self.sharing
        self.toggle.setText("Stop sharing" if sharing else "Start sharing")
        self.toggle.setEnabled(not self._busy)
        self.scope.setEnabled(not sharing and not self._busy)
        self.port.setEnabled(not sharing and not self._busy)
        server = self.server if sharing else None
        self.address.setText(server.url if server is not None else "")
        self.fingerprint.setText((server.fingerprint or "") if server is not None else "")
        self.copy_fingerprint.setEnabled(bool(self.fingerprint.text()))
        names = getattr(getattr(server, "identity", None), "names", None) or []
        self.names.setText(", ".join(names))
        if status is not None:
            self.status.setText(status)
        elif server is not None:
            self.status.setText(f"Shared at {server.url}. Colleagues compare the fingerprint below with "
                                "the one their browser or client shows before they trust it.")
        else:
            self.status.setText("Not shared.")

    # --- start and stop ---------------------------------------------------------------------------

    def _toggle(self) -> None:
        if self.sharing:
            self._stop()
        else:
            self._start()

    def _start(self) -> None:
        server = self.factory(self.services, str(self.scope.currentData()), self.port.value())
        self._busy = True
        self._show_state("Starting…")

        def started(_: object) -> None:
            if self._closed:  # the vault is locking (this runs before it closes)
                server.stop()
                return
            self._busy = False
            self.server = server
            self._show_state()
            self.sharing_changed.emit(True)

        self.pool.run(server.start, "start sharing", on_result=started, on_error=self._failed)

    def _stop(self) -> None:
        server, self.server = self.server, None
        if server is None:
            return
        self._busy = True
        self._show_state("Stopping…")

        def stopped(_: object) -> None:
            self._busy = False
            self._show_state()
            self.sharing_changed.emit(False)

        self.pool.run(server.stop, "stop sharing", on_result=stopped, on_error=self._failed)

    def _failed(self, error: WorkerError) -> None:
        self._busy = False
        self._show_state(f"Could not share: {error.message}")

    def shutdown(self) -> None:
        """Stop serving now (the vault is about to lock: the server must leave it first)."""
        self._closed = True
        server, self.server = self.server, None
        if server is not None:
            server.stop()
            self.sharing_changed.emit(False)
        self._show_state()

    # --- tokens -----------------------------------------------------------------------------------

    def _registry(self) -> TokenManager:
        if self.server is not None:
            return self.server.tokens  # (the running server sees its changes at once)
        return self.factory(self.services, LOCAL_ONLY, 0).tokens

    def _load_tokens(self) -> None:
        registry = self._registry()
        self.pool.run(registry.list, "list tokens", on_result=self._show_tokens, on_error=self._failed)

    def _show_tokens(self, tokens: list[Any]) -> None:
        self.token_list.clear()
        for t in tokens:
            scope = "admin" if t.admin else "read-only"
            where = ", ".join(t.collections) if t.collections is not None else "all collections"
            self.token_list.addItem(f"{t.name} — {scope}, {where}")
            self.token_list.item(self.token_list.count() - 1).setData(Qt.ItemDataRole.UserRole, t.name)
        self.revoke_token.setEnabled(self.token_list.count() > 0)
        self.tokens_changed.emit()

    def _create_token(self) -> None:
        name = self.token_name.text().strip()
        admin = self.token_admin.isChecked()
        registry = self._registry()

        def created(result: tuple[Any, str]) -> None:
            token, secret = result
            self.secret.setText(secret)
            self.secret_note.setText(f"Token {token.name!r} created. Give its secret to the colleague "
                                     "now: it is shown only this once.")
            self.token_name.clear()
            self._load_tokens()

        def refused(error: WorkerError) -> None:
            self.secret.clear()
            self.secret_note.setText(f"No token created: {error.message}")

        self.pool.run(lambda: registry.create(name, None, admin), "create a token",
                      on_result=created, on_error=refused)

    def _revoke_token(self) -> None:
        item = self.token_list.currentItem()
        if item is None:
            return
        name = str(item.data(Qt.ItemDataRole.UserRole))
        registry = self._registry()
        self.pool.run(lambda: registry.revoke(name), "revoke a token",
                      on_result=lambda _: self._load_tokens(), on_error=self._failed)
