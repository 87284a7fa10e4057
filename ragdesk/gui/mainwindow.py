"""The main window: library | chat | sources in a splitter, the Ollama banner, the status bar.

The window is a thin layer over the core services it is given on `attach()`. Slow work --
indexing, asking, loading the library, probing Ollama, rendering previews, every database
write -- runs on the worker pool (gui/workers.py); the window only reacts to the signals.
`detach()` (on lock and quit) cancels that work and clears every widget that shows document
text, titles or paths.

Drag and drop works anywhere on the window; added folders are watched (QFileSystemWatcher,
debounced) and re-synced when something in them changes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from PySide6.QtCore import (
    QByteArray,
    QEvent,
    QFileSystemWatcher,
    QObject,
    QSettings,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ragdesk import __version__
from ragdesk.core.records import FAILED, UNSUPPORTED, Document
from ragdesk.gui import icons
from ragdesk.gui.chatview import ChatPane, SourcesPane, shortcut_list
from ragdesk.gui.library import LibraryPane
from ragdesk.gui.models import SourceItem
from ragdesk.gui.preview import PreviewDialog, PreviewTarget
from ragdesk.gui.render import TranscriptEntry, tooltip
from ragdesk.gui.settings import SettingsDialog, SettingsValues
from ragdesk.gui.workers import (
    ChatJob,
    IndexJob,
    IndexUpdate,
    LibrarySnapshot,
    OllamaStatus,
    Worker,
    WorkerError,
    WorkerPool,
    load_embedder,
    load_library,
    probe_ollama,
)

log = logging.getLogger("ragdesk.gui.window")

OLLAMA_POLL_MS = 30_000
WATCH_DEBOUNCE_MS = 1500
MAX_WATCHED = 4000  # directories and files per vault; beyond that, Sync (F5) catches up
PROBLEM_STATUSES = (FAILED, UNSUPPORTED)


def _local_paths(event: Any) -> list[str]:
    mime = event.mimeData()
    if mime is None or not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]


def scrub_file_dialog_history() -> None:
    """QFileDialog records the folders it visited in Qt's own settings file; RagDesk keeps no
    document path outside the vault, so that record is removed again."""
    qt_settings = QSettings(QSettings.Scope.UserScope, "QtProject")
    qt_settings.beginGroup("FileDialog")
    for key in ("history", "lastVisited"):
        qt_settings.remove(key)
    qt_settings.endGroup()
    qt_settings.sync()


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
        self.hide()

    def show_status(self, status: OllamaStatus) -> None:
        if status.reachable and not status.model_missing:
            self.hide()
            return
        if not status.reachable:
            self.title.setText(f"Ollama is not reachable at {status.host}.")
            self.body.setText(
                "Answers show the most relevant passages from your documents instead "
                "(extractive mode); search and indexing work as usual. To get written answers, "
                "start Ollama (run “ollama serve”), or set its address in Settings.")
        else:
            self.title.setText(f"Ollama is running, but {status.message}.")
            self.body.setText(
                f"Answers are extractive until it is. To fix it, {status.remedy}, or choose "
                "another model in Settings.")
        self.setAccessibleDescription(f"{self.title.text()} {self.body.text()}")
        self.show()


class IndexStatus(QWidget):
    """The status bar's indexing display: counts, rate, ETA, a progress bar, cancel, problems."""

    cancel = Signal()
    show_problems = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("indexStatus")
        self.setAccessibleName("Indexing progress")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setAccessibleName("Indexing status")
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(160)
        self.bar.setMaximumHeight(14)
        self.bar.setTextVisible(False)
        self.bar.setAccessibleName("Indexing progress")
        self.cancel_button = QToolButton()
        self.cancel_button.setIcon(icons.icon("cancel"))
        self.cancel_button.setToolTip("Stop indexing; what is already indexed is kept")
        self.cancel_button.setAccessibleName("Cancel indexing")
        self.cancel_button.setAutoRaise(True)
        self.cancel_button.clicked.connect(self.cancel)
        self.problems_button = QToolButton()
        self.problems_button.setIcon(icons.icon("status-failed"))
        self.problems_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.problems_button.setAutoRaise(True)
        self.problems_button.setToolTip("Show the files that could not be indexed, with the reason")
        self.problems_button.setAccessibleName("Show files that could not be indexed")
        self.problems_button.clicked.connect(self.show_problems)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        layout.addWidget(self.problems_button)
        self.reset()

    def reset(self) -> None:
        self.label.clear()
        self.bar.hide()
        self.cancel_button.hide()
        self.problems_button.hide()
        self.hide()

    def running(self, p: Any, problems: int) -> None:
        self.show()
        self.bar.show()
        self.cancel_button.show()
        if not p.files_total:
            self.bar.setRange(0, 0)  # busy: the files are still being listed
            self.label.setText("Looking for files…")
            self._problems(problems)
            return
        self.bar.setRange(0, p.files_total)
        self.bar.setValue(p.files_done)
        parts = [f"Indexing {p.files_done} of {p.files_total} files", f"{p.pages} pages"]
        if p.files_done:
            parts.append(f"{p.rate:.1f} files/s")
        if p.eta is not None:
            parts.append(f"about {_duration(p.eta)} left")
        self.label.setText(" · ".join(parts))
        self.bar.setAccessibleDescription(self.label.text())
        self._problems(problems)

    def finished(self, p: Any, problems: int) -> None:
        self.show()
        self.bar.hide()
        self.cancel_button.hide()
        verb = "Stopped" if p.cancelled else "Indexed"
        text = f"{verb}: {p.indexed} new or changed, {p.unchanged} unchanged ({p.pages} pages)"
        if p.removed:
            text += f", {p.removed} removed"
        text += f" in {_duration(p.elapsed)}"
        self.label.setText(text)
        self._problems(problems)

    def _problems(self, problems: int) -> None:
        self.problems_button.setVisible(problems > 0)
        self.problems_button.setText(f"{problems} could not be indexed")


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class OllamaIndicator(QWidget):
    """Status bar: icon and text saying whether Ollama answers, its version and the model."""

    clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ollamaIndicator")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 4, 0)
        layout.setSpacing(5)
        self.icon = QLabel()
        self.text = QLabel("Ollama: checking…")
        self.text.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.icon)
        layout.addWidget(self.text)
        self.setAccessibleName("Ollama status")
        self.status: OllamaStatus | None = None

    def show_status(self, status: OllamaStatus | None) -> None:
        self.status = status
        ratio = self.devicePixelRatioF()
        if status is None:
            self.icon.clear()
            self.text.setText("Ollama: checking…")
            self.setToolTip("")
            return
        if status.reachable and not status.model_missing:
            self.icon.setPixmap(icons.pixmap("ollama-ok", 14, ratio))
            self.text.setText(f"Ollama {status.version} · {status.model}")
            self.setToolTip(tooltip(f"Ollama {status.version} answers at {status.host}\n"
                                    f"Chat model: {status.model}\nInstalled: {', '.join(status.models)}"))
        elif status.reachable:
            self.icon.setPixmap(icons.pixmap("ollama-down", 14, ratio))
            self.text.setText(f"Ollama {status.version} · no model — extractive answers")
            self.setToolTip(tooltip(f"{status.message}\n{status.remedy}"))
        else:
            self.icon.setPixmap(icons.pixmap("ollama-down", 14, ratio))
            self.text.setText("Ollama not reachable — extractive answers")
            self.setToolTip(tooltip(f"{status.message}\n{status.remedy}"))
        self.setAccessibleDescription(self.text.text())

    def mousePressEvent(self, event: Any) -> None:  # noqa: N802
        self.clicked.emit()
        super().mousePressEvent(event)


class DropOverlay(QLabel):
    """Shown over the window while files are dragged onto it."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__("Drop files or folders to add them to the library", parent)
        self.setObjectName("dropOverlay")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setAccessibleName("Drop files here")
        font = self.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        self.setFont(font)
        self.setStyleSheet(
            "#dropOverlay { background-color: rgba(40, 90, 150, 150); color: white;"
            " border: 3px dashed white; border-radius: 12px; }")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.hide()

    def cover(self) -> None:
        parent = self.parentWidget()
        if parent is not None:
            self.setGeometry(parent.rect().adjusted(12, 12, -12, -12))
        self.raise_()
        self.show()


class MainWindow(QMainWindow):
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
    ) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("RagDesk")
        self.setWindowIcon(icons.icon("app"))
        self.setAcceptDrops(True)
        self.pool = pool
        self.ui_settings = ui_settings
        self.index_options = dict(index_options or {})
        self.poll_enabled = poll_ollama
        self.watch_enabled = watch_folders
        self.warm_embedder = warm_embedder
        self.services: Any = None
        self.values = SettingsValues()
        self.conversation_id: int | None = None
        self.ollama: OllamaStatus | None = None
        self.confirm: Callable[[str, str], bool] = self._confirm
        self._index_worker: Worker | None = None
        self._index_job: IndexJob | None = None
        self._index_queue: list[tuple[list[str] | None, str | None]] = []
        self._index_problems = 0
        self._last_progress: Any = None
        self._interrupted: list[tuple[list[str] | None, str | None]] = []
        self._chat_worker: Worker | None = None
        self._streaming: TranscriptEntry | None = None
        self._probe_worker: Worker | None = None
        self._probe_again = False
        self._copied: str | None = None
        self._collection_names: dict[int, str] = {}
        self.preview: PreviewDialog | None = None
        self.settings_dialog: SettingsDialog | None = None

        self._build_panes()
        self._build_actions()
        self._build_status_bar()
        self._stream_timer = QTimer(self)
        self._stream_timer.setSingleShot(True)
        self._stream_timer.setInterval(50)
        self._stream_timer.timeout.connect(self._flush_stream)
        self._poll_timer = QTimer(self)
        self._poll_timer.setInterval(OLLAMA_POLL_MS)
        self._poll_timer.timeout.connect(self.check_ollama)
        self.watcher = QFileSystemWatcher(self)
        self.watcher.directoryChanged.connect(self._folder_changed)
        self.watcher.fileChanged.connect(self._folder_changed)
        self._watch_timer = QTimer(self)
        self._watch_timer.setSingleShot(True)
        self._watch_timer.setInterval(WATCH_DEBOUNCE_MS)
        self._watch_timer.timeout.connect(self.sync_folders)
        self._restore_layout()

    # --- construction -------------------------------------------------------------------

    def _build_panes(self) -> None:
        central = QWidget()
        central.setObjectName("central")
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.banner = Banner()
        self.banner.retry.connect(self.check_ollama)
        self.banner.settings.connect(self.open_settings)
        layout.addWidget(self.banner)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.library = LibraryPane()
        self.chat = ChatPane()
        self.sources = SourcesPane()
        for pane in (self.library, self.chat, self.sources):
            pane.setMinimumWidth(220)
            self.splitter.addWidget(pane)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.splitter.setSizes([400, 700, 340])
        layout.addWidget(self.splitter, 1)
        self.setCentralWidget(central)
        self.overlay = DropOverlay(central)

        self.library.add_files_requested.connect(self.add_files)
        self.library.add_folder_requested.connect(self.add_folder)
        self.library.reindex_requested.connect(self.reindex)
        self.library.remove_requested.connect(self.remove_documents)
        self.library.preview_requested.connect(
            lambda doc: self.open_preview(PreviewTarget(doc.id, 1, "", title=doc.title)))
        self.library.collection_changed.connect(self._scope_changed)
        self.chat.ask_requested.connect(self.ask)
        self.chat.stop_requested.connect(self.stop)
        self.chat.regenerate_requested.connect(self.regenerate)
        self.chat.copy_requested.connect(self.copy_answer)
        self.chat.conversation_selected.connect(self.open_conversation)
        self.chat.new_conversation_requested.connect(self.new_conversation)
        self.chat.rename_requested.connect(self._rename_conversation)
        self.chat.delete_requested.connect(self._delete_conversation)
        self.chat.citation_clicked.connect(lambda c: self.open_preview(PreviewTarget.from_citation(c)))
        self.sources.source_activated.connect(
            lambda item: self.open_preview(PreviewTarget.from_citation(item.citation())))
        # Text widgets take drops themselves; files dropped on them go to the library instead.
        for widget in (self.chat.transcript, self.chat.transcript.viewport(), self.chat.question,
                       self.chat.question.viewport(), self.library.search):
            widget.installEventFilter(self)

    def _action(self, text: str, icon_name: str | None, tip: str, slot: Callable[[], Any],
                shortcuts: list[QKeySequence | QKeySequence.StandardKey | str] = ()) -> QAction:  # type: ignore[assignment]
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
        self.act_add_files = a("&Add files…", "add-file", "Add files to the library", self.add_files, [SK.Open])
        self.act_add_folder = a("Add &folder…", "add-folder", "Add a folder; it is watched for changes",
                                self.add_folder, ["Ctrl+Shift+O"])
        self.act_sync = a("&Sync folders", "sync", "Re-scan the watched folders now", self.sync_folders, [SK.Refresh])
        self.act_new_collection = a("New &collection…", "collection", "Create a collection", self.new_collection)
        self.act_lock = a("&Lock", "lock", "Lock the vault: close it and clear the window",
                          lambda: self.lock_requested.emit(None), ["Ctrl+L"])
        self.act_settings = a("&Settings…", "settings", "Ollama, models, auto-lock and indexing settings",
                              self.open_settings, [SK.Preferences, "Ctrl+,"])
        self.act_quit = a("&Quit", "quit", "Lock the vault and quit", self.quit_requested.emit, [SK.Quit, "Ctrl+Q"])
        self.act_find = a("&Filter the library", "search", "Filter the library by title or path",
                          self.library.focus_search, [SK.Find])
        self.act_send = a("&Send", "send", "Send the question", self.chat._send, ["Ctrl+Return", "Ctrl+Enter"])
        self.act_stop = a("S&top", "stop", "Stop the answer", self.stop, ["Esc"])
        self.act_regenerate = a("&Regenerate", "regenerate", "Ask the last question again", self.regenerate, ["Ctrl+R"])
        self.act_copy = a("&Copy answer", "copy", "Copy the last answer with its sources", self.copy_answer,
                          ["Ctrl+Shift+C"])
        self.act_new_chat = a("&New conversation", "new-chat", "Start a new conversation", self.new_conversation,
                              [SK.New])
        self.act_shortcuts = a("&Keyboard shortcuts", "keyboard", "List the keyboard shortcuts", self.show_shortcuts)
        self.act_about = a("&About RagDesk", "info", "About RagDesk", self.show_about)
        self.act_sources = QAction("Show &sources", self, checkable=True, checked=True)
        self.act_sources.setToolTip("Show or hide the sources pane")
        self.act_sources.toggled.connect(self.sources.setVisible)

        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        for act in (self.act_add_files, self.act_add_folder, self.act_sync, self.act_new_collection):
            file_menu.addAction(act)
        file_menu.addSeparator()
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
        view_menu.addAction(self.act_sources)
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

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        status.setObjectName("statusBar")
        status.setSizeGripEnabled(True)
        self.index_status = IndexStatus()
        self.index_status.cancel.connect(self.cancel_indexing)
        self.index_status.show_problems.connect(self._show_problems)
        self.ollama_indicator = OllamaIndicator()
        self.ollama_indicator.clicked.connect(self.check_ollama)
        status.addWidget(self.index_status, 1)
        status.addPermanentWidget(self.ollama_indicator)

    # --- layout memory (QSettings: sizes only, never content) -----------------------------

    def _restore_layout(self) -> None:
        s = self.ui_settings
        geometry = s.value("main/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1360, 820)
        for key, splitter in (("main/splitter", self.splitter), ("main/chatSplitter", self.chat.splitter)):
            state = s.value(key)
            if isinstance(state, QByteArray) and not state.isEmpty():
                splitter.restoreState(state)
        self.act_sources.setChecked(s.value("main/sources", True, type=bool))

    def save_layout(self) -> None:
        s = self.ui_settings
        s.setValue("main/geometry", self.saveGeometry())
        s.setValue("main/splitter", self.splitter.saveState())
        s.setValue("main/chatSplitter", self.chat.splitter.saveState())
        s.setValue("main/sources", self.act_sources.isChecked())
        s.sync()

    # --- attach / detach ------------------------------------------------------------------

    def attach(self, services: Any, resume: list[tuple[list[str] | None, str | None]] | None = None) -> None:
        """Show an unlocked vault."""
        self.services = services
        self.values = SettingsValues.load(services.store)
        self.conversation_id = None
        self.chat.transcript.clear_all()
        self.chat.set_scope("All documents")
        self.reload_library()
        self.refresh_conversations()
        self.ollama_indicator.show_status(None)
        if self.poll_enabled:
            self.check_ollama()
            self._poll_timer.start()
        if self.warm_embedder:
            # Load the embedding model now, in the background, so the first question or drop
            # does not wait for it (it takes a second or so).
            self.pool.run(lambda: load_embedder(services), "load the embedder", on_error=self._report_error)
        for paths, collection in resume or []:
            self.index_paths(paths, collection)

    def detach(self) -> list[tuple[list[str] | None, str | None]]:
        """Stop all work and forget everything shown. Returns the indexing that was cut short,
        so it can resume after the next unlock."""
        self.save_layout()
        self._poll_timer.stop()
        self._watch_timer.stop()
        self._stream_timer.stop()
        interrupted = list(self._interrupted)
        if self._index_job is not None:
            interrupted.append((self._index_job.paths, self._index_job.options.get("collection")))
        interrupted.extend(self._index_queue)
        self._index_queue.clear()
        self._interrupted = []
        for worker in (self._index_worker, self._chat_worker, self._probe_worker):
            if worker is not None:
                worker.cancel()
        self._index_worker = self._index_job = self._chat_worker = self._probe_worker = None
        self._streaming = None
        watched = self.watcher.directories() + self.watcher.files()
        if watched:
            self.watcher.removePaths(watched)
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
        clipboard = QGuiApplication.clipboard()
        if self._copied is not None and clipboard.text() == self._copied:
            clipboard.clear()  # an answer copied from the vault does not outlive the lock
        self._copied = None
        self._collection_names = {}
        self.conversation_id = None
        self.services = None
        self.hide()
        return interrupted

    # --- library ------------------------------------------------------------------------

    def reload_library(self) -> None:
        if self.services is None:
            return
        store = self.services.store
        self.pool.run(lambda: load_library(store), "load library", on_result=self._library_loaded,
                      on_error=self._report_error)

    def _library_loaded(self, snapshot: LibrarySnapshot) -> None:
        if self.services is None:
            return
        self._collection_names = {c.id: c.name for c in snapshot.collections}
        self.library.set_library(snapshot.collections, snapshot.documents)
        self.chat.set_conversations(snapshot.conversations, self.conversation_id)
        self._refresh_watches(snapshot)
        self.library_loaded.emit()

    def _scope_changed(self, collection: Any) -> None:
        self.chat.set_scope(collection.name if collection is not None else "All documents")

    def new_collection(self) -> None:
        if self.services is None:
            return
        name, ok = QInputDialog.getText(self, "New collection", "Name of the new collection:")
        name = name.strip()
        if not ok or not name:
            return
        store = self.services.store
        self.pool.run(lambda: store.collection(name), "new collection",
                      on_result=lambda _c: self.reload_library(), on_error=self._report_error)

    # --- adding and indexing --------------------------------------------------------------

    def _pick(self, folder: bool) -> list[str]:
        dialog = QFileDialog(self, "Add a folder" if folder else "Add files", os.path.expanduser("~"))
        if folder:
            dialog.setFileMode(QFileDialog.FileMode.Directory)
            dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        else:
            dialog.setFileMode(QFileDialog.FileMode.ExistingFiles)
        chosen = dialog.selectedFiles() if dialog.exec() else []
        import shiboken6

        shiboken6.delete(dialog)  # its destructor writes Qt's history: scrub it right after
        scrub_file_dialog_history()
        return chosen

    def add_files(self) -> None:
        if self.services is not None:
            paths = self._pick(folder=False)
            if paths:
                self.index_paths(paths)

    def add_folder(self) -> None:
        if self.services is not None:
            paths = self._pick(folder=True)
            if paths:
                self.index_paths(paths)

    def index_paths(self, paths: list[str] | None, collection: str | None = None) -> None:
        """Index files and folders (None: sync the watched folders) into `collection` (default:
        the one chosen in the library). Runs one job at a time; the rest waits its turn."""
        if self.services is None:
            return
        if collection is None and paths is not None:
            current = self.library.current_collection()
            collection = current.name if current is not None else None
        if self._index_worker is not None:
            if (paths, collection) not in self._index_queue:
                self._index_queue.append((paths, collection))
            return
        options = dict(self.index_options)
        options.setdefault("max_tokens", self.values.chunk_tokens)
        options["overlap_tokens"] = min(options.get("overlap_tokens", 32), options["max_tokens"] // 4)
        if collection:
            options["collection"] = collection
        job = IndexJob(self.services, paths, options)
        worker = Worker(job, "index", cancel=job.cancel)
        self._index_job, self._index_worker = job, worker
        self._index_problems = 0
        self.index_status.running(_EmptyProgress(), 0)
        self.pool.submit(worker, on_item=self._index_update, on_error=self._index_error,
                         on_finished=lambda w=worker: self._index_done(w))

    def _index_update(self, update: IndexUpdate) -> None:
        if self.services is None:
            return
        self._index_problems += sum(1 for o in update.outcomes if o.status in PROBLEM_STATUSES)
        if update.documents:
            self.library.upsert(update.documents)
        if update.removed:
            self.library.remove_ids(update.removed)
        p = update.progress
        self._last_progress = p
        if p.done:
            self.index_status.finished(p, self._index_problems)
        else:
            self.index_status.running(p, self._index_problems)

    def _index_error(self, error: WorkerError) -> None:
        self.index_status.reset()
        self._report_error(error, "Indexing stopped")

    def _index_done(self, worker: Worker) -> None:
        if worker is not self._index_worker:
            return
        last = self._last_progress
        self._index_worker = self._index_job = None
        self._last_progress = None
        if self.services is None:
            return
        self.reload_library()
        if last is not None:
            self.index_finished.emit(last)
        if self._index_queue:
            paths, collection = self._index_queue.pop(0)
            self.index_paths(paths, collection)

    def cancel_indexing(self) -> None:
        if self._index_worker is not None:
            self._index_worker.cancel()
        self._index_queue.clear()

    @property
    def indexing(self) -> bool:
        return self._index_worker is not None

    def reindex(self, docs: list[Document]) -> None:
        by_collection: dict[str | None, list[str]] = {}
        for doc in docs:
            by_collection.setdefault(self._collection_names.get(doc.collection_id), []).append(doc.path)
        for collection, paths in by_collection.items():
            self.index_paths(paths, collection)

    def remove_documents(self, docs: list[Document]) -> None:
        if self.services is None or not docs:
            return
        what = f"“{docs[0].title}”" if len(docs) == 1 else f"{len(docs)} documents"
        if not self.confirm(
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

        self.pool.run(remove, "remove documents",
                      on_result=lambda removed: (self.library.remove_ids(removed), self.reload_library()),
                      on_error=self._report_error)

    def _show_problems(self) -> None:
        combo = self.library.status_filter
        combo.setCurrentIndex(combo.findData("problems"))
        self.library.view.setFocus()

    # --- folder watching ------------------------------------------------------------------

    def _refresh_watches(self, snapshot: LibrarySnapshot) -> None:
        if not self.watch_enabled:
            return
        folders = [f for c in snapshot.collections for f in c.folders]
        if not folders:
            return
        self.pool.run(lambda: _watch_list(folders), "list watched folders",
                      on_result=self._watch, on_error=self._report_error)

    def _watch(self, paths: list[str]) -> None:
        if self.services is None:
            return
        current = set(self.watcher.directories()) | set(self.watcher.files())
        fresh = [p for p in paths if p not in current]
        if fresh:
            self.watcher.addPaths(fresh)

    def _folder_changed(self, _path: str) -> None:
        if self.services is not None:
            self._watch_timer.start()  # debounced: a copy of 100 files is one sync

    def sync_folders(self) -> None:
        if self.services is None:
            return
        if self._index_worker is not None:
            if (None, None) not in self._index_queue:
                self._index_queue.append((None, None))
            return
        self.index_paths(None)

    # --- drag and drop --------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if _local_paths(event) and self.services is not None:
            event.acceptProposedAction()
            self.overlay.cover()
        else:
            event.ignore()

    def dragMoveEvent(self, event: Any) -> None:  # noqa: N802
        if _local_paths(event) and self.services is not None:
            event.acceptProposedAction()

    def dragLeaveEvent(self, event: Any) -> None:  # noqa: N802
        self.overlay.hide()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        self.overlay.hide()
        paths = _local_paths(event)
        if paths and self.services is not None:
            event.acceptProposedAction()
            self.index_paths(paths)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop, QEvent.Type.DragLeave):
            if kind == QEvent.Type.DragLeave:
                self.overlay.hide()
                return False
            if _local_paths(event):
                if kind == QEvent.Type.DragEnter:
                    self.dragEnterEvent(event)  # type: ignore[arg-type]
                elif kind == QEvent.Type.DragMove:
                    self.dragMoveEvent(event)
                else:
                    self.dropEvent(event)  # type: ignore[arg-type]
                return True
        return super().eventFilter(watched, event)

    # --- asking -------------------------------------------------------------------------

    @property
    def answering(self) -> bool:
        return self._chat_worker is not None

    def ask(self, question: str | None = None) -> None:
        if self.services is None or self._chat_worker is not None:
            return
        question = (question or self.chat.question_text()).strip()
        if not question:
            return
        collection = self.library.current_collection()
        collection_ids = [collection.id] if collection is not None else None
        entries = self.chat.transcript.entries
        user = TranscriptEntry(key=len(entries), role="user", text=question)
        entries.append(user)
        answer = TranscriptEntry(key=len(entries), role="assistant", text="",
                                 mode="extractive" if self._extractive_expected() else "llm",
                                 model=self.ollama.model if self.ollama and self.ollama.reachable else None)
        self._streaming = answer
        self.chat.transcript.begin_stream(answer)
        self.chat.question.clear()
        self.sources.clear()
        self.chat.set_busy(True)
        job = ChatJob(self.services, question, self.conversation_id, collection_ids)
        worker = Worker(job, "ask", cancel=job.cancel)
        self._chat_worker = worker
        self.pool.submit(worker, on_item=self._chat_event, on_error=self._chat_error,
                         on_finished=lambda w=worker: self._chat_done(w))

    def _extractive_expected(self) -> bool:
        return self.ollama is not None and (not self.ollama.reachable or self.ollama.model_missing)

    def _chat_event(self, event: Any) -> None:
        entry = self._streaming
        if entry is None or self.services is None:
            return
        if event.kind == "sources":
            items = [SourceItem.from_hit(s.n, s.hit) for s in event.sources]
            self.sources.set_sources(items)
            self._streaming = replace(entry, citations=tuple(s.citation() for s in event.sources))
            if event.conversation_id != self.conversation_id:
                self.conversation_id = event.conversation_id
                self.refresh_conversations()
        elif event.kind == "token":
            self._streaming = replace(entry, text=entry.text + event.text)
            if not self._stream_timer.isActive():
                self._stream_timer.start()
        elif event.kind == "notice":
            self._streaming = replace(entry, notice=event.notice)
            if entry.mode != "extractive" and not entry.text:
                self._streaming = replace(self._streaming, mode="extractive")
        elif event.kind == "done":
            self._stream_timer.stop()
            final = replace(entry, text=event.answer, mode=event.mode, status=event.status,
                            notice=event.notice, citations=tuple(event.citations) or entry.citations,
                            model=event.model)
            if event.mode == "extractive":
                final = replace(final, citations=tuple(event.citations))
            self._streaming = None
            self.chat.transcript.end_stream(final)
            self.sources.model.mark_cited({int(c["n"]) for c in event.citations})
            self.conversation_id = event.conversation_id
            self.refresh_conversations()
            self.answer_finished.emit(event)

    def _flush_stream(self) -> None:
        if self._streaming is not None:
            self.chat.transcript.update_stream(self._streaming)

    def _chat_error(self, error: WorkerError) -> None:
        entry = self._streaming
        if entry is not None:
            self._streaming = None
            self.chat.transcript.end_stream(replace(entry, status="failed",
                                                    notice=f"The question could not be answered: {error.message}"))

    def _chat_done(self, worker: Worker) -> None:
        if worker is not self._chat_worker:
            return
        self._chat_worker = None
        if self._streaming is not None:  # ended without "done" (cancelled before it began)
            self.chat.transcript.end_stream(replace(self._streaming, status="stopped"))
            self._streaming = None
        self.chat.set_busy(False)
        self.chat.question.setFocus()

    def stop(self) -> None:
        if self._chat_worker is not None:
            self._chat_worker.cancel()

    def regenerate(self) -> None:
        users = [e for e in self.chat.transcript.entries if e.role == "user"]
        if users and not self.answering:
            self.ask(users[-1].text)

    def copy_answer(self) -> None:
        answers = [e for e in self.chat.transcript.entries if e.role == "assistant" and e.text]
        if not answers:
            return
        last = answers[-1]
        text = last.text.strip()
        if last.citations:
            text += "\n\nSources:\n" + "\n".join(
                f"[{c['n']}] {c.get('title', '')}, p. {c.get('page', '?')} — {c.get('path', '')}"
                for c in last.citations)
        QGuiApplication.clipboard().setText(text)
        self._copied = text
        self.statusBar().showMessage("The answer and its sources were copied.", 4000)

    # --- conversations ------------------------------------------------------------------

    def refresh_conversations(self) -> None:
        if self.services is not None:
            self.chat.set_conversations(self.services.store.conversations(), self.conversation_id)

    def open_conversation(self, conversation_id: int | None) -> None:
        if self.services is None or self.answering:
            return
        self.conversation_id = conversation_id
        if conversation_id is None:
            self.new_conversation()
            return
        messages = self.services.store.messages(conversation_id)
        entries = self.chat.show_messages(messages)
        self.sources.set_sources(_sources_of_last_answer(entries))

    def new_conversation(self) -> None:
        if self.answering:
            return
        self.conversation_id = None
        self.chat.transcript.clear_all()
        self.chat.conversation_view.clearSelection()
        self.sources.clear()
        self.chat.set_busy(False)
        self.chat.question.setFocus()

    def _rename_conversation(self, conversation_id: int, title: str) -> None:
        if self.services is None:
            return
        store = self.services.store
        self.pool.run(lambda: store.rename_conversation(conversation_id, title), "rename conversation",
                      on_result=lambda _r: self.refresh_conversations(), on_error=self._report_error)

    def _delete_conversation(self, conversation_id: int) -> None:
        if self.services is None or not self.confirm(
                "Delete conversation", "Delete this conversation and its answers from the vault?"):
            return
        store = self.services.store
        if conversation_id == self.conversation_id:
            self.new_conversation()
        self.pool.run(lambda: store.delete_conversation(conversation_id), "delete conversation",
                      on_result=lambda _r: self.refresh_conversations(), on_error=self._report_error)

    # --- preview ------------------------------------------------------------------------

    def open_preview(self, target: PreviewTarget) -> None:
        if self.services is None:
            return
        if self.preview is None:
            self.preview = PreviewDialog(lambda: self.services.store if self.services else None, self.pool, self)
        self.preview.show_target(target)

    # --- Ollama -------------------------------------------------------------------------

    def check_ollama(self) -> None:
        if self.services is None:
            return
        if self._probe_worker is not None:
            self._probe_again = True  # the settings may have changed since it started
            return
        services = self.services
        worker = Worker(lambda: probe_ollama(services), "probe ollama")
        self._probe_worker = worker
        self._probe_again = False
        self.pool.submit(worker, on_result=self._ollama_status, on_error=self._report_error,
                         on_finished=self._probe_done)

    def _probe_done(self) -> None:
        self._probe_worker = None
        if self._probe_again:
            self._probe_again = False
            self.check_ollama()

    def _ollama_status(self, status: OllamaStatus) -> None:
        if self.services is None:
            return
        self.ollama = status
        self.ollama_indicator.show_status(status)
        self.banner.show_status(status)
        if not status.reachable:
            self.chat.set_mode_note("Ollama is not reachable: answers will be the most relevant passages "
                                    "from your documents (extractive), not written by a model.")
        elif status.model_missing:
            self.chat.set_mode_note("No chat model is available: answers will be extractive passages.")
        else:
            self.chat.set_mode_note(None)
        self.ollama_checked.emit(status)

    # --- settings -----------------------------------------------------------------------

    def open_settings(self) -> None:
        if self.services is None:
            return
        services = self.services
        self.values = SettingsValues.load(services.store)
        space = services.store.vector_space()
        dialog = SettingsDialog(self.values, space.embedder if space else None, self.pool,
                                lambda host: probe_ollama(services, host), os.environ.get("OLLAMA_HOST"), self)
        dialog.saved.connect(self._save_settings)
        dialog.finished.connect(lambda _r: setattr(self, "settings_dialog", None))
        self.settings_dialog = dialog
        dialog.show()
        if self.ollama is not None and self.ollama.reachable:
            dialog.show_status(self.ollama)

    def _save_settings(self, values: SettingsValues) -> None:
        if self.services is None:
            return
        store = self.services.store
        old = self.values
        self.values = values
        services = self.services

        def save() -> SettingsValues:
            values.save(store)
            store.audit("settings changed")
            return values

        def saved(_v: SettingsValues) -> None:
            if old.embedder != values.embedder and services is self.services:
                services._embedder = None  # loaded again, the new choice, on next use
            self.settings_changed(values)

        self.pool.run(save, "save settings", on_result=saved, on_error=self._report_error)

    def settings_changed(self, values: SettingsValues) -> None:
        self.settings_saved.emit(values)
        self.check_ollama()

    # --- help ---------------------------------------------------------------------------

    def show_shortcuts(self) -> None:
        rows = "\n".join(f"{keys:<16}{what}" for what, keys in shortcut_list())
        box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard shortcuts", rows, QMessageBox.StandardButton.Close, self)
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

    # --- odds and ends --------------------------------------------------------------------

    def _confirm(self, title: str, text: str) -> bool:
        box = QMessageBox(QMessageBox.Icon.Question, title, text,
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        return box.exec() == QMessageBox.StandardButton.Yes

    def _report_error(self, error: WorkerError, what: str = "Something went wrong") -> None:
        if self.services is None:
            return  # locked meanwhile: the work was cut off on purpose
        self.statusBar().showMessage(f"{what}: {error.message}", 10000)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self.services is not None:
            event.ignore()
            self.quit_requested.emit()
            return
        super().closeEvent(event)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self.overlay.isVisible():
            self.overlay.cover()


class _EmptyProgress:
    files_total = files_done = pages = 0
    rate = 0.0
    eta = None


def _watch_list(folders: list[str]) -> list[str]:
    """The folders (recursively) and files to watch, up to MAX_WATCHED (runs on a worker)."""
    out: list[str] = []
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            out.append(root)
            out.extend(os.path.join(root, f) for f in sorted(files) if not f.startswith("."))
            if len(out) >= MAX_WATCHED:
                log.info("watching the first %d paths; Sync catches up with the rest", MAX_WATCHED)
                return out[:MAX_WATCHED]
    return out


def _sources_of_last_answer(entries: list[TranscriptEntry]) -> list[SourceItem]:
    """The sources pane for a conversation read back: the last answer's citations, with the
    question's words marked in their snippets again."""
    from ragdesk.core.retrieval import snippet
    from ragdesk.core.store.keyword import query_terms

    question = ""
    for entry in entries:
        if entry.role == "user":
            question = entry.text
    answers = [e for e in entries if e.role == "assistant" and e.citations]
    if not answers:
        return []
    terms = query_terms(question, limit=None)
    items = []
    for c in answers[-1].citations:
        text_snippet, marks = snippet(str(c.get("text") or ""), terms, 240)
        items.append(SourceItem.from_citation(c, marks=marks, snippet=text_snippet))
    return items
