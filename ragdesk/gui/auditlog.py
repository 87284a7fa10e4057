"""File › Audit log…: the vault's tamper-evident audit log, read-only, with its verification state.

The chain is walked on the worker pool (it reads every entry) and the newest entries are listed
with their number, time, event and detail; the verdict says either "intact" with the head to keep
as an anchor (Copy anchor puts `SEQ:HASH` on the clipboard) or names the first entry that was
changed, deleted, inserted or moved. Nothing here writes to the log. Entry text is shown as plain
text in table cells, never as rich text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ragdesk.core.store.chain import when
from ragdesk.gui.workers import WorkerError, WorkerPool

if TYPE_CHECKING:
    from ragdesk.core.records import AuditEvent
    from ragdesk.core.store.base import AuditLog
    from ragdesk.core.store.chain import Verdict

SHOWN = 1000  # newest entries listed; `ragdesk audit export` gives them all


@dataclass(frozen=True)
class AuditView:
    verdict: Verdict
    entries: list[AuditEvent]


def load_audit(store: AuditLog, limit: int = SHOWN) -> AuditView:
    """Runs on a worker: the walk of the whole chain and the newest entries."""
    return AuditView(store.verify_audit(), store.audit_events(limit))


class AuditLogDialog(QDialog):
    """A read-only table of the log and the verdict of its chain."""

    loaded = Signal(bool)  # the verdict arrived: True when the log verifies

    def __init__(self, store: AuditLog, pool: WorkerPool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Audit log")
        self.resize(900, 520)
        self.store, self.pool = store, pool
        self.view: AuditView | None = None
        self.state = QLabel("Verifying the audit log…")
        self.state.setTextFormat(Qt.TextFormat.PlainText)
        self.state.setWordWrap(True)
        self.state.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["#", "Time (UTC)", "Event", "Detail"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.copy_anchor = QPushButton("Copy anchor")
        self.copy_anchor.setToolTip("Copy the head as SEQ:HASH: keep it outside the vault, and check"
                                    " it later with `ragdesk audit verify --anchor SEQ:HASH`")
        self.copy_anchor.setEnabled(False)
        self.copy_anchor.clicked.connect(self._copy_anchor)
        self.refresh = QPushButton("Verify again")
        self.refresh.clicked.connect(self.reload)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(self.copy_anchor)
        row.addWidget(self.refresh)
        row.addStretch(1)
        row.addWidget(buttons)
        layout = QVBoxLayout(self)
        layout.addWidget(self.state)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        self.reload()

    def reload(self) -> None:
        self.refresh.setEnabled(False)
        self.state.setText("Verifying the audit log…")
        store = self.store
        self.pool.run(lambda: load_audit(store), "verify the audit log", on_result=self._show,
                      on_error=self._failed)

    def _show(self, view: AuditView) -> None:
        self.view = view
        verdict = view.verdict
        self.refresh.setEnabled(True)
        self.copy_anchor.setEnabled(verdict.ok and verdict.head is not None)
        if verdict.ok:
            self.state.setText(f"✓ Verified: {verdict.summary()}.")
            self.state.setStyleSheet("")
        else:
            self.state.setText(f"✗ The audit log does not verify: {verdict.summary()}.\n"
                               "It was changed outside RagDesk; keep a copy of the data folder as"
                               " evidence.")
            self.state.setStyleSheet("color: #b00020;")
        self.table.setRowCount(len(view.entries))
        for i, entry in enumerate(view.entries):
            detail = json.dumps(entry.detail, ensure_ascii=False)
            for column, text in enumerate((str(entry.seq), when(entry.at).removesuffix(" UTC"),
                                           entry.event, detail)):
                item = QTableWidgetItem(text)
                item.setToolTip(text if column == 3 else "")
                self.table.setItem(i, column, item)
        self.loaded.emit(verdict.ok)

    def _failed(self, error: WorkerError) -> None:
        self.refresh.setEnabled(True)
        self.state.setText(f"The audit log could not be read: {error.message}")

    def _copy_anchor(self) -> None:
        if self.view is not None and self.view.verdict.head is not None:
            QGuiApplication.clipboard().setText(str(self.view.verdict.head))
