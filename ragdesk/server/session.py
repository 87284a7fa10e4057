"""What the server keeps for remote askers: their conversations in memory, their audit trail in
the vault, written in batches.

Remote clients' conversations are not mixed into the vault owner's conversation list: each lives
in this process's memory (per token, the oldest dropped past a bound, all gone when the server
stops), which is also what OpenAI- and Ollama-style clients expect (they resend the history).
Every access and every question is still recorded in the vault's append-only audit log.

Why batches: the vault syncs the disk on every commit (about 7 ms here). A burst of 500
questions written one transaction each would queue 2,000+ syncs before the first answer; the
`AuditWriter` thread commits whatever has accumulated in one transaction instead (group commit).

`RemoteStore` is the Store a server-side `ChatService` is given: conversations and audit go to
the two objects above, everything else (search, documents, settings) to the vault.
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ragdesk.core.records import Conversation, Message
from ragdesk.core.store.base import AuditLog, Store

log = logging.getLogger("ragdesk.server.session")

MAX_CONVERSATIONS = 5000
MAX_MESSAGES = 40  # per conversation; older turns are dropped (the chat uses the last few)


class AuditWriter:
    """Appends audit events to the vault from one thread, many per transaction.

    `add` only appends to a list: it wakes no thread. The writer drains the list every
    INTERVAL seconds (at once when it holds max_batch events, or on `flush`/`stop`). Why: a
    queue that woke the writer for each event cost the LAN server two thread switches, each
    contending for the interpreter lock, per request; at 40 questions a second that was 12 % of
    the time the lock was held (py-spy, issue 21). An event reaches the vault within INTERVAL
    (the window a crash could lose, as it could lose the queued events before)."""

    INTERVAL = 0.2

    def __init__(self, store: AuditLog, max_batch: int = 2000) -> None:
        self.store = store
        self.max_batch = max_batch
        self._pending: collections.deque[tuple[float, str, dict[str, Any]]] = collections.deque()
        self._wake = threading.Event()
        self._stopping = False
        self._done = threading.Condition()  # guards the two counts
        self._taken = 0  # events taken from _pending to be written
        self._written_up_to = 0  # of those, written (or failed)
        self._thread: threading.Thread | None = None
        self.written = 0
        self.failed = 0

    def start(self) -> AuditWriter:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="ragdesk-audit", daemon=True)
            self._thread.start()
        return self

    def add(self, event: str, **detail: Any) -> None:
        self._pending.append((time.time(), event, detail))  # (atomic: no lock, no wake-up)
        if len(self._pending) >= self.max_batch:
            self._wake.set()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything added so far is written (True) or the timeout passes."""
        if self._thread is None:
            return False
        with self._done:
            target = self._taken + len(self._pending)
            self._wake.set()
            return self._done.wait_for(lambda: self._written_up_to >= target, timeout)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.INTERVAL)
            self._wake.clear()
            stopping = self._stopping
            while self._pending:
                batch: list[tuple[float, str, dict[str, Any]]] = []
                with self._done:
                    while self._pending and len(batch) < self.max_batch:
                        batch.append(self._pending.popleft())
                    self._taken += len(batch)
                try:
                    self.store.audit_many(batch)
                    self.written += len(batch)
                except Exception:  # a failed audit write must not stop serving
                    self.failed += len(batch)
                    log.exception("could not write %d audit events", len(batch))
                with self._done:
                    self._written_up_to += len(batch)
                    self._done.notify_all()
            if stopping:
                return

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, then end the thread."""
        if self._thread is not None:
            self._stopping = True
            self._wake.set()
            self._thread.join(timeout)
            self._thread = None


@dataclass
class _Conversation:
    record: Conversation
    owner: str
    messages: list[Message] = field(default_factory=list)
    chars: int = 0  # of the messages, with what they cite (_size)


class ConversationMemory:
    """Remote conversations, in memory only, each owned by one token (its owner key:
    auth.Principal.owner, the token's identity, not its name).

    Bounded three ways, so that no client can grow the server without limit: a message keeps at
    most `max_message_chars` characters (the routes refuse longer ones with 413 before they get
    here: this cuts only a long answer), a conversation drops its oldest messages past
    `max_conversation_chars` (or `MAX_MESSAGES`), and all conversations together drop the least
    recently used ones past `max_total_chars` (or `max_conversations`). Clients of the OpenAI and
    Ollama routes resend their history anyway; a native follow-up to a dropped conversation is
    told it is unknown (404) and starts over."""

    def __init__(self, max_conversations: int = MAX_CONVERSATIONS, max_message_chars: int = 20_000,
                 max_conversation_chars: int = 100_000, max_total_chars: int = 20_000_000) -> None:
        self.max_conversations = max_conversations
        self.max_message_chars = max_message_chars
        self.max_conversation_chars = max_conversation_chars
        self.max_total_chars = max_total_chars
        self._items: OrderedDict[int, _Conversation] = OrderedDict()
        self._message_ids = itertools.count(1)
        self._lock = threading.Lock()
        self.chars = 0  # held by all conversations

    def __len__(self) -> int:
        return len(self._items)

    def create(self, title: str, owner: str) -> Conversation:
        now = time.time()
        with self._lock:
            # A random id, not a count: instances behind one load balancer each keep their own
            # conversations, and counted ids would repeat across them, so a follow-up that nginx
            # sent to another instance could continue that user's other conversation there
            # instead of being told it is unknown (404). Below 2**53: exact in JavaScript.
            conversation_id = secrets.randbelow(2**53 - 1) + 1
            while conversation_id in self._items:
                conversation_id = secrets.randbelow(2**53 - 1) + 1
            record = Conversation(conversation_id, title[:200], now, now)
            self._items[record.id] = _Conversation(record, owner)
            self._shrink_all()
        return record

    def _shrink(self, item: _Conversation) -> None:
        """Drop a conversation's oldest messages past its bounds (the newest always stays)."""
        drop = 0
        while len(item.messages) - drop > 1 and (len(item.messages) - drop > MAX_MESSAGES
                                                or item.chars > self.max_conversation_chars):
            size = _size(item.messages[drop])
            item.chars -= size
            self.chars -= size
            drop += 1
        del item.messages[:drop]

    def _shrink_all(self) -> None:
        """Drop the least recently used conversations past the bounds for all of them (the most
        recent always stays)."""
        while len(self._items) > 1 and (len(self._items) > self.max_conversations
                                        or self.chars > self.max_total_chars):
            _, item = self._items.popitem(last=False)
            self.chars -= item.chars

    def _cut(self, content: str) -> str:
        return content[: self.max_message_chars]

    def get(self, conversation_id: int, owner: str) -> Conversation | None:
        with self._lock:
            item = self._items.get(conversation_id)
            return item.record if item is not None and item.owner == owner else None

    def add(self, conversation_id: int, owner: str, role: str, content: str,
            citations: Sequence[dict[str, Any]], status: str, meta: dict[str, Any] | None) -> Message:
        now = time.time()
        content = self._cut(content)
        with self._lock:
            message = Message(next(self._message_ids), conversation_id, role, content,
                              list(citations), status, now, dict(meta or {}))
            item = self._items.get(conversation_id)
            if item is not None and item.owner == owner:
                item.messages.append(message)
                item.chars += _size(message)
                self.chars += _size(message)
                item.record = replace(item.record, updated_at=now)
                self._items.move_to_end(conversation_id)
                self._shrink(item)
                self._shrink_all()
        return message

    def update(self, message_id: int, owner: str, **changes: Any) -> None:
        if changes.get("content") is not None:
            changes["content"] = self._cut(changes["content"])
        with self._lock:
            for item in reversed(self._items.values()):
                if item.owner != owner:
                    continue
                for i, m in enumerate(item.messages):
                    if m.id == message_id:
                        new = replace(m, **{k: v for k, v in changes.items() if v is not None})
                        item.messages[i] = new
                        grown = _size(new) - _size(m)
                        item.chars += grown
                        self.chars += grown
                        self._shrink(item)
                        self._shrink_all()
                        return

    def messages(self, conversation_id: int, owner: str) -> list[Message]:
        with self._lock:
            item = self._items.get(conversation_id)
            return list(item.messages) if item is not None and item.owner == owner else []

    def conversations(self, owner: str) -> list[Conversation]:
        with self._lock:
            return [i.record for i in reversed(self._items.values()) if i.owner == owner]


def _size(message: Message) -> int:
    """What a message holds, in characters: its text and what it carries with it -- the cited
    passages (up to a chunk each, ten of them to an answer: more than the answer) and the
    grounding verdicts. Counting the text alone left most of a conversation's memory outside
    its bounds (the soak benchmark, issue 19)."""
    extra = json.dumps([message.citations, message.meta], ensure_ascii=False, default=str)
    return len(message.content) + len(extra)


def owner_name(owner: str) -> str:
    """The token name in an owner key ("ana#12" -> "ana"; auth.Principal.owner): what the audit
    log records (token names never contain '#')."""
    return owner.partition("#")[0]


class RemoteStore:
    """The vault as one remote client's chat sees it (see the module docstring)."""

    def __init__(self, vault: Store, memory: ConversationMemory, audit: AuditWriter, owner: str) -> None:
        self._vault = vault
        self._memory = memory
        self._audit = audit
        self.owner = owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._vault, name)

    def audit(self, event: str, **detail: Any) -> None:
        self._audit.add(event, token=owner_name(self.owner), **detail)

    def create_conversation(self, title: str) -> Conversation:
        return self._memory.create(title, self.owner)

    def conversation(self, conversation_id: int) -> Conversation | None:
        return self._memory.get(conversation_id, self.owner)

    def conversations(self) -> list[Conversation]:
        return self._memory.conversations(self.owner)

    def add_message(self, conversation_id: int, role: str, content: str,
                    citations: Sequence[dict[str, Any]] = (), status: str = "complete",
                    meta: dict[str, Any] | None = None) -> Message:
        return self._memory.add(conversation_id, self.owner, role, content, citations, status, meta)

    def update_message(self, message_id: int, content: str,
                       citations: Sequence[dict[str, Any]] | None = None, status: str | None = None,
                       meta: dict[str, Any] | None = None) -> None:
        self._memory.update(message_id, self.owner, content=content,
                            citations=list(citations) if citations is not None else None,
                            status=status, meta=meta)

    def messages(self, conversation_id: int) -> list[Message]:
        return self._memory.messages(conversation_id, self.owner)
