"""Time RagDesk adds before the first token of an answer (target: p95 <= 50 ms at 100k chunks).

    .venv/bin/python benchmarks/bench_first_token.py --vault DIR [--passphrase P] [--questions 100]

The model is the fake Ollama (tests/fakes) answering instantly, so everything measured is
RagDesk's own work: storing the question, retrieval (embedding the question, FTS5, vectors,
fusion), building the prompt, the HTTP round trip to the local server and the first streamed
piece. DIR is a vault made by benchmarks/bench_retrieval_speed.py (--keep), e.g. with 100k chunks.
The first question (which loads the held vectors and warms the caches) is reported apart. Two sets
of questions: what people type, and long CISI queries (see question_sets).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.fakes
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_retrieval_speed as speed

from ragdesk.core.chat import ChatService, ChatSettings
from ragdesk.core.embedding import BuiltinEmbedder
from ragdesk.core.retrieval import Retriever
from ragdesk.core.store.sqlite import vault as vault_store
from tests.fakes.ollama import FakeOllama


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def question_sets(n: int) -> dict[str, list[str]]:
    """n of what people type (the first sentence of each CISI query, at most 30 words) and n
    CISI queries cut at 300 characters (half of them are whole abstracts: the hard case): the
    sets of bench_retrieval_speed.py."""
    sets = speed.question_sets(n)
    return {"questions (first sentence, <= 30 words)": sets["questions"],
            "CISI queries cut at 300 characters": [q[:300] for q in sets["cisi"]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vault", required=True, help="folder holding vault.db")
    parser.add_argument("--passphrase", default="benchmark passphrase")
    parser.add_argument("--questions", type=int, default=100, help="per set")
    args = parser.parse_args()

    store = vault_store.unlock(Path(args.vault), args.passphrase)
    embedder = BuiltinEmbedder()
    try:
        chunks = store.status().chunks
        with FakeOllama() as fake:
            settings = ChatSettings(host=fake.host, model="llama3.2:3b")
            chat = ChatService(store, Retriever(store, embedder), settings)
            print(f"vault: {chunks} chunks; {args.questions} questions per set; fake model answers instantly")
            cold = first_token(chat, "warm up: load the held vectors")
            print(f"first question (cold: loads the held vectors): {cold:.0f} ms")
            for label, questions in question_sets(args.questions).items():
                timings: list[float] = []
                retrieval: list[float] = []
                for question in questions:
                    timings.append(first_token(chat, question))
                    retrieval.append(chat.retriever.last_timings.total_ms)
                print(f"{label}:")
                print(f"  time to first token: p50 {statistics.median(timings):.1f} ms, "
                      f"p95 {percentile(timings, 95):.1f} ms, max {max(timings):.1f} ms"
                      " (target p95 <= 50 ms)")
                print(f"    of which retrieval: p50 {statistics.median(retrieval):.1f} ms, "
                      f"p95 {percentile(retrieval, 95):.1f} ms")
    finally:
        store.lock()


def first_token(chat: ChatService, question: str) -> float:
    t0 = time.perf_counter()
    first = None
    for event in chat.ask(question):
        if event.kind == "token" and first is None:
            first = (time.perf_counter() - t0) * 1000
    if first is None:
        raise SystemExit("no token came back")
    return first


if __name__ == "__main__":
    main()
