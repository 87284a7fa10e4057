"""The library pane: collections, documents with their status and counts, failures with reasons.

Everything shown comes from the models in gui/models.py; this pane only arranges the views and
turns clicks into requests (add, re-index, remove, preview) for the main window to carry out.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QPoint, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from ragdesk.core.records import INDEXED, Collection, Document
from ragdesk.gui import icons
from ragdesk.gui.models import (
    STATUS_TEXT,
    CollectionListModel,
    DocumentFilter,
    DocumentTableModel,
    RecordRole,
    read_in_part,
)

log = logging.getLogger("ragdesk.gui.library")


TITLE_HEIGHT = 26  # every pane's title row, so the panes line up


def pane_title(text: str) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setBold(True)
    font.setPointSizeF(font.pointSizeF() * 1.1)
    label.setFont(font)
    label.setAccessibleName(text)
    label.setFixedHeight(TITLE_HEIGHT)
    label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
    return label


class PlaceholderTreeView(QTreeView):
    """A tree view that says what to do when it has nothing to show."""

    def __init__(self, empty_text: str, filtered_text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.empty_text = empty_text
        self.filtered_text = filtered_text
        self.source_empty = True

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        model = self.model()
        if model is not None and model.rowCount() > 0:
            return
        painter = QPainter(self.viewport())
        painter.setPen(self.palette().color(self.palette().ColorGroup.Disabled,
                                            self.palette().ColorRole.Text))
        rect = self.viewport().rect().adjusted(24, 24, -24, -24)
        text = self.empty_text if self.source_empty else self.filtered_text
        painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap), text)
        painter.end()


class LibraryPane(QWidget):
    add_files_requested = Signal()
    add_folder_requested = Signal()
    reindex_requested = Signal(list)  # [Document]
    remove_requested = Signal(list)  # [Document]
    preview_requested = Signal(object)  # Document
    collection_changed = Signal(object)  # Collection | None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("libraryPane")
        self.setAccessibleName("Library")
        self.documents = DocumentTableModel(self)
        self.filter = DocumentFilter(self)
        self.filter.setSourceModel(self.documents)
        self.collections = CollectionListModel(self)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 10, 6, 8)
        layout.setSpacing(8)
        layout.addWidget(pane_title("Library"))

        self.collection_view = QListView()
        self.collection_view.setModel(self.collections)
        self.collection_view.setAccessibleName("Collections")
        self.collection_view.setToolTip(
            "Collections: choose one to see its documents and to ask only about it")
        self.collection_view.setMaximumHeight(92)
        self.collection_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.collection_view.selectionModel().currentChanged.connect(self._collection_changed)
        layout.addWidget(self.collection_view)

        filters = QHBoxLayout()
        filters.setSpacing(6)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter documents (Ctrl+F)")
        self.search.setAccessibleName("Filter documents by title or path")
        self.search.setToolTip("Show only documents whose title or path contains this text")
        self.search.setClearButtonEnabled(True)
        self.search.addAction(icons.icon("search"), QLineEdit.ActionPosition.LeadingPosition)
        self.search.textChanged.connect(self._filter_text)
        self.status_filter = QComboBox()
        self.status_filter.addItem("All", DocumentFilter.ALL)
        self.status_filter.addItem("Indexed", DocumentFilter.INDEXED_ONLY)
        self.status_filter.addItem(icons.icon("status-failed"), "Problems", DocumentFilter.PROBLEMS)
        self.status_filter.setAccessibleName("Show documents with this status")
        self.status_filter.setToolTip(
            "Show all documents, only indexed ones, or only those that could not be indexed")
        self.status_filter.currentIndexChanged.connect(
            lambda _: self.filter.set_status(self.status_filter.currentData()))
        filters.addWidget(self.search, 1)
        filters.addWidget(self.status_filter)
        layout.addLayout(filters)

        self.view = PlaceholderTreeView(
            "No documents yet.\n\nDrop files or folders anywhere on this window, or use "
            "Add files… (Ctrl+O).",
            "No document matches the filter.",
        )
        self.view.setModel(self.filter)
        self.view.setAccessibleName("Documents")
        self.view.setToolTip("Your documents. Double-click one to preview it; right-click for more")
        self.view.setRootIsDecorated(False)
        self.view.setUniformRowHeights(True)
        self.view.setAlternatingRowColors(True)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(DocumentTableModel.TITLE, Qt.SortOrder.AscendingOrder)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.doubleClicked.connect(self._activated)
        header = self.view.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(DocumentTableModel.TITLE, QHeaderView.ResizeMode.Stretch)
        # File and status (with a failure's reason) are cut at a fixed width the user can drag;
        # the whole text is in the tooltip and the details box below.
        for col, width in ((DocumentTableModel.FILE, 90), (DocumentTableModel.STATUS, 96)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(col, width)
        header.setSectionResizeMode(DocumentTableModel.PAGES, QHeaderView.ResizeMode.ResizeToContents)
        # The passages count is in the details box; its column would take the title's room.
        self.view.setColumnHidden(DocumentTableModel.CHUNKS, True)
        self.view.selectionModel().selectionChanged.connect(lambda *_: self._selection_changed())
        # A reset or filtered-out row leaves the selection without a selectionChanged signal:
        # the details box must not go on showing a row that is no longer selected.
        for signal in (self.filter.modelReset, self.filter.rowsRemoved, self.filter.layoutChanged):
            signal.connect(lambda *_: self._selection_changed())
        layout.addWidget(self.view, 1)

        self.details = QLabel()
        self.details.setObjectName("documentDetails")
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.PlainText)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setAccessibleName("Selected document")
        self.details.setFrameShape(QFrame.Shape.StyledPanel)
        self.details.setMargin(6)
        self.details.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.details.hide()
        layout.addWidget(self.details)

        buttons = QHBoxLayout()
        buttons.setSpacing(6)
        self.add_files_button = self._button("add-file", "Add files…", "Add files to the library (Ctrl+O)")
        self.add_files_button.clicked.connect(self.add_files_requested)
        self.add_folder_button = self._button(
            "add-folder", "Add folder…", "Add a folder; it is watched and kept up to date (Ctrl+Shift+O)")
        self.add_folder_button.clicked.connect(self.add_folder_requested)
        self.reindex_button = self._tool(
            "reindex", "Re-index", "Read the selected documents again: picks up changes and retries failures")
        self.reindex_button.clicked.connect(lambda: self._emit_selected(self.reindex_requested))
        self.remove_button = self._tool("remove", "Remove",
                                        "Remove the selected documents from the vault (Delete)")
        self.remove_button.clicked.connect(lambda: self._emit_selected(self.remove_requested))
        buttons.addWidget(self.add_files_button)
        buttons.addWidget(self.add_folder_button)
        buttons.addStretch(1)
        buttons.addWidget(self.reindex_button)
        buttons.addWidget(self.remove_button)
        layout.addLayout(buttons)

        remove = QAction("Remove", self.view)
        remove.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
        remove.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        remove.triggered.connect(lambda: self._emit_selected(self.remove_requested))
        self.view.addAction(remove)
        self._selection_changed()

    # --- construction helpers -------------------------------------------------------------

    @staticmethod
    def _button(icon_name: str, text: str, tip: str) -> QPushButton:
        button = QPushButton(icons.icon(icon_name), text)
        button.setToolTip(tip)
        button.setAccessibleName(text.rstrip("…"))
        return button

    @staticmethod
    def _tool(icon_name: str, text: str, tip: str) -> QToolButton:
        button = QToolButton()
        button.setIcon(icons.icon(icon_name))
        button.setText(text)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        button.setToolTip(tip)
        button.setAccessibleName(text)
        button.setAutoRaise(True)
        return button

    # --- content ----------------------------------------------------------------------------

    def set_library(self, collections: list[Collection], documents: list[Document]) -> None:
        current = self.current_collection()
        selected = [d.id for d in self.selected_documents()]
        self.documents.set_documents(documents)
        self.collections.set_collections(collections, documents)
        row = self.collections.row_of(current.id if current else None)
        self.collection_view.selectionModel().setCurrentIndex(
            self.collections.index(row), QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self._reselect(selected)
        self._refresh_placeholder()

    def _reselect(self, ids: list[int]) -> None:
        """Select again the documents that were selected before a reload, if still listed."""
        wanted = set(ids)
        flags = QItemSelectionModel.SelectionFlag
        first = True
        for row in range(self.filter.rowCount()) if wanted else ():
            index = self.filter.index(row, 0)
            doc = self.filter.data(index, RecordRole)
            if doc is not None and doc.id in wanted:
                how = (flags.ClearAndSelect if first else flags.Select) | flags.Rows
                self.view.selectionModel().select(index, how)
                first = False
        self._selection_changed()

    def upsert(self, docs: list[Document]) -> None:
        for doc in docs:
            self.collections.replace_document(self.documents.document(doc.id), doc)
            self.documents.upsert(doc)
        self._refresh_placeholder()
        self._selection_changed()

    def remove_ids(self, ids: list[int]) -> None:
        for document_id in ids:
            self.collections.replace_document(self.documents.document(document_id), None)
            self.documents.remove(document_id)
        self._refresh_placeholder()
        self._selection_changed()

    def clear(self) -> None:
        self.documents.clear()
        self.collections.clear()
        self.search.clear()
        self.details.clear()
        self.details.hide()
        self._refresh_placeholder()

    def _refresh_placeholder(self) -> None:
        self.view.source_empty = self.documents.rowCount() == 0
        self.view.viewport().update()

    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def current_collection(self) -> Collection | None:
        index = self.collection_view.currentIndex()
        return self.collections.data(index, RecordRole) if index.isValid() else None

    def selected_documents(self) -> list[Document]:
        rows = self.view.selectionModel().selectedRows(DocumentTableModel.TITLE)
        return [doc for i in rows if (doc := self.filter.data(i, RecordRole)) is not None]

    def select_document(self, document_id: int) -> None:
        for row in range(self.filter.rowCount()):
            index = self.filter.index(row, 0)
            doc = self.filter.data(index, RecordRole)
            if doc is not None and doc.id == document_id:
                flags = QItemSelectionModel.SelectionFlag
                self.view.selectionModel().setCurrentIndex(index, flags.ClearAndSelect | flags.Rows)
                self.view.scrollTo(index)
                return

    # --- reactions ------------------------------------------------------------------------

    def _filter_text(self, text: str) -> None:
        self.filter.set_text(text)
        self.view.viewport().update()

    def _collection_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        coll = self.collections.data(current, RecordRole) if current.isValid() else None
        self.filter.set_collection(coll.id if coll else None)
        self.collection_changed.emit(coll)

    def _selection_changed(self) -> None:
        docs = self.selected_documents()
        self.reindex_button.setEnabled(bool(docs))
        self.remove_button.setEnabled(bool(docs))
        if len(docs) != 1:
            self.details.hide()
            return
        doc = docs[0]
        lines = [doc.title, doc.path]
        if doc.status == INDEXED:
            lines.append(f"{doc.pages} pages · {doc.chunks} passages · {doc.format.upper()}")
            lines += read_in_part(doc)
        else:
            lines.append(f"{STATUS_TEXT.get(doc.status, doc.status)}: {doc.error or 'no reason recorded'}")
        self.details.setText("\n".join(lines))
        self.details.show()

    def _activated(self, index: QModelIndex) -> None:
        doc = self.filter.data(index, RecordRole)
        if doc is not None and doc.status == INDEXED:
            self.preview_requested.emit(doc)

    def _emit_selected(self, signal: Any) -> None:
        docs = self.selected_documents()
        if docs:
            signal.emit(docs)

    def _context_menu(self, pos: QPoint) -> None:
        docs = self.selected_documents()
        if not docs:
            return
        menu = QMenu(self)
        if len(docs) == 1 and docs[0].status == INDEXED:
            menu.addAction(icons.icon("document"), "Preview", lambda: self.preview_requested.emit(docs[0]))
        menu.addAction(icons.icon("reindex"), "Re-index", lambda: self.reindex_requested.emit(docs))
        menu.addAction(icons.icon("remove"), "Remove from the vault",
                       lambda: self.remove_requested.emit(docs))
        menu.exec(self.view.viewport().mapToGlobal(pos))
