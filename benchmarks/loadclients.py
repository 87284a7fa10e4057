"""Streaming load clients for the LAN server benchmarks (bench_server_load.py, bench_scaleout.py).

Run as its own process, so that the clients never steal the server's interpreter:

    python benchmarks/loadclients.py < spec.json > results.json

The spec (JSON on stdin):
  url, cert          where to ask and the PEM certificate to trust (pinning, as deployed);
  tokens             read-only tokens, client i uses tokens[i % len(tokens)];
  clients, rounds    aiohttp clients, one connection each, opened first (GET /health: TCP +
                     TLS handshake), then each asking `rounds` times: POST /api/v1/ask and read
                     the whole server-sent-event stream;
  ramp, think        how the asks arrive. ramp 0 (the default): a burst, every client asks at
                     once and the next round starts when all have their answers. ramp R > 0:
                     users, client i asks first at i/clients*R seconds and then again `think`
                     seconds (+-50 %) after each answer, as people reading answers do;
  retries, backoff   a failed ask (connection error, non-200, or a stream that does not end with
                     `event: done`) is asked again up to `retries` more times, after
                     backoff * 2**attempt seconds (+-50 % jitter); 0 = no retries;
  timeout            seconds a client waits for any byte (default 300, the server's stream limit);
  writer             optional {"token", "prefix", "writers", "interval"}: admin clients that keep
                     adding small text documents (POST /api/v1/documents) until the askers are
                     done, retrying like the askers; each 2xx is an acknowledged write.

Open loop (spec "rate" > 0; bench_capacity.py): questions arrive on a schedule, whether or not
earlier answers are back, as many users each asking now and then do:
  rate, duration     questions per second (Poisson arrivals, seeded by "seed"), for that long;
  questions          the texts asked, in turn;
  tokens             one user per token (each its own connection pool, kept alive);
  timeout            as above.
Per ask it records {at (scheduled, s from the start), lag (late start: the client's own delay),
ok, status, retry_after, ttfb, ttfs, ttft, total, error}.

Prints "go" on stderr when the first round starts (all connected), and the results as JSON on
stdout: per ask {round, ok, attempts, errors, status, ttfb, ttfs, ttft, total, elapsed, upstream},
times in seconds (ttfb..total of the attempt that succeeded, `elapsed` from the first attempt),
per write {name, sha256, ok, attempts, errors}, and the wall time.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

QUESTIONS = [
    "What is the budget of the lighthouse project?",
    "How many keepers are employed?",
    "When was the harbour extension approved?",
    "What does the maintenance schedule say about the lamp?",
    "Which whales migrate along the coast?",
]
WORDS = ["lighthouse", "budget", "keepers", "harbour", "lamp", "maintenance", "whales", "migration",
         "storm", "coast", "beacon", "approval", "council", "euros", "schedule", "inspection",
         "quarterly", "tower", "signal", "fog", "vessel"]


def synthetic_pages(docs: int, pages: int = 3, seed: int = 7) -> Iterator[list[str]]:
    """The server side's corpus: per document `pages` texts of ~120 words from a vocabulary like
    real text (a few thousand words, Zipf-distributed, so a question's words match some passages,
    not all of them), each with three of the questions' WORDS."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ren", "tas", "vo", "shi", "pel", "dor", "an", "ul", "bri", "nes", "qua"]
    vocab = list(dict.fromkeys("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
                               for _ in range(6000)))
    weights = [1 / (i + 1) for i in range(len(vocab))]
    for _ in range(docs):
        texts = []
        for _ in range(pages):
            words = rng.choices(vocab, weights, k=120) + rng.sample(WORDS, 3)
            rng.shuffle(words)
            texts.append((" ".join(words) + ".").capitalize())
        yield texts


def rss_bytes(pid: int | str = "self") -> int:
    """Resident memory of a process (0 once it is gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


def latency_lines(asks: list[dict[str, Any]]) -> list[str]:
    """p50/p95/p99 of the successful asks' timings, one line per measure (milliseconds)."""
    def ms(key: str) -> list[float]:
        return [r[key] * 1000 for r in asks if r.get(key) is not None]

    out = []
    for label, key in (("time to first byte ", "ttfb"), ("time to sources    ", "ttfs"),
                       ("time to first token", "ttft"), ("whole answer       ", "total")):
        v = ms(key)
        if v:
            out.append(f"{label} ms: p50 {pct(v, 50):.0f}  p95 {pct(v, 95):.0f}  p99 {pct(v, 99):.0f}  "
                       f"max {max(v):.0f}")
    return out


def _pause(backoff: float, attempt: int) -> float:
    return backoff * 2 ** attempt * random.uniform(0.5, 1.5)


async def ask_once(client: Any, question: str) -> dict[str, Any]:
    """One POST /api/v1/ask, its SSE stream read to the end; ok only for 200 + `event: done`."""
    rec: dict[str, Any] = {"ok": False}
    t0 = time.perf_counter()
    try:
        async with client.post("api/v1/ask", json={"question": question}) as resp:
            rec["status"] = resp.status
            rec["upstream"] = resp.headers.get("x-upstream")
            rec["retry_after"] = resp.headers.get("retry-after")
            body = b""
            async for chunk in resp.content.iter_any():
                now = time.perf_counter()
                if "ttfb" not in rec:
                    rec["ttfb"] = now - t0
                seen = body[-32:] + chunk
                if "ttfs" not in rec and b"event: sources" in seen:
                    rec["ttfs"] = now - t0
                if "ttft" not in rec and b"event: token" in seen:
                    rec["ttft"] = now - t0
                body += chunk
        rec["total"] = time.perf_counter() - t0
        rec["ok"] = resp.status == 200 and b"event: done" in body and b"event: error" not in body
        if not rec["ok"]:
            rec["error"] = f"{resp.status} {body[-200:].decode(errors='replace')}"
    except Exception as exc:  # every failure is a result, counted
        rec["error"] = f"{type(exc).__name__}: {exc}"[:300]
    return rec


async def ask_with_retries(client: Any, question: str, retries: int, backoff: float) -> dict[str, Any]:
    start = time.perf_counter()
    errors: list[str] = []
    for attempt in range(retries + 1):
        rec = await ask_once(client, question)
        if rec["ok"] or attempt == retries:
            break
        errors.append(rec["error"])
        await asyncio.sleep(_pause(backoff, attempt))
    if not rec["ok"]:
        errors.append(rec.get("error", "?"))
    rec.update(attempts=attempt + 1, errors=errors, elapsed=time.perf_counter() - start)
    rec.pop("error", None)
    return rec


def arrival_times(rate: float, duration: float, seed: int) -> list[float]:
    """Poisson arrivals: exponential gaps of mean 1/rate, from 0 up to `duration` seconds."""
    rng = random.Random(seed)
    out: list[float] = []
    t = rng.expovariate(rate)
    while t < duration:
        out.append(t)
        t += rng.expovariate(rate)
    return out


async def open_loop(spec: dict[str, Any]) -> dict[str, Any]:
    """Questions at the spec's rate, each on its own task: a slow answer delays no other ask."""
    import ssl

    import aiohttp

    ctx = ssl.create_default_context(cadata=spec["cert"]) if spec.get("cert") else None
    url = spec["url"] if spec["url"].endswith("/") else spec["url"] + "/"
    tokens, questions = spec["tokens"], spec["questions"]
    timeout = float(spec.get("timeout", 300))
    times = arrival_times(float(spec["rate"]), float(spec["duration"]), int(spec.get("seed", 1)))
    sessions = [aiohttp.ClientSession(
        base_url=url, connector=aiohttp.TCPConnector(limit=0, ssl=ctx or False, keepalive_timeout=30),
        timeout=aiohttp.ClientTimeout(total=None, sock_read=timeout),
        headers={"Authorization": f"Bearer {token}"}, trust_env=False) for token in tokens]
    asks: list[dict[str, Any]] = []
    try:
        for s in sessions:  # each user's first connection (TCP + TLS) before the clock starts
            async with s.get("health") as resp:
                resp.raise_for_status()
                await resp.read()
        print("go", file=sys.stderr, flush=True)
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def one(i: int, at: float) -> None:
            lag = loop.time() - start - at
            rec = await ask_once(sessions[i % len(sessions)], questions[i % len(questions)])
            rec.update(at=at, lag=lag)
            asks.append(rec)

        tasks = []
        for i, at in enumerate(times):
            delay = start + at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, at)))
        await asyncio.gather(*tasks)
        seconds = loop.time() - start
    finally:
        for s in sessions:
            await s.close()
    return {"asks": asks, "writes": [], "seconds": seconds}


async def write_once(client: Any, name: str, data: bytes) -> tuple[bool, str]:
    try:
        async with client.post("api/v1/documents", params={"filename": name}, data=data,
                               headers={"Content-Type": "application/octet-stream"}) as resp:
            text = await resp.text()
    except Exception as exc:  # as in ask_once: a failed upload is a result
        return False, f"{type(exc).__name__}: {exc}"[:300]
    if 200 <= resp.status < 300:
        return True, ""
    return False, f"{resp.status} {text[:200]}"


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    import ssl

    import aiohttp

    ctx = ssl.create_default_context(cadata=spec["cert"])
    url, tokens = spec["url"], spec["tokens"]
    clients, rounds = int(spec["clients"]), int(spec.get("rounds", 1))
    ramp, think = float(spec.get("ramp", 0)), float(spec.get("think", 0))
    retries, backoff = int(spec.get("retries", 0)), float(spec.get("backoff", 0.1))
    asks: list[dict[str, Any]] = []
    writes: list[dict[str, Any]] = []
    barrier = asyncio.Barrier(clients)
    ready: list[int] = []
    connected = asyncio.Event()  # every client has its connection (ramp mode starts then)
    askers_done = asyncio.Event()
    started = asyncio.Event()

    def new_client(token: str, timeout: float = float(spec.get("timeout", 300))) -> Any:
        # aiohttp, not httpx: its C HTTP parser keeps the clients' own process from lagging
        # (late reads would count as the server's latency; RESULTS.md). One connection per
        # client; an idle connection is kept as long as the server keeps it (30 s), as
        # browsers do, not reconnecting after every answer.
        connector = aiohttp.TCPConnector(limit=1, ssl=ctx, keepalive_timeout=30)
        return aiohttp.ClientSession(base_url=url if url.endswith("/") else url + "/", connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=None, sock_read=timeout),
                                     headers={"Authorization": f"Bearer {token}"}, trust_env=False)

    async def asker(i: int) -> None:
        async with new_client(tokens[i % len(tokens)]) as client:
            try:
                async with client.get("health") as resp:  # connect + TLS handshake first
                    resp.raise_for_status()
                    await resp.read()
            except Exception as exc:  # a client that cannot connect is counted, not fatal
                asks.append({"ok": False, "round": -1, "attempts": 1, "errors": [f"connect: {exc!r}"]})
            ready.append(i)
            if len(ready) == clients:
                connected.set()
            for r in range(rounds):
                if ramp > 0:  # users: staggered first asks, then a pause to read each answer
                    await (connected.wait() if r == 0 else asyncio.sleep(think * random.uniform(0.5, 1.5)))
                    if r == 0:
                        await asyncio.sleep(i / clients * ramp)
                else:
                    await barrier.wait()
                if not started.is_set():
                    started.set()
                    print("go", file=sys.stderr, flush=True)
                rec = await ask_with_retries(client, random.choice(QUESTIONS), retries, backoff)
                rec["round"] = r
                asks.append(rec)

    async def writer(w: int, conf: dict[str, Any]) -> None:
        await started.wait()
        seq = 0
        async with new_client(conf["token"]) as client:
            while not askers_done.is_set():
                name = f"{conf['prefix']}-w{w}-{seq:05}.txt"
                seq += 1
                data = (f"Scale-out note {name}: the beacon keeper logged {random.choice(WORDS)} "
                        f"and {random.choice(WORDS)} at {time.time():.6f}.\n").encode()
                rec: dict[str, Any] = {"name": name, "sha256": hashlib.sha256(data).hexdigest(),
                                       "ok": False, "errors": []}
                for attempt in range(retries + 1):
                    rec["ok"], error = await write_once(client, name, data)
                    rec["attempts"] = attempt + 1
                    if rec["ok"]:
                        break
                    rec["errors"].append(error)
                    await asyncio.sleep(_pause(backoff, attempt))
                writes.append(rec)
                await asyncio.sleep(float(conf.get("interval", 0.05)))

    conf = spec.get("writer")
    write_tasks = [asyncio.create_task(writer(w, conf)) for w in range(int(conf.get("writers", 1)))] \
        if conf else []
    t0 = time.perf_counter()
    await asyncio.gather(*(asker(i) for i in range(clients)))
    seconds = time.perf_counter() - t0
    askers_done.set()
    await asyncio.gather(*write_tasks)
    return {"asks": asks, "writes": writes, "seconds": seconds}


class ClientProcess:
    """This module running as a child process over `spec`; `go` is set when the first round
    starts; `result()` waits for the JSON results."""

    def __init__(self, spec: dict[str, Any], cwd: Path | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
        self.go = threading.Event()
        self._out: list[str] = []
        self._err: list[str] = []
        self._readers = [threading.Thread(target=self._read_out, daemon=True),
                         threading.Thread(target=self._read_err, daemon=True)]
        for t in self._readers:
            t.start()
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(spec))
        self.proc.stdin.close()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        self._out.append(self.proc.stdout.read())

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if line.strip() == "go":
                self.go.set()
            else:
                self._err.append(line)

    def result(self, timeout: float = 900) -> dict[str, Any]:
        try:
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        for t in self._readers:
            t.join(10)
        if self.proc.returncode != 0:
            raise RuntimeError("the load clients failed:\n" + "".join(self._err)[-3000:])
        return json.loads("".join(self._out))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def main() -> None:
    spec = json.loads(sys.stdin.read())
    json.dump(asyncio.run(open_loop(spec) if spec.get("rate") else run(spec)), sys.stdout)


if __name__ == "__main__":
    main()
