"""Copying everything one store holds into another (`ragdesk migrate`), then verifying the copy.

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

The copy itself is copy.py (`Transfer`); what is checked afterwards, and how, is verify.py.
"""

from ragdesk.core.store.transfer.copy import Transfer, TransferConflict, TransferProgress
from ragdesk.core.store.transfer.verify import (
    HALFVEC_TOLERANCE,
    Verification,
    document_checksum,
    verify,
)

__all__ = [
    "HALFVEC_TOLERANCE",
    "Transfer",
    "TransferConflict",
    "TransferProgress",
    "Verification",
    "document_checksum",
    "verify",
]
