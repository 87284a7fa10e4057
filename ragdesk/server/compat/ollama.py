"""Ollama-compatible routes: GET /api/version, GET /api/tags, POST /api/chat (NDJSON lines,
`stream` true by default, as Ollama does), with errors in Ollama's shape (`{"error": "..."}`).

The structured citations ride on the final message object (and beside it); `ragdesk` says
whether the answer is the model's or extractive, and its `grounding` holds each sentence's verdict
against its sources (as /api/v1/ask's done event).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ragdesk.core.chat import ChatEvent
from ragdesk.server.catalog import DEFAULT_MODEL_ALIAS
from ragdesk.server.compat import common
from ragdesk.server.compat.common import ChatMessage
from ragdesk.server.context import check_text, ctx_of, relay

router = APIRouter()
OLLAMA_API_VERSION = "0.12.6"  # reported when the real Ollama cannot be asked


class OllamaChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(default=DEFAULT_MODEL_ALIAS, max_length=200)
    messages: list[ChatMessage] = Field(default_factory=list, max_length=1000)
    stream: bool | None = True
    collections: list[str] | None = Field(default=None, max_length=100)

    _m = field_validator("messages")(common.check_messages)
    _t = field_validator("model")(check_text)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


class _OllamaError(HTTPException):
    pass


def _not_found(model: str) -> HTTPException:
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
        known, _ = await ctx_of(request).model_for(body.model)
        if not known:
            return JSONResponse({"error": f"model '{body.model}' not found"}, status_code=404)
        return JSONResponse({"model": body.model, "created_at": _now(),
                             "message": {"role": "assistant", "content": ""},
                             "done_reason": "load", "done": True})
    try:
        ctx, principal, _, stream = await common.prepare(request, body.model, body.messages,
                                                         body.collections, _not_found)
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
                            "citations": common.public_citations(done.citations)},
                "done_reason": "stop" if done.status == "complete" else "length", "done": True,
                "total_duration": total, "load_duration": 0,
                "prompt_eval_count": common.usage(done)["prompt_tokens"], "prompt_eval_duration": 0,
                "eval_count": eval_count, "eval_duration": total,
                "citations": common.public_citations(done.citations),
                "ragdesk": {"mode": done.mode, "status": done.status, "notice": done.notice,
                            "grounding": done.grounding}}

    if body.stream is False:
        done = await common.whole_answer(ctx, principal, stream)
        if done is None:
            return JSONResponse({"error": "the server could not produce an answer"}, status_code=500)
        return JSONResponse(final(done, done.answer + common.sources_text(done.citations)))

    def line(obj: dict[str, Any]) -> bytes:
        return json.dumps(obj, ensure_ascii=False).encode() + b"\n"

    def encode(event: ChatEvent) -> bytes:
        if event.kind == "token":
            return line({"model": body.model, "created_at": _now(),
                         "message": {"role": "assistant", "content": event.text}, "done": False})
        if event.kind == "done":
            tail = common.sources_text(event.citations)
            return (line({"model": body.model, "created_at": _now(),
                          "message": {"role": "assistant", "content": tail}, "done": False})
                    if tail else b"") + line(final(event, ""))
        return b""

    body_bytes = relay(stream, encode, what="ollama chat",
                       timed_out=line({"error": "the answer took too long and was stopped"}),
                       failed=line({"error": "the server could not produce an answer"}))
    return ctx.stream_response(principal, body_bytes, "application/x-ndjson")
