"""The settings dialog: Ollama host and models, embedder, auto-lock, chunking, answer marks.

Everything here is kept in the vault (encrypted) through `Store.set_setting`; only what is needed
before unlocking (window geometry, pane sizes) lives in QSettings. The models offered come from
Ollama's /api/tags, fetched on a worker thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ragdesk.core.ollama import DEFAULT_OLLAMA_HOST, normalise_host
from ragdesk.core.store.chain import RETENTION_SETTING
from ragdesk.gui import icons
from ragdesk.gui.idle import DEFAULT_AUTOLOCK_MINUTES
from ragdesk.gui.workers import (
    OllamaStatus,
    WorkerError,
    WorkerPool,
    is_embedding_model,
)

log = logging.getLogger("ragdesk.gui.settings")

DEFAULT_CHUNK_TOKENS = 256
AUTOMATIC = "Automatic (the first installed chat model)"


def _days(value: Any) -> int | None:
    """A retention setting as the dialog shows it (the CLI may have stored a fraction)."""
    return max(1, round(float(value))) if value is not None else None


@dataclass(frozen=True)
class SettingsValues:
    """The settings the dialog edits, as stored in the vault."""

    ollama_host: str | None = None
    chat_model: str | None = None
    num_ctx: int | None = None
    embedder: dict[str, Any] | None = None
    autolock_minutes: int = DEFAULT_AUTOLOCK_MINUTES
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS
    grounding_marks: bool = True  # mark sentences their sources do not support (the check always runs)
    audit_retention_days: int | None = None  # None: keep every audit entry (core/audit.py)

    @classmethod
    def load(cls, store: Any) -> SettingsValues:
        return cls(
            ollama_host=store.get_setting("ollama_host"),
            chat_model=store.get_setting("chat_model"),
            num_ctx=store.get_setting("num_ctx"),
            embedder=store.get_setting("embedder", {"kind": "builtin"}),
            autolock_minutes=int(store.get_setting("autolock_minutes", DEFAULT_AUTOLOCK_MINUTES)),
            chunk_tokens=int(store.get_setting("chunk_tokens", DEFAULT_CHUNK_TOKENS)),
            grounding_marks=bool(store.get_setting("grounding_marks", True)),
            audit_retention_days=_days(store.get_setting(RETENTION_SETTING)),
        )

    def save(self, store: Any) -> None:
        store.set_setting("ollama_host", self.ollama_host)
        store.set_setting("chat_model", self.chat_model)
        store.set_setting("num_ctx", self.num_ctx)
        store.set_setting("embedder", self.embedder or {"kind": "builtin"})
        store.set_setting("autolock_minutes", self.autolock_minutes)
        store.set_setting("chunk_tokens", self.chunk_tokens)
        store.set_setting("grounding_marks", self.grounding_marks)
        store.set_setting(RETENTION_SETTING, self.audit_retention_days)


class SettingsDialog(QDialog):
    saved = Signal(object)  # SettingsValues
    check_requested = Signal(str)  # host

    def __init__(self, values: SettingsValues, vector_space: str | None, pool: WorkerPool,
                 probe: Any, env_host: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Settings — RagDesk")
        self.setWindowIcon(icons.icon("settings"))
        self.values = values
        self.pool = pool
        self._probe = probe  # host -> OllamaStatus, run on a worker
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 16, 18, 14)
        layout.setSpacing(12)

        # Ollama ------------------------------------------------------------------------
        ollama = QGroupBox("Ollama (answers)")
        form = QFormLayout(ollama)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        host_row = QHBoxLayout()
        self.host = QLineEdit(values.ollama_host or "")
        self.host.setPlaceholderText(DEFAULT_OLLAMA_HOST)
        self.host.setAccessibleName("Ollama address")
        self.host.setToolTip("Where Ollama listens; RagDesk connects to nothing else")
        self.check_button = QPushButton(icons.icon("sync"), "Check")
        self.check_button.setAccessibleName("Check the connection and list the models")
        self.check_button.setToolTip("Connect to Ollama at this address and list its models")
        self.check_button.clicked.connect(self.check)
        host_row.addWidget(self.host, 1)
        host_row.addWidget(self.check_button)
        host_label = QLabel("&Address:")
        host_label.setBuddy(self.host)
        form.addRow(host_label, host_row)
        self.env_note = QLabel()
        self.env_note.setWordWrap(True)
        self.env_note.setTextFormat(Qt.TextFormat.PlainText)
        if env_host:
            self.env_note.setText(f"OLLAMA_HOST is set to {env_host}; it takes precedence over this address.")
        else:
            self.env_note.hide()
        form.addRow("", self.env_note)
        self.status = QLabel("Not checked yet.")
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setWordWrap(True)
        self.status.setMinimumHeight(self.status.fontMetrics().lineSpacing() * 2 + 4)
        self.status.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.status.setAccessibleName("Connection status")
        form.addRow("Status:", self.status)
        self.chat_model = QComboBox()
        self.chat_model.setEditable(True)
        self.chat_model.setAccessibleName("Chat model")
        self.chat_model.setToolTip("The Ollama model that writes answers")
        self.chat_model.addItem(AUTOMATIC)
        if values.chat_model:
            self.chat_model.addItem(values.chat_model)
            self.chat_model.setCurrentText(values.chat_model)
        form.addRow("&Chat model:", self.chat_model)
        self.num_ctx = QSpinBox()
        self.num_ctx.setRange(0, 262144)
        self.num_ctx.setSingleStep(1024)
        self.num_ctx.setSpecialValueText("Automatic")
        self.num_ctx.setSuffix(" tokens")
        self.num_ctx.setValue(values.num_ctx or 0)
        self.num_ctx.setAccessibleName("Context window")
        self.num_ctx.setToolTip("How much text the model reads at once; Automatic uses the model's own "
                                "limit, up to 8192 tokens (more needs more memory)")
        form.addRow("Conte&xt window:", self.num_ctx)
        layout.addWidget(ollama)

        # Embeddings ----------------------------------------------------------------------
        embed = QGroupBox("Search by meaning (embeddings)")
        embed_layout = QVBoxLayout(embed)
        self.builtin = QRadioButton("Built-in embedder (offline, all-MiniLM-L6-v2) — recommended")
        self.builtin.setAccessibleName("Use the built-in embedder")
        self.builtin.setToolTip(
            "Embeds on this computer with the model shipped with RagDesk; needs nothing else")
        self.ollama_embed = QRadioButton("An Ollama embedding model:")
        self.ollama_embed.setAccessibleName("Use an Ollama embedding model")
        self.ollama_embed.setToolTip(
            "Embeds with a model served by Ollama (it must be running while indexing and asking)")
        group = QButtonGroup(self)
        group.addButton(self.builtin)
        group.addButton(self.ollama_embed)
        self.embed_model = QComboBox()
        self.embed_model.setEditable(True)
        self.embed_model.setAccessibleName("Ollama embedding model")
        self.embed_model.setToolTip("An embedding model installed in Ollama, e.g. nomic-embed-text")
        choice = values.embedder or {"kind": "builtin"}
        if choice.get("kind") == "ollama":
            self.ollama_embed.setChecked(True)
            self.embed_model.addItem(str(choice.get("model", "")))
        else:
            self.builtin.setChecked(True)
        row = QHBoxLayout()
        row.addWidget(self.ollama_embed)
        row.addWidget(self.embed_model, 1)
        embed_layout.addWidget(self.builtin)
        embed_layout.addLayout(row)
        self.embed_note = QLabel()
        self.embed_note.setWordWrap(True)
        self.embed_note.setTextFormat(Qt.TextFormat.PlainText)
        self.embed_note.setAccessibleName("About changing the embedder")
        embed_layout.addWidget(self.embed_note)
        if vector_space:
            self.embed_note.setText(
                f"This vault's documents were indexed with {vector_space}. The embedder can only "
                "be changed while the vault holds no indexed documents.")
            for w in (self.builtin, self.ollama_embed, self.embed_model):
                w.setEnabled(False)
        else:
            self.embed_note.setText("Chosen once: documents are indexed with this embedder.")
        self.builtin.toggled.connect(lambda on: self.embed_model.setEnabled(not on and not vector_space))
        self.embed_model.setEnabled(self.ollama_embed.isChecked() and not vector_space)
        layout.addWidget(embed)

        # Security and indexing -------------------------------------------------------
        other = QGroupBox("Security and indexing")
        other_form = QFormLayout(other)
        self.autolock = QSpinBox()
        self.autolock.setRange(0, 24 * 60)
        self.autolock.setSpecialValueText("Never")
        self.autolock.setSuffix(" minutes")
        self.autolock.setValue(values.autolock_minutes)
        self.autolock.setAccessibleName("Lock after this many idle minutes")
        self.autolock.setToolTip("Lock the vault after this long without keyboard or mouse activity")
        other_form.addRow("&Lock when idle for:", self.autolock)
        self.chunk_tokens = QSpinBox()
        self.chunk_tokens.setRange(64, 1024)
        self.chunk_tokens.setSingleStep(32)
        self.chunk_tokens.setSuffix(" tokens")
        self.chunk_tokens.setValue(values.chunk_tokens)
        self.chunk_tokens.setAccessibleName("Passage size")
        self.chunk_tokens.setToolTip(
            "How long each indexed passage is; applies to documents indexed from now on")
        other_form.addRow("&Passage size:", self.chunk_tokens)
        self.audit_retention = QSpinBox()
        self.audit_retention.setRange(0, 100 * 365)
        self.audit_retention.setSpecialValueText("Forever")
        self.audit_retention.setSuffix(" days")
        self.audit_retention.setValue(values.audit_retention_days or 0)
        self.audit_retention.setAccessibleName("Keep audit log entries for this many days")
        self.audit_retention.setToolTip(
            "Older entries are removed when the vault is opened; a checkpoint entry keeps the "
            "log's hash chain verifiable (File › Audit log…)")
        other_form.addRow("&Keep audit entries:", self.audit_retention)
        layout.addWidget(other)

        # Answers --------------------------------------------------------------------------
        answers = QGroupBox("Answers")
        answers_layout = QVBoxLayout(answers)
        self.grounding_marks = QCheckBox("&Mark sentences that their sources do not support")
        self.grounding_marks.setChecked(values.grounding_marks)
        self.grounding_marks.setAccessibleName("Mark unsupported sentences")
        self.grounding_marks.setToolTip(
            "Each sentence of an answer is checked against the passages it cites; unsupported or "
            "uncited ones are underlined with dots, with the reason in their tooltip. The check "
            "always runs and its count stays under each answer; this only shows or hides the marks.")
        answers_layout.addWidget(self.grounding_marks)
        layout.addWidget(answers)

        for box in (ollama, embed, other, answers):
            box.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        layout.addStretch(1)
        standard = QDialogButtonBox.StandardButton
        buttons = QDialogButtonBox(standard.Save | standard.Cancel)
        buttons.button(standard.Save).setAccessibleName("Save settings")
        buttons.button(standard.Save).setToolTip("Keep these settings in the vault")
        buttons.button(standard.Cancel).setAccessibleName("Cancel")
        buttons.accepted.connect(self._save)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.setMinimumWidth(560)

    # --- Ollama models --------------------------------------------------------------------

    def current_host(self) -> str:
        return self.host.text().strip() or DEFAULT_OLLAMA_HOST

    def check(self) -> None:
        host = normalise_host(self.current_host())
        self.check_button.setEnabled(False)
        self.status.setText(f"Connecting to {host}…")
        self.pool.run(lambda: self._probe(host), "check ollama",
                      on_result=self.show_status, on_error=self._failed)

    def _failed(self, error: WorkerError) -> None:
        self.check_button.setEnabled(True)
        self.status.setText(error.message)

    def show_status(self, status: OllamaStatus) -> None:
        self.check_button.setEnabled(True)
        if not status.reachable:
            self.status.setText(f"✗ {status.message}. {status.remedy or ''}".strip())
            return
        self.status.setText(
            f"✓ Ollama {status.version} answers at {status.host} ({len(status.models)} models)")
        current_chat = self.chat_model.currentText()
        current_embed = self.embed_model.currentText()
        self.chat_model.clear()
        self.chat_model.addItem(AUTOMATIC)
        for name in status.models:
            if not is_embedding_model(name):
                self.chat_model.addItem(name)
        self.chat_model.setCurrentText(current_chat or AUTOMATIC)
        self.embed_model.clear()
        for name in sorted(status.models, key=lambda n: not is_embedding_model(n)):
            self.embed_model.addItem(name)
        if current_embed:
            self.embed_model.setCurrentText(current_embed)

    # --- saving -------------------------------------------------------------------------

    def result_values(self) -> SettingsValues:
        chat = self.chat_model.currentText().strip()
        embedder: dict[str, Any] = {"kind": "builtin"}
        if self.ollama_embed.isChecked() and self.embed_model.currentText().strip():
            embedder = {"kind": "ollama", "model": self.embed_model.currentText().strip()}
        return SettingsValues(
            ollama_host=self.host.text().strip() or None,
            chat_model=None if chat in ("", AUTOMATIC) else chat,
            num_ctx=self.num_ctx.value() or None,
            embedder=embedder,
            autolock_minutes=self.autolock.value(),
            chunk_tokens=self.chunk_tokens.value(),
            grounding_marks=self.grounding_marks.isChecked(),
            audit_retention_days=self.audit_retention.value() or None,
        )

    def _save(self) -> None:
        self.saved.emit(self.result_values())
        self.accept()
