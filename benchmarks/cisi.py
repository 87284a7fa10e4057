"""The CISI test collection for benchmarks: documents, queries, judgements and the metrics.

CISI comes in SMART format: records start with `.I <id>`; fields start with a line `.T` (title),
`.A` (author), `.W` (text), `.X` (citations), `.B`, `.K`, `.C`. CISI.REL holds lines
"<query id> <doc id> 0 0.0". A document's text is its title and its `.W` text; a query's is its
`.W` text. Relevance is binary.

The data folder defaults to ../shared/data/cisi beside the repository; pass `data_dir` or set
$RAGDESK_CISI_DIR to read it elsewhere. This module needs only the standard library, so
a benchmark can import it from any interpreter (e.g. a scratch venv with PyTorch).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared/data/cisi"

_FIELD = re.compile(r"^\.([A-Z])(?:\s+(.*))?$")


def resolve_data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    chosen = override or os.environ.get("RAGDESK_CISI_DIR")
    return Path(chosen) if chosen else DEFAULT_DATA_DIR


def _records(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(id, {field letter: text with whitespace collapsed}) for each `.I` record of a SMART file."""
    record_id: int | None = None
    fields: dict[str, list[str]] = {}
    current: str | None = None
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            match = _FIELD.match(line.rstrip("\n"))
            if match:
                letter, rest = match.group(1), (match.group(2) or "").strip()
                if letter == "I":
                    if record_id is not None:
                        yield record_id, _joined(fields)
                    record_id, fields, current = int(rest), {}, None
                    continue
                current = letter
                fields.setdefault(letter, [])
                if rest:
                    fields[letter].append(rest)
                continue
            if current is not None:
                fields[current].append(line)
    if record_id is not None:
        yield record_id, _joined(fields)


def _joined(fields: dict[str, list[str]]) -> dict[str, str]:
    return {k: " ".join(" ".join(v).split()) for k, v in fields.items()}


def load_docs(data_dir: str | os.PathLike[str] | None = None) -> dict[int, str]:
    """doc id -> title + newline + text, in file order (1460 documents)."""
    docs = {}
    for doc_id, fields in _records(resolve_data_dir(data_dir) / "CISI.ALL"):
        title, text = fields.get("T", ""), fields.get("W", "")
        docs[doc_id] = f"{title}\n{text}" if title and text else title or text
    return docs


def load_queries(data_dir: str | os.PathLike[str] | None = None) -> dict[int, str]:
    """query id -> query text (112 queries; only 76 have judgements)."""
    return {qid: f.get("W", "") for qid, f in _records(resolve_data_dir(data_dir) / "CISI.QRY")}


def load_qrels(data_dir: str | os.PathLike[str] | None = None) -> dict[int, set[int]]:
    """query id -> ids of the documents judged relevant."""
    qrels: dict[int, set[int]] = {}
    with open(resolve_data_dir(data_dir) / "CISI.REL", encoding="utf-8") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) >= 2:
                qrels.setdefault(int(parts[0]), set()).add(int(parts[1]))
    return qrels


def ndcg_at(ranked_ids: Sequence[int], relevant: Iterable[int], k: int = 10) -> float:
    """Binary-relevance nDCG@k: sum of 1/log2(rank + 1) over relevant hits, over the ideal."""
    relevant = set(relevant)
    if not relevant:
        return 0.0
    dcg = sum(1.0 / math.log2(rank + 2) for rank, d in enumerate(ranked_ids[:k]) if d in relevant)
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(k, len(relevant))))
    return dcg / ideal


def recall_at(ranked_ids: Sequence[int], relevant: Iterable[int], k: int = 100) -> float:
    """Share of the relevant documents found in the first k."""
    relevant = set(relevant)
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked_ids[:k])) / len(relevant)


def evaluate(rankings: dict[int, Sequence[int]], qrels: dict[int, set[int]]) -> dict[str, float]:
    """Mean nDCG@10 and recall@100 over the judged queries (a missing ranking counts as 0)."""
    judged = [q for q in sorted(qrels) if qrels[q]]
    ndcg = sum(ndcg_at(rankings.get(q, []), qrels[q], 10) for q in judged) / len(judged)
    recall = sum(recall_at(rankings.get(q, []), qrels[q], 100) for q in judged) / len(judged)
    return {"ndcg@10": ndcg, "recall@100": recall, "queries": float(len(judged))}
