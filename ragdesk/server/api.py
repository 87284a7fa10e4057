"""RagDesk's own API (/api/v1): ask with a streamed, cited answer; search; the token's own scope
(me, collections); documents; and, for admin tokens, uploads, removals and token management.

`POST /api/v1/ask` answers as server-sent events, in this order (after an SSE comment line,
`: accepted`, sent as soon as the request is admitted):
  event: sources    the passages found: [{n, title, path, page, snippet, document_id, chunk_id}]
  event: token      {"text": "..."} pieces of the answer as the model writes them (many)
  event: notice     {"text": "..."} when the answer is extractive or was cut off (optional)
  event: citations  the sources the answer cites: [{n, document_id, chunk_id, path, title, page,
                    char_start, char_end, text, snippet}]
  event: done       {"mode": "llm"|"extractive", "status", "model", "conversation_id",
                    "grounding"}: grounding holds each sentence of the answer held against the
                    sources it cites (core/grounding.py): {"summary", "counts", "sentences": [{text,
                    start, end, citations, verdict: "supported"|"weakly supported"|"not supported"|
                    "uncited", score, reason, missing, closest: {n, title, page, text, score}}]};
                    null for an extractive answer
(or `event: error` {"detail"} if the answer could not be produced). Pass `conversation_id` back
to ask a follow-up in the same conversation.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool

from ragdesk.core.chat import ChatEvent
from ragdesk.errors import RagdeskError, UsageError
from ragdesk.server.auth import Principal, UnknownCollection
from ragdesk.server.context import (
    ServerContext,
    check_names,
    check_question,
    check_text,
    ctx_of,
    principal_of,
    record_done,
    relay,
)
from ragdesk.server.documents import UploadRejected

router = APIRouter()
MAX_TEXT = 100_000  # absolute bound in the schema; the configured limit is checked per request


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=MAX_TEXT)
    conversation_id: int | None = Field(default=None, description="continue this conversation")
    collections: list[str] | None = Field(default=None, max_length=100,
                                          description="only these collections (within the token's scope)")
    model: str | None = Field(default=None, max_length=200,
                              description="an Ollama model; default: the vault's")

    _text = field_validator("question", "model")(check_text)
    _names = field_validator("collections")(check_names)


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=MAX_TEXT)
    k: int = Field(default=10, ge=1, le=50)
    collections: list[str] | None = Field(default=None, max_length=100)
    mode: Literal["hybrid", "keyword", "vector"] = "hybrid"

    _text = field_validator("query")(check_text)
    _names = field_validator("collections")(check_names)


class Hit(BaseModel):
    n: int
    document_id: int
    chunk_id: int
    collection: str | None
    path: str
    title: str
    page: int
    score: float
    snippet: str
    text: str
    heading: str
    char_start: int
    char_end: int


class SearchResponse(BaseModel):
    query: str
    hits: list[Hit]


class Me(BaseModel):
    name: str
    admin: bool
    collections: list[str] | None


class TokenOut(BaseModel):
    name: str
    admin: bool
    collections: list[str] | None = Field(description="null: every collection")
    created_at: float


class NewToken(TokenOut):
    secret: str = Field(description="shown only in this answer; clients send it as a Bearer token")


class TokenRequest(BaseModel):
    name: str = Field(min_length=1, max_length=64, description="letters, digits and - _ . @")
    collections: list[str] | None = Field(default=None, max_length=100,
                                          description="null: every collection (within the admin's own scope)")
    admin: bool = Field(default=False, description="may add and remove documents and manage tokens")

    _text = field_validator("name")(check_text)
    _names = field_validator("collections")(check_names)


class DocumentOut(BaseModel):
    id: int
    collection: str | None
    path: str
    title: str
    format: str
    pages: int
    chunks: int
    status: str
    error: str | None


def sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def source_json(source: Any) -> dict[str, Any]:
    h = source.hit
    return {"n": source.n, "title": h.title, "path": h.path, "page": h.page, "snippet": h.snippet,
            "document_id": h.document_id, "chunk_id": h.chunk_id}


@router.post("/api/v1/ask", tags=["native"], summary="Ask; the answer streams as server-sent events",
             responses={200: {"content": {"text/event-stream": {}}, "description": "SSE stream"}})
async def ask(body: AskRequest, request: Request) -> Response:
    ctx = ctx_of(request)
    principal = principal_of(request)
    question = check_question(ctx, body.question)
    collection_ids = ctx.collection_ids(principal, body.collections)
    known, model = await ctx.model_for(body.model)
    if not known:
        raise HTTPException(404, f"no model named {body.model!r}")
    conversation_id = body.conversation_id
    if conversation_id is not None and ctx.memory.get(conversation_id, principal.owner) is None:
        raise HTTPException(404, f"no conversation {conversation_id} for this token")
    ctx.admit(principal)

    def encode(event: ChatEvent) -> bytes:
        if event.kind == "sources":
            return sse("sources", [source_json(s) for s in event.sources])
        if event.kind == "token":
            return sse("token", {"text": event.text})
        if event.kind == "notice":
            return sse("notice", {"text": event.notice})
        if event.kind == "done":
            return sse("citations", event.citations) + sse("done", {
                "mode": event.mode, "status": event.status, "model": event.model,
                "conversation_id": event.conversation_id, "first_token_ms": event.first_token_ms,
                "grounding": event.grounding})
        return b""

    stream = ctx.runner.batches(principal.owner, question, model=model, collection_ids=collection_ids,
                                conversation_id=conversation_id, timeout=ctx.config.limits.stream_timeout,
                                on_done=lambda e: record_done(ctx, e))
    body_bytes = relay(stream, encode, what="ask",
                       first=b": accepted\n\n",  # the stream is open: searching starts now
                       timed_out=sse("error", {"detail": "the answer took too long and was stopped"}),
                       failed=sse("error", {"detail": "the server could not produce an answer"}))
    return ctx.stream_response(principal, body_bytes, "text/event-stream", {"X-Accel-Buffering": "no"})


@router.post("/api/v1/search", tags=["native"], response_model=SearchResponse,
             summary="The passages that best match a query")
async def search(body: SearchRequest, request: Request) -> SearchResponse:
    ctx = ctx_of(request)
    principal = principal_of(request)
    limit = ctx.config.limits.max_question_chars
    if len(body.query) > limit:
        raise HTTPException(413, f"the query is longer than {limit} characters")
    collection_ids = ctx.collection_ids(principal, body.collections)
    names = {v: k for k, v in ctx.collection_ids_by_name().items()}
    k = min(body.k, ctx.config.limits.max_search_k)

    def run() -> list[Any]:
        retriever = ctx.services.retriever(k=k, mode=body.mode)
        return retriever.search(body.query, k=k, collection_ids=collection_ids)

    hits = await run_in_threadpool(run)
    return SearchResponse(query=body.query, hits=[
        Hit(n=i, document_id=h.document_id, chunk_id=h.chunk_id, collection=names.get(h.collection_id),
            path=h.path, title=h.title, page=h.page, score=h.score, snippet=h.snippet, text=h.text,
            heading=h.heading, char_start=h.char_start, char_end=h.char_end)
        for i, h in enumerate(hits, start=1)])


@router.get("/api/v1/me", tags=["native"], response_model=Me, summary="The token's name and scope")
async def me(request: Request) -> Me:
    p = principal_of(request)
    return Me(name=p.name, admin=p.admin,
              collections=list(p.collections) if p.collections is not None else None)


@router.get("/api/v1/collections", tags=["native"], response_model=list[str],
            summary="The collections this token may read")
async def collections(request: Request) -> list[str]:
    ctx = ctx_of(request)
    p = principal_of(request)
    names = await run_in_threadpool(lambda: sorted(ctx.collection_ids_by_name()))
    return [n for n in names if p.allows_collection(n)]


@router.get("/api/v1/documents", tags=["native"], response_model=list[DocumentOut],
            summary="Documents in the collections this token may read")
async def documents(request: Request,
                    collection: str | None = Query(default=None, max_length=200)) -> list[DocumentOut]:
    ctx = ctx_of(request)
    p = principal_of(request)
    if collection is not None:
        check_text(collection)
    ids = ctx.collection_ids(p, [collection] if collection else None)

    def run() -> list[DocumentOut]:
        names = {v: k for k, v in ctx.collection_ids_by_name().items()}
        docs = ctx.services.store.documents()
        return [DocumentOut(id=d.id, collection=names.get(d.collection_id), path=d.path, title=d.title,
                            format=d.format, pages=d.pages, chunks=d.chunks, status=d.status, error=d.error)
                for d in docs if ids is None or d.collection_id in ids]

    return await run_in_threadpool(run)


def require_admin(principal: Principal) -> None:
    if not principal.admin:
        raise HTTPException(403, "this token is read-only; an admin token may change documents")


def admin_of(request: Request) -> tuple[ServerContext, Principal]:
    """The server context and the request's principal, which must hold an admin token (403)."""
    principal = principal_of(request)
    require_admin(principal)
    return ctx_of(request), principal


def _token_out(t: Any) -> TokenOut:
    return TokenOut(name=t.name, admin=t.admin, created_at=t.created_at,
                    collections=list(t.collections) if t.collections is not None else None)


@router.get("/api/v1/tokens", tags=["native"], response_model=list[TokenOut],
            summary="Active tokens within this admin token's scope (never their secrets)")
async def list_tokens(request: Request) -> list[TokenOut]:
    ctx, p = admin_of(request)
    tokens = await run_in_threadpool(ctx.tokens.list)
    return [_token_out(t) for t in tokens if p.covers(t.collections)]


@router.post("/api/v1/tokens", tags=["native"], status_code=201, response_model=NewToken,
             summary="Create a token (admin token), while the server runs: its secret is in this "
                     "answer only")
async def create_token(body: TokenRequest, request: Request) -> NewToken:
    ctx, p = admin_of(request)
    collections = list(dict.fromkeys(body.collections)) if body.collections is not None else None
    if not p.covers(collections):
        raise HTTPException(403, "a token can only be given collections this admin token may read: "
                                 + ", ".join(p.collections or ()))
    try:
        token, secret = await run_in_threadpool(ctx.tokens.create, body.name, collections, body.admin, p.name)
    except (UsageError, UnknownCollection) as exc:
        raise HTTPException(422, str(exc)) from None
    except RagdeskError as exc:  # the name is taken by an active token
        raise HTTPException(409, str(exc)) from None
    return NewToken(**_token_out(token).model_dump(), secret=secret)


@router.delete("/api/v1/tokens/{name}", tags=["native"], status_code=204,
               summary="Revoke a token (admin token): refused from its next request on")
async def revoke_token(name: str, request: Request) -> Response:
    ctx, p = admin_of(request)
    check_text(name)
    tokens = await run_in_threadpool(ctx.tokens.list)
    target = next((t for t in tokens if t.name == name), None)
    if target is None or not p.covers(target.collections):
        raise HTTPException(404, f"no active token named {name!r}")
    await run_in_threadpool(ctx.tokens.revoke, name, p.name)
    return Response(status_code=204)


@router.post("/api/v1/documents", tags=["native"], status_code=201, response_model=DocumentOut,
             summary="Add a document (admin token): the file's bytes as the request body",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def add_document(request: Request,
                       filename: str = Query(min_length=1, max_length=255),
                       collection: str = Query(default="default", min_length=1, max_length=200)) -> Any:
    ctx, p = admin_of(request)
    check_text(filename)
    check_text(collection)
    if not p.allows_collection(collection):
        raise HTTPException(403, f"this token may not change the collection {collection!r}")
    data = await request.body()
    try:
        doc = await run_in_threadpool(ctx.uploads.add, collection, filename, data, p.name)
    except UploadRejected as exc:
        return JSONResponse({"detail": str(exc)}, status_code=422)
    except RagdeskError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=409)
    ctx.forget_collections()  # a new collection may exist now
    return DocumentOut(id=doc.id, collection=collection, path=doc.path, title=doc.title, format=doc.format,
                       pages=doc.pages, chunks=doc.chunks, status=doc.status, error=doc.error)


@router.delete("/api/v1/documents/{document_id}", tags=["native"], status_code=204,
               summary="Remove a document (admin token)")
async def remove_document(document_id: int, request: Request) -> Response:
    ctx, p = admin_of(request)
    doc = await run_in_threadpool(ctx.services.store.document, document_id) \
        if -(2**63) <= document_id < 2**63 else None
    if doc is None:
        raise HTTPException(404, f"no document {document_id}")
    names = {v: k for k, v in ctx.collection_ids_by_name().items()}
    if not p.allows_collection(names.get(doc.collection_id, "")):
        raise HTTPException(404, f"no document {document_id}")
    await run_in_threadpool(ctx.uploads.remove, document_id, p.name)
    return Response(status_code=204)
