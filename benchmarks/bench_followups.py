"""Follow-ups in conversations: is the right file in the top 5 for a conversation's last question,
with the old rule (any question under 8 words prefixed with the one before) and the new one
(`core/followup.py`: earlier turns folded in only when the question depends on them)?

    .venv/bin/python benchmarks/bench_followups.py [--corpus ../shared/corpus]
        [--conversations tests/unit/data/conversations.jsonl] [-k 5] [--keep DIR]

Indexes the corpus into a new vault with `ragdesk index` (the built-in embedder), then searches
every conversation's last question both ways through `ragdesk search --batch` (hybrid), and
prints hit@k for the follow-ups, the new topics and all, plus each conversation that differs.
`--keep DIR` keeps the vault in DIR and reuses it when it is there.

The conversations are a dev set, written by hand with the rule beside them: read the figures as
a check that the rule does what it says, not as a held-out score. The search text is what is
measured; the page lookup in the documents an earlier answer cited (`chat._sources`) is not.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from ragdesk.core.followup import search_query  # noqa: E402

PASSPHRASE = "benchmark"
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus"
DEFAULT_CONVERSATIONS = REPO / "tests" / "unit" / "data" / "conversations.jsonl"


def old_query(question: str, earlier: list[str]) -> str:
    """The rule before issue 16: a question under 8 words was prefixed with the one before."""
    if earlier and len(question.split()) < 8:
        return f"{earlier[-1]} {question}"
    return question


def run(args: list[str], home: Path, stdin: str | None = None) -> str:
    env = dict(os.environ, RAGDESK_HOME=str(home), RAGDESK_PASSPHRASE=PASSPHRASE)
    done = subprocess.run([sys.executable, "-m", "ragdesk", *args], env=env, cwd=REPO, input=stdin,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"ragdesk {args[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def build_vault(home: Path, corpus: Path) -> None:
    from ragdesk.core.store.keys import KdfParams
    from ragdesk.core.store.sqlite import vault

    vault.create(home, PASSPHRASE, kdf=KdfParams.fresh(memory_kib=8192, iterations=1, lanes=1)).lock()
    summary = json.loads(run(["index", "--json", str(corpus)], home))
    print(f"indexed {corpus}: {json.dumps(summary)[:200]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--conversations", type=Path, default=DEFAULT_CONVERSATIONS)
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="keep the vault here (reused when present)")
    args = parser.parse_args()

    with open(args.conversations, encoding="utf-8") as f:
        convs = [json.loads(line) for line in f if line.strip()]
    batch = []
    for conv in convs:
        *earlier, last = conv["turns"]
        batch.append({"id": f"old:{conv['id']}", "query": old_query(last, earlier)})
        batch.append({"id": f"new:{conv['id']}", "query": search_query(last, earlier)[0]})
        batch.append({"id": f"alone:{conv['id']}", "query": last})

    with tempfile.TemporaryDirectory() as scratch:
        home = args.keep or Path(scratch) / "home"
        if not home.exists() or not any(home.iterdir()):
            build_vault(home, args.corpus)
        else:
            print(f"reusing the vault in {home}")
        out = run(["search", "--batch", "-", "-k", str(args.k)], home,
                  "\n".join(json.dumps(b) for b in batch) + "\n")

    files: dict[str, list[str]] = {}
    for line in out.splitlines():
        item = json.loads(line)
        files[item["id"]] = [Path(h["path"]).name for h in item["hits"]]

    rows = {"follow-ups": [c for c in convs if c["follows"]],
            "new topics": [c for c in convs if not c["follows"]], "all": convs}
    rules = ("old", "new", "alone")
    print(f"\nthe last question's answering file, {len(convs)} conversations "
          f"({args.conversations.name}); hit@1 / hit@{args.k} / MRR@{args.k} by file")
    print(f"{'':12} {'n':>3} " + " ".join(f"{r + ' rule' if r != 'alone' else 'never fold':>20}"
                                          for r in rules))
    for name, group in rows.items():
        cells = []
        for rule in rules:
            ranks = [rank(files[f"{rule}:{c['id']}"], c["file"]) for c in group]
            hit1 = sum(r == 1 for r in ranks) / len(group)
            hitk = sum(r is not None for r in ranks) / len(group)
            mrr = sum(1 / r for r in ranks if r) / len(group)
            cells.append(f"{hit1:.3f}/{hitk:.3f}/{mrr:.3f}")
        print(f"{name:12} {len(group):>3} " + " ".join(f"{c:>20}" for c in cells))
    print("\nconversations where the old and new rules rank the file differently (rank, - = not in "
          "the top k):")
    for conv in convs:
        o, n = (rank(files[f"{rule}:{conv['id']}"], conv["file"]) for rule in ("old", "new"))
        if o != n:
            last = " ".join(conv["turns"][-1].split())[:70]
            print(f"  {conv['id']} old {o or '-'} new {n or '-'}  {last}")


def rank(found: list[str], wanted: str) -> int | None:
    """The 1-based rank of the first hit from `wanted` (None: not in the list)."""
    return found.index(wanted) + 1 if wanted in found else None


if __name__ == "__main__":
    main()
