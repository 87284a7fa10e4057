"""Files and folders, or uploaded bytes -> documents, chunks, vectors and keyword entries in the store.

* `pipeline`: the `Indexer` (`run`, `sync`, `add_bytes`): the one path into a vault.
* `parse`: the parser side (read, hash, extract, chunk), run in parser processes.
* `walk`: finding the files under the given paths.
* `progress`: what a run reports (`Progress`, `FileOutcome`).
* `options`: `IndexOptions`.
"""

from ragdesk.core.indexing.options import DEFAULT_COLLECTION, IndexOptions
from ragdesk.core.indexing.parse import Parsed, ParseJob, parser_pool
from ragdesk.core.indexing.pipeline import Cancelled, Indexer
from ragdesk.core.indexing.progress import REMOVED, UNCHANGED, FileOutcome, Progress
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
    "Progress",
    "parser_pool",
    "path_text",
    "walk",
]
