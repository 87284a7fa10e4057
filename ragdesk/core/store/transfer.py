"""Copy everything one store holds into another (`ragdesk migrate`), then verify the copy.

Vault -> PostgreSQL moves a workstation's library onto the team server; PostgreSQL -> vault is the
export. Both sides are Store objects; the source is opened read-only by the caller and is only read.

What is copied, and how a re-run after an interruption (Ctrl+C, SIGKILL, a lost connection)
finishes without duplicates:
  - settings the services use (chat model, embedder choice, ...), never a store's key material
    (`storage.*`: the target keeps its own key). A setting the target already has keeps the
    target's value (a server's own Ollama host, say) and is listed as kept; the embedder choice
    must agree, like the vector space.
  - collections (by name) and their folders;
  - documents, each in one transaction (`put_document`) with its chunks (pages, offsets,
    heading), vectors and original (decrypted by the source, encrypted again by the target), and
    its own added/updated times. Keyed by (collection name, path): a document already in the
    target with the same content hash and the same checksum is skipped; a killed run leaves each
    document wholly copied or absent.
  - conversations with their messages, each in one transaction, keyed by (created time, title).
    Citations point at documents and chunks by id; the ids are translated to the target's.
  - client tokens (only their SHA-256, with scope and times), keyed by hash;
  - the LAN server's identity (certificate and private key), unless the target has its own;
  - the audit log, entry by entry (time, event, detail), as a multiset: what is there is not
    added again.

Merging: a target that already holds data keeps it. The copy refuses, before writing anything, a
target whose vectors come from another embedder, a document at the same (collection, path) with
different content, or a token whose name or secret clashes.

Verification reads both sides again: counts, a sha256 per document over its metadata and chunks
(text, pages, offsets, heading), a sha256 per original, every vector, every conversation and its
citations (resolved to collection, path and chunk ordinal on each side), tokens and the audit log.
PostgreSQL keeps vectors as halfvec (11 significant bits): copied *into* PostgreSQL they are
compared with a tolerance of 2^-11 (the rounding of a unit vector's components is at most 2^-12),
and the largest difference is reported; every other direction must be exact. PostgreSQL text
cannot hold NUL, which it stores as U+FFFD; the checksums count the two as one character.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ragdesk.core.records import ChunkDraft, Conversation, Document, DocumentInfo, Message
from ragdesk.core.store.base import Store
from ragdesk.errors import RagdeskError

log = logging.getLogger("ragdesk.store.migrate")

# Copied into PostgreSQL, a unit vector's components are rounded to halfvec: at most 2^-12 off.
HALFVEC_TOLERANCE = 2.0**-11
_AUDIT_BATCH = 5000
_NEVER_COPIED = ("storage.",)  # a store's own key material and storage internals
_MUST_AGREE = ("embedder",)  # settings that describe the data itself (its vectors)


class MigrationConflict(RagdeskError):
    """The target holds data that disagrees with the source; nothing was written."""


@dataclass
class Verification:
    ok: bool
    problems: list[str] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> source/target/matched
    checksums: dict[str, str] = field(default_factory=dict)  # over all matched items, source side
    vectors_compared: int = 0
    max_vector_difference: float = 0.0
    vector_tolerance: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass
class MigrationProgress:
    stage: str = "checking"  # checking | settings | documents | conversations | tokens | audit | verifying | done
    documents_total: int = 0
    documents_done: int = 0
    documents_copied: int = 0
    documents_skipped: int = 0
    conversations_total: int = 0
    conversations_copied: int = 0
    conversations_skipped: int = 0
    tokens_copied: int = 0
    tokens_skipped: int = 0
    audit_copied: int = 0
    audit_skipped: int = 0
    settings_copied: list[str] = field(default_factory=list)
    settings_kept: list[str] = field(default_factory=list)
    identity: str = "none"  # none | copied | same | kept the target's
    current: str = ""
    cancelled: bool = False
    elapsed: float = 0.0
    verification: Verification | None = None

    @property
    def done(self) -> bool:
        return self.stage == "done"


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


def _audit_key(at: float, event: str, detail: dict[str, Any]) -> tuple[float, str, str]:
    return at, event, json.dumps(detail, sort_keys=True, default=str)


def _backend(store: Store) -> str:
    return str(getattr(store, "backend", "vault"))


# --- the copy -------------------------------------------------------------------------------------


class Migration:
    """Copy `source` into `target`: `run()` yields progress and ends with the verification."""

    def __init__(self, source: Store, target: Store, note: str = "") -> None:
        self.source = source
        self.target = target
        self.note = note  # recorded in the target's audit log (where the data came from)
        self._cancelled = False
        self.vector_tolerance = (
            HALFVEC_TOLERANCE
            if _backend(target) == "postgresql" and _backend(source) != "postgresql" else 0.0
        )

    def cancel(self) -> None:
        """Stop between two documents or conversations; what was copied stays."""
        self._cancelled = True

    def run(self) -> Iterator[MigrationProgress]:
        t0 = time.perf_counter()
        p = MigrationProgress()

        def tick(stage: str | None = None) -> MigrationProgress:
            if stage:
                p.stage = stage
            p.elapsed = time.perf_counter() - t0
            return p

        src, dst = self.source, self.target
        yield tick("checking")
        source_docs = src.documents()
        coll_names = {c.id: c.name for c in src.collections()}
        self._check(source_docs, coll_names)
        p.documents_total = len(source_docs)

        yield tick("settings")
        self._copy_settings(p)
        target_colls = {}
        for coll in src.collections():
            made = dst.collection(coll.name)
            assert made is not None
            for folder in coll.folders:
                if folder not in made.folders:
                    dst.add_folder(made.id, folder)
            target_colls[coll.id] = made.id
        space = src.vector_space()
        if space is not None and dst.vector_space() is None:
            dst.set_vector_space(space)

        yield tick("documents")
        for doc in source_docs:
            if self._cancelled:
                p.cancelled = True
                yield tick()
                return
            p.current = doc.path
            if self._copy_document(doc, coll_names[doc.collection_id],
                                   target_colls[doc.collection_id]):
                p.documents_copied += 1
            else:
                p.documents_skipped += 1
            p.documents_done += 1
            yield tick()
        p.current = ""

        yield tick("conversations")
        conversations = sorted(src.conversations(), key=lambda c: (c.created_at, c.id))
        p.conversations_total = len(conversations)
        present = {(c.created_at, c.title) for c in dst.conversations()}
        resolver = _CitationMap(src, dst)
        for conv in conversations:
            if self._cancelled:
                p.cancelled = True
                yield tick()
                return
            if (conv.created_at, conv.title) in present:
                p.conversations_skipped += 1
            else:
                messages = [_with_citations(m, resolver.translate(m.citations))
                            for m in src.messages(conv.id)]
                dst.import_conversation(conv, messages)
                p.conversations_copied += 1
            yield tick()

        yield tick("tokens")
        have = {t.token_hash for t in dst.tokens(include_revoked=True)}
        for token in src.tokens(include_revoked=True):
            if token.token_hash in have:
                p.tokens_skipped += 1
            else:
                dst.import_token(token)
                p.tokens_copied += 1
        identity = src.server_identity()
        if identity is not None:
            theirs = dst.server_identity()
            if theirs is None:
                dst.set_server_identity(*identity)
                p.identity = "copied"
            else:
                p.identity = "same" if theirs == identity else "kept the target's"

        yield tick("audit")
        p.audit_copied, p.audit_skipped = self._copy_audit()
        dst.audit("migrated in", source=self.note or _backend(src),
                  documents=p.documents_copied, conversations=p.conversations_copied)

        yield tick("verifying")
        p.verification = verify(src, dst, self.vector_tolerance)
        yield tick("done")

    # --- steps ------------------------------------------------------------------------------

    def _check(self, source_docs: list[Document], coll_names: dict[int, str]) -> None:
        """Refuse, before writing anything, a target whose data disagrees with the source's."""
        src, dst = self.source, self.target
        space, theirs = src.vector_space(), dst.vector_space()
        if space is not None and theirs is not None and space != theirs:
            raise MigrationConflict(
                f"the target's vectors were made by {theirs.embedder} ({theirs.dimension}"
                f" dimensions), the source's by {space.embedder} ({space.dimension}); they cannot"
                " be searched together. Migrate into an empty target, or re-index one side with"
                " the other's embedder first. Nothing was copied.")
        mine, others = src.settings(), dst.settings()
        for key in _MUST_AGREE:
            if key in mine and key in others and mine[key] != others[key]:
                raise MigrationConflict(
                    f"the target's {key!r} setting is {others[key]!r}, the source's {mine[key]!r};"
                    " they must agree. Nothing was copied.")
        target_names = {c.id: c.name for c in dst.collections()}
        existing = {(target_names[d.collection_id], d.path): d for d in dst.documents()}
        clashes = [f"{coll_names[d.collection_id]}:{d.path}" for d in source_docs
                   if (t := existing.get((coll_names[d.collection_id], d.path))) is not None
                   and t.content_hash != d.content_hash]
        if clashes:
            raise MigrationConflict(
                f"the target already holds {len(clashes)} document(s) at the same path with"
                f" different content, e.g. {', '.join(clashes[:3])}; remove them there (or index"
                " the same files on both sides) and run again. Nothing was copied.")
        ours = src.tokens(include_revoked=True)
        theirs_tokens = dst.tokens(include_revoked=True)
        by_hash = {t.token_hash: t for t in theirs_tokens}
        active = {t.name: t for t in theirs_tokens if t.revoked_at is None}
        for token in ours:
            same = by_hash.get(token.token_hash)
            if same is not None and same.name != token.name:
                raise MigrationConflict(
                    f"the token {token.name!r} has the same secret as the target's {same.name!r}."
                    " Nothing was copied.")
            other = active.get(token.name)
            if (same is None and token.revoked_at is None and other is not None):
                raise MigrationConflict(
                    f"the target already has an active token named {token.name!r} with another"
                    " secret; revoke one of them and run again. Nothing was copied.")

    def _copy_settings(self, p: MigrationProgress) -> None:
        mine, theirs = self.source.settings(), self.target.settings()
        for key, value in mine.items():
            if key.startswith(_NEVER_COPIED):
                continue
            if key not in theirs:
                self.target.set_setting(key, value)
                p.settings_copied.append(key)
            elif theirs[key] != value:
                p.settings_kept.append(key)

    def _copy_document(self, doc: Document, collection: str, target_collection: int) -> bool:
        """Copy one document in one transaction; False if the target has it already."""
        src, dst = self.source, self.target
        chunks = src.document_chunks(doc.id)
        there = dst.document_by_path(target_collection, doc.path)
        if there is not None and there.content_hash == doc.content_hash:
            theirs = dst.document_chunks(there.id)
            same_times = (there.added_at, there.updated_at) == (doc.added_at, doc.updated_at)
            moved = dataclasses.replace(doc, added_at=there.added_at, updated_at=there.updated_at)
            if document_checksum(collection, moved, chunks) == document_checksum(
                    collection, there, theirs):
                if not same_times:  # an earlier run was stopped between the two steps
                    dst.set_document_times(there.id, doc.added_at, doc.updated_at)
                return False
        info = DocumentInfo(target_collection, doc.path, doc.title, doc.format, doc.size,
                            doc.mtime, doc.content_hash, doc.pages, doc.status, doc.error)
        drafts = [ChunkDraft(c.text, c.page_start, c.page_end, c.char_start, c.char_end,
                             c.heading) for c in chunks]
        vectors = src.document_vectors(doc.id) if chunks else None
        made = dst.put_document(info, drafts, vectors, src.original(doc.id))
        dst.set_document_times(made.id, doc.added_at, doc.updated_at)
        return True

    def _copy_audit(self) -> tuple[int, int]:
        """Append the source's audit entries the target lacks, oldest first, in batches."""
        theirs = Counter(_audit_key(e.at, e.event, e.detail) for e in _all_audit(self.target))
        missing: list[tuple[float, str, dict[str, Any]]] = []
        skipped = 0
        for e in reversed(_all_audit(self.source)):
            key = _audit_key(e.at, e.event, e.detail)
            if theirs[key] > 0:
                theirs[key] -= 1
                skipped += 1
            else:
                missing.append((e.at, e.event, e.detail))
        for start in range(0, len(missing), _AUDIT_BATCH):
            self.target.audit_many(missing[start:start + _AUDIT_BATCH])
        return len(missing), skipped


def _all_audit(store: Store) -> list[Any]:
    return store.audit_events(limit=2**62)


def _with_citations(m: Message, citations: list[dict[str, Any]]) -> Message:
    return Message(m.id, m.conversation_id, m.role, m.content, citations, m.status, m.created_at,
                   m.meta)


class _CitationMap:
    """Translates the document and chunk ids in citations from the source's to the target's."""

    def __init__(self, source: Store, target: Store) -> None:
        self.source, self.target = source, target
        self._source_keys = _ChunkKeys(source)
        self._target_docs: dict[tuple[str, str], Document | None] = {}
        self._target_chunks: dict[int, list[int]] = {}
        self._target_colls = {c.name: c.id for c in target.collections()}

    def _target_doc(self, key: tuple[str, str]) -> Document | None:
        if key not in self._target_docs:
            coll = self._target_colls.get(key[0])
            self._target_docs[key] = (self.target.document_by_path(coll, key[1])
                                      if coll is not None else None)
        return self._target_docs[key]

    def translate(self, citations: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for c in citations:
            c = dict(c)
            doc_key = self._source_keys.document(c.get("document_id"))
            target_doc = self._target_doc(doc_key) if doc_key else None
            if target_doc is None:  # cited a document since removed: keep the words, not the ids
                c.pop("document_id", None)
                c.pop("chunk_id", None)
                out.append(c)
                continue
            c["document_id"] = target_doc.id
            if "chunk_id" in c:
                chunk = self._source_keys.chunk(c["chunk_id"])
                ids = self._target_chunks.get(target_doc.id)
                if ids is None:
                    ids = [x.id for x in self.target.document_chunks(target_doc.id)]
                    self._target_chunks[target_doc.id] = ids
                if chunk is None or chunk[1] != doc_key or chunk[2] >= len(ids):
                    c.pop("chunk_id")
                else:
                    c["chunk_id"] = ids[chunk[2]]
            out.append(c)
        return out


class _ChunkKeys:
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
                           keys: _ChunkKeys) -> str:
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
        other = by_name.get(coll.name)
        if other is None:
            problems.append(f"collection {coll.name!r} is missing in the target")
        elif not set(coll.folders) <= set(other.folders):
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
        other = dst_docs.get(key)
        if other is None:
            problems.append(f"document {key[0]}:{doc.path} is missing in the target")
            continue
        theirs = target.document_chunks(other.id)
        mine_sum = document_checksum(key[0], doc, chunks)
        if mine_sum != document_checksum(key[0], other, theirs):
            problems.append(f"document {key[0]}:{doc.path} differs in the target (checksum)")
            continue
        docs_ok += 1
        chunks_ok += len(theirs)
        doc_sums.update(mine_sum.encode())
        their_original = target.original(other.id)
        originals_dst += their_original is not None
        if _sha256(original) != _sha256(their_original):
            problems.append(f"the original of {key[0]}:{doc.path} differs in the target")
        elif original is not None:
            originals_ok += 1
            original_sums.update(hashlib.sha256(original).digest())
        their_vectors = target.document_vectors(other.id)
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
    src_keys, dst_keys = _ChunkKeys(source), _ChunkKeys(target)
    dst_convs = {(c.created_at, c.title): c for c in target.conversations()}
    src_convs = source.conversations()
    conv_sums = hashlib.sha256()
    convs_ok = messages_src = messages_ok = 0
    for conv in sorted(src_convs, key=lambda c: (c.created_at, c.id)):
        messages = source.messages(conv.id)
        messages_src += len(messages)
        other = dst_convs.get((conv.created_at, conv.title))
        if other is None:
            problems.append(f"conversation {conv.title!r} is missing in the target")
            continue
        mine_sum = _conversation_checksum(conv, messages, src_keys)
        theirs_messages = target.messages(other.id)
        if mine_sum != _conversation_checksum(other, theirs_messages, dst_keys):
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
    wanted = {k: val for k, val in mine.items() if not k.startswith(_NEVER_COPIED)}
    settings_ok = sum(theirs_settings.get(k) == val for k, val in wanted.items())
    missing = [k for k in wanted if k not in theirs_settings]
    if missing:
        problems.append(f"setting(s) missing in the target: {', '.join(missing)}")
    kept = [k for k, val in wanted.items() if k in theirs_settings and theirs_settings[k] != val]
    if kept:
        v.notes.append(f"the target keeps its own value of: {', '.join(kept)}")
    count("settings", len(wanted), len(theirs_settings), settings_ok)

    src_audit = Counter(_audit_key(e.at, e.event, e.detail) for e in _all_audit(source))
    dst_audit_list = _all_audit(target)
    dst_audit = Counter(_audit_key(e.at, e.event, e.detail) for e in dst_audit_list)
    short = src_audit - dst_audit
    audit_ok = sum(src_audit.values()) - sum(short.values())
    if short:
        problems.append(f"{sum(short.values())} audit log entr(ies) are missing in the target")
    count("audit", sum(src_audit.values()), len(dst_audit_list), audit_ok)

    v.ok = not problems
    return v
