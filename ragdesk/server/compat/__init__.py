"""OpenAI- and Ollama-compatible routes, so clients people already use can ask the vault.

Both answer the last user message from the vault's documents (the earlier turns are the
conversation's history; a client's own system prompt is not used: grounding rules are the
server's). Citations come two ways: appended to the answer text as a "Sources:" list that any
client shows, and as structured data in an extra `citations` field (on the completion and the
last stream chunk for OpenAI; on the final message object for Ollama).

OpenAI: GET /v1/models, POST /v1/chat/completions (SSE `data:` chunks ending `data: [DONE]`, or
one JSON object). Ollama: GET /api/version, GET /api/tags, POST /api/chat (NDJSON lines, `stream`
true by default, as Ollama does). "ragdesk" is always listed and means the vault's default model.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ragdesk.core.chat import ChatEvent
from ragdesk.server.api import check_question, check_text, ctx_of, principal_of, record_done
from ragdesk.server.bridge import DEFAULT_MODEL_ALIAS, Turn

log = logging.getLogger("ragdesk.server.compat")

router = APIRouter()
OLLAMA_API_VERSION = "0.12.6"  # reported when the real Ollama cannot be asked


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str = Field(max_length=32)
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        parts = [p.get("text") for p in self.content or [] if isinstance(p, dict) and p.get("type") in ("text", None)]
        return "\n".join(p for p in parts if isinstance(p, str))


def _check_messages(messages: list[ChatMessage]) -> list[ChatMessage]:
    for m in messages:
        check_text(m.role)
        check_text(m.text())
    return messages


class OpenAIChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(default=DEFAULT_MODEL_ALIAS, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    stream: bool | None = False
    collections: list[str] | None = Field(default=None, max_length=100,
                                          description="RagDesk extension: only these collections")

    _m = field_validator("messages")(_check_messages)
    _t = field_validator("model")(check_text)


class OllamaChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(default=DEFAULT_MODEL_ALIAS, max_length=200)
    messages: list[ChatMessage] = Field(default_factory=list, max_length=1000)
    stream: bool | None = True
    collections: list[str] | None = Field(default=None, max_length=100)

    _m = field_validator("messages")(_check_messages)
    _t = field_validator("model")(check_text)


def split_messages(ctx: Any, messages: list[ChatMessage]) -> tuple[str, list[Turn]]:
    """(question, earlier turns) of a stateless chat request."""
    if len(messages) > ctx.config.limits.max_messages:
        raise HTTPException(413, f"more than {ctx.config.limits.max_messages} messages")
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if last_user is None:
        raise HTTPException(400, "no user message to answer")
    question = check_question(ctx, messages[last_user].text())
    history = [Turn(m.role, m.text()) for m in messages[:last_user] if m.role in ("user", "assistant")]
    return question, history


def sources_text(citations: list[dict[str, Any]]) -> str:
    if not citations:
        return ""
    lines = ["", "", "Sources:"]
    for c in citations:
        page = f", p. {c['page']}" if c.get("page") else ""
        lines.append(f"[{c['n']}] {c['title']}{page} — {c['path']}")
    return "\n".join(lines)


def public_citations(citations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(c) for c in citations]


async def _prepare(request: Request, model: str, messages: list[ChatMessage],
                   collections: list[str] | None, not_found: Any) -> Any:
    ctx = ctx_of(request)
    principal = principal_of(request)
    question, history = split_messages(ctx, messages)
    collection_ids = ctx.collection_ids(principal, collections)
    known, resolved = await ctx.model_for(model)
    if not known:
        raise not_found(model)
    ctx.admit(principal)
    conversation_id = ctx.runner.seed(principal.name, history, question[:60]) if history else None
    stream = ctx.runner.batches(principal.name, question, model=resolved, collection_ids=collection_ids,
                               conversation_id=conversation_id, timeout=ctx.config.limits.stream_timeout,
                               on_done=lambda e: record_done(ctx, e))
    return ctx, principal, resolved, stream


# --- OpenAI ---------------------------------------------------------------------------------------


class _OpenAIError(HTTPException):
    pass


def openai_error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                   "code": code}}, status_code=status)


def _openai_not_found(model: str) -> HTTPException:
    return _OpenAIError(404, f"The model `{model}` does not exist or you do not have access to it.")


@router.get("/v1/models", tags=["openai"], summary="Models (OpenAI format)")
async def openai_models(request: Request) -> dict[str, Any]:
    ctx = ctx_of(request)
    await ctx.model_for(None)
    created = int(ctx.started_at)
    data = [{"id": DEFAULT_MODEL_ALIAS, "object": "model", "created": created, "owned_by": "ragdesk"}]
    for m in ctx.catalog.models() or []:
        data.append({"id": m["name"], "object": "model", "created": created, "owned_by": "ollama"})
    return {"object": "list", "data": data}


@router.post("/v1/chat/completions", tags=["openai"],
             summary="Chat completion grounded in the vault (OpenAI format, stream or not)")
async def openai_chat(body: OpenAIChatRequest, request: Request) -> Response:
    try:
        ctx, principal, model, stream = await _prepare(request, body.model, body.messages, body.collections,
                                                       _openai_not_found)
    except _OpenAIError as exc:
        return openai_error(exc.status_code, str(exc.detail), "model_not_found")
    completion_id = "chatcmpl-" + secrets.token_hex(12)
    created = int(time.time())
    name = model or body.model

    if not body.stream:
        try:
            async with contextlib.aclosing(stream):
                done = await _collect(stream)
        finally:
            ctx.release(principal)
        if done is None:
            return openai_error(500, "the server could not produce an answer", "server_error")
        content = done.answer + sources_text(done.citations)
        return JSONResponse({
            "id": completion_id, "object": "chat.completion", "created": created, "model": done.model or name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop" if done.status == "complete" else "length",
                         "logprobs": None}],
            "usage": _usage(done),
            "citations": public_citations(done.citations),
            "ragdesk": {"mode": done.mode, "status": done.status, "notice": done.notice},
        })

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        obj = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": name,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
        return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n".encode()

    def encode(event: ChatEvent) -> bytes:
        if event.kind == "token":
            return chunk({"content": event.text})
        if event.kind == "done":
            tail = sources_text(event.citations)
            return (chunk({"content": tail}) if tail else b"") + chunk(
                {}, "stop" if event.status == "complete" else "length",
                citations=public_citations(event.citations), usage=_usage(event),
                ragdesk={"mode": event.mode, "status": event.status, "notice": event.notice})
        return b""

    async def events() -> AsyncIterator[bytes]:
        yield chunk({"role": "assistant", "content": ""})
        batches = stream
        async with contextlib.aclosing(batches):
            try:
                async for batch in batches:
                    data = b"".join(encode(e) for e in batch)
                    if data:
                        yield data
            except TimeoutError:
                yield b'data: {"error": {"message": "the answer took too long", "type": "timeout"}}\n\n'
            except Exception:  # noqa: BLE001
                log.exception("chat completion failed")
                yield b'data: {"error": {"message": "the server could not produce an answer", "type": "server_error"}}\n\n'
        yield b"data: [DONE]\n\n"

    return ctx.stream_response(principal, events(), "text/event-stream", {"X-Accel-Buffering": "no"})


async def _collect(stream: AsyncIterator[list[ChatEvent]]) -> ChatEvent | None:
    done = None
    try:
        async for batch in stream:
            for event in batch:
                if event.kind == "done":
                    done = event
    except TimeoutError:
        return None
    except Exception:  # noqa: BLE001
        log.exception("chat failed")
        return None
    return done


def _usage(done: ChatEvent) -> dict[str, int]:
    completion = max(1, len(done.answer) // 4)
    prompt = sum(len(c.get("text", "")) for c in done.citations) // 4
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


# --- Ollama ---------------------------------------------------------------------------------------


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")


class _OllamaError(HTTPException):
    pass


def _ollama_not_found(model: str) -> HTTPException:
    return _OllamaError(404, f"model '{model}' not found")


def _tag(name: str, size: int = 0, family: str | None = None) -> dict[str, Any]:
    return {"name": name, "model": name, "modified_at": _now(), "size": size,
            "digest": hashlib.sha256(name.encode()).hexdigest(),
            "details": {"parent_model": "", "format": "gguf", "family": family or "ragdesk",
                        "families": [family or "ragdesk"], "parameter_size": "", "quantization_level": ""}}


@router.get("/api/version", tags=["ollama"], summary="Version (Ollama format)")
async def ollama_version(request: Request) -> dict[str, str]:
    ctx = ctx_of(request)
    await ctx.model_for(None)
    return {"version": ctx.catalog.version() or OLLAMA_API_VERSION}


@router.get("/api/tags", tags=["ollama"], summary="Models (Ollama format)")
async def ollama_tags(request: Request) -> dict[str, Any]:
    ctx = ctx_of(request)
    await ctx.model_for(None)
    models = [_tag(f"{DEFAULT_MODEL_ALIAS}:latest")]
    models += [_tag(m["name"], m.get("size") or 0, m.get("family")) for m in ctx.catalog.models() or []]
    return {"models": models}


@router.post("/api/chat", tags=["ollama"], summary="Chat grounded in the vault (Ollama format)",
             responses={200: {"content": {"application/x-ndjson": {}}}})
async def ollama_chat(body: OllamaChatRequest, request: Request) -> Response:
    if not body.messages:  # Ollama answers an empty chat (a model load) with a done message
        ctx = ctx_of(request)
        known, model = await ctx.model_for(body.model)
        if not known:
            return JSONResponse({"error": f"model '{body.model}' not found"}, status_code=404)
        return JSONResponse({"model": body.model, "created_at": _now(),
                             "message": {"role": "assistant", "content": ""},
                             "done_reason": "load", "done": True})
    try:
        ctx, principal, model, stream = await _prepare(request, body.model, body.messages, body.collections,
                                                       _ollama_not_found)
    except _OllamaError as exc:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
    except HTTPException as exc:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)
    started = time.perf_counter_ns()

    def final(done: ChatEvent, content: str) -> dict[str, Any]:
        total = time.perf_counter_ns() - started
        eval_count = max(1, len(done.answer.split()))
        return {"model": body.model, "created_at": _now(),
                "message": {"role": "assistant", "content": content,
                            "citations": public_citations(done.citations)},
                "done_reason": "stop" if done.status == "complete" else "length", "done": True,
                "total_duration": total, "load_duration": 0,
                "prompt_eval_count": _usage(done)["prompt_tokens"], "prompt_eval_duration": 0,
                "eval_count": eval_count, "eval_duration": total,
                "citations": public_citations(done.citations),
                "ragdesk": {"mode": done.mode, "status": done.status, "notice": done.notice}}

    if body.stream is False:
        try:
            async with contextlib.aclosing(stream):
                done = await _collect(stream)
        finally:
            ctx.release(principal)
        if done is None:
            return JSONResponse({"error": "the server could not produce an answer"}, status_code=500)
        return JSONResponse(final(done, done.answer + sources_text(done.citations)))

    def line(obj: dict[str, Any]) -> bytes:
        return json.dumps(obj, ensure_ascii=False).encode() + b"\n"

    def encode(event: ChatEvent) -> bytes:
        if event.kind == "token":
            return line({"model": body.model, "created_at": _now(),
                         "message": {"role": "assistant", "content": event.text}, "done": False})
        if event.kind == "done":
            tail = sources_text(event.citations)
            return (line({"model": body.model, "created_at": _now(),
                          "message": {"role": "assistant", "content": tail}, "done": False})
                    if tail else b"") + line(final(event, ""))
        return b""

    async def events() -> AsyncIterator[bytes]:
        batches = stream
        async with contextlib.aclosing(batches):
            try:
                async for batch in batches:
                    data = b"".join(encode(e) for e in batch)
                    if data:
                        yield data
            except TimeoutError:
                yield line({"error": "the answer took too long and was stopped"})
            except Exception:  # noqa: BLE001
                log.exception("ollama chat failed")
                yield line({"error": "the server could not produce an answer"})

    return ctx.stream_response(principal, events(), "application/x-ndjson")
