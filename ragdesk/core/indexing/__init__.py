"""Files and folders, or uploaded bytes -> documents, chunks, vectors and keyword entries in the store.

* `pipeline`: the `Indexer` (`run`, `sync`, `add_bytes`): the one path into a vault.
* `parse`: the parser side (read, hash, extract, chunk), run in parser processes.
* `pool`: the parser processes, watched page by page (step budgets, file limit, restarts).
* `walk`: finding the files under the given paths.
* `progress`: what a run reports (`Progress`, `FileOutcome`).
* `options`: `IndexOptions`.
"""

from ragdesk.core.indexing.options import DEFAULT_COLLECTION, IndexOptions
from ragdesk.core.indexing.parse import Parsed, ParseJob
from ragdesk.core.indexing.pipeline import Cancelled, Indexer
from ragdesk.core.indexing.pool import ParserPool
from ragdesk.core.indexing.progress import REMOVED, UNCHANGED, FileOutcome, Progress, Working
from ragdesk.core.indexing.walk import FoundFile, path_text, walk

__all__ = [
    "DEFAULT_COLLECTION",
    "REMOVED",
    "UNCHANGED",
    "Cancelled",
    "FileOutcome",
    "FoundFile",
    "IndexOptions",
    "Indexer",
    "ParseJob",
    "Parsed",
    "ParserPool",
    "Progress",
    "Working",
    "path_text",
    "walk",
]
