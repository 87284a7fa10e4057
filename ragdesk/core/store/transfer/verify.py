"""Verifying a copy between stores: everything the source holds is in the target, equal.

Verification reads both sides again: counts, a sha256 per document over its metadata and chunks
(text, pages, offsets, heading), a sha256 per original, every vector, every conversation and its
citations (resolved to collection, path and chunk ordinal on each side), tokens, settings and the
audit log. PostgreSQL keeps vectors as halfvec (11 significant bits): copied *into* PostgreSQL
they are compared with a tolerance of 2^-11 (the rounding of a unit vector's components is at
most 2^-12), and the largest difference is reported; every other direction must be exact.
PostgreSQL text cannot hold NUL, which it stores as U+FFFD; the checksums count the two as one
character.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ragdesk.core.records import AuditEvent, Conversation, Document, Message
from ragdesk.core.store.base import Store

# Copied into PostgreSQL, a unit vector's components are rounded to halfvec: at most 2^-12 off.
HALFVEC_TOLERANCE = 2.0**-11
NEVER_COPIED = ("storage.",)  # a store's own key material and storage internals


@dataclass
class Verification:
    """What `verify` found: ok, or the problems; per item kind the counts on each side."""

    ok: bool
    problems: list[str] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> source/target/matched
    checksums: dict[str, str] = field(default_factory=dict)  # over all matched items, source side
    vectors_compared: int = 0
    max_vector_difference: float = 0.0
    vector_tolerance: float = 0.0
    notes: list[str] = field(default_factory=list)



# --- checksums ------------------------------------------------------------------------------------


def _norm(text: str | None) -> str | None:
    return text.replace("\x00", "\ufffd") if text is not None and "\x00" in text else text


def _digest(value: Any) -> str:
    data = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()


def document_checksum(collection: str, doc: Document, chunks: Sequence[Any]) -> str:
    """sha256 of a document's metadata and its chunks' text, pages, offsets and heading."""
    return _digest([
        collection, _norm(doc.path), _norm(doc.title), doc.format, doc.size, repr(doc.mtime),
        doc.content_hash, doc.status, _norm(doc.error), doc.pages, doc.chunks,
        repr(doc.added_at), repr(doc.updated_at),
        [[c.ordinal, _norm(c.text), c.page_start, c.page_end, c.char_start, c.char_end,
          _norm(c.heading)] for c in chunks],
    ])


def _sha256(data: bytes | None) -> str | None:
    return hashlib.sha256(data).hexdigest() if data is not None else None


def audit_key(at: float, event: str, detail: dict[str, Any]) -> tuple[float, str, str]:
    return at, event, json.dumps(detail, sort_keys=True, default=str)


def all_audit(store: Store) -> list[AuditEvent]:
    return store.audit_events(limit=2**62)


class ChunkKeys:
    """Document and chunk ids of one store resolved to keys valid in any store:
    (collection name, path) and (that, chunk ordinal)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._colls = {c.id: c.name for c in store.collections()}
        self._docs: dict[Any, tuple[str, str] | None] = {}

    def document(self, document_id: Any) -> tuple[str, str] | None:
        if not isinstance(document_id, int):
            return None
        if document_id not in self._docs:
            doc = self.store.document(document_id)
            self._docs[document_id] = (self._colls.get(doc.collection_id, "?"), doc.path) \
                if doc is not None else None
        return self._docs[document_id]

    def chunk(self, chunk_id: Any) -> tuple[int, tuple[str, str] | None, int] | None:
        if not isinstance(chunk_id, int):
            return None
        found = self.store.chunks([chunk_id])
        if not found:
            return None
        return chunk_id, self.document(found[0].document_id), found[0].ordinal

    def citation(self, c: dict[str, Any]) -> dict[str, Any]:
        """The citation with its ids replaced by what they point at (None: nothing)."""
        c = dict(c)
        if "document_id" in c:
            c["document_id"] = self.document(c["document_id"])
        if "chunk_id" in c:
            chunk = self.chunk(c["chunk_id"])
            c["chunk_id"] = [chunk[1], chunk[2]] if chunk else None
        for k in ("text", "snippet", "title", "path"):
            if isinstance(c.get(k), str):
                c[k] = _norm(c[k])
        return c


# --- verification ---------------------------------------------------------------------------------


def _conversation_checksum(conv: Conversation, messages: Sequence[Message],
                           keys: ChunkKeys) -> str:
    return _digest([
        _norm(conv.title), repr(conv.created_at), repr(conv.updated_at),
        [[m.role, _norm(m.content), m.status, repr(m.created_at), m.meta,
          [keys.citation(c) for c in m.citations]] for m in messages],
    ])


def verify(source: Store, target: Store, vector_tolerance: float = 0.0) -> Verification:
    """Everything the source holds is in the target, equal (vectors within the tolerance)."""
    v = Verification(ok=False, vector_tolerance=vector_tolerance)
    problems = v.problems

    def count(name: str, in_source: int, in_target: int, matched: int) -> None:
        v.counts[name] = {"source": in_source, "target": in_target, "matched": matched}

    # collections
    src_colls, dst_colls = source.collections(), target.collections()
    by_name = {c.name: c for c in dst_colls}
    matched = 0
    for coll in src_colls:
        same_name = by_name.get(coll.name)
        if same_name is None:
            problems.append(f"collection {coll.name!r} is missing in the target")
        elif not set(coll.folders) <= set(same_name.folders):
            problems.append(f"collection {coll.name!r} lacks folders in the target")
        else:
            matched += 1
    count("collections", len(src_colls), len(dst_colls), matched)

    # documents, chunks, vectors, originals
    src_names = {c.id: c.name for c in src_colls}
    dst_names = {c.id: c.name for c in dst_colls}
    dst_docs = {(dst_names[d.collection_id], d.path): d for d in target.documents()}
    src_docs = source.documents()
    doc_sums, original_sums = hashlib.sha256(), hashlib.sha256()
    docs_ok = chunks_src = chunks_ok = originals_src = originals_ok = 0
    vectors_src = vectors_ok = originals_dst = 0
    chunks_dst = target.status().chunks
    for doc in src_docs:
        key = (src_names[doc.collection_id], doc.path)
        chunks = source.document_chunks(doc.id)
        chunks_src += len(chunks)
        original = source.original(doc.id)
        originals_src += original is not None
        vectors = source.document_vectors(doc.id)
        vectors_src += 0 if vectors is None else len(vectors)
        their_doc = dst_docs.get(key)
        if their_doc is None:
            problems.append(f"document {key[0]}:{doc.path} is missing in the target")
            continue
        theirs = target.document_chunks(their_doc.id)
        mine_sum = document_checksum(key[0], doc, chunks)
        if mine_sum != document_checksum(key[0], their_doc, theirs):
            problems.append(f"document {key[0]}:{doc.path} differs in the target (checksum)")
            continue
        docs_ok += 1
        chunks_ok += len(theirs)
        doc_sums.update(mine_sum.encode())
        their_original = target.original(their_doc.id)
        originals_dst += their_original is not None
        if _sha256(original) != _sha256(their_original):
            problems.append(f"the original of {key[0]}:{doc.path} differs in the target")
        elif original is not None:
            originals_ok += 1
            original_sums.update(hashlib.sha256(original).digest())
        their_vectors = target.document_vectors(their_doc.id)
        if vectors is None or their_vectors is None:
            if (vectors is None) != (their_vectors is None):
                problems.append(f"the vectors of {key[0]}:{doc.path} are missing on one side")
            continue
        if vectors.shape != their_vectors.shape:
            problems.append(f"the vectors of {key[0]}:{doc.path} differ in shape")
            continue
        diff = float(np.abs(vectors - their_vectors).max()) if vectors.size else 0.0
        v.max_vector_difference = max(v.max_vector_difference, diff)
        v.vectors_compared += len(vectors)
        if diff > vector_tolerance:
            problems.append(f"the vectors of {key[0]}:{doc.path} differ by {diff:.3g}"
                            f" (allowed {vector_tolerance:.3g})")
        else:
            vectors_ok += len(vectors)
    # "target" counts what the target holds in all; for vectors and originals, what it holds
    # for the source's documents (a store does not count them on its own).
    count("documents", len(src_docs), len(dst_docs), docs_ok)
    count("chunks", chunks_src, chunks_dst, chunks_ok)
    count("vectors", vectors_src, v.vectors_compared, vectors_ok)
    count("originals", originals_src, originals_dst, originals_ok)
    v.checksums["documents"] = doc_sums.hexdigest()
    v.checksums["originals"] = original_sums.hexdigest()
    space, theirs_space = source.vector_space(), target.vector_space()
    if space is not None and space != theirs_space:
        problems.append(f"the target's vector space is {theirs_space}, the source's {space}")

    # conversations and messages
    src_keys, dst_keys = ChunkKeys(source), ChunkKeys(target)
    dst_convs = {(c.created_at, c.title): c for c in target.conversations()}
    src_convs = source.conversations()
    conv_sums = hashlib.sha256()
    convs_ok = messages_src = messages_ok = 0
    for conv in sorted(src_convs, key=lambda c: (c.created_at, c.id)):
        messages = source.messages(conv.id)
        messages_src += len(messages)
        their_conv = dst_convs.get((conv.created_at, conv.title))
        if their_conv is None:
            problems.append(f"conversation {conv.title!r} is missing in the target")
            continue
        mine_sum = _conversation_checksum(conv, messages, src_keys)
        theirs_messages = target.messages(their_conv.id)
        if mine_sum != _conversation_checksum(their_conv, theirs_messages, dst_keys):
            problems.append(f"conversation {conv.title!r} differs in the target")
            continue
        convs_ok += 1
        messages_ok += len(messages)
        conv_sums.update(mine_sum.encode())
    count("conversations", len(src_convs), len(dst_convs), convs_ok)
    count("messages", messages_src, target.status().messages, messages_ok)
    v.checksums["conversations"] = conv_sums.hexdigest()

    # tokens, server identity, settings, audit log
    def token_key(t: Any) -> tuple[Any, ...]:
        return (t.name, t.token_hash, t.collections, t.admin, t.created_at, t.revoked_at)

    src_tokens = source.tokens(include_revoked=True)
    dst_tokens = {token_key(t) for t in target.tokens(include_revoked=True)}
    tokens_ok = sum(token_key(t) in dst_tokens for t in src_tokens)
    if tokens_ok != len(src_tokens):
        problems.append(f"{len(src_tokens) - tokens_ok} token(s) are missing in the target")
    count("tokens", len(src_tokens), len(dst_tokens), tokens_ok)

    identity = source.server_identity()
    if identity is not None:
        theirs_identity = target.server_identity()
        if theirs_identity is None:
            problems.append("the server identity is missing in the target")
        elif theirs_identity != identity:
            v.notes.append("the target keeps its own server identity (TLS certificate)")

    mine, theirs_settings = source.settings(), target.settings()
    wanted = {k: val for k, val in mine.items() if not k.startswith(NEVER_COPIED)}
    settings_ok = sum(theirs_settings.get(k) == val for k, val in wanted.items())
    missing = [k for k in wanted if k not in theirs_settings]
    if missing:
        problems.append(f"setting(s) missing in the target: {', '.join(missing)}")
    kept = [k for k, val in wanted.items() if k in theirs_settings and theirs_settings[k] != val]
    if kept:
        v.notes.append(f"the target keeps its own value of: {', '.join(kept)}")
    count("settings", len(wanted), len(theirs_settings), settings_ok)

    src_audit = Counter(audit_key(e.at, e.event, e.detail) for e in all_audit(source))
    dst_audit_list = all_audit(target)
    dst_audit = Counter(audit_key(e.at, e.event, e.detail) for e in dst_audit_list)
    short = src_audit - dst_audit
    audit_ok = sum(src_audit.values()) - sum(short.values())
    if short:
        problems.append(f"{sum(short.values())} audit log entr(ies) are missing in the target")
    count("audit", sum(src_audit.values()), len(dst_audit_list), audit_ok)

    v.ok = not problems
    return v
