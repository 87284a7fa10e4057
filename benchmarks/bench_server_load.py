"""Load on the LAN server: N concurrent streaming clients over TLS on loopback (target: 500
clients, zero failed requests, p95 time to first byte <= 250 ms, RSS bounded).

    .venv/bin/python benchmarks/bench_server_load.py [--clients 500] [--rounds 3] [--token-delay 0.02]

Three processes, so that neither the model nor the clients steal the server's interpreter:
  - the fake Ollama (`python -m tests.fakes.ollama`), streaming its cited answer a word every
    --token-delay seconds (a 20-50 tokens/s model), so every stream stays open for about a second;
  - the server, in this process: a fresh vault (cheap key derivation) holding --docs documents,
    the hashed bag-of-words embedder, `ServerHandle` with TLS and the default limits, and one
    token per --per-token clients (each user their own token, as deployed);
  - the clients (this script with --client-mode): httpx async, one connection per client, opened
    first (TLS handshake) and then all asking at once, --rounds times: POST /api/v1/ask and read
    the whole SSE stream.

Per request: time to first byte (the `sources` event: retrieval done, first body bytes), time to
first answer token, total time; a request fails unless it is 200 and ends with `event: done`.
The server's RSS is sampled throughout.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

QUESTIONS = [
    "What is the budget of the lighthouse project?",
    "How many keepers are employed?",
    "When was the harbour extension approved?",
    "What does the maintenance schedule say about the lamp?",
    "Which whales migrate along the coast?",
]
WORDS = ("lighthouse budget keepers harbour lamp maintenance whales migration storm coast beacon "
         "approval council euros schedule inspection quarterly tower signal fog vessel").split()


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


# --- clients (a separate process) ----------------------------------------------------------


async def run_clients(url: str, cert_pem: str, tokens: list[str], clients: int, rounds: int) -> dict:
    import ssl

    import httpx

    ctx = ssl.create_default_context(cadata=cert_pem)
    results: list[dict] = []
    barrier = asyncio.Barrier(clients)

    async def one(i: int) -> None:
        token = tokens[i % len(tokens)]
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=url, verify=ctx, limits=limits, timeout=120,
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            try:
                (await client.get("/health")).raise_for_status()  # connect + TLS handshake first
            except Exception as exc:  # noqa: BLE001
                results.append({"ok": False, "error": f"connect: {exc!r}", "round": -1})
            for r in range(rounds):
                await barrier.wait()
                rec: dict = {"round": r, "ok": False}
                t0 = time.perf_counter()
                try:
                    async with client.stream("POST", "/api/v1/ask",
                                             json={"question": random.choice(QUESTIONS)}) as resp:
                        rec["status"] = resp.status_code
                        body = b""
                        async for chunk in resp.aiter_raw():
                            now = time.perf_counter()
                            if "ttfb" not in rec:
                                rec["ttfb"] = now - t0
                            if "ttfs" not in rec and b"event: sources" in body + chunk:
                                rec["ttfs"] = now - t0
                            if "ttft" not in rec and b"event: token" in body + chunk:
                                rec["ttft"] = now - t0
                            body += chunk
                    rec["total"] = time.perf_counter() - t0
                    rec["ok"] = resp.status_code == 200 and b"event: done" in body and b"event: error" not in body
                    if not rec["ok"]:
                        rec["error"] = body[-300:].decode(errors="replace")
                except Exception as exc:  # noqa: BLE001
                    rec["error"] = repr(exc)
                results.append(rec)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(clients)))
    return {"results": results, "seconds": time.perf_counter() - t0}


def client_main(args: argparse.Namespace) -> None:
    spec = json.loads(sys.stdin.read())
    out = asyncio.run(run_clients(spec["url"], spec["cert"], spec["tokens"], args.clients, args.rounds))
    json.dump(out, sys.stdout)


# --- server (this process) -----------------------------------------------------------------


def make_vault(home: Path, docs: int):  # type: ignore[no-untyped-def]
    from ragdesk.core.records import ChunkDraft, DocumentInfo, VectorSpace
    from ragdesk.core.store import vault as vault_store
    from ragdesk.core.store.keys import KdfParams
    from tests.fakes.embedder import HashEmbedder

    vault = vault_store.create(home, "bench", kdf=KdfParams.fresh(memory_kib=8192, iterations=1, lanes=1))
    emb = HashEmbedder(dimension=384)
    vault.set_vector_space(VectorSpace(emb.name, emb.dimension))
    coll = vault.collection("default")
    rng = random.Random(7)
    # A vocabulary like real text: a few thousand words, Zipf-distributed, so a question's words
    # match some passages, not all of them.
    syllables = ["ka", "lo", "mi", "ren", "tas", "vo", "shi", "pel", "dor", "an", "ul", "bri", "nes", "qua"]
    vocab = list(dict.fromkeys("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
                               for _ in range(6000)))
    weights = [1 / (i + 1) for i in range(len(vocab))]
    for d in range(docs):
        chunks = []
        for page in range(1, 4):
            words = rng.choices(vocab, weights, k=120) + rng.sample(WORDS, 3)
            rng.shuffle(words)
            text = " ".join(words) + "."
            chunks.append(ChunkDraft(text.capitalize(), page, page, 0, len(text)))
        info = DocumentInfo(coll.id, f"/docs/report-{d:04}.pdf", f"Report {d}", "pdf", 1000, 1.0,
                            hashlib.sha256(str(d).encode()).hexdigest(), pages=3)
        vault.put_document(info, chunks, emb.embed([c.text for c in chunks]), None)
    return vault, emb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-token", type=int, default=5, help="clients sharing one token")
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--token-delay", type=float, default=0.02)
    parser.add_argument("--client-mode", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client_mode:
        client_main(args)
        return

    from ragdesk.app import Services
    from ragdesk.server.config import ServerConfig
    from ragdesk.server.runner import ServerHandle

    fake = subprocess.Popen([sys.executable, "-m", "tests.fakes.ollama", "--port", "0",
                             "--token-delay", str(args.token_delay)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    try:
        line = fake.stdout.readline() if fake.stdout else ""
        host = line.split(" listening on ")[1].split()[0]
        with tempfile.TemporaryDirectory() as tmp:
            vault, emb = make_vault(Path(tmp), args.docs)
            vault.set_setting("ollama_host", host)
            services = Services(store=vault, home=Path(tmp), _embedder=emb)
            handle = ServerHandle(services, ServerConfig(port=0))
            handle.start()
            n_tokens = max(1, -(-args.clients // args.per_token))
            tokens = [handle.tokens.create(f"user{i:04}")[1] for i in range(n_tokens)]
            rss_before = rss_bytes()
            samples: list[int] = []
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    samples.append(rss_bytes())
                    time.sleep(0.25)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            proc = subprocess.run(
                [sys.executable, __file__, "--client-mode", "--clients", str(args.clients),
                 "--rounds", str(args.rounds)],
                input=json.dumps({"url": handle.url, "cert": handle.cert_pem, "tokens": tokens}),
                capture_output=True, text=True, cwd=REPO, timeout=900)
            stop.set()
            sampler.join()
            rss_after = rss_bytes()
            ctx = handle.app.state.ctx
            ctx.audit.flush()
            audited = sum(1 for e in vault.audit_events(100000) if e.event == "api access")
            handle.stop()
            vault.lock()
    finally:
        fake.terminate()
        fake.wait(10)
    if proc.returncode != 0:
        print(proc.stderr[-3000:])
        raise SystemExit("the clients failed")
    out = json.loads(proc.stdout)
    results = [r for r in out["results"] if r["round"] >= 0]
    failed = [r for r in out["results"] if not r["ok"]]
    ttfb = [r["ttfb"] * 1000 for r in results if "ttfb" in r]
    ttft = [r["ttft"] * 1000 for r in results if "ttft" in r]
    ttfs = [r["ttfs"] * 1000 for r in results if "ttfs" in r]
    total = [r["total"] * 1000 for r in results if "total" in r]
    print(f"clients {args.clients} x rounds {args.rounds} = {len(results)} streamed answers over TLS, "
          f"{n_tokens} tokens, {args.docs * 3} chunks, model token delay {args.token_delay * 1000:.0f} ms")
    print(f"failed requests: {len(failed)}" + (f"  e.g. {failed[0].get('status')} {failed[0].get('error', '')[:200]}"
                                               if failed else ""))
    print(f"time to first byte  ms: p50 {pct(ttfb, 50):.0f}  p95 {pct(ttfb, 95):.0f}  p99 {pct(ttfb, 99):.0f}  "
          f"max {max(ttfb):.0f}   (target p95 <= 250)")
    print(f"time to sources     ms: p50 {pct(ttfs, 50):.0f}  p95 {pct(ttfs, 95):.0f}  p99 {pct(ttfs, 99):.0f}")
    print(f"time to first token ms: p50 {pct(ttft, 50):.0f}  p95 {pct(ttft, 95):.0f}  p99 {pct(ttft, 99):.0f}")
    print(f"whole answer        ms: p50 {pct(total, 50):.0f}  p95 {pct(total, 95):.0f}  max {max(total):.0f}")
    print(f"wall time {out['seconds']:.1f} s, {len(results) / out['seconds']:.0f} answers/s")
    print(f"server RSS MiB: before {rss_before / 2**20:.0f}, peak {max(samples) / 2**20:.0f}, "
          f"after {rss_after / 2**20:.0f}")
    print(f"audit log 'api access' entries: {audited} (health checks included)")
    print("per-round p95 TTFB ms: " + ", ".join(
        f"{pct([r['ttfb'] * 1000 for r in results if r['round'] == k and 'ttfb' in r], 95):.0f}"
        for k in range(args.rounds)))


if __name__ == "__main__":
    main()
