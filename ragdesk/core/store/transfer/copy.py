"""Copying everything one store holds into another, resumably, checking for clashes first.

`Transfer(source, target).run()` yields progress and ends with the verification (verify.py).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ragdesk.core.records import ChunkDraft, Document, DocumentInfo, Message
from ragdesk.core.store.base import Store
from ragdesk.core.store.transfer.verify import (
    HALFVEC_TOLERANCE,
    NEVER_COPIED,
    ChunkKeys,
    Verification,
    all_audit,
    audit_key,
    document_checksum,
    verify,
)
from ragdesk.errors import RagdeskError

_AUDIT_BATCH = 5000
_MUST_AGREE = ("embedder",)  # settings that describe the data itself (its vectors)


class TransferConflict(RagdeskError):
    """The target holds data that disagrees with the source; nothing was written."""


@dataclass
class TransferProgress:
    """Where a transfer is, and what it did so far (the last one carries the verification)."""

    # checking | settings | documents | conversations | tokens | audit | verifying | done
    stage: str = "checking"
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


# --- the copy -------------------------------------------------------------------------------------


class Transfer:
    """Copy `source` into `target`: `run()` yields progress and ends with the verification."""

    def __init__(self, source: Store, target: Store, note: str = "") -> None:
        self.source = source
        self.target = target
        self.note = note  # recorded in the target's audit log (where the data came from)
        self._cancelled = False
        self.vector_tolerance = (
            HALFVEC_TOLERANCE
            if target.backend == "postgresql" and source.backend != "postgresql" else 0.0
        )

    def cancel(self) -> None:
        """Stop between two documents or conversations; what was copied stays."""
        self._cancelled = True

    def run(self) -> Iterator[TransferProgress]:
        t0 = time.perf_counter()
        p = TransferProgress()

        def tick(stage: str | None = None) -> TransferProgress:
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
        dst.audit("migrated in", source=self.note or src.backend,
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
            raise TransferConflict(
                f"the target's vectors were made by {theirs.embedder} ({theirs.dimension}"
                f" dimensions), the source's by {space.embedder} ({space.dimension}); they cannot"
                " be searched together. Migrate into an empty target, or re-index one side with"
                " the other's embedder first. Nothing was copied.")
        mine, others = src.settings(), dst.settings()
        for key in _MUST_AGREE:
            if key in mine and key in others and mine[key] != others[key]:
                raise TransferConflict(
                    f"the target's {key!r} setting is {others[key]!r}, the source's {mine[key]!r};"
                    " they must agree. Nothing was copied.")
        target_names = {c.id: c.name for c in dst.collections()}
        existing = {(target_names[d.collection_id], d.path): d for d in dst.documents()}
        clashes = [f"{coll_names[d.collection_id]}:{d.path}" for d in source_docs
                   if (t := existing.get((coll_names[d.collection_id], d.path))) is not None
                   and t.content_hash != d.content_hash]
        if clashes:
            raise TransferConflict(
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
                raise TransferConflict(
                    f"the token {token.name!r} has the same secret as the target's {same.name!r}."
                    " Nothing was copied.")
            other = active.get(token.name)
            if (same is None and token.revoked_at is None and other is not None):
                raise TransferConflict(
                    f"the target already has an active token named {token.name!r} with another"
                    " secret; revoke one of them and run again. Nothing was copied.")

    def _copy_settings(self, p: TransferProgress) -> None:
        mine, theirs = self.source.settings(), self.target.settings()
        for key, value in mine.items():
            if key.startswith(NEVER_COPIED):
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
                             c.heading, c.page_breaks, c.context) for c in chunks]
        vectors = src.document_vectors(doc.id) if chunks else None
        made = dst.put_document(info, drafts, vectors, src.original(doc.id))
        dst.set_document_times(made.id, doc.added_at, doc.updated_at)
        return True

    def _copy_audit(self) -> tuple[int, int]:
        """Append the source's audit entries the target lacks, oldest first, in batches."""
        theirs = Counter(audit_key(e.at, e.event, e.detail) for e in all_audit(self.target))
        missing: list[tuple[float, str, dict[str, Any]]] = []
        skipped = 0
        for e in reversed(all_audit(self.source)):
            key = audit_key(e.at, e.event, e.detail)
            if theirs[key] > 0:
                theirs[key] -= 1
                skipped += 1
            else:
                missing.append((e.at, e.event, e.detail))
        for start in range(0, len(missing), _AUDIT_BATCH):
            self.target.audit_many(missing[start:start + _AUDIT_BATCH])
        return len(missing), skipped


def _with_citations(m: Message, citations: list[dict[str, Any]]) -> Message:
    return Message(m.id, m.conversation_id, m.role, m.content, citations, m.status, m.created_at,
                   m.meta)


class _CitationMap:
    """Translates the document and chunk ids in citations from the source's to the target's."""

    def __init__(self, source: Store, target: Store) -> None:
        self.source, self.target = source, target
        self._source_keys = ChunkKeys(source)
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


