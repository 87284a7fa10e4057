"""Asking questions from the window: the streamed answer in the transcript, its sources in the
sources pane, stop, regenerate, copy, and the conversations list (open, new, rename, delete).

The sources pane follows the answer in focus: putting the cursor in an earlier answer (or its
question) shows that answer's sources. The conversation last opened or started is remembered
in the vault's own settings (``last_conversation``) and opened again after unlocking.

Until the first word of an answer arrives, the transcript says what is happening: searching,
then how many sources were found and which model is being waited for.

A question runs as a `ChatJob` on the worker pool; its events arrive here in order ("sources",
"token"..., "notice", "done"). Tokens are gathered and drawn at most every 50 ms, so a fast
model does not redraw the transcript for every word.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QGuiApplication

from ragdesk.core.records import Conversation
from ragdesk.core.retrieval import snippet
from ragdesk.core.store.keyword import query_terms
from ragdesk.gui.chatview import ChatPane, SourcesPane
from ragdesk.gui.controllers.host import Host
from ragdesk.gui.models import SourceItem
from ragdesk.gui.render import TranscriptEntry
from ragdesk.gui.workers import ChatJob, OllamaStatus, Worker, WorkerError, WorkerPool

if TYPE_CHECKING:
    from ragdesk.app import Services


STREAM_REDRAW_MS = 50
LAST_CONVERSATION = "last_conversation"  # the vault setting: the conversation to reopen


class ConversationController(QObject):
    """Questions, answers and conversations, shown in the chat and sources panes."""

    answer_finished = Signal(object)  # the "done" ChatEvent
    ollama_outcome = Signal(object)  # the "done" ChatEvent, just before answer_finished

    def __init__(
        self,
        pool: WorkerPool,
        chat: ChatPane,
        sources: SourcesPane,
        host: Host,
        *,
        scope: Callable[[], list[int] | None],
        ollama: Callable[[], OllamaStatus | None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.pool = pool
        self.chat = chat
        self.sources = sources
        self.host = host
        self.scope = scope  # the collection ids a question searches (None: all)
        self.ollama = ollama  # Ollama's last known status, for what kind of answer to expect
        self.services: Services | None = None
        self.conversation_id: int | None = None
        self.streaming: TranscriptEntry | None = None  # the answer being written
        self._worker: Worker | None = None
        self._copied: str | None = None
        # The sources found for the answers asked in this session (all of them, cited or not),
        # by transcript key; answers read back from the vault show their citations.
        self._found: dict[int, list[SourceItem]] = {}
        self.chat.transcript.entry_focused.connect(self.focus_entry)
        self.stream_timer = QTimer(self)
        self.stream_timer.setSingleShot(True)
        self.stream_timer.setInterval(STREAM_REDRAW_MS)
        self.stream_timer.timeout.connect(self._flush_stream)

    def attach(self, services: Services) -> None:
        self.services = services
        self.conversation_id = None
        self._found = {}
        self.chat.transcript.clear_all()
        self.refresh_conversations()
        self.reopen_last()

    def reopen_last(self) -> None:
        """Open the conversation that was open last time, if it still exists."""
        if self.services is None:
            return
        store = self.services.store
        last = store.get_setting(LAST_CONVERSATION)
        if isinstance(last, int) and store.conversation(last) is not None:
            self.open_conversation(last)
            self.refresh_conversations()

    def detach(self) -> None:
        """Stop the answer; an answer copied from the vault does not outlive the lock."""
        self.stream_timer.stop()
        if self._worker is not None:
            self._worker.cancel()
        self._worker = None
        self.streaming = None
        clipboard = QGuiApplication.clipboard()
        if self._copied is not None and clipboard.text() == self._copied:
            clipboard.clear()
        self._copied = None
        self.conversation_id = None
        self._found = {}
        self.services = None

    def _remember(self, conversation_id: int | None) -> None:
        """Keep the conversation to reopen next time (in the vault: its id says nothing of it,
        but nothing about conversations is kept outside the vault)."""
        if self.services is None:
            return
        store = self.services.store
        if store.get_setting(LAST_CONVERSATION) == conversation_id:
            return
        self.pool.run(lambda: store.set_setting(LAST_CONVERSATION, conversation_id), "remember conversation",
                      on_error=self.host.report_error)

    # --- asking -------------------------------------------------------------------------

    @property
    def answering(self) -> bool:
        return self._worker is not None

    def ask(self, question: str | None = None) -> None:
        """Ask `question` (default: the text in the question box) in the current conversation."""
        if self.services is None or self._worker is not None:
            return
        question = (question or self.chat.question_text()).strip()
        if not question:
            return
        status = self.ollama()
        entries = self.chat.transcript.entries
        user = TranscriptEntry(key=len(entries), role="user", text=question)
        entries.append(user)
        extractive = _extractive_expected(status)
        model = status.model if status and status.reachable else None
        if model is None and not extractive:
            model = self.services.chat_settings().model  # the one chosen in Settings, if any
        answer = TranscriptEntry(key=len(entries), role="assistant", text="",
                                 mode="extractive" if extractive else "llm", model=model,
                                 waiting="Searching your documents…")
        self.streaming = answer
        self.chat.transcript.begin_stream(answer)
        self.chat.question.clear()
        self.sources.clear()
        self.chat.set_busy(True)
        job = ChatJob(self.services, question, self.conversation_id, self.scope())
        worker = Worker(job, "ask", cancel=job.cancel)
        self._worker = worker
        self.pool.submit(worker, on_item=self._event, on_error=self._error,
                         on_finished=partial(self._done, worker))

    def _event(self, event: Any) -> None:
        entry = self.streaming
        if entry is None or self.services is None:
            return
        if event.kind == "sources":
            items = [SourceItem.from_hit(s.n, s.hit) for s in event.sources]
            self.sources.set_sources(items)
            self._found[entry.key] = items
            self.streaming = replace(entry, citations=tuple(s.citation() for s in event.sources),
                                     waiting=_waiting_text(len(items), entry))
            self._flush_stream()
            if event.conversation_id != self.conversation_id:
                self.conversation_id = event.conversation_id
                self._remember(self.conversation_id)
                self.refresh_conversations()
        elif event.kind == "token":
            self.streaming = replace(entry, text=entry.text + event.text)
            if not self.stream_timer.isActive():
                self.stream_timer.start()
        elif event.kind == "notice":
            self.streaming = replace(entry, notice=event.notice)
            if entry.mode != "extractive" and not entry.text:
                self.streaming = replace(self.streaming, mode="extractive")
        elif event.kind == "done":
            self.stream_timer.stop()
            final = replace(entry, text=event.answer, mode=event.mode, status=event.status,
                            notice=event.notice, citations=tuple(event.citations) or entry.citations,
                            model=event.model, grounding=event.grounding)
            if event.mode == "extractive":
                final = replace(final, citations=tuple(event.citations))
            final = replace(final, waiting=None)
            self.streaming = None
            self.chat.transcript.end_stream(final)
            self.sources.model.mark_cited({int(c["n"]) for c in event.citations})
            self.conversation_id = event.conversation_id
            self.refresh_conversations()
            self.ollama_outcome.emit(event)
            self.answer_finished.emit(event)

    def _flush_stream(self) -> None:
        if self.streaming is not None:
            self.chat.transcript.update_stream(self.streaming)

    def _error(self, error: WorkerError) -> None:
        entry = self.streaming
        if entry is not None:
            self.streaming = None
            self.chat.transcript.end_stream(replace(
                entry, status="failed", notice=f"The question could not be answered: {error.message}"))

    def _done(self, worker: Worker) -> None:
        if worker is not self._worker:
            return
        self._worker = None
        if self.streaming is not None:  # ended without "done" (cancelled before it began)
            self.chat.transcript.end_stream(replace(self.streaming, status="stopped"))
            self.streaming = None
        self.chat.set_busy(False)
        self.chat.question.setFocus()

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    def regenerate(self) -> None:
        users = [e for e in self.chat.transcript.entries if e.role == "user"]
        if users and not self.answering:
            self.ask(users[-1].text)

    def copy_answer(self) -> None:
        """Put the last answer, with a list of its sources, on the clipboard."""
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
        self.host.show_message("The answer and its sources were copied.", 4000)

    # --- conversations ------------------------------------------------------------------

    def refresh_conversations(self) -> None:
        if self.services is not None:
            self.show_conversations(self.services.store.conversations())

    def show_conversations(self, conversations: list[Conversation]) -> None:
        self.chat.set_conversations(conversations, self.conversation_id)

    def open_conversation(self, conversation_id: int | None) -> None:
        if self.services is None or self.answering:
            return
        self.conversation_id = conversation_id
        if conversation_id is None:
            self.new_conversation()
            return
        self._remember(conversation_id)
        self._found = {}
        messages = self.services.store.messages(conversation_id)
        entries = self.chat.show_messages(messages)
        answers = [e for e in entries if e.role == "assistant"]
        self.sources.set_sources(_sources_of(entries, answers[-1].key) if answers else [])

    def focus_entry(self, key: int | None) -> None:
        """The user put the cursor in message `key`: show its answer's sources (a question
        shows the sources of its answer). While an answer is written, its sources stay."""
        if key is None or self.answering:
            return
        entries = self.chat.transcript.entries
        answer = next((e for e in entries if e.key >= key and e.role == "assistant"), None)
        if answer is None:
            return
        found = self._found.get(answer.key)
        if found is not None:
            cited = {int(c["n"]) for c in answer.citations}
            self.sources.set_sources(found)
            self.sources.model.mark_cited(cited)
        else:
            self.sources.set_sources(_sources_of(entries, answer.key))

    def new_conversation(self) -> None:
        if self.answering:
            return
        self.conversation_id = None
        self._found = {}
        self._remember(None)
        self.chat.transcript.clear_all()
        self.chat.conversation_view.clearSelection()
        self.sources.clear()
        self.chat.set_busy(False)
        self.chat.question.setFocus()

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        if self.services is None:
            return
        store = self.services.store
        self.pool.run(lambda: store.rename_conversation(conversation_id, title), "rename conversation",
                      on_result=lambda _r: self.refresh_conversations(), on_error=self.host.report_error)

    def delete_conversation(self, conversation_id: int) -> None:
        if self.services is None or not self.host.confirm(
                "Delete conversation", "Delete this conversation and its answers from the vault?"):
            return
        store = self.services.store
        if conversation_id == self.conversation_id:
            self.new_conversation()
        self.pool.run(lambda: store.delete_conversation(conversation_id), "delete conversation",
                      on_result=lambda _r: self.refresh_conversations(), on_error=self.host.report_error)


def _extractive_expected(status: OllamaStatus | None) -> bool:
    """Whether the answer will be passages rather than a model's text, as far as is known."""
    return status is not None and (not status.reachable or status.model_missing)


def _waiting_text(found: int, entry: TranscriptEntry) -> str:
    """What the transcript says between the sources and the answer's first word."""
    sources = "No source found" if not found else f"Found {found} source{'s' if found != 1 else ''}"
    if entry.mode == "extractive":
        return f"{sources} · preparing the passages (Ollama is not available)…"
    return f"{sources} · waiting for {entry.model or 'the model'}…  (Esc stops)"


def _sources_of(entries: list[TranscriptEntry], key: int) -> list[SourceItem]:
    """The sources pane for the answer `key` read back: its citations, with its question's
    words marked in their snippets again."""
    question = ""
    answer = None
    for entry in entries:
        if entry.key == key:
            answer = entry
            break
        if entry.role == "user":
            question = entry.text
    if answer is None or not answer.citations:
        return []
    terms = query_terms(question, limit=None)
    items = []
    for c in answer.citations:
        text_snippet, marks = snippet(str(c.get("text") or ""), terms, 240)
        items.append(SourceItem.from_citation(c, marks=marks, snippet=text_snippet))
    return items
