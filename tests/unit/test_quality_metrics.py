"""The scores in benchmarks/bench_quality.py (the dev-set table of issue 16) on hand-made rankings:
a figure in RESULTS.md is only as good as the metric that computed it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import bench_quality as bq


def test_ndcg10_rewards_the_relevant_documents_first() -> None:
    rel = {"a": 1, "b": 1}
    assert bq.ndcg10(["a", "b", "x"], rel) == pytest.approx(1.0)
    # one relevant at rank 2 of two relevant: (1/log2 3) / (1 + 1/log2 3)
    assert bq.ndcg10(["x", "a"], rel) == pytest.approx(0.38685, abs=1e-5)
    assert bq.ndcg10(["x"] * 10 + ["a", "b"], rel) == 0.0  # past the cut
    assert bq.ndcg10(["a"], {}) == 0.0  # a query with no judgements scores 0, not a crash


def test_mrr10_counts_the_first_right_hit_within_ten() -> None:
    assert [bq.mrr10(r) for r in (1, 2, 4, 10, 11, None)] == pytest.approx([1, 0.5, 0.25, 0.1, 0, 0])


def test_plain_rrf_sums_reciprocal_ranks_with_k_60() -> None:
    # b: 1/62 + 1/61 beats a: 1/61 alone; c: 1/62 last
    assert bq.rrf([["a", "b"], ["b", "c"]]) == ["b", "a", "c"]
    assert bq.rrf([[], []]) == []


def test_docqa_scores_pages_but_reflowable_files_by_file() -> None:
    hits = [{"path": "/c/other.pdf", "page": 3}, {"path": "/c/book.pdf", "page": 2},
            {"path": "/c/book.pdf", "page": 3}, {"path": "/c/novel.epub", "page": 7}]
    paged = {"id": "q1", "file": "book.pdf", "pages": [3], "kind": "title"}
    flowing = {"id": "q2", "file": "novel.epub", "pages": [40], "kind": "keyword"}
    assert bq.docqa_ranks(hits, paged) == (3, 2)
    assert bq.docqa_ranks(hits, flowing) == (4, 4)
    s = bq.docqa_scores({"q1": hits, "q2": hits[:3]}, [paged, flowing])
    assert s["page MRR@10"] == pytest.approx(1 / 6)
    assert (s["page hit@1"], s["page hit@5"], s["file hit@5"]) == (0, 0.5, 0.5)
    assert s["missed@5"] == ["q2"] and s["title missed@5"] == []


def test_the_benchmark_checks_itself_and_refuses_unknown_sets() -> None:
    script = str(REPO / "benchmarks" / "bench_quality.py")
    ok = subprocess.run([sys.executable, script, "--self-check"], capture_output=True, text=True)
    assert ok.returncode == 0 and "passed" in ok.stdout
    bad = subprocess.run([sys.executable, script, "--sets", "cisi,trec"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown trec" in bad.stderr
