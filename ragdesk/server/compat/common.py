"""What the OpenAI- and Ollama-style chat routes share: the chat request's messages, turning
them into a question and its history, starting an answer within the token's scope, waiting
for a whole answer (no stream), and the citations in both forms (a "Sources:" text and data).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import Any

from fastapi import HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from ragdesk.core.chat import ChatEvent
from ragdesk.server.answers import Turn
from ragdesk.server.auth import Principal
from ragdesk.server.context import (
    ServerContext,
    check_question,
    check_text,
    ctx_of,
    log_failure,
    principal_of,
    record_done,
)

Batches = AsyncGenerator[list[ChatEvent], None]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str = Field(max_length=32)
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        parts = [p.get("text") for p in self.content or []
                 if isinstance(p, dict) and p.get("type") in ("text", None)]
        return "\n".join(p for p in parts if isinstance(p, str))


def check_messages(messages: list[ChatMessage]) -> list[ChatMessage]:
    """Each message's role and text, as `check_text`."""
    for m in messages:
        check_text(m.role)
        check_text(m.text())
    return messages


def split_messages(ctx: ServerContext, messages: list[ChatMessage]) -> tuple[str, list[Turn]]:
    """(question, earlier turns) of a stateless chat request."""
    if len(messages) > ctx.config.limits.max_messages:
        raise HTTPException(413, f"more than {ctx.config.limits.max_messages} messages")
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if last_user is None:
        raise HTTPException(400, "no user message to answer")
    question = check_question(ctx, messages[last_user].text())
    history = [Turn(m.role, m.text()) for m in messages[:last_user] if m.role in ("user", "assistant")]
    check_history(ctx, history, question)
    return question, history


def check_history(ctx: ServerContext, history: list[Turn], question: str) -> None:
    """413 for a history the server would not keep: a message or the whole conversation longer
    than the limits (the server holds each conversation in memory while it answers)."""
    limits = ctx.config.limits
    longest = max((len(t.content) for t in history), default=0)
    if longest > limits.max_message_chars:
        raise HTTPException(413, f"a message of the conversation is longer than {limits.max_message_chars} "
                                 "characters")
    if sum(len(t.content) for t in history) + len(question) > limits.max_conversation_chars:
        raise HTTPException(413, f"the conversation is longer than {limits.max_conversation_chars} "
                                 "characters; start a new one or send fewer earlier messages")


def sources_text(citations: list[dict[str, Any]]) -> str:
    """The citations as lines any client shows after the answer."""
    if not citations:
        return ""
    lines = ["", "", "Sources:"]
    for c in citations:
        page = f", p. {c['page']}" if c.get("page") else ""
        lines.append(f"[{c['n']}] {c['title']}{page} — {c['path']}")
    return "\n".join(lines)


def public_citations(citations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(c) for c in citations]


def usage(done: ChatEvent) -> dict[str, int]:
    """Token counts as OpenAI reports them, estimated from the text (about 4 characters each)."""
    completion = max(1, len(done.answer) // 4)
    prompt = sum(len(c.get("text", "")) for c in done.citations) // 4
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


async def prepare(request: Request, model: str, messages: list[ChatMessage], collections: list[str] | None,
                  not_found: Callable[[str], HTTPException],
                  ) -> tuple[ServerContext, Principal, str | None, Batches]:
    """Check the request, admit it (release the slot when the answer ends) and start the answer:
    (context, principal, the model resolved, the answer's event batches). `not_found(model)`
    is raised for a model Ollama does not have."""
    ctx = ctx_of(request)
    principal = principal_of(request)
    question, history = split_messages(ctx, messages)
    collection_ids = ctx.collection_ids(principal, collections)
    known, resolved = await ctx.model_for(model)
    if not known:
        raise not_found(model)
    ctx.admit(principal)
    conversation_id = ctx.runner.seed(principal.owner, history, question[:60]) if history else None
    stream = ctx.runner.batches(principal.owner, question, model=resolved, collection_ids=collection_ids,
                                conversation_id=conversation_id, timeout=ctx.config.limits.stream_timeout,
                                on_done=lambda e: record_done(ctx, e))
    return ctx, principal, resolved, stream


async def whole_answer(ctx: ServerContext, principal: Principal, stream: Batches) -> ChatEvent | None:
    """The answer's final event, once it is complete (None if it failed or took too long); the
    stream slot `prepare` reserved is released."""
    try:
        async with contextlib.aclosing(stream):
            return await _last(stream)
    finally:
        ctx.release(principal)


async def _last(stream: Batches) -> ChatEvent | None:
    done = None
    try:
        async for batch in stream:
            for event in batch:
                if event.kind == "done":
                    done = event
    except TimeoutError:
        return None
    except Exception as exc:  # a bug: logged (not what was asked), the client told that no answer came
        log_failure("answer", "chat", exc)
        return None
    return done
