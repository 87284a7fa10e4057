"""Capacity of the LAN server as users feel it (issue 21): time to sources and time to the first
answer token, with the built-in embedder on real vaults, under open-loop arrivals.

    .venv/bin/python benchmarks/bench_capacity.py [--vaults cacm,100k] [--rates 5,10,20,40,80]
        [--seconds 60] [--users 20] [--first-token-delay 0.05] [--budget-ms 500]
        [--cache /tmp/ragdesk-capacity] [--desktop] [--baseline] [--json FILE]

Three processes, as in bench_server_load.py, so that neither the model nor the clients take the
server's interpreter:
  - the fake Ollama (`python -m tests.fakes.ollama`) with its first token --first-token-delay
    seconds after the request (`slow_first_token`: the model's part, subtracted from the time to
    first token to give the server's part) and then a piece every --token-delay seconds;
  - the server, in this process: `ServerHandle` over the vault (TLS, the default limits), the
    vault's own embedder (the built-in MiniLM), --users tokens, one per user;
  - the clients (benchmarks/loadclients.py, open loop): questions arrive at a fixed rate (Poisson
    arrivals), each on its own request whether or not earlier answers are back; user i % users
    asks question i.

The vaults, built once and kept under --cache (reruns reuse them):
  - cacm: CACM's 3,204 titles and abstracts indexed by `ragdesk index` (bench_quality.smart_vault);
    the questions are CACM's 52 judged queries, their first sentence, at most 30 words;
  - 100k: bench_retrieval_speed.py's 100,000-chunk vault (built with --build-only --fast-build);
    the questions are CISI's, first sentence, at most 30 words.

Per rate: asked, answered, refused (503, with the time the refusal took), limited (429: a token
streams its share, 8 at once by default), failed; time to sources and the server part of time to
first token, p50/p95/p99 of the answered; and where the time went, from the server's own metrics
(/metrics): the wait for a search thread, the search and its parts, the question batches, the
event loop's lag; the server process's CPU time per answer. Then the capacity: the highest rate
at which none was refused, limited or failed and p95 of the server part stayed within
--budget-ms. --desktop also asks in this process, as the desktop app does (ChatService, its own
embedder), once a second while the LAN load runs, and reports that time to first token.
--baseline sets the server as it was before issue 21, for a before/after in the same hour.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.fakes
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_server_load import cpu_seconds
from loadclients import ClientProcess, pct

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
QUESTION_WORDS = 30


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def first_sentence(text: str) -> str:
    first = re.split(r"(?<=[.?!])\s", " ".join(text.split()), maxsplit=1)[0]
    return " ".join(first.split()[:QUESTION_WORDS])


# --- the vaults ----------------------------------------------------------------------------------


def cacm_vault(cache: Path, ragdesk: str) -> tuple[Path, str, list[str]]:
    """(vault folder, passphrase, questions): CACM indexed through the command line, once."""
    import bench_quality as bq

    work = cache / "cacm"
    work.mkdir(parents=True, exist_ok=True)
    vault = bq.Vault(ragdesk=ragdesk, home=work / "home")
    _, queries, _ = bq.smart_vault("cacm", vault, bq.DEFAULT_DATA, work)
    return vault.home, bq.PASSPHRASE, [first_sentence(q) for q in queries.values() if q.strip()]


def vault_100k(cache: Path) -> tuple[Path, str, list[str]]:
    """(vault folder, passphrase, questions): bench_retrieval_speed.py's 100k vault, built once
    in a child process (its fast build patches SQLCipher's connect for that process only)."""
    import bench_retrieval_speed as speed

    keep = cache / "retrieval"
    sizedir = keep / "n100000"
    if not (sizedir / "build.json").is_file():
        log("building the 100k-chunk vault (bench_retrieval_speed.py --build-only --fast-build)")
        subprocess.run([sys.executable, str(HERE / "bench_retrieval_speed.py"), "--sizes", "100000",
                        "--keep", str(keep), "--build-only", "--fast-build"], check=True)
    questions = list(dict.fromkeys(speed.question_sets(112)["questions"]))
    return sizedir / "vault", speed.PASSPHRASE, questions


# --- the server's metrics ------------------------------------------------------------------------


def snapshot(registry: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for metric in registry.collect():
        for s in metric.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def delta(after: dict[Any, float], before: dict[Any, float], name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def mean(after: dict[Any, float], before: dict[Any, float], name: str, **labels: str) -> float | None:
    n = delta(after, before, name + "_count", **labels)
    return delta(after, before, name + "_sum", **labels) / n if n else None


def quantile(after: dict[Any, float], before: dict[Any, float], name: str, q: float) -> float | None:
    """The upper bound of the histogram bucket holding quantile q (coarse, but honest)."""
    buckets = sorted(((float(dict(k[1])["le"]), after[k] - before.get(k, 0.0))
                      for k in after if k[0] == name + "_bucket"), key=lambda b: b[0])
    total = buckets[-1][1] if buckets else 0
    for le, count in buckets:
        if total and count >= q * total:
            return le
    return None


def baseline(handle: Any) -> None:
    """The server as it was before issue 21, as far as settings can make it: one search thread
    (half the cores), questions embedded one at a time, every answer admitted, a write per piece,
    the interpreter lock handed on every 5 ms."""
    from concurrent.futures import ThreadPoolExecutor

    runner = handle.app.state.ctx.runner
    runner.pool.shutdown(wait=False)
    runner.pool = ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 2) // 2))
    runner.queue.workers = 1
    runner.queue.budget = float("inf")
    runner.questions.max_batch = 1
    runner.questions.window = 0.0
    runner.write_gap = 0.0
    sys.setswitchinterval(0.005)  # Python's default


def tune(handle: Any, workers: int | None, switch_interval: float | None) -> None:
    """--workers, --switch-interval: one setting changed, to see what it is worth."""
    from concurrent.futures import ThreadPoolExecutor

    runner = handle.app.state.ctx.runner
    if workers:
        runner.pool.shutdown(wait=False)
        runner.pool = ThreadPoolExecutor(max_workers=workers)
        runner.queue.workers = workers
    if switch_interval:
        sys.setswitchinterval(switch_interval)


# --- one run -------------------------------------------------------------------------------------


class Desktop(threading.Thread):
    """The desktop app's questions, asked in this process beside the LAN load: its own
    ChatService (as gui/workers.py ChatJob does), one question a second."""

    def __init__(self, services: Any, questions: list[str], delay: float) -> None:
        super().__init__(daemon=True)
        self.services, self.questions, self.delay = services, questions, delay
        self.stop = threading.Event()
        self.ttft: list[float] = []

    def run(self) -> None:
        i = 0
        while not self.stop.wait(1.0):
            chat = self.services.chat()
            t0 = time.perf_counter()
            for event in chat.ask(self.questions[i % len(self.questions)]):
                if event.kind == "token" and len(self.ttft) <= i:
                    self.ttft.append(time.perf_counter() - t0 - self.delay)
            i += 1


def run_rate(handle: Any, tokens: list[str], questions: list[str], rate: float, seconds: float,
             seed: int, delay: float, desktop: Any | None) -> dict[str, Any]:
    ctx = handle.app.state.ctx
    before = snapshot(ctx.metrics.registry)
    cpu0 = cpu_seconds("self")
    clients = ClientProcess({"url": handle.url, "cert": handle.cert_pem, "tokens": tokens, "rate": rate,
                             "duration": seconds, "questions": questions, "seed": seed,
                             "timeout": 120}, cwd=REPO)
    probe = None
    if desktop is not None:
        clients.go.wait(30)
        probe = Desktop(*desktop, delay)
        probe.start()
    try:
        out = clients.result(timeout=seconds + 600)
    finally:
        clients.kill()
        if probe is not None:
            probe.stop.set()
            probe.join(60)
    cpu = cpu_seconds("self") - cpu0
    after = snapshot(ctx.metrics.registry)
    asks = out["asks"]
    answered = [r for r in asks if r["ok"]]
    refused = [r for r in asks if r.get("status") == 503]
    limited = [r for r in asks if r.get("status") == 429]  # a token's share of streams
    failed = [r for r in asks if not r["ok"] and r.get("status") not in (503, 429)]
    ms = 1000.0
    server_ttft = [(r["ttft"] - delay) * ms for r in answered if "ttft" in r]
    ttfs = [r["ttfs"] * ms for r in answered if "ttfs" in r]
    m = {
        "search_wait_ms": mean(after, before, "ragdesk_search_wait_seconds"),
        "search_ms": mean(after, before, "ragdesk_search_seconds", part="total"),
        "embed_wait_ms": mean(after, before, "ragdesk_search_seconds", part="embed"),
        "keyword_ms": mean(after, before, "ragdesk_search_seconds", part="keyword"),
        "vector_ms": mean(after, before, "ragdesk_search_seconds", part="vector"),
        "loop_lag_p95_ms": quantile(after, before, "ragdesk_event_loop_lag_seconds", 0.95),
    }
    m = {k: (v * ms if v is not None else None) for k, v in m.items()}
    m["embed_batch_mean"] = mean(after, before, "ragdesk_embed_batch_size")
    return {
        "rate": rate, "seconds": seconds, "asked": len(asks), "answered": len(answered),
        "refused": len(refused), "limited": len(limited), "failed": len(failed),
        "failure_example": (failed[0].get("errors") or ["?"])[-1][:200] if failed else None,
        "refusal_ms_p95": pct([r["total"] * ms for r in refused if "total" in r], 95) if refused else None,
        "retry_after": sorted({r.get("retry_after") for r in refused if r.get("retry_after")}),
        "ttfs_ms": [pct(ttfs, q) for q in (50, 95, 99)],
        "server_ttft_ms": [pct(server_ttft, q) for q in (50, 95, 99)],
        "client_lag_p99_ms": pct([r["lag"] * ms for r in asks], 99),
        "server_cpu_s": cpu,
        "metrics": m,
        "desktop_ttft_ms": ([pct([t * ms for t in probe.ttft], q) for q in (50, 95)] + [len(probe.ttft)]
                            if probe is not None and probe.ttft else None),
    }


def measure(name: str, home: Path, passphrase: str, questions: list[str], args: argparse.Namespace,
            fake_host: str) -> dict[str, Any]:
    from ragdesk.app import Services
    from ragdesk.core.store.open import open_store
    from ragdesk.server.config import Limits, ServerConfig
    from ragdesk.server.runner import ServerHandle, settle_heap

    store = open_store(home, passphrase)
    services = Services(store=store, home=home)
    store.set_setting("ollama_host", fake_host)
    chunks = store.status().chunks
    run = uuid.uuid4().hex[:6]
    # Every client connects from this one loopback address: no per-address connection cap here.
    handle = ServerHandle(services, ServerConfig(port=0, limits=Limits(max_connections_per_client=1 << 20)))
    handle.start()
    if args.baseline:
        baseline(handle)
    tune(handle, args.workers, args.switch_interval)
    names = [f"capacity-{run}-{i:03}" for i in range(args.users)]
    tokens = [handle.tokens.create(n)[1] for n in names]
    results = []
    try:
        log(f"{name}: {chunks:,} chunks; warming up (loads the held vectors)")
        run_rate(handle, tokens, questions, 2.0, 5.0, 0, args.first_token_delay, None)
        if not args.baseline:
            settle_heap()  # as `ragdesk serve` does before it serves (runner.serve_forever)
        for i, rate in enumerate(args.rates):
            log(f"{name}: {rate:g} questions/s for {args.seconds:g} s")
            r = run_rate(handle, tokens, questions, rate, args.seconds, i + 1, args.first_token_delay,
                         (services, questions[::-1]) if args.desktop else None)
            results.append(r)
            log("  " + line(r))
            time.sleep(3)  # let the queue drain
    finally:
        handle.stop()
        for n in names:
            handle.tokens.revoke(n)
        store.lock()
    ok = [r["rate"] for r in results
          if not r["refused"] and not r["limited"] and not r["failed"]
          and r["server_ttft_ms"][1] <= args.budget_ms]
    return {"vault": name, "chunks": chunks, "questions": len(questions), "results": results,
            "capacity": max(ok) if ok else None}


def fmt(v: float | None, digits: int = 0) -> str:
    return "-" if v is None or v != v else f"{v:.{digits}f}"


def line(r: dict[str, Any]) -> str:
    m = r["metrics"]
    refused = (f"{r['refused']} (p95 {fmt(r['refusal_ms_p95'])} ms, "
               f"Retry-After {','.join(r['retry_after'])})") if r["refused"] else "0"
    out = (f"{r['rate']:>5g} q/s | asked {r['asked']:>5} answered {r['answered']:>5} refused {refused} "
           f"429 {r['limited']} failed {r['failed']} | sources ms " + "/".join(fmt(v) for v in r["ttfs_ms"])
           + " | first token (server part) ms " + "/".join(fmt(v) for v in r["server_ttft_ms"])
           + f" | wait {fmt(m['search_wait_ms'])} search {fmt(m['search_ms'])} (embed wait "
           f"{fmt(m['embed_wait_ms'])}, keyword {fmt(m['keyword_ms'])}, vector {fmt(m['vector_ms'])}) "
           f"batch {fmt(m['embed_batch_mean'], 1)} loop lag p95 {fmt(m['loop_lag_p95_ms'])} | "
           f"client lag p99 {fmt(r['client_lag_p99_ms'])} | server CPU {r['server_cpu_s']:.0f} s, "
           f"{fmt(r['server_cpu_s'] * 1000 / max(1, r['answered']))} ms per answer")
    if r["desktop_ttft_ms"]:
        p50, p95, n = r["desktop_ttft_ms"]
        out += f" | desktop first token ms p50 {fmt(p50)} p95 {fmt(p95)} (n={n})"
    if r["failure_example"]:
        out += f"\n        e.g. {r['failure_example']}"
    return out


def report(runs: list[dict[str, Any]], args: argparse.Namespace) -> str:
    out = [("BASELINE (server set as before issue 21); " if args.baseline else "")
           + (f"{args.workers} search threads; " if args.workers else "")
           + (f"switch interval {args.switch_interval * 1000:g} ms; " if args.switch_interval else "")
           + f"{os.cpu_count()} cores; {args.users} users (one token each); Poisson arrivals, "
           f"{args.seconds:g} s per rate; fake model: first token after "
           f"{args.first_token_delay * 1000:.0f} ms "
           f"(subtracted: 'server part'), then a piece every {args.token_delay * 1000:.0f} ms",
           "per rate: sources and first token as p50/p95/p99 of the answered; wait/search: means, ms "
           "(server metrics)"]
    for run in runs:
        out.append(f"\n{run['vault']} ({run['chunks']:,} chunks, {run['questions']} distinct questions)")
        out += [line(r) for r in run["results"]]
        cap = run["capacity"]
        out.append("capacity (none refused, limited or failed, p95 first token server part <= "
                   f"{args.budget_ms:g} ms): "
                   + (f"{cap:g} questions/s" if cap is not None else "below the lowest rate"))
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vaults", default="cacm,100k", help="comma-separated of cacm, 100k")
    parser.add_argument("--rates", default="5,10,20,40,80", help="questions per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="per rate")
    parser.add_argument("--users", type=int, default=20, help="one token each")
    parser.add_argument("--first-token-delay", type=float, default=0.05,
                        help="the fake model's time to its first piece (subtracted)")
    parser.add_argument("--token-delay", type=float, default=0.0,
                        help="between the model's pieces (0: the answer streamed at once, as in the issue)")
    parser.add_argument("--budget-ms", type=float, default=500.0)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/ragdesk-capacity"),
                        help="the built vaults are kept here and reused")
    parser.add_argument("--ragdesk", default=str(Path(sys.executable).with_name("ragdesk")),
                        help="the ragdesk command that indexes CACM")
    parser.add_argument("--desktop", action="store_true",
                        help="also ask in-process (as the desktop app) once a second during each rate")
    parser.add_argument("--baseline", action="store_true",
                        help="the server set as before issue 21 (one search thread, questions embedded "
                             "one at a time, no admission by latency, a write per piece): before/after")
    parser.add_argument("--workers", type=int, help="search threads (default: one per core)")
    parser.add_argument("--switch-interval", type=float,
                        help="the interpreter lock's switch interval in seconds (the server sets 0.001)")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    args.rates = [float(r) for r in args.rates.split(",") if r.strip()]
    args.cache.mkdir(parents=True, exist_ok=True)

    vaults = []
    for name in [v.strip() for v in args.vaults.split(",") if v.strip()]:
        if name == "cacm":
            vaults.append(("cacm", *cacm_vault(args.cache, args.ragdesk)))
        elif name == "100k":
            vaults.append(("100k", *vault_100k(args.cache)))
        else:
            parser.error(f"unknown vault {name!r} (cacm, 100k)")

    fake = subprocess.Popen([sys.executable, "-m", "tests.fakes.ollama", "--port", "0",
                             "--token-delay", str(args.token_delay),
                             "--fault", f"slow_first_token={args.first_token_delay}"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    try:
        line_ = fake.stdout.readline() if fake.stdout else ""
        host = line_.split(" listening on ")[1].split()[0]
        runs = [measure(name, home, passphrase, questions, args, host)
                for name, home, passphrase, questions in vaults]
    finally:
        fake.terminate()
        fake.wait(10)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))
    print(report(runs, args))


if __name__ == "__main__":
    main()
