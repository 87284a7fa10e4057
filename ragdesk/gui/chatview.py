"""The chat pane (conversations, the transcript, the question box) and the sources pane.

The transcript is a QTextBrowser fed Markdown built by gui/render.py: document-derived text is
escaped there, raw HTML is switched off at import (``MarkdownNoHTML``), and the browser loads no
resource at all, so nothing from a document can become live markup, an image or a link. The only
links are the `[n]` citations (``cite:`` URLs), handled here and never opened by Qt.

While an answer streams, only its own part of the document is replaced, at most every 50 ms,
so long conversations stay smooth.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    QRectF,
    QSize,
    Qt,
    QUrl,
    Signal,
)
from PySide6.QtGui import QKeySequence, QPainter, QPalette, QTextCharFormat, QTextCursor, QTextDocument
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ragdesk.core.records import Conversation, Message
from ragdesk.gui import icons
from ragdesk.gui.library import TITLE_HEIGHT, pane_title
from ragdesk.gui.models import (
    ConversationListModel,
    RecordRole,
    SourceItem,
    SourceListModel,
)
from ragdesk.gui.render import (
    TranscriptEntry,
    assistant_body,
    assistant_heading,
    check_url,
    entry_markdown,
    grounding_marks,
    marked_html,
    meaningful_marks,
    parse_check_url,
    parse_cite_url,
    tooltip,
)

log = logging.getLogger("ragdesk.gui.chat")

# CommonMark, not GitHub's dialect: no bare-URL autolinks, so only RagDesk's citations are links.
MARKDOWN = (QTextDocument.MarkdownFeature.MarkdownDialectCommonMark
            | QTextDocument.MarkdownFeature.MarkdownNoHTML)
STREAM_REFRESH_MS = 50


class Transcript(QTextBrowser):
    """The conversation as rendered Markdown; citations are links that open a preview.

    `entry_focused` says which message the user has put the cursor in (a click, a selection,
    a link reached with Tab); re-rendering the conversation does not count."""

    citation_clicked = Signal(dict)
    entry_focused = Signal(object)  # the TranscriptEntry's key, or None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("transcript")
        self.setAccessibleName("Conversation")
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setUndoRedoEnabled(False)
        self.anchorClicked.connect(self._anchor)
        self.document().setDocumentMargin(14)
        self.entries: list[TranscriptEntry] = []
        self._stream_start: int | None = None
        self._quiet = False
        self.focused_key: int | None = None
        # Whether sentences the sources do not support are marked (Settings; the check always runs).
        self.show_marks = True
        self.cursorPositionChanged.connect(self._cursor_moved)
        self._placeholder()

    def set_marks(self, show: bool) -> None:
        """Show or hide the marks on unsupported and uncited sentences."""
        if show == self.show_marks:
            return
        self.show_marks = show
        if self.entries and self._stream_start is None:
            value = self.verticalScrollBar().value()
            self.render_all()
            self.verticalScrollBar().setValue(value)

    @contextmanager
    def _rendering(self) -> Iterator[None]:
        """Changes made here move the cursor; they are not the user's doing."""
        quiet, self._quiet = self._quiet, True
        try:
            yield
        finally:
            self._quiet = quiet

    def entry_at(self, position: int) -> TranscriptEntry | None:
        """The message shown at `position`: each starts with its level-4 heading, "You" or
        "RagDesk…" (a heading a model writes at that level with another text is not one)."""
        n = -1
        block = self.document().begin()
        while block.isValid() and block.position() <= position:
            text = block.text()
            if block.blockFormat().headingLevel() == 4 and (text == "You" or text.startswith("RagDesk")):
                n += 1
            block = block.next()
        return self.entries[n] if 0 <= n < len(self.entries) else None

    def _cursor_moved(self) -> None:
        if self._quiet or not self.entries:
            return
        entry = self.entry_at(self.textCursor().position())
        key = entry.key if entry is not None else None
        if key != self.focused_key:
            self.focused_key = key
            self.entry_focused.emit(key)

    def changeEvent(self, event: QEvent) -> None:
        # Light/dark switch: Markdown takes the palette's link colour when it is imported, so
        # the conversation is laid out again (icons follow by themselves).
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange) \
                and self.entries and self._stream_start is None:
            value = self.verticalScrollBar().value()
            self.render_all()
            self.verticalScrollBar().setValue(value)
        super().changeEvent(event)

    def resizeEvent(self, event: Any) -> None:
        # Laid out anew at another width, the conversation grows or shrinks below the view: one
        # read at its end stays at its end (a conversation reopened at start-up was rendered
        # before the window had its size, and its last lines were cut off).
        at_end = self._at_end()
        super().resizeEvent(event)
        if at_end:
            self.scroll_to_end()

    def loadResource(self, kind: int, name: QUrl | str) -> Any:
        return None  # no image, style sheet or anything else is ever loaded from the content

    def _placeholder(self) -> None:
        with self._rendering():
            self._set_placeholder()

    def _set_placeholder(self) -> None:
        self.document().setMarkdown(
            "#### Ask your documents\n\nType a question below and press **Ctrl+Enter**. "
            "Answers cite their sources as \\[1\\], \\[2\\] …: click one to see the page it comes from.",
            MARKDOWN)

    def clear_all(self) -> None:
        self.entries = []
        self._stream_start = None
        self.focused_key = None
        with self._rendering():
            self.document().clear()
            self._placeholder()

    def set_entries(self, entries: list[TranscriptEntry]) -> None:
        self.entries = list(entries)
        self._stream_start = None
        self.focused_key = None
        self.render_all()

    def render_all(self) -> None:
        if not self.entries:
            self._placeholder()
            return
        markdown = "\n\n".join(entry_markdown(e) for e in self.entries)
        with self._rendering():
            self.document().setMarkdown(markdown, MARKDOWN)
            self._mark_sentences()
        self.scroll_to_end()

    def begin_stream(self, entry: TranscriptEntry) -> None:
        """Show everything up to the new answer's heading; the answer's body follows."""
        self.entries.append(entry)
        self.focused_key = None
        before = "\n\n".join(entry_markdown(e) for e in self.entries[:-1])
        with self._rendering():
            self.document().setMarkdown(f"{before}\n\n{assistant_heading(entry)}\n", MARKDOWN)
            cursor = QTextCursor(self.document())
            cursor.movePosition(QTextCursor.MoveOperation.End)
            cursor.insertBlock()
            self._stream_start = cursor.position()
        # The document was just replaced, which put the view back at its top: a new answer (a
        # question just asked, or Regenerate) is followed from its start wherever the user was.
        self.scroll_to_end()
        self.update_stream(entry)

    def update_stream(self, entry: TranscriptEntry, streaming: bool = True) -> None:
        if self._stream_start is None:
            return
        self.entries[-1] = entry
        at_end = self._at_end()
        with self._rendering():
            cursor = QTextCursor(self.document())
            cursor.setPosition(min(self._stream_start, self.document().characterCount() - 1))
            cursor.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
            cursor.removeSelectedText()
            cursor.insertMarkdown(assistant_body(entry, streaming=streaming), MARKDOWN)
        if at_end:
            self.scroll_to_end()

    def end_stream(self, entry: TranscriptEntry) -> None:
        """The answer is complete: render the whole conversation once more, since the heading
        (model, extractive or not) is only known now."""
        if self._stream_start is None:
            return
        self.entries[-1] = entry
        self._stream_start = None
        at_end = self._at_end()
        value = self.verticalScrollBar().value()
        self.render_all()
        if not at_end:
            self.verticalScrollBar().setValue(value)

    def _entry_starts(self) -> list[int]:
        """Where each message begins in the document (its level-4 heading, as in `entry_at`)."""
        starts = []
        block = self.document().begin()
        while block.isValid():
            text = block.text()
            if block.blockFormat().headingLevel() == 4 and (text == "You" or text.startswith("RagDesk")):
                starts.append(block.position())
            block = block.next()
        return starts

    def _mark_sentences(self) -> None:
        """Underline (dotted) the sentences of each answer that its sources do not support or
        that cite none, with a tooltip saying why and which passage came closest; a click on
        one opens that passage. Found by their text within their own answer."""
        if not self.show_marks:
            return
        starts = self._entry_starts()
        doc = self.document()
        for i, entry in enumerate(self.entries):
            if entry.role != "assistant" or not entry.grounding or i >= len(starts):
                continue
            end = starts[i + 1] if i + 1 < len(starts) else doc.characterCount()
            position = starts[i]
            for mark in grounding_marks(entry):
                found = doc.find(mark.target, position)
                if found.isNull() or found.selectionEnd() > end:
                    continue
                position = found.selectionEnd()
                fmt = QTextCharFormat()
                fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.DotLine)
                fmt.setToolTip(tooltip(mark.tooltip))
                if mark.closest is not None:
                    fmt.setAnchor(True)
                    fmt.setAnchorHref(check_url(entry.key, mark.index))
                found.mergeCharFormat(fmt)

    def _at_end(self) -> bool:
        bar = self.verticalScrollBar()
        return bar.value() >= bar.maximum() - 4

    def scroll_to_end(self) -> None:
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _anchor(self, url: QUrl) -> None:
        checked = parse_check_url(url.toString())
        if checked is not None:  # a marked sentence: open the passage that came closest
            for entry in self.entries:
                if entry.key == checked[0]:
                    for mark in grounding_marks(entry):
                        if mark.index == checked[1] and mark.closest is not None:
                            self.citation_clicked.emit(dict(mark.closest))
                            return
            return
        parsed = parse_cite_url(url.toString())
        if parsed is None:
            return  # not ours: never followed
        key, n = parsed
        for entry in self.entries:
            if entry.key == key:
                for c in entry.citations:
                    if int(c.get("n", -1)) == n:
                        self.citation_clicked.emit(dict(c))
                        return


class QuestionEdit(QPlainTextEdit):
    """The question box: Ctrl+Enter sends (handled by the window's Send action)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("questionEdit")
        self.setAccessibleName("Question")
        self.setPlaceholderText("Ask a question about your documents…  (Ctrl+Enter to send)")
        self.setToolTip("Type your question; Ctrl+Enter sends it, Esc stops the answer")
        self.setTabChangesFocus(True)

    def sizeHint(self) -> QSize:
        lines = 3
        return QSize(super().sizeHint().width(), self.fontMetrics().lineSpacing() * lines + 18)


class ChatPane(QWidget):
    ask_requested = Signal(str)
    stop_requested = Signal()
    regenerate_requested = Signal()
    copy_requested = Signal()
    conversation_selected = Signal(object)  # int | None
    new_conversation_requested = Signal()
    rename_requested = Signal(int, str)
    delete_requested = Signal(int)
    citation_clicked = Signal(dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chatPane")
        self.setAccessibleName("Chat")
        self.conversations = ConversationListModel(self)
        outer = QHBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("chatSplitter")
        self.splitter.setChildrenCollapsible(True)
        outer.addWidget(self.splitter)

        # Conversations
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(8, 10, 4, 8)
        left_layout.setSpacing(8)
        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(pane_title("Conversations"), 1)
        self.new_button = QToolButton()
        self.new_button.setIcon(icons.icon("new-chat"))
        self.new_button.setToolTip("Start a new conversation (Ctrl+N)")
        self.new_button.setAccessibleName("New conversation")
        self.new_button.setAutoRaise(True)
        self.new_button.setFixedSize(TITLE_HEIGHT, TITLE_HEIGHT)
        self.new_button.clicked.connect(self.new_conversation_requested)
        head.addWidget(self.new_button)
        left_layout.addLayout(head)
        self.conversation_view = QListView()
        self.conversation_view.setModel(self.conversations)
        self.conversation_view.setAccessibleName("Conversations")
        self.conversation_view.setToolTip("Earlier conversations; right-click to rename or delete")
        self.conversation_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.conversation_view.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.conversation_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.conversation_view.setResizeMode(QListView.ResizeMode.Adjust)
        self.conversation_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.conversation_view.customContextMenuRequested.connect(self._conversation_menu)
        self.conversation_view.clicked.connect(self._conversation_clicked)
        self.conversation_view.activated.connect(self._conversation_clicked)
        left_layout.addWidget(self.conversation_view, 1)
        self.splitter.addWidget(left)

        # Transcript and question
        right = QWidget()
        layout = QVBoxLayout(right)
        layout.setContentsMargins(4, 10, 6, 8)
        layout.setSpacing(8)
        title_row = QHBoxLayout()
        title_row.addWidget(pane_title("Chat"))
        self.scope_label = QLabel()
        self.scope_label.setTextFormat(Qt.TextFormat.PlainText)
        self.scope_label.setAccessibleName("Asking about")
        self.scope_label.setEnabled(False)
        title_row.addStretch(1)
        title_row.addWidget(self.scope_label)
        layout.addLayout(title_row)
        self.transcript = Transcript()
        self.transcript.citation_clicked.connect(self.citation_clicked)
        layout.addWidget(self.transcript, 1)
        self.mode_label = QLabel()
        self.mode_label.setObjectName("modeLabel")
        self.mode_label.setTextFormat(Qt.TextFormat.PlainText)
        self.mode_label.setWordWrap(True)
        self.mode_label.setAccessibleName("Answer mode")
        self.mode_label.hide()
        layout.addWidget(self.mode_label)
        self.question = QuestionEdit()
        layout.addWidget(self.question)
        buttons = QHBoxLayout()
        buttons.setSpacing(6)
        self.send_button = self._button("send", "Send", "Send the question (Ctrl+Enter)")
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self.send)
        self.stop_button = self._button("stop", "Stop", "Stop the answer (Esc)")
        self.stop_button.clicked.connect(self.stop_requested)
        self.regenerate_button = self._button("regenerate", "Regenerate",
                                              "Ask the last question again (Ctrl+R)")
        self.regenerate_button.clicked.connect(self.regenerate_requested)
        self.copy_button = self._button("copy", "Copy",
                                        "Copy the last answer with its sources (Ctrl+Shift+C)")
        self.copy_button.clicked.connect(self.copy_requested)
        buttons.addWidget(self.regenerate_button)
        buttons.addWidget(self.copy_button)
        buttons.addStretch(1)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.send_button)
        layout.addLayout(buttons)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([190, 520])
        self.set_busy(False)

    @staticmethod
    def _button(icon_name: str, text: str, tip: str) -> QPushButton:
        button = QPushButton(icons.icon(icon_name), text)
        button.setToolTip(tip)
        button.setAccessibleName(text)
        return button

    # --- state --------------------------------------------------------------------------

    def set_busy(self, busy: bool) -> None:
        self.send_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        has_answer = any(e.role == "assistant" for e in self.transcript.entries)
        self.regenerate_button.setEnabled(not busy and has_answer)
        self.copy_button.setEnabled(not busy and has_answer)
        self.new_button.setEnabled(not busy)
        self.conversation_view.setEnabled(not busy)

    def set_scope(self, text: str) -> None:
        self.scope_label.setText(f"Asking: {text}")
        self.scope_label.setToolTip("Questions are answered from this part of the library; "
                                    "choose a collection in the library to narrow it")

    def set_mode_note(self, text: str | None) -> None:
        if text:
            self.mode_label.setText(text)
            self.mode_label.show()
        else:
            self.mode_label.clear()
            self.mode_label.hide()

    def clear(self) -> None:
        self.conversations.clear()
        self.transcript.clear_all()
        self.question.clear()
        self.set_mode_note(None)
        self.set_busy(False)

    def set_conversations(self, items: list[Conversation], current: int | None) -> None:
        self.conversations.set_conversations(items)
        row = self.conversations.row_of(current)
        if row >= 0:
            self.conversation_view.setCurrentIndex(self.conversations.index(row))
        else:
            self.conversation_view.clearSelection()

    def show_messages(self, messages: list[Message]) -> list[TranscriptEntry]:
        entries = []
        for i, m in enumerate(messages):
            meta = m.meta or {}
            entries.append(TranscriptEntry(
                key=i, role=m.role, text=m.content, mode=meta.get("mode") or "llm", status=m.status,
                notice=meta.get("notice"), citations=tuple(m.citations), model=meta.get("model"),
                grounding=meta.get("grounding")))
        self.transcript.set_entries(entries)
        self.set_busy(False)
        return entries

    def question_text(self) -> str:
        return self.question.toPlainText().strip()

    def send(self) -> None:
        text = self.question_text()
        if text:
            self.ask_requested.emit(text)

    def _conversation_clicked(self, index: QModelIndex) -> None:
        conv = self.conversations.data(index, RecordRole)
        if conv is not None:
            self.conversation_selected.emit(conv.id)

    def _conversation_menu(self, pos: Any) -> None:
        index = self.conversation_view.indexAt(pos)
        conv = self.conversations.data(index, RecordRole) if index.isValid() else None
        if conv is None:
            return
        menu = QMenu(self)
        menu.addAction("Rename…", lambda: self._rename(conv))
        menu.addAction(icons.icon("remove"), "Delete", lambda: self.delete_requested.emit(conv.id))
        menu.exec(self.conversation_view.viewport().mapToGlobal(pos))

    def _rename(self, conv: Conversation) -> None:
        title, ok = QInputDialog.getText(self, "Rename conversation", "Title:", QLineEdit.EchoMode.Normal,
                                         conv.title)
        if ok and title.strip():
            self.rename_requested.emit(conv.id, title.strip())


class SourceDelegate(QStyledItemDelegate):
    """A source as its number, title and page, then its snippet with the matched terms in bold
    and underlined. Every piece of document text is escaped before it is laid out."""

    PAD = 8

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # Laying out rich text is the costly part of painting a source; sizeHint and paint ask
        # for the same layouts again and again.
        self._cache: dict[tuple[Any, ...], QTextDocument] = {}

    def clear_cache(self) -> None:
        self._cache.clear()

    def _document(self, item: SourceItem, width: int, palette: QPalette, selected: bool) -> QTextDocument:
        key = (item, width, selected, palette.color(QPalette.ColorRole.Text).rgba())
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if len(self._cache) > 256:
            self._cache.clear()
        doc = self._cache[key] = self._layout(item, width, palette, selected)
        return doc

    def _layout(self, item: SourceItem, width: int, palette: QPalette, selected: bool) -> QTextDocument:
        doc = QTextDocument()
        doc.setDocumentMargin(0)
        text_role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        colour = palette.color(text_role).name()
        muted = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text).name()
        if selected:
            muted = colour
        cited = " · <i>cited</i>" if item.cited else ""
        snippet_html = marked_html(item.snippet, meaningful_marks(item.snippet, item.marks))
        doc.setHtml(
            f"<div style='color:{colour}'><b>[{item.n}] {html.escape(item.title)}</b>"
            f"<span style='color:{muted}'> · p. {item.page}{cited}</span></div>"
            f"<div style='color:{colour}; margin-top:3px'>{snippet_html}</div>"
        )
        doc.setTextWidth(max(width - 2 * self.PAD, 80))
        return doc

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        item: SourceItem | None = index.data(RecordRole)
        if item is None:
            return
        self.initStyleOption(option, index)
        style = option.widget.style() if option.widget else QApplication.style()
        option.text = ""
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, option, painter, option.widget)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        doc = self._document(item, option.rect.width(), option.palette, selected)
        painter.save()
        painter.translate(option.rect.left() + self.PAD, option.rect.top() + self.PAD)
        doc.drawContents(painter, QRectF(0, 0, option.rect.width(), option.rect.height()))
        painter.restore()
        # A rule between sources, drawn in the mid colour: structure, not meaning.
        painter.save()
        painter.setPen(option.palette.color(QPalette.ColorRole.Mid))
        painter.drawLine(option.rect.left() + self.PAD, option.rect.bottom(),
                         option.rect.right() - self.PAD, option.rect.bottom())
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        item: SourceItem | None = index.data(RecordRole)
        if item is None:
            return super().sizeHint(option, index)
        view = self.parent()
        width = view.viewport().width() if isinstance(view, QListView) else 300
        doc = self._document(item, width, option.palette, False)
        return QSize(width, int(doc.size().height()) + 2 * self.PAD + 1)


class SourcesPane(QWidget):
    source_activated = Signal(object)  # SourceItem

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sourcesPane")
        self.setAccessibleName("Sources")
        self.model = SourceListModel(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 10, 10, 8)
        layout.setSpacing(8)
        layout.addWidget(pane_title("Sources"))
        self.hint = QLabel("The passages behind the answer appear here. Double-click one to see its page.")
        self.hint.setWordWrap(True)
        self.hint.setEnabled(False)
        layout.addWidget(self.hint)
        self.view = QListView()
        self.view.setModel(self.model)
        self.delegate = SourceDelegate(self.view)
        self.view.setItemDelegate(self.delegate)
        self.view.setAccessibleName("Sources of the answer")
        self.view.setToolTip("Passages found for the question; double-click or press Enter to preview")
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setWordWrap(True)
        self.view.activated.connect(self._activated)
        self.view.doubleClicked.connect(self._activated)
        layout.addWidget(self.view, 1)

    def set_sources(self, items: list[SourceItem]) -> None:
        self.delegate.clear_cache()  # document text does not outlive the list it belongs to
        self.model.set_sources(items)
        self.hint.setVisible(not items)

    def clear(self) -> None:
        self.set_sources([])

    def _activated(self, index: QModelIndex) -> None:
        item = self.model.data(index, RecordRole)
        if item is not None:
            self.source_activated.emit(item)


def shortcut_list() -> list[tuple[str, str]]:
    """What Help > Keyboard shortcuts lists; the window's actions carry the shortcuts."""

    def native(key: QKeySequence.StandardKey, fallback: str) -> str:
        return QKeySequence(key).toString(QKeySequence.SequenceFormat.NativeText) or fallback

    return [
        ("Send the question", "Ctrl+Enter"),
        ("Stop the answer", "Esc"),
        ("Add files", native(QKeySequence.StandardKey.Open, "Ctrl+O")),
        ("Add a folder", "Ctrl+Shift+O"),
        ("Filter the library", native(QKeySequence.StandardKey.Find, "Ctrl+F")),
        ("Lock the vault", "Ctrl+L"),
        ("New conversation", native(QKeySequence.StandardKey.New, "Ctrl+N")),
        ("Ask again", "Ctrl+R"),
        ("Copy the answer", "Ctrl+Shift+C"),
        ("Settings", "Ctrl+,"),
        ("Show or hide the library", "Ctrl+1"),
        ("Show or hide the conversations", "Ctrl+2"),
        ("Show or hide the sources", "Ctrl+3"),
    ]
