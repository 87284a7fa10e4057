"""Retrieval quality on the three dev sets, outside in, in one table (issue 16).

    .venv/bin/python benchmarks/bench_quality.py [--sets cisi,cacm,docqa] [--json FILE]
        [--ragdesk BIN] [--data-dir ../shared/data] [--corpus ../shared/corpus] [--work DIR]
        [--check]
    .venv/bin/python benchmarks/bench_quality.py --self-check    # the metrics on hand-made rankings

Like the scorers in ../shared/tools/eval/ (modes_eval.py, docqa_eval.py, irdata.py), it drives
RagDesk only through its command line, in a throw-away RAGDESK_HOME per set, so it measures what
a user gets: `ragdesk init`, `ragdesk index FOLDER --json`, then
`ragdesk search --batch FILE -k 100 --mode keyword|vector|hybrid` once per mode.

- cisi, cacm (SMART collections): each document is written as doc-<id>.txt (title, blank line,
  text), indexed once; nDCG@10 and R@100 over the distinct documents of each mode's hits.
- docqa: ../shared/corpus indexed once, the 60 questions of docqa/questions.jsonl; page-level
  hit@1, hit@5, MRR@10 (file-level for reflowable formats such as EPUB) and file-level hit@5, and
  whether every `title` question is found in the top 5.
- "plain RRF" is the recipe most peers ship: reciprocal rank fusion with k=60 and equal weights
  over RagDesk's own keyword and vector lists (100 deep), computed here from those two lists.

It prints one Markdown table of all figures, then the issue's targets with met / not met.
--json FILE writes the raw figures; --work DIR keeps the vaults there and reuses those already
built (to re-score after a retrieval change that needs no re-indexing); --check exits 1 when a
target is not met. Standard library only: no RagDesk import (and so no Qt).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus"
PASSPHRASE = "correct horse battery staple"
SETS = ("cisi", "cacm", "docqa")
MODES = ("keyword", "vector", "hybrid")
RRF = "plain RRF"
ALL_MODES = (*MODES, RRF)
RRF_K = 60
DEPTH = 100  # hits asked of each mode (and fused for plain RRF)
# From ../shared/tools/eval/docqa_eval.py: formats with no fixed pages are scored by file.
REFLOWABLE = {".epub", ".mobi", ".fb2", ".html", ".xhtml", ".htm", ".md", ".txt"}
IR_METRICS = ("nDCG@10", "R@100")
QA_METRICS = ("page hit@1", "page hit@5", "page MRR@10", "file hit@5")


# --- metrics (the same as modes_eval.py and docqa_eval.py) -----------------------------------------

def ndcg10(ranked: Sequence[str], rel: Mapping[str, int]) -> float:
    """nDCG@10 with graded gains (binary here) and log2(rank + 1) discounts; 0 with no relevant."""
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(rel.values(), reverse=True)[:10]))
    return dcg / ideal if ideal else 0.0


def recall(ranked: Sequence[str], rel: Mapping[str, int], n: int = 100) -> float:
    return len(set(ranked[:n]) & set(rel)) / len(rel) if rel else 0.0


def mrr10(rank: int | None) -> float:
    """Reciprocal rank of the first right hit, 0 beyond rank 10."""
    return 1.0 / rank if rank and rank <= 10 else 0.0


def rrf(lists: Sequence[Sequence[Any]], k: int = RRF_K) -> list[Any]:
    """Reciprocal rank fusion with equal weights: score = sum of 1 / (k + rank), rank from 1.
    Ties keep the order of first appearance (keyword list first), as modes_eval.py's sort does."""
    scores: dict[Any, float] = {}
    for ranked in lists:
        for i, item in enumerate(ranked):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + i + 1)
    return sorted(scores, key=lambda item: -scores[item])


def docqa_ranks(hits: Sequence[Mapping[str, Any]],
                question: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(page rank, file rank), 1-based, of the first hit on the right page / file (docqa_eval.py's
    rule: the file name matches; the page is one of `pages` unless the format is reflowable)."""
    paged = Path(question["file"]).suffix.lower() not in REFLOWABLE
    page_rank = file_rank = None
    for i, hit in enumerate(hits, start=1):
        if Path(hit.get("path", "")).name != question["file"]:
            continue
        file_rank = file_rank or i
        if not paged or not question.get("pages") or hit.get("page") in question["pages"]:
            page_rank = i
            break
    return page_rank, file_rank


def docqa_scores(hits_by_id: Mapping[str, Sequence[Mapping[str, Any]]],
                 questions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    p1 = p5 = f5 = mrr = 0.0
    missed: list[str] = []
    for q in questions:
        page_rank, file_rank = docqa_ranks(hits_by_id.get(str(q["id"]), []), q)
        p1 += page_rank == 1
        p5 += bool(page_rank and page_rank <= 5)
        f5 += bool(file_rank and file_rank <= 5)
        mrr += mrr10(page_rank)
        if not (page_rank and page_rank <= 5):
            missed.append(str(q["id"]))
    n = len(questions) or 1
    titles = [str(q["id"]) for q in questions if q.get("kind") == "title"]
    return {"page hit@1": p1 / n, "page hit@5": p5 / n, "page MRR@10": mrr / n, "file hit@5": f5 / n,
            "missed@5": missed, "title questions": len(titles),
            "title missed@5": [i for i in titles if i in missed]}


def self_check() -> None:
    """The metrics on tiny rankings whose values are known by hand; raises AssertionError."""
    def close(a: float, b: float) -> bool:
        return abs(a - b) < 1e-9

    rel = {"a": 1, "b": 1}
    assert close(ndcg10(["a", "b", "x"], rel), 1.0)
    assert close(ndcg10(["x", "a"], rel), (1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert close(ndcg10(["x"] * 10 + ["a"], rel), 0.0)  # rank 11 is past the cut
    assert close(ndcg10(["a"], {}), 0.0)
    assert close(recall(["a", "x"], rel), 0.5)
    assert close(mrr10(1), 1.0) and close(mrr10(4), 0.25) and close(mrr10(11), 0.0) and mrr10(None) == 0
    assert rrf([["a", "b"], ["b", "c"]]) == ["b", "a", "c"]
    page_q = {"id": "q1", "file": "book.pdf", "pages": [3], "kind": "title"}
    flow_q = {"id": "q2", "file": "novel.epub", "pages": [9], "kind": "keyword"}
    hits = [{"path": "/x/other.pdf", "page": 3}, {"path": "/x/book.pdf", "page": 2},
            {"path": "/x/book.pdf", "page": 3}, {"path": "/x/novel.epub", "page": 1}]
    assert docqa_ranks(hits, page_q) == (3, 2)
    assert docqa_ranks(hits, flow_q) == (4, 4)  # reflowable: any page of the right file
    s = docqa_scores({"q1": hits, "q2": hits[:3]}, [page_q, flow_q])
    assert close(s["page MRR@10"], (1 / 3 + 0) / 2) and close(s["page hit@1"], 0.0)
    assert close(s["page hit@5"], 0.5) and close(s["file hit@5"], 0.5)
    assert s["missed@5"] == ["q2"] and s["title missed@5"] == []


# --- the collections -------------------------------------------------------------------------------

def _smart_records(text: str) -> dict[str, dict[str, str]]:
    """'.I n' records -> {id: {field: text}}; a copy of ../shared/tools/eval/irdata.py's parser, so
    the documents are written exactly as modes_eval.py writes them (a field starts on a line of
    its own; newlines kept)."""
    out = {}
    for block in re.split(r"^\.I\s+", text, flags=re.M)[1:]:
        head, _, rest = block.partition("\n")
        fields: dict[str, list[str]] = {}
        cur = None
        for line in rest.splitlines():
            m = re.match(r"^\.([A-Z])\s*$", line)
            if m:
                cur = m.group(1)
                fields[cur] = []
            elif cur:
                fields[cur].append(line)
        out[head.strip()] = {k: "\n".join(v).strip() for k, v in fields.items()}
    return out


SMART_FILES = {"cisi": ("CISI.ALL", "CISI.QRY", "CISI.REL"), "cacm": ("cacm.all", "query.text", "qrels.text")}


Qrels = dict[str, dict[str, int]]


def load_smart(name: str, root: Path) -> tuple[dict[str, tuple[str, str]], dict[str, str], Qrels]:
    """(docs {id: (title, text)}, queries {id: text} (judged ones only), qrels {query: {doc: 1}})."""
    all_name, qry_name, rel_name = SMART_FILES[name]
    docs = {str(int(k)): (v.get("T", ""), v.get("W", ""))
            for k, v in _smart_records((root / all_name).read_text(errors="replace")).items()}
    queries = {str(int(k)): v.get("W", "")
               for k, v in _smart_records((root / qry_name).read_text(errors="replace")).items()}
    qrels: Qrels = {}
    for line in (root / rel_name).read_text().splitlines():
        p = line.split()
        if len(p) >= 2:
            qrels.setdefault(str(int(p[0])), {})[str(int(p[1]))] = 1
    return docs, {q: t for q, t in queries.items() if q in qrels}, qrels


# --- driving the CLI -------------------------------------------------------------------------------

class EvalError(Exception):
    """A step of the run failed (RagDesk's error text included)."""


@dataclass
class Vault:
    ragdesk: str
    home: Path

    def run(self, *args: str) -> str:
        env = dict(os.environ, RAGDESK_HOME=str(self.home), RAGDESK_PASSPHRASE=PASSPHRASE)
        r = subprocess.run([self.ragdesk, *args], env=env, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            what = " ".join(args[:2])
            raise EvalError(f"`ragdesk {what}` exited {r.returncode}: {r.stderr.strip()[-600:]}")
        return r.stdout

    @property
    def built(self) -> Path:
        """Written once indexing finished: a vault left half-built by a failed run is rebuilt."""
        return self.home.parent / "indexed"

    def build(self, folder: Path, label: str) -> None:
        """init + index, unless this home already holds a finished vault (--work reuse)."""
        if self.built.exists():
            log(f"{label}: reusing the vault in {self.home}")
            return
        shutil.rmtree(self.home, ignore_errors=True)
        self.run("init")
        t = time.time()
        self.run("index", str(folder), "--json")
        self.built.write_text(f"{folder}\n")
        log(f"{label}: indexed {folder} in {time.time() - t:.0f} s")

    def search(self, queries: Mapping[str, str], mode: str, qfile: Path) -> dict[str, list[dict[str, Any]]]:
        qfile.write_text("".join(json.dumps({"id": q, "query": t}) + "\n" for q, t in queries.items()))
        out: dict[str, list[dict[str, Any]]] = {}
        for line in self.run("search", "--batch", str(qfile), "-k", str(DEPTH), "--mode", mode).splitlines():
            if line.strip():
                o = json.loads(line)
                if o.get("id") is None:
                    raise EvalError(f"search --batch refused a query: {o}")
                out[str(o["id"])] = o.get("hits", [])
        return out


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def smart_vault(name: str, vault: Vault, data: Path, work: Path) -> tuple[int, dict[str, str], Any]:
    """A SMART collection indexed into `vault` (one doc-<id>.txt each, as modes_eval.py writes
    them, unless already built): its document count, queries (white space folded), judgements."""
    docs, queries, qrels = load_smart(name, data / name)
    folder = work / "docs"
    if not vault.built.exists():
        folder.mkdir(parents=True, exist_ok=True)
        for i, (title, text) in docs.items():
            (folder / f"doc-{i}.txt").write_text((title + "\n\n" + text).strip() + "\n")
    vault.build(folder, f"{name} ({len(docs)} documents)")
    return len(docs), {q: re.sub(r"\s+", " ", t) for q, t in queries.items()}, qrels


def eval_smart(name: str, vault: Vault, data: Path, work: Path) -> dict[str, Any]:
    documents, queries, qrels = smart_vault(name, vault, data, work)
    runs: dict[str, dict[str, list[str]]] = {}
    for mode in MODES:
        t = time.time()
        hits = vault.search(queries, mode, work / "queries.jsonl")
        log(f"{name}: {len(queries)} queries, {mode}, in {time.time() - t:.0f} s")
        runs[mode] = {q: _doc_ids(h) for q, h in hits.items()}
    runs[RRF] = {q: rrf([runs["keyword"].get(q, []), runs["vector"].get(q, [])]) for q in queries}
    n = len(queries)
    return {"documents": documents, "queries": n, "modes": {
        mode: {"nDCG@10": sum(ndcg10(r.get(q, []), qrels[q]) for q in queries) / n,
               "R@100": sum(recall(r.get(q, []), qrels[q], DEPTH) for q in queries) / n}
        for mode, r in runs.items()}}


def _doc_ids(hits: Sequence[Mapping[str, Any]]) -> list[str]:
    """The distinct doc-<id>.txt files of the hits, in rank order (modes_eval.py's rule)."""
    seen: list[str] = []
    for h in hits:
        m = re.search(r"doc-(\d+)\.txt", h.get("path", ""))
        if m and m.group(1) not in seen:
            seen.append(m.group(1))
    return seen


def eval_docqa(vault: Vault, data: Path, corpus: Path, work: Path) -> dict[str, Any]:
    questions = [json.loads(line) for line in (data / "docqa" / "questions.jsonl").read_text().splitlines()
                 if line.strip()]
    vault.build(corpus, "docqa corpus")
    queries = {str(q["id"]): q["question"] for q in questions}
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for mode in MODES:
        runs[mode] = vault.search(queries, mode, work / "queries.jsonl")
    def key(hit: Mapping[str, Any]) -> tuple[Any, ...]:
        """A passage is the same in both lists when its file, page and text are: fuse on that."""
        return (hit.get("path"), hit.get("page"), hit.get("text"))

    runs[RRF] = {}
    for q in queries:
        by_key = {key(h): h for m in ("keyword", "vector") for h in runs[m].get(q, [])}
        fused = rrf([[key(h) for h in runs[m].get(q, [])] for m in ("keyword", "vector")])
        runs[RRF][q] = [by_key[k] for k in fused]
    return {"questions": len(questions),
            "modes": {mode: docqa_scores({q: h[:10] for q, h in r.items()}, questions)
                      for mode, r in runs.items()}}


# --- the table and the targets ---------------------------------------------------------------------

def table(results: Mapping[str, Any]) -> list[str]:
    head = ["set", "metric", *ALL_MODES, "hybrid − plain RRF", "hybrid − best single"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, res in results.items():
        modes = res["modes"]
        for metric in QA_METRICS if name == "docqa" else IR_METRICS:
            v = {m: modes[m][metric] for m in ALL_MODES}
            best = max(v["keyword"], v["vector"])
            lines.append(f"| {name} | {metric} | " + " | ".join(f"{v[m]:.3f}" for m in ALL_MODES)
                         + f" | {v['hybrid'] - v[RRF]:+.3f} | {v['hybrid'] - best:+.3f} |")
    return lines


def targets(results: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for each of issue 16's targets on the sets that were run.
    On docqa the relative targets are judged on page MRR@10."""
    out: list[tuple[str, str, bool]] = []
    headline = {"cisi": ("nDCG@10", 0.46), "cacm": ("nDCG@10", 0.55), "docqa": ("page MRR@10", 0.94)}
    for name, res in results.items():
        metric, floor = headline[name]
        v = {m: res["modes"][m][metric] for m in ALL_MODES}
        out.append((f"{name} hybrid {metric} ≥ {floor:.2f}", f"{v['hybrid']:.3f}", v["hybrid"] >= floor))
        if name == "docqa":
            h = res["modes"]["hybrid"]
            out.append(("docqa hybrid page hit@1 ≥ 0.90", f"{h['page hit@1']:.3f}", h["page hit@1"] >= 0.90))
            missed = h["title missed@5"]
            out.append(("docqa every title question in the top 5 (hybrid)",
                        f"{h['title questions'] - len(missed)}/{h['title questions']}"
                        + (f", missed {' '.join(missed)}" if missed else ""), not missed))
        # rounded as printed, so a figure shown as meeting its target does
        diff = round(v["hybrid"] - v[RRF], 3)
        out.append((f"{name} hybrid ≥ plain RRF + 0.01 ({metric})", f"{diff:+.3f}", diff >= 0.01))
        best = round(v["hybrid"] - max(v["keyword"], v["vector"]), 3)
        out.append((f"{name} hybrid ≥ best of keyword, vector ({metric})", f"{best:+.3f}", best >= 0))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--sets", metavar="SETS", default=",".join(SETS),
                    help="comma-separated of cisi,cacm,docqa (default: all)")
    ap.add_argument("--json", metavar="FILE", help="write the raw figures there")
    default_bin = REPO / ".venv" / "bin" / "ragdesk"
    ap.add_argument("--ragdesk", metavar="BIN", default=str(default_bin),
                    help=f"the ragdesk command to measure (default {default_bin})")
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="holds cisi/, cacm/, docqa/")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="the documents docqa asks about")
    ap.add_argument("--work", type=Path, help="keep the vaults here; reuse those already built")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is not met")
    ap.add_argument("--self-check", action="store_true", help="test the metrics on hand-made rankings")
    args = ap.parse_args(argv)
    if args.self_check:
        self_check()
        print("metrics self-check passed")
        return 0
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = [s for s in sets if s not in SETS]
    if unknown or not sets:
        ap.error(f"--sets: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(SETS)}")
    ragdesk = shutil.which(args.ragdesk)
    if ragdesk is None:
        ap.error(f"--ragdesk: {args.ragdesk} is not an executable (run `make install-test` first?)")
    needed = [args.data_dir / s for s in sets] + ([args.corpus] if "docqa" in sets else [])
    missing = [str(p) for p in needed if not p.is_dir()]
    if missing:
        ap.error(f"data not found: {', '.join(missing)}")

    work_root = args.work or Path(tempfile.mkdtemp(prefix="ragdesk-eval-"))
    results: dict[str, Any] = {}
    started = time.time()
    try:
        for name in sets:
            work = work_root / name
            work.mkdir(parents=True, exist_ok=True)
            vault = Vault(ragdesk, work / "home")
            results[name] = (eval_docqa(vault, args.data_dir, args.corpus, work) if name == "docqa"
                             else eval_smart(name, vault, args.data_dir, work))
    except EvalError as exc:
        log(f"error: {exc}")
        return 2
    finally:
        if args.work is None:
            shutil.rmtree(work_root, ignore_errors=True)

    print("\n".join(table(results)))
    if "docqa" in results:
        h = results["docqa"]["modes"]
        print()
        for mode in ALL_MODES:
            titles, missed = " ".join(h[mode]["title missed@5"]), " ".join(h[mode]["missed@5"])
            print(f"docqa {mode}: title questions missed at 5: {titles or 'none'}; "
                  f"all missed at 5: {missed or 'none'}")
    checks = targets(results)
    print("\n| target | measured | |\n| --- | --- | --- |")
    for what, measured, met in checks:
        print(f"| {what} | {measured} | {'met' if met else '**not met**'} |")
    log(f"whole run: {time.time() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"sets": results, "targets": [{"target": t, "measured": m, "met": ok} for t, m, ok in checks]},
            indent=2, ensure_ascii=False) + "\n")
    return 1 if args.check and not all(ok for _, _, ok in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
