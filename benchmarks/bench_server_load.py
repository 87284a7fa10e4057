"""Load on the LAN server: N concurrent streaming clients over TLS on loopback (target: 500
clients, zero failed requests, p95 time to first byte <= 250 ms, RSS bounded).

    .venv/bin/python benchmarks/bench_server_load.py [--clients 500] [--rounds 3] [--token-delay 0.02]

Three processes, so that neither the model nor the clients steal the server's interpreter:
  - the fake Ollama (`python -m tests.fakes.ollama`), streaming its cited answer a word every
    --token-delay seconds (a 20-50 tokens/s model), so every stream stays open for about a second;
  - the server, in this process: a fresh vault (cheap key derivation) holding --docs documents,
    the hashed bag-of-words embedder, `ServerHandle` with TLS and the default limits, and one
    token per --per-token clients (each user their own token, as deployed);
  - the clients (benchmarks/loadclients.py, shared with bench_scaleout.py): aiohttp, one
    connection per client, opened first (TLS handshake) and then all asking at once, --rounds
    times: POST /api/v1/ask and read the whole SSE stream.

Per request: time to first byte (the `: accepted` SSE comment the server sends once the request is
authenticated, validated and given a stream slot), time to the `sources` event (retrieval done), time to
first answer token, total time; a request fails unless it is 200 and ends with `event: done`.
The server's RSS is sampled throughout.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.fakes
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadclients import ClientProcess, pct, rss_bytes, synthetic_pages

REPO = Path(__file__).resolve().parents[1]


def percentiles(values: list[float]) -> str:
    return f"p50 {pct(values, 50):.0f}  p95 {pct(values, 95):.0f}  p99 {pct(values, 99):.0f}"


def cpu_seconds(pid: int | str) -> float:
    """User + system CPU time of a process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- server (this process) -----------------------------------------------------------------


def make_vault(home: Path, docs: int):  # type: ignore[no-untyped-def]
    from ragdesk.core.records import ChunkDraft, DocumentInfo, VectorSpace
    from ragdesk.core.store.keys import KdfParams
    from ragdesk.core.store.sqlite import vault as vault_store
    from tests.fakes.embedder import HashEmbedder

    vault = vault_store.create(home, "bench", kdf=KdfParams.fresh(memory_kib=8192, iterations=1, lanes=1))
    emb = HashEmbedder(dimension=384)
    vault.set_vector_space(VectorSpace(emb.name, emb.dimension))
    coll = vault.collection("default")
    for d, texts in enumerate(synthetic_pages(docs)):
        chunks = [ChunkDraft(text, page, page, 0, len(text)) for page, text in enumerate(texts, start=1)]
        info = DocumentInfo(coll.id, f"/docs/report-{d:04}.pdf", f"Report {d}", "pdf", 1000, 1.0,
                            hashlib.sha256(str(d).encode()).hexdigest(), pages=3)
        vault.put_document(info, chunks, emb.embed([c.text for c in chunks]), None)
    return vault, emb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-token", type=int, default=5, help="clients sharing one token")
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--token-delay", type=float, default=0.02)
    parser.add_argument("--max-streams", type=int, default=None,
                        help="the server's limit of answers streamed at once (default: the server's)")
    parser.add_argument("--ramp", type=float, default=0.0,
                        help="seconds over which the clients' first asks are spread (0: all at once, "
                             "rounds separated by a barrier)")
    parser.add_argument("--think", type=float, default=3.0,
                        help="with --ramp: seconds (+-50%%) a client waits after an answer before "
                             "asking again")
    args = parser.parse_args()

    from ragdesk.app import Services
    from ragdesk.server.config import Limits, ServerConfig
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
            # Every client connects from this one loopback address: no per-address cap here.
            limits = Limits(max_connections_per_client=1 << 20)
            if args.max_streams is not None:
                limits = replace(limits, max_streams=args.max_streams)
            handle = ServerHandle(services, ServerConfig(port=0, limits=limits))
            handle.start()
            n_tokens = max(1, -(-args.clients // args.per_token))
            tokens = [handle.tokens.create(f"user{i:04}")[1] for i in range(n_tokens)]
            rss_before = rss_bytes()
            samples: list[int] = []
            streams: list[int] = []  # answers streaming at each sample
            stop = threading.Event()
            ctx = handle.app.state.ctx

            def sample() -> None:
                while not stop.is_set():
                    samples.append(rss_bytes())
                    streams.append(ctx.active_streams)
                    time.sleep(0.25)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            cpu_before = {name: cpu_seconds(pid) for name, pid in (("server", "self"), ("model", fake.pid))}
            clients = ClientProcess({"url": handle.url, "cert": handle.cert_pem, "tokens": tokens,
                                     "clients": args.clients, "rounds": args.rounds,
                                     "ramp": args.ramp, "think": args.think}, cwd=REPO)
            client_cpu = 0.0
            try:
                while clients.proc.poll() is None:  # its CPU time, read while it still exists
                    client_cpu = cpu_seconds(clients.proc.pid) or client_cpu
                    time.sleep(0.5)
                out = clients.result(timeout=900)
            finally:
                clients.kill()
                stop.set()
            cpu = {name: cpu_seconds(pid) - cpu_before[name]
                   for name, pid in (("server", "self"), ("model", fake.pid))}
            cpu["clients"] = client_cpu
            sampler.join()
            rss_after = rss_bytes()
            ctx.audit.flush()
            audited = sum(1 for e in vault.audit_events(100000) if e.event == "api access")
            handle.stop()
            vault.lock()
    finally:
        fake.terminate()
        fake.wait(10)
    results = [r for r in out["asks"] if r["round"] >= 0]
    failed = [r for r in out["asks"] if not r["ok"]]
    ttfb = [r["ttfb"] * 1000 for r in results if "ttfb" in r]
    ttft = [r["ttft"] * 1000 for r in results if "ttft" in r]
    ttfs = [r["ttfs"] * 1000 for r in results if "ttfs" in r]
    total = [r["total"] * 1000 for r in results if "total" in r]
    arrival = (f"first asks spread over {args.ramp:g} s, then again {args.think:g} s (+-50 %)"
               " after each answer" if args.ramp > 0
               else "all asking at once, rounds separated by a barrier")
    print(f"clients {args.clients} x rounds {args.rounds} = {len(results)} streamed answers over TLS, "
          f"{n_tokens} tokens, {args.docs * 3} chunks, model token delay {args.token_delay * 1000:.0f} ms; "
          f"{arrival}")
    busy = sorted(streams)
    print(f"answers streaming at once (sampled every 0.25 s): peak {busy[-1] if busy else 0}, "
          f"median while any {pct([n for n in busy if n], 50):.0f}")
    print("CPU seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
          + f" (wall {out['seconds']:.1f} s, 2 cores = {2 * out['seconds']:.0f} CPU s)")
    print(f"failed requests: {len(failed)}" + (f"  e.g. {failed[0]['errors'][-1][:200]}"
                                               if failed else ""))
    print(f"time to first byte  ms: {percentiles(ttfb)}  max {max(ttfb):.0f}   (target p95 <= 250)")
    print(f"time to sources     ms: {percentiles(ttfs)}")
    print(f"time to first token ms: {percentiles(ttft)}")
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
