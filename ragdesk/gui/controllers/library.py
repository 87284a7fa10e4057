"""The library pane's data: loading collections, documents and conversations off the UI thread,
creating collections, removing documents from the vault."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from ragdesk.core.records import Document
from ragdesk.gui.controllers.host import Host
from ragdesk.gui.library import LibraryPane
from ragdesk.gui.workers import LibrarySnapshot, WorkerPool, load_library

if TYPE_CHECKING:
    from ragdesk.app import Services


class LibraryController(QObject):
    """Fills the library pane from the vault and writes the user's library changes back."""

    loaded = Signal(object)  # LibrarySnapshot, once shown in the pane

    def __init__(self, pool: WorkerPool, pane: LibraryPane, host: Host,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = pool
        self.pane = pane
        self.host = host
        self.services: Services | None = None
        self._collection_names: dict[int, str] = {}

    def attach(self, services: Services) -> None:
        self.services = services
        self.reload()

    def detach(self) -> None:
        self._collection_names = {}
        self.services = None

    def reload(self) -> None:
        if self.services is None:
            return
        store = self.services.store
        self.pool.run(lambda: load_library(store), "load library", on_result=self._loaded,
                      on_error=self.host.report_error)

    def _loaded(self, snapshot: LibrarySnapshot) -> None:
        if self.services is None:
            return
        self._collection_names = {c.id: c.name for c in snapshot.collections}
        self.pane.set_library(snapshot.collections, snapshot.documents)
        self.loaded.emit(snapshot)

    def collection_name(self, collection_id: int | None) -> str | None:
        """The name of a collection as last loaded (None: unknown, or no collection)."""
        return self._collection_names.get(collection_id) if collection_id is not None else None

    def new_collection(self, name: str) -> None:
        if self.services is None:
            return
        store = self.services.store
        self.pool.run(lambda: store.collection(name), "new collection",
                      on_result=lambda _c: self.reload(), on_error=self.host.report_error)

    def remove_documents(self, docs: list[Document]) -> None:
        """Remove documents from the vault (not from the disk), after asking."""
        if self.services is None or not docs:
            return
        what = f"“{docs[0].title}”" if len(docs) == 1 else f"{len(docs)} documents"
        if not self.host.confirm(
            "Remove from the vault",
            f"Remove {what} from the vault? The indexed text and the kept original are deleted "
            "from the vault; the files on your disk are not touched."):
            return
        store = self.services.store
        ids = [d.id for d in docs]

        def remove() -> list[int]:
            for document_id in ids:
                store.remove_document(document_id)
                store.audit("document removed", document_id=document_id, reason="removed in the app")
            return ids

        def removed(removed_ids: list[int]) -> None:
            self.pane.remove_ids(removed_ids)
            self.reload()

        self.pool.run(remove, "remove documents", on_result=removed, on_error=self.host.report_error)
