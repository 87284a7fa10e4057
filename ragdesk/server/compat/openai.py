"""OpenAI-compatible routes: GET /v1/models, POST /v1/chat/completions (SSE `data:` chunks ending
`data: [DONE]`, or one JSON object), with errors in OpenAI's shape.

The structured citations ride in an extra `citations` field on the completion and on the last
stream chunk; `ragdesk` says whether the answer is the model's or extractive, and its `grounding`
holds each sentence's verdict against its sources (as /api/v1/ask's done event).
"""

from __future__ import annotations

import json
import secrets
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


class OpenAIChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(default=DEFAULT_MODEL_ALIAS, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    stream: bool | None = False
    collections: list[str] | None = Field(default=None, max_length=100,
                                          description="RagDesk extension: only these collections")

    _m = field_validator("messages")(common.check_messages)
    _t = field_validator("model")(check_text)


class _OpenAIError(HTTPException):
    pass


def openai_error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                   "code": code}}, status_code=status)


def _not_found(model: str) -> HTTPException:
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
        ctx, principal, model, stream = await common.prepare(request, body.model, body.messages,
                                                             body.collections, _not_found)
    except _OpenAIError as exc:
        return openai_error(exc.status_code, str(exc.detail), "model_not_found")
    completion_id = "chatcmpl-" + secrets.token_hex(12)
    created = int(time.time())
    name = model or body.model

    if not body.stream:
        done = await common.whole_answer(ctx, principal, stream)
        if done is None:
            return openai_error(500, "the server could not produce an answer", "server_error")
        content = done.answer + common.sources_text(done.citations)
        return JSONResponse({
            "id": completion_id, "object": "chat.completion", "created": created, "model": done.model or name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop" if done.status == "complete" else "length",
                         "logprobs": None}],
            "usage": common.usage(done),
            "citations": common.public_citations(done.citations),
            "ragdesk": {"mode": done.mode, "status": done.status, "notice": done.notice,
                        "grounding": done.grounding},
        })

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        obj = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": name,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
        return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n".encode()

    def encode(event: ChatEvent) -> bytes:
        if event.kind == "token":
            return chunk({"content": event.text})
        if event.kind == "done":
            tail = common.sources_text(event.citations)
            return (chunk({"content": tail}) if tail else b"") + chunk(
                {}, "stop" if event.status == "complete" else "length",
                citations=common.public_citations(event.citations), usage=common.usage(event),
                ragdesk={"mode": event.mode, "status": event.status, "notice": event.notice,
                         "grounding": event.grounding})
        return b""

    body_bytes = relay(
        stream, encode, what="chat completion",
        first=chunk({"role": "assistant", "content": ""}), last=b"data: [DONE]\n\n",
        timed_out=b'data: {"error": {"message": "the answer took too long", "type": "timeout"}}\n\n',
        failed=b'data: {"error": {"message": "the server could not produce an answer", '
               b'"type": "server_error"}}\n\n')
    return ctx.stream_response(principal, body_bytes, "text/event-stream", {"X-Accel-Buffering": "no"})
