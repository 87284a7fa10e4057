"""The main window: library | chat | sources in a splitter, the Ollama banner, the status bar,
the menus and toolbar, drag and drop.

The window lays out the panes and turns the user's actions into calls on its controllers
(gui/controllers/), which hold the logic and run slow work -- indexing, asking, loading the
library, probing Ollama, every database write -- on the worker pool. `attach()` hands the
controllers an unlocked vault's services; `detach()` (on lock and quit) stops their work and
clears every widget that shows document text, titles or paths.

Drag and drop works anywhere on the window, the text widgets included.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, QEvent, QObject, QSettings, QSize, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QInputDialog,
    QMainWindow,
    QMessageBox,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ragdesk import __version__
from ragdesk.gui import icons
from ragdesk.gui.auditlog import AuditLogDialog
from ragdesk.gui.banner import Banner
from ragdesk.gui.chatview import ChatPane, SourcesPane, shortcut_list
from ragdesk.gui.controllers.conversation import ConversationController
from ragdesk.gui.controllers.indexing import IndexingController, Request
from ragdesk.gui.controllers.library import LibraryController
from ragdesk.gui.controllers.ollama import OllamaController
from ragdesk.gui.controllers.outdated import OutdatedController
from ragdesk.gui.controllers.settings import SettingsController
from ragdesk.gui.dropping import DropOverlay, local_paths
from ragdesk.gui.filedialog import LAST_FOLDER, choose_paths, remembered_folder
from ragdesk.gui.library import LibraryPane
from ragdesk.gui.notice import Notice
from ragdesk.gui.preview import PreviewDialog, PreviewTarget
from ragdesk.gui.settings import SettingsDialog
from ragdesk.gui.sharing import ServerFactory, SharingDialog
from ragdesk.gui.statusbar import IndexStatus, OllamaIndicator
from ragdesk.gui.workers import OllamaStatus, WorkerError, WorkerPool, load_embedder, probe_ollama

if TYPE_CHECKING:
    from ragdesk.app import Services

Shortcut = QKeySequence | QKeySequence.StandardKey | str

# Narrowest widths (px; more when a pane's controls need it). The chat's transcript, question and
# buttons keep theirs; when the window cannot hold every pane, they give way in GIVE_WAY order.
CHAT_MIN_WIDTH = 420
LIBRARY_MIN_WIDTH = 340
CONVERSATIONS_MIN_WIDTH = 160
SOURCES_MIN_WIDTH = 220
GIVE_WAY = ("sources", "conversations", "library")
PANE_NAMES = {"library": "Library", "conversations": "Conversations", "sources": "Sources"}


class MainWindow(QMainWindow):
    """The window over an unlocked vault; see the module docstring."""

    lock_requested = Signal(object)  # reason text or None
    quit_requested = Signal()
    index_finished = Signal(object)  # the last Progress
    answer_finished = Signal(object)  # the "done" ChatEvent
    library_loaded = Signal()
    ollama_checked = Signal(object)  # OllamaStatus
    settings_saved = Signal(object)  # SettingsValues, once stored

    def __init__(
        self,
        pool: WorkerPool,
        ui_settings: QSettings,
        *,
        index_options: dict[str, Any] | None = None,
        poll_ollama: bool = True,
        watch_folders: bool = True,
        warm_embedder: bool = True,
        share: ServerFactory | None = None,
    ) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("RagDesk")
        self.setWindowIcon(icons.icon("app"))
        self.setAcceptDrops(True)
        self.pool = pool
        self.ui_settings = ui_settings
        self.warm_embedder = warm_embedder
        self.services: Services | None = None
        self.preview: PreviewDialog | None = None
        self.settings_dialog: SettingsDialog | None = None
        self.share_factory = share  # None: no sharing (File › Share on the network… hidden)
        self.sharing_dialog: SharingDialog | None = None
        self.audit_dialog: AuditLogDialog | None = None

        self._build_panes()
        self._build_status_bar()
        self.settings_ctl = SettingsController(pool, self, self)
        self.ollama_ctl = OllamaController(pool, self, poll=poll_ollama, parent=self)
        self.library_ctl = LibraryController(pool, self.library, self, self)
        self.index_ctl = IndexingController(
            pool, self.library_ctl, self.index_status, self,
            chunk_tokens=lambda: self.settings_ctl.values.chunk_tokens, options=index_options,
            watch_folders=watch_folders, parent=self)
        self.outdated_ctl = OutdatedController(pool, self.index_ctl, self.notice, self, self)
        self.chat_ctl = ConversationController(pool, self.chat, self.sources, self, scope=self._scope_ids,
                                               ollama=lambda: self.ollama_ctl.status, parent=self)
        self._connect()
        self._build_actions()
        self._restore_layout()

    # --- construction -------------------------------------------------------------------

    def _build_panes(self) -> None:
        central = QWidget()
        central.setObjectName("central")
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.banner = Banner()
        layout.addWidget(self.banner)
        self.notice = Notice()  # asks without stopping the user (e.g. updating older documents)
        layout.addWidget(self.notice)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.library = LibraryPane()
        self.chat = ChatPane()
        self.sources = SourcesPane()
        for pane in (self.library, self.chat, self.sources):
            self.splitter.addWidget(pane)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.splitter.setSizes([400, 700, 340])
        self.chat.splitter.setChildrenCollapsible(False)
        # Each pane keeps the width its controls need (a button is never cut), the chat the
        # most; a window too narrow for all of them hides side panes instead (_fit_panes).
        conversations, column = self.chat.splitter.widget(0), self.chat.splitter.widget(1)
        assert conversations is not None and column is not None
        self.chat_column: QWidget = column  # the transcript, the question and its buttons
        self.side_panes: dict[str, QWidget] = {
            "library": self.library, "conversations": conversations, "sources": self.sources}
        for widget, width in ((self.library, LIBRARY_MIN_WIDTH), (self.sources, SOURCES_MIN_WIDTH),
                              (conversations, CONVERSATIONS_MIN_WIDTH), (column, CHAT_MIN_WIDTH)):
            widget.setMinimumWidth(max(width, widget.minimumSizeHint().width()))
        # The window may be as narrow as the chat alone: the side panes give way.
        self.splitter.setMinimumWidth(self.chat_column.minimumWidth())
        self.wanted = dict.fromkeys(self.side_panes, True)  # what the user chose in the View menu
        self.give_way = list(GIVE_WAY)  # the first gives way first; a pane asked for goes last
        layout.addWidget(self.splitter, 1)
        self.setCentralWidget(central)
        self.overlay = DropOverlay(central)
        # Text widgets take drops themselves; files dropped on them go to the library instead.
        for widget in (self.chat.transcript, self.chat.transcript.viewport(), self.chat.question,
                       self.chat.question.viewport(), self.library.search):
            widget.installEventFilter(self)

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        status.setObjectName("statusBar")
        status.setSizeGripEnabled(True)
        self.index_status = IndexStatus()
        self.ollama_indicator = OllamaIndicator()
        status.addWidget(self.index_status, 1)
        status.addPermanentWidget(self.ollama_indicator)
        status.messageChanged.connect(self.index_status.message_changed)

    def _connect(self) -> None:
        """The panes' requests to the controllers, the controllers' news to the panes."""
        library, chat, chats = self.library, self.chat, self.chat_ctl
        self.banner.retry.connect(self.check_ollama)
        self.banner.settings.connect(self.open_settings)
        self.ollama_indicator.clicked.connect(self.check_ollama)
        self.index_status.cancel.connect(self.index_ctl.cancel)
        self.index_status.show_problems.connect(self._show_problems)

        library.add_files_requested.connect(self.add_files)
        library.add_folder_requested.connect(self.add_folder)
        library.reindex_requested.connect(self.index_ctl.reindex)
        library.remove_requested.connect(self.library_ctl.remove_documents)
        library.preview_requested.connect(
            lambda doc: self.open_preview(PreviewTarget(doc.id, 1, "", title=doc.title)))
        library.collection_changed.connect(self._scope_changed)
        chat.ask_requested.connect(chats.ask)
        chat.stop_requested.connect(chats.stop)
        chat.regenerate_requested.connect(chats.regenerate)
        chat.copy_requested.connect(chats.copy_answer)
        chat.conversation_selected.connect(chats.open_conversation)
        chat.new_conversation_requested.connect(chats.new_conversation)
        chat.rename_requested.connect(chats.rename_conversation)
        chat.delete_requested.connect(chats.delete_conversation)
        chat.citation_clicked.connect(lambda c: self.open_preview(PreviewTarget.from_citation(c)))
        self.sources.source_activated.connect(
            lambda item: self.open_preview(PreviewTarget.from_citation(item.citation())))

        self.library_ctl.loaded.connect(lambda snapshot: chats.show_conversations(snapshot.conversations))
        self.library_ctl.loaded.connect(self.index_ctl.watch)
        self.library_ctl.loaded.connect(lambda _snapshot: self.index_ctl.show_problems())
        self.library_ctl.loaded.connect(lambda _snapshot: self.library_loaded.emit())
        self.index_ctl.finished.connect(self.index_finished)
        chats.ollama_outcome.connect(self.ollama_ctl.answered)  # before answer_finished goes out
        chats.answer_finished.connect(self.answer_finished)
        self.ollama_ctl.changed.connect(self._show_ollama_status)
        self.ollama_ctl.checked.connect(self.ollama_checked)
        self.settings_ctl.saved.connect(self.settings_saved)
        self.settings_ctl.saved.connect(lambda _values: self.check_ollama())
        self.settings_ctl.saved.connect(lambda values: self.chat.transcript.set_marks(values.grounding_marks))

    def _action(self, text: str, icon_name: str | None, tip: str, slot: Callable[[], Any],
                shortcuts: Sequence[Shortcut] = ()) -> QAction:
        action = QAction(text, self)
        if icon_name:
            action.setIcon(icons.icon(icon_name))
        keys: list[QKeySequence] = []
        for s in shortcuts:
            seq = QKeySequence(s) if not isinstance(s, QKeySequence) else s
            if not seq.isEmpty() and seq not in keys:
                keys.append(seq)
        if keys:
            action.setShortcuts(keys)
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            tip = f"{tip} ({keys[0].toString(QKeySequence.SequenceFormat.NativeText)})"
        action.setToolTip(tip)
        action.setStatusTip(tip)
        action.triggered.connect(lambda checked=False: slot())
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        SK = QKeySequence.StandardKey
        a = self._action
        chats = self.chat_ctl
        self.act_add_files = a("&Add files…", "add-file", "Add files to the library", self.add_files,
                               [SK.Open])
        self.act_add_folder = a("Add &folder…", "add-folder", "Add a folder; it is watched for changes",
                                self.add_folder, ["Ctrl+Shift+O"])
        self.act_sync = a("&Sync folders", "sync", "Re-scan the watched folders now",
                          self.index_ctl.sync_folders, [SK.Refresh])
        self.act_new_collection = a("New &collection…", "collection", "Create a collection",
                                    self.new_collection)
        self.act_share = a("Share on the &network…", "", "Serve this vault to colleagues over HTTPS: "
                           "address, certificate fingerprint, client tokens", self.open_sharing)
        self.act_share.setVisible(self.share_factory is not None)
        self.act_audit = a("Audit &log…", "", "The vault's tamper-evident audit log, read-only, and"
                           " whether its hash chain verifies", self.open_audit_log)
        self.act_lock = a("&Lock", "lock", "Lock the vault: close it and clear the window",
                          lambda: self.lock_requested.emit(None), ["Ctrl+L"])
        self.act_settings = a("&Settings…", "settings", "Ollama, models, auto-lock and indexing settings",
                              self.open_settings, [SK.Preferences, "Ctrl+,"])
        self.act_quit = a("&Quit", "quit", "Lock the vault and quit", self.request_quit,
                          [SK.Quit, "Ctrl+Q"])
        self.act_find = a("&Filter the library", "search", "Filter the library by title or path",
                          self.library.focus_search, [SK.Find])
        self.act_send = a("&Send", "send", "Send the question", self.chat.send, ["Ctrl+Return", "Ctrl+Enter"])
        self.act_stop = a("S&top", "stop", "Stop the answer", chats.stop, ["Esc"])
        self.act_regenerate = a("&Regenerate", "regenerate", "Ask the last question again", chats.regenerate,
                                ["Ctrl+R"])
        self.act_copy = a("&Copy answer", "copy", "Copy the last answer with its sources", chats.copy_answer,
                          ["Ctrl+Shift+C"])
        self.act_new_chat = a("&New conversation", "new-chat", "Start a new conversation",
                              chats.new_conversation, [SK.New])
        self.act_shortcuts = a("&Keyboard shortcuts", "keyboard", "List the keyboard shortcuts",
                               self.show_shortcuts)
        self.act_about = a("&About RagDesk", "info", "About RagDesk", self.show_about)
        self.pane_actions: dict[str, QAction] = {}
        for name, text, key in (("library", "&Library", "Ctrl+1"),
                                ("conversations", "C&onversations", "Ctrl+2"),
                                ("sources", "&Sources", "Ctrl+3")):
            act = QAction(text, self, checkable=True, checked=True)
            act.setShortcut(QKeySequence(key))
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            tip = (f"Show or hide the {name} pane ({key}); in a narrow window, showing one hides"
                   " another")
            act.setToolTip(tip)
            act.setStatusTip(tip)
            act.triggered.connect(lambda checked, name=name: self.show_pane(name, checked))
            self.addAction(act)
            self.pane_actions[name] = act
        self.act_sources = self.pane_actions["sources"]

        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        for act in (self.act_add_files, self.act_add_folder, self.act_sync, self.act_new_collection):
            file_menu.addAction(act)
        file_menu.addSeparator()
        file_menu.addAction(self.act_share)
        file_menu.addAction(self.act_audit)
        file_menu.addAction(self.act_lock)
        file_menu.addAction(self.act_quit)
        edit_menu = bar.addMenu("&Edit")
        edit_menu.addAction(self.act_find)
        edit_menu.addAction(self.act_copy)
        edit_menu.addSeparator()
        edit_menu.addAction(self.act_settings)
        chat_menu = bar.addMenu("&Chat")
        for act in (self.act_send, self.act_stop, self.act_regenerate, self.act_new_chat):
            chat_menu.addAction(act)
        view_menu = bar.addMenu("&View")
        for act in self.pane_actions.values():
            view_menu.addAction(act)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.act_shortcuts)
        help_menu.addAction(self.act_about)

        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        toolbar.setIconSize(QSize(20, 20))
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.setAccessibleName("Main toolbar")
        for act in (self.act_add_files, self.act_add_folder, self.act_sync):
            toolbar.addAction(act)
        toolbar.addSeparator()
        toolbar.addAction(self.act_new_chat)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        toolbar.addWidget(spacer)
        toolbar.addAction(self.act_settings)
        toolbar.addAction(self.act_lock)

    # --- layout memory (QSettings: sizes only, never content) -----------------------------

    def _restore_layout(self) -> None:
        s = self.ui_settings
        geometry = s.value("main/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:  # first start: roomy, but inside the screen (a 1366x768 laptop has less than 820)
            area = self.screen().availableGeometry()
            self.resize(min(1360, area.width() - 40), min(820, area.height() - 60))
            self.move(area.center() - self.rect().center())
        for key, splitter in (("main/splitter", self.splitter), ("main/chatSplitter", self.chat.splitter)):
            state = s.value(key)
            if isinstance(state, QByteArray) and not state.isEmpty():
                splitter.restoreState(state)
        for name in self.side_panes:
            self.wanted[name] = bool(s.value(f"main/{name}", True, type=bool))
        self._fit_panes()
        self.splitter.installEventFilter(self)  # each change of width fits the panes again

    def save_layout(self) -> None:
        s = self.ui_settings
        s.setValue("main/geometry", self.saveGeometry())
        s.setValue("main/splitter", self.splitter.saveState())
        s.setValue("main/chatSplitter", self.chat.splitter.saveState())
        for name, wanted in self.wanted.items():
            s.setValue(f"main/{name}", wanted)
        s.sync()

    # --- side panes: shown as the user chose, while the window has room for them -------------

    def show_pane(self, name: str, show: bool = True) -> None:
        """Show or hide a side pane (View menu). One asked for is the last to give way."""
        self.wanted[name] = show
        if show:
            self.give_way.remove(name)
            self.give_way.append(name)
        self._fit_panes()
        if show and not self.side_panes[name].isVisibleTo(self):
            self.show_message(f"The window is too narrow for the {name} pane: make it wider.", 6000)

    def pane_shown(self, name: str) -> bool:
        return not self.side_panes[name].isHidden()

    def _min_width(self, widget: QWidget) -> int:
        return max(widget.minimumWidth(), widget.minimumSizeHint().width())

    def _needed_width(self, shown: set[str]) -> int:
        chat = self._min_width(self.chat_column)
        if "conversations" in shown:
            chat += self._min_width(self.side_panes["conversations"]) + self.chat.splitter.handleWidth()
        return chat + sum(self._min_width(self.side_panes[name]) + self.splitter.handleWidth()
                          for name in ("library", "sources") if name in shown)

    def _fit_panes(self) -> None:
        """Show the side panes the user wants, less those the splitter's width cannot hold
        beside the chat at its minimum; they give way in `give_way` order."""
        shown = {name for name, wanted in self.wanted.items() if wanted}
        room = self.splitter.width() if self.splitter.isVisible() else self.width()
        for name in self.give_way:
            if self._needed_width(shown) <= room:
                break
            shown.discard(name)
        changed = False
        for name, pane in self.side_panes.items():
            if pane.isHidden() == (name in shown):
                pane.setVisible(name in shown)
                changed = True
            self.pane_actions[name].setChecked(name in shown)
        if changed:  # lay out now, not after the events queued meanwhile
            self.splitter.refresh()
            self.chat.splitter.refresh()

    # --- attach / detach ------------------------------------------------------------------

    def attach(self, services: Services, resume: list[Request] | None = None) -> None:
        """Show an unlocked vault; `resume` is the indexing a lock cut short."""
        self.services = services
        self.settings_ctl.attach(services)
        self.chat.transcript.set_marks(self.settings_ctl.values.grounding_marks)
        self.chat_ctl.attach(services)
        self.chat.set_scope("All documents")
        self.library_ctl.attach(services)
        self.ollama_indicator.show_status(None)
        self.ollama_ctl.attach(services)
        if self.warm_embedder:
            # Load the embedding model now, in the background, so the first question or drop
            # does not wait for it (it takes a second or so).
            self.pool.run(lambda: load_embedder(services), "load the embedder", on_error=self.report_error)
        self.index_ctl.attach(services, resume)
        self.outdated_ctl.attach(services)  # after the resumed runs: they go first

    def detach(self) -> list[Request]:
        """Stop all work and forget everything shown. Returns the indexing that was cut short,
        so it can resume after the next unlock."""
        self.save_layout()
        if self.sharing_dialog is not None:  # the server leaves the vault before it locks
            self.sharing_dialog.shutdown()
            self.sharing_dialog.close()
            self.sharing_dialog.deleteLater()
            self.sharing_dialog = None
        if self.audit_dialog is not None:
            self.audit_dialog.close()
            self.audit_dialog.deleteLater()
            self.audit_dialog = None
        self.ollama_ctl.detach()
        self.chat_ctl.detach()
        self.outdated_ctl.detach()
        interrupted = self.index_ctl.detach()
        self.library_ctl.detach()
        self.settings_ctl.detach()
        for dialog in (self.preview, self.settings_dialog):
            if dialog is not None:
                dialog.close()
        if self.preview is not None:
            self.preview.clear()
        self.library.clear()
        self.chat.clear()
        self.sources.clear()
        self.index_status.reset()
        self.banner.hide()
        self.ollama_indicator.show_status(None)
        self.statusBar().clearMessage()
        self.overlay.hide()
        self.services = None
        self.hide()
        return interrupted

    # --- what the controllers hold, as the app, tests and scripts ask for it ------------------

    @property
    def ollama(self) -> OllamaStatus | None:
        return self.ollama_ctl.status

    @property
    def indexing(self) -> bool:
        return self.index_ctl.indexing

    @property
    def answering(self) -> bool:
        return self.chat_ctl.answering

    def index_paths(self, paths: list[str] | None, collection: str | None = None) -> None:
        self.index_ctl.index_paths(paths, collection)

    def ask(self, question: str | None = None) -> None:
        self.chat_ctl.ask(question)

    def new_conversation(self) -> None:
        self.chat_ctl.new_conversation()

    def copy_answer(self) -> None:
        self.chat_ctl.copy_answer()

    def check_ollama(self) -> None:
        self.ollama_ctl.check()

    # --- actions ------------------------------------------------------------------------

    def add_files(self) -> None:
        self._add_chosen(folder=False)

    def add_folder(self) -> None:
        self._add_chosen(folder=True)

    def _add_chosen(self, folder: bool) -> None:
        """The file dialog, opened where the user last chose (kept in the vault, not QSettings)."""
        services = self.services
        if services is None:
            return
        store = services.store
        start = store.get_setting(LAST_FOLDER)
        paths = choose_paths(self, folder=folder, start=start if isinstance(start, str) else None)
        if not paths or self.services is not services:  # cancelled, or locked meanwhile
            return
        last = remembered_folder(paths, folder)
        if last is not None and last != start:
            self.pool.run(lambda: store.set_setting(LAST_FOLDER, last), "remember the folder",
                          on_error=self.report_error)
        self.index_ctl.index_paths(paths)

    def new_collection(self) -> None:
        if self.services is None:
            return
        name, ok = QInputDialog.getText(self, "New collection", "Name of the new collection:")
        name = name.strip()
        if ok and name:
            self.library_ctl.new_collection(name)

    def _scope_ids(self) -> list[int] | None:
        collection = self.library.current_collection()
        return [collection.id] if collection is not None else None

    def _scope_changed(self, collection: Any) -> None:
        self.chat.set_scope(collection.name if collection is not None else "All documents")

    def _show_problems(self) -> None:
        library = self.library
        combo = library.status_filter
        combo.setCurrentIndex(combo.findData("problems"))
        if library.filter.rowCount() < self.index_status.problems:  # some are in other collections
            library.collection_view.setCurrentIndex(library.collections.index(0))
        library.view.setFocus()

    def open_preview(self, target: PreviewTarget) -> None:
        if self.services is None:
            return
        if self.preview is None:
            self.preview = PreviewDialog(self._store, self.pool, self)
        self.preview.show_target(target)

    def _store(self) -> Any:
        """The open vault's store, None once locked (the preview asks before each page)."""
        return self.services.store if self.services is not None else None

    def _show_ollama_status(self, status: OllamaStatus) -> None:
        self.ollama_indicator.show_status(status)
        self.banner.show_status(status)
        # Each place says its own part once: the banner what is wrong and how to fix it, the
        # status bar the state in two words, the note above the question what answers look like.
        if not status.reachable or status.model_missing:
            self.chat.set_mode_note("Answers are extractive for now: the passages of your documents that "
                                    "best match the question, not text written by a model.")
        else:
            self.chat.set_mode_note(None)

    def open_sharing(self) -> None:
        if self.services is None or self.share_factory is None:
            return
        if self.sharing_dialog is None:
            self.sharing_dialog = SharingDialog(self.services, self.pool, self.share_factory, self)
        self.sharing_dialog.show()
        self.sharing_dialog.raise_()

    def open_audit_log(self) -> None:
        if self.services is None:
            return
        if self.audit_dialog is None:
            self.audit_dialog = AuditLogDialog(self.services.store, self.pool, self)
        else:
            self.audit_dialog.reload()
        self.audit_dialog.show()
        self.audit_dialog.raise_()

    def open_settings(self) -> None:
        if self.services is None:
            return
        services = self.services
        values = self.settings_ctl.reload()
        space = services.store.vector_space()
        dialog = SettingsDialog(values, space.embedder if space else None, self.pool,
                                lambda host: probe_ollama(services, host), os.environ.get("OLLAMA_HOST"),
                                self)
        dialog.saved.connect(self.settings_ctl.save)
        dialog.finished.connect(lambda _r: setattr(self, "settings_dialog", None))
        self.settings_dialog = dialog
        dialog.show()
        status = self.ollama_ctl.status
        if status is not None and status.reachable:
            dialog.show_status(status)

    def show_shortcuts(self) -> None:
        rows = "\n".join(f"{keys:<16}{what}" for what, keys in shortcut_list())
        box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard shortcuts", rows,
                          QMessageBox.StandardButton.Close, self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        font = box.font()
        font.setFamily("monospace")
        box.setFont(font)
        box.exec()

    def show_about(self) -> None:
        box = QMessageBox(QMessageBox.Icon.NoIcon, "About RagDesk",
                          f"RagDesk {__version__}\n\nAsk questions about your own documents, offline. "
                          "Everything stays in one encrypted vault on this computer; answers come from "
                          "your local Ollama, with citations.", QMessageBox.StandardButton.Close, self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setIconPixmap(icons.pixmap("app", 64, self.devicePixelRatioF()))
        box.exec()

    # --- what the controllers may ask of the window (controllers/host.py) -------------------

    def confirm(self, title: str, text: str) -> bool:
        box = QMessageBox(QMessageBox.Icon.Question, title, text,
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        return box.exec() == QMessageBox.StandardButton.Yes

    def report_error(self, error: WorkerError, what: str = "Something went wrong") -> None:
        if self.services is None:
            return  # locked meanwhile: the work was cut off on purpose
        self.show_message(f"{what}: {error.message}", 10000)

    def show_message(self, text: str, timeout_ms: int) -> None:
        self.statusBar().showMessage(text, timeout_ms)

    # --- drag and drop --------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if local_paths(event) and self.services is not None:
            event.acceptProposedAction()
            self.overlay.cover()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if local_paths(event) and self.services is not None:
            event.acceptProposedAction()

    def dragLeaveEvent(self, event: Any) -> None:
        self.overlay.hide()

    def dropEvent(self, event: QDropEvent) -> None:
        self.overlay.hide()
        paths = local_paths(event)
        if paths and self.services is not None:
            event.acceptProposedAction()
            self.index_ctl.index_paths(paths)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.splitter:
            if event.type() == QEvent.Type.Resize:
                self._fit_panes()
            return False
        if event.type() == QEvent.Type.DragLeave:
            self.overlay.hide()
            return False
        if isinstance(event, QDropEvent) and local_paths(event):
            # QDragEnterEvent is a QDragMoveEvent is a QDropEvent: the most specific first.
            if isinstance(event, QDragEnterEvent):
                self.dragEnterEvent(event)
            elif isinstance(event, QDragMoveEvent):
                self.dragMoveEvent(event)
            else:
                self.dropEvent(event)
            return True
        return super().eventFilter(watched, event)

    # --- window events --------------------------------------------------------------------

    def request_quit(self) -> None:
        """Quit (Ctrl+Q, the menu, closing the window), after asking when that cuts off work."""
        if self.services is not None and self.index_ctl.indexing and not self.confirm(
                "Quit while indexing?",
                "Documents are still being added. Quitting now stops that: what is indexed so far"
                " stays in the vault, the file in work is not kept, and the rest can be added again"
                " later (File › Sync folders for watched folders)."):
            return
        self.quit_requested.emit()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.services is not None:
            event.ignore()
            self.request_quit()
            return
        super().closeEvent(event)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if self.overlay.isVisible():
            self.overlay.cover()
