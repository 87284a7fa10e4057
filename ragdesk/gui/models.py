"""Qt item models over core records: documents, collections, conversations and sources.

The views never hold records themselves; they show these models, so tens of thousands of
documents scroll smoothly and a lock clears every view by clearing its model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)

from ragdesk.core.records import (
    FAILED,
    INDEXED,
    UNSUPPORTED,
    Collection,
    Conversation,
    Document,
    Hit,
)
from ragdesk.core.units import format_bytes
from ragdesk.gui import icons
from ragdesk.gui.render import tooltip

log = logging.getLogger("ragdesk.gui.models")

RecordRole = Qt.ItemDataRole.UserRole + 1
SortRole = Qt.ItemDataRole.UserRole + 2
StatusRole = Qt.ItemDataRole.UserRole + 3
CollectionRole = Qt.ItemDataRole.UserRole + 4

_Index = QModelIndex | QPersistentModelIndex
_ROOT = QModelIndex()  # the invisible root: the parent of every row of a flat model

STATUS_TEXT = {INDEXED: "Indexed", FAILED: "Failed", UNSUPPORTED: "Not supported"}
STATUS_ICON = {INDEXED: "status-indexed", FAILED: "status-failed", UNSUPPORTED: "status-unsupported"}


def file_name(doc: Document) -> str:
    """The document's file name (the last part of its path, whichever separator it uses)."""
    return doc.path.replace("\\", "/").rsplit("/", 1)[-1]


class DocumentTableModel(QAbstractTableModel):
    """Documents with their status, page and chunk counts, and the reason a file failed."""

    TITLE, FILE, STATUS, PAGES, CHUNKS = range(5)
    HEADERS = ("Title", "File", "Status", "Pages", "Chunks")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._docs: list[Document] = []
        self._row_of: dict[int, int] = {}
        self._by_status: dict[str, int] = {}  # documents per status, kept as rows come and go
        self._icons = {status: icons.icon(name) for status, name in STATUS_ICON.items()}

    # --- content ------------------------------------------------------------------------------

    def set_documents(self, docs: Sequence[Document]) -> None:
        self.beginResetModel()
        self._docs = list(docs)
        self._row_of = {d.id: i for i, d in enumerate(self._docs)}
        self._by_status = {}
        for d in self._docs:
            self._count(d, 1)
        self.endResetModel()

    def _count(self, doc: Document, n: int) -> None:
        self._by_status[doc.status] = self._by_status.get(doc.status, 0) + n

    def count_status(self, statuses: Sequence[str]) -> int:
        """How many documents have one of these statuses."""
        return sum(self._by_status.get(s, 0) for s in statuses)

    def upsert(self, doc: Document) -> None:
        row = self._row_of.get(doc.id)
        self._count(doc, 1)
        if row is not None:
            self._count(self._docs[row], -1)
            self._docs[row] = doc
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.HEADERS) - 1))
            return
        row = len(self._docs)
        self.beginInsertRows(QModelIndex(), row, row)
        self._docs.append(doc)
        self._row_of[doc.id] = row
        self.endInsertRows()

    def remove(self, document_id: int) -> None:
        row = self._row_of.get(document_id)
        if row is None:
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        self._count(self._docs[row], -1)
        del self._docs[row]
        self._row_of = {d.id: i for i, d in enumerate(self._docs)}
        self.endRemoveRows()

    def clear(self) -> None:
        self.set_documents([])

    def documents(self) -> list[Document]:
        return list(self._docs)

    def document(self, document_id: int) -> Document | None:
        row = self._row_of.get(document_id)
        return self._docs[row] if row is not None else None

    # --- Qt -----------------------------------------------------------------------------------

    def rowCount(self, parent: _Index = _ROOT) -> int:
        return 0 if parent.isValid() else len(self._docs)

    def columnCount(self, parent: _Index = _ROOT) -> int:
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.TextAlignmentRole \
                and section in (self.PAGES, self.CHUNKS):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._docs):
            return None
        doc = self._docs[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == self.TITLE:
                return doc.title
            if col == self.FILE:
                return file_name(doc)
            if col == self.STATUS:  # a failure's reason inline, not only in the tooltip
                status = STATUS_TEXT.get(doc.status, doc.status.capitalize())
                if doc.status == INDEXED:
                    return f"{status} (read in part)" if read_in_part(doc) else status
                return f"{status}: {doc.error}" if doc.error else status
            if col == self.PAGES:
                return doc.pages if doc.status == INDEXED else "–"
            if col == self.CHUNKS:
                return doc.chunks if doc.status == INDEXED else "–"
        elif role == Qt.ItemDataRole.DecorationRole and col == self.STATUS:
            return self._icons.get(doc.status)
        elif role == Qt.ItemDataRole.ToolTipRole:
            return tooltip(self.describe(doc))
        elif role == Qt.ItemDataRole.AccessibleTextRole:
            text = f"{doc.title}, {STATUS_TEXT.get(doc.status, doc.status)}"
            if doc.error:
                text += f": {doc.error}"
            return text
        elif role == Qt.ItemDataRole.TextAlignmentRole and col in (self.PAGES, self.CHUNKS):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        elif role == RecordRole:
            return doc
        elif role == StatusRole:
            return doc.status
        elif role == CollectionRole:
            return doc.collection_id
        elif role == SortRole:
            if col == self.TITLE:
                return doc.title.casefold()
            if col == self.FILE:
                return file_name(doc).casefold()
            if col == self.STATUS:
                return doc.status
            if col == self.PAGES:
                return doc.pages
            if col == self.CHUNKS:
                return doc.chunks
        return None

    @staticmethod
    def describe(doc: Document) -> str:
        lines = [doc.title, doc.path, f"{doc.format.upper() or 'unknown format'} · {format_bytes(doc.size)}"]
        if doc.status == INDEXED:
            lines.append(f"{doc.pages} pages, {doc.chunks} passages indexed")
            lines += read_in_part(doc)
        else:
            lines.append(f"{STATUS_TEXT.get(doc.status, doc.status)}: {doc.error or 'no reason recorded'}")
        lines.append("Added " + time.strftime("%Y-%m-%d %H:%M", time.localtime(doc.added_at)))
        return "\n".join(lines)


def read_in_part(doc: Document) -> list[str]:
    """The lines saying which pages of an indexed document were read only in part (a step past
    its time budget, or the file's time limit), from its stored note; [] when none were."""
    prefix = "read in part: "
    if doc.status != INDEXED or not doc.error or not doc.error.startswith(prefix):
        return []
    items = doc.error[len(prefix):].split("; ")
    return ["Some pages were read only in part (their plain text is indexed):",
            *(f"• {item}" for item in items)]


class DocumentFilter(QSortFilterProxyModel):
    """Filters documents by text (title or path), collection and status group."""

    ALL, INDEXED_ONLY, PROBLEMS = "all", "indexed", "problems"

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._text = ""
        self._collection: int | None = None
        self._status = self.ALL
        self.setSortRole(SortRole)
        self.setSortCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

    def _change(self, name: str, value: Any) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt 6.10+
            self.beginFilterChange()
            setattr(self, name, value)
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            setattr(self, name, value)
            self.invalidateRowsFilter()

    def set_text(self, text: str) -> None:
        self._change("_text", text.casefold().strip())

    def set_collection(self, collection_id: int | None) -> None:
        self._change("_collection", collection_id)

    def set_status(self, status: str) -> None:
        self._change("_status", status)

    def filterAcceptsRow(self, row: int, parent: _Index) -> bool:
        model = self.sourceModel()
        doc: Document | None = model.data(model.index(row, 0, parent), RecordRole)
        if doc is None:
            return False
        if self._collection is not None and doc.collection_id != self._collection:
            return False
        if self._status == self.INDEXED_ONLY and doc.status != INDEXED:
            return False
        if self._status == self.PROBLEMS and doc.status == INDEXED:
            return False
        return not (self._text and self._text not in doc.title.casefold()
                    and self._text not in doc.path.casefold())


@dataclass(frozen=True)
class CollectionRow:
    collection: Collection | None  # None: every document
    documents: int
    problems: int


class CollectionListModel(QAbstractListModel):
    """"All documents" first, then each collection, with its document count."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[CollectionRow] = []
        self._icon = icons.icon("collection")

    def set_collections(self, collections: Sequence[Collection], docs: Sequence[Document]) -> None:
        self.beginResetModel()
        total = CollectionRow(None, len(docs), sum(d.status != INDEXED for d in docs))
        rows = [total]
        for c in collections:
            mine = [d for d in docs if d.collection_id == c.id]
            rows.append(CollectionRow(c, len(mine), sum(d.status != INDEXED for d in mine)))
        self._rows = rows
        self.endResetModel()

    def clear(self) -> None:
        self.beginResetModel()
        self._rows = []
        self.endResetModel()

    def replace_document(self, old: Document | None, new: Document | None) -> None:
        """Count a document added, changed or removed (old/new None) at once, so that the
        counts keep up with the document list while a run indexes."""
        for doc, n in ((old, -1), (new, 1)):
            if doc is None:
                continue
            for i, row in enumerate(self._rows):
                if row.collection is None or row.collection.id == doc.collection_id:
                    self._rows[i] = CollectionRow(row.collection, row.documents + n,
                                                  row.problems + n * (doc.status != INDEXED))
                    self.dataChanged.emit(self.index(i), self.index(i))

    def rowCount(self, parent: _Index = _ROOT) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def row_of(self, collection_id: int | None) -> int:
        for i, r in enumerate(self._rows):
            if (r.collection.id if r.collection else None) == collection_id:
                return i
        return 0

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        row = self._rows[index.row()]
        name = row.collection.name if row.collection else "All documents"
        if role == Qt.ItemDataRole.DisplayRole:
            text = f"{name}  ({row.documents})"
            if row.problems:
                text += f" · {row.problems} with problems"
            return text
        if role == Qt.ItemDataRole.DecorationRole:
            return self._icon
        if role == Qt.ItemDataRole.ToolTipRole:
            folders = row.collection.folders if row.collection else ()
            tip = f"{name}: {row.documents} documents"
            if folders:
                tip += "\nWatched folders:\n" + "\n".join(folders)
            return tooltip(tip)
        if role == RecordRole:
            return row.collection
        return None


class ConversationListModel(QAbstractListModel):
    """Conversations, most recent first."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._items: list[Conversation] = []
        self._icon = icons.icon("chat")

    def set_conversations(self, items: Sequence[Conversation]) -> None:
        self.beginResetModel()
        self._items = list(items)
        self.endResetModel()

    def clear(self) -> None:
        self.set_conversations([])

    def row_of(self, conversation_id: int | None) -> int:
        for i, c in enumerate(self._items):
            if c.id == conversation_id:
                return i
        return -1

    def rowCount(self, parent: _Index = _ROOT) -> int:
        return 0 if parent.isValid() else len(self._items)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._items):
            return None
        conv = self._items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return conv.title or "Untitled"
        if role == Qt.ItemDataRole.ToolTipRole:
            return tooltip(f"{conv.title}\nLast active "
                           + time.strftime("%Y-%m-%d %H:%M", time.localtime(conv.updated_at)))
        if role == Qt.ItemDataRole.DecorationRole:
            return self._icon
        if role == RecordRole:
            return conv
        return None


@dataclass(frozen=True)
class SourceItem:
    """One retrieved passage as the sources pane shows it."""

    n: int
    document_id: int
    chunk_id: int
    title: str
    path: str
    page: int
    snippet: str
    marks: tuple[tuple[int, int], ...]
    text: str
    char_start: int = 0
    char_end: int = 0
    cited: bool = False

    @classmethod
    def from_hit(cls, n: int, hit: Hit) -> SourceItem:
        return cls(n, hit.document_id, hit.chunk_id, hit.title, hit.path, hit.page,
                   hit.snippet or hit.text[:240], tuple(hit.marks), hit.text,
                   hit.char_start, hit.char_end)

    @classmethod
    def from_citation(cls, c: dict[str, Any], marks: tuple[tuple[int, int], ...] = (),
                      snippet: str | None = None) -> SourceItem:
        return cls(int(c["n"]), int(c["document_id"]), int(c.get("chunk_id") or 0),
                   str(c.get("title") or ""), str(c.get("path") or ""), int(c.get("page") or 1),
                   snippet if snippet is not None else str(c.get("snippet") or c.get("text", "")[:240]),
                   marks, str(c.get("text") or ""), int(c.get("char_start") or 0),
                   int(c.get("char_end") or 0), cited=True)

    def citation(self) -> dict[str, Any]:
        return {"n": self.n, "document_id": self.document_id, "chunk_id": self.chunk_id,
                "title": self.title, "path": self.path, "page": self.page, "text": self.text,
                "char_start": self.char_start, "char_end": self.char_end}


class SourceListModel(QAbstractListModel):
    """The passages behind the current answer, numbered as the answer cites them."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._items: list[SourceItem] = []

    def set_sources(self, items: Sequence[SourceItem]) -> None:
        self.beginResetModel()
        self._items = list(items)
        self.endResetModel()

    def mark_cited(self, numbers: set[int]) -> None:
        from dataclasses import replace

        self._items = [replace(s, cited=s.n in numbers) for s in self._items]
        if self._items:
            self.dataChanged.emit(self.index(0), self.index(len(self._items) - 1))

    def clear(self) -> None:
        self.set_sources([])

    def items(self) -> list[SourceItem]:
        return list(self._items)

    def rowCount(self, parent: _Index = _ROOT) -> int:
        return 0 if parent.isValid() else len(self._items)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._items):
            return None
        item = self._items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"[{item.n}] {item.title}, p. {item.page}"
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleTextRole):
            cited = " (cited in the answer)" if item.cited else ""
            text = f"Source {item.n}{cited}: {item.title}, page {item.page}\n{item.path}\n\n{item.snippet}"
            return tooltip(text) if role == Qt.ItemDataRole.ToolTipRole else text
        if role == RecordRole:
            return item
        return None
