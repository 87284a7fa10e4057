"""Soak: `ragdesk serve` under a mixed load for a long time (issue 19, item 14; not part of CI).

    .venv/bin/python benchmarks/bench_soak.py [--minutes 30] [--askers 6] [--searchers 3]

Three kinds of process, as deployed:
  - the fake Ollama (`python -m tests.fakes.ollama`), streaming a cited answer a word every
    --token-delay seconds;
  - the server: `python -m ragdesk serve` (TLS, the vault's certificate, pinned by the clients) over
    a real vault made by `ragdesk init` and `ragdesk index` from some ../shared/corpus files, with
    the built-in embedder; client tokens made by `ragdesk token create` before it starts;
  - the load, in this process (asyncio + aiohttp), for --minutes:
      askers         POST /api/v1/ask, the SSE stream read to `event: done`, each its own token;
      disconnectors  ask, then drop the connection after the first answer token;
      searchers      POST /api/v1/search;
      an admin       uploads (text notes and real corpus files) and removes some of them,
                     creates a token over the API, uses it, revokes it and sees it refused (401),
                     scrapes /metrics and /ready as Prometheus would;
      a backup       `ragdesk backup` while all that runs, half-way through.

Reported: requests by outcome per route (ok; refused by a limit 429/503; failed: anything else
that should have succeeded; disconnected on purpose), p95 latency per route per time window, the
server process's RSS, open file descriptors, threads and child processes over time (/proc),
their growth after warm-up; then, with the server stopped, that every upload the server
acknowledged is there (and every removed one gone), that each upload is found by its own words,
and that the audit log holds every entry the run should have written.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: ragdesk, tests.fakes
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadclients import QUESTIONS, WORDS, pct

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
PASSPHRASE = "soak test: seven marmots audit the lighthouse"
INDEXED = ["cython.pdf", "github_sample.pdf", "v110-changes.pdf", "2201.00069.pdf", "small-table.pdf",
           "test_open2.docx", "test_open2.html", "test_3654.docx"]
UPLOADED_FILES = ["small-table.pdf", "test_open2.docx", "github_sample.pdf", "test_open2.html",
                  "text-find-ligatures.pdf"]
ADMIN = "soak-admin"
REFUSED = {429, 503}  # a limit told the client to come back later


# --- what the run records -----------------------------------------------------------------------


@dataclass
class Record:
    at: float  # seconds since the load started
    route: str
    outcome: str  # ok | refused | failed | disconnected
    ms: float
    detail: str = ""


@dataclass
class Run:
    t0: float = field(default_factory=time.monotonic)
    records: list[Record] = field(default_factory=list)
    samples: list[dict[str, float]] = field(default_factory=list)
    authed: int = 0  # requests sent with a valid token that reached the server (audited)
    refused_401: int = 0  # requests with a revoked token (audited as sign-in failures)
    uploads: dict[str, int] = field(default_factory=dict)  # path -> document id (acknowledged)
    upload_words: dict[str, str] = field(default_factory=dict)  # path -> a word only it has
    removed: dict[str, int] = field(default_factory=dict)
    tokens_created: list[str] = field(default_factory=list)
    tokens_revoked: list[str] = field(default_factory=list)
    asks_started: int = 0
    modes: Counter[str] = field(default_factory=Counter)  # answers by mode (llm / extractive)
    backup: dict[str, Any] = field(default_factory=dict)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def add(self, route: str, outcome: str, started: float, detail: str = "") -> None:
        self.records.append(Record(started - self.t0, route, outcome, (time.monotonic() - started) * 1000,
                                   detail[:300]))


def outcome_of(status: int, ok: bool) -> str:
    if ok:
        return "ok"
    return "refused" if status in REFUSED else "failed"


# --- processes ------------------------------------------------------------------------------------


def cli(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "ragdesk", *args], env=env, cwd=REPO, text=True,
                       capture_output=True, timeout=timeout)
    if r.returncode != 0:
        raise SystemExit(f"ragdesk {' '.join(args)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return r


def start_fake(token_delay: float) -> tuple[subprocess.Popen[str], str]:
    fake = subprocess.Popen([sys.executable, "-m", "tests.fakes.ollama", "--port", "0",
                             "--token-delay", str(token_delay)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    line = fake.stdout.readline() if fake.stdout else ""
    return fake, line.split(" listening on ")[1].split()[0]


def start_server(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "ragdesk", "serve", "--port", "0"], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if m := re.search(r"serving this vault on (\S+)", line):
            return proc, m.group(1)
    proc.kill()
    raise SystemExit(f"serve did not start:\n{log.read_text()[-2000:]}")


def proc_sample(pid: int) -> dict[str, float]:
    """RSS, open descriptors and threads of the server, and its child processes (parsers)."""
    out: dict[str, float] = {"rss": 0, "fds": 0, "vault_fds": 0, "threads": 0, "children": 0,
                             "children_rss": 0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss"] = int(line.split()[1]) * 1024
            elif line.startswith("Threads:"):
                out["threads"] = int(line.split()[1])
        fds = os.listdir(f"/proc/{pid}/fd")
        out["fds"] = len(fds)
        for fd in fds:  # the vault's database connections (vault.db and its -wal, each)
            with contextlib.suppress(OSError):
                out["vault_fds"] += os.readlink(f"/proc/{pid}/fd/{fd}").endswith(("vault.db", "vault.db-wal"))
        kids: list[str] = []
        for task in os.listdir(f"/proc/{pid}/task"):
            kids += Path(f"/proc/{pid}/task/{task}/children").read_text().split()
        out["children"] = len(kids)
        for kid in kids:
            for line in Path(f"/proc/{kid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out["children_rss"] += int(line.split()[1]) * 1024
    except OSError:
        pass
    return out


# --- the load ---------------------------------------------------------------------------------


class Load:
    def __init__(self, run: Run, url: str, pem: str, readers: list[str], admin: str, args: argparse.Namespace,
                 env: dict[str, str], backups: Path, pid: int) -> None:
        self.run, self.url, self.pem, self.readers, self.admin = run, url, pem, readers, admin
        self.args, self.env, self.backups, self.pid = args, env, backups, pid
        self.end = args.minutes * 60
        from ragdesk.server.tls import client_context

        self.ssl = client_context(pem)

    def session(self, token: str) -> Any:
        import aiohttp

        return aiohttp.ClientSession(
            base_url=self.url, connector=aiohttp.TCPConnector(limit=4, ssl=self.ssl),
            timeout=aiohttp.ClientTimeout(total=None, sock_read=120),
            headers={"Authorization": f"Bearer {token}"}, trust_env=False)

    def running(self) -> bool:
        return bool(self.run.now() < self.end)

    async def request(self, client: Any, route: str, method: str, path: str, expect: int,
                      authed: bool = True, **kwargs: Any) -> tuple[int, Any]:
        """One JSON request; recorded with its outcome (ok when the status is `expect`)."""
        started = time.monotonic()
        try:
            async with client.request(method, path, **kwargs) as resp:
                body = await resp.read()
                status = resp.status
        except Exception as exc:  # every failure is a result
            self.run.add(route, "failed", started, f"{type(exc).__name__}: {exc}")
            return 0, None
        if authed:
            self.run.authed += 1
        ok = status == expect
        self.run.add(route, outcome_of(status, ok), started, "" if ok else f"{status} {body[:200]!r}")
        try:
            return status, json.loads(body) if body else None
        except ValueError:
            return status, None

    async def ask(self, client: Any, drop_after_token: bool) -> None:
        route = "ask (dropped)" if drop_after_token else "ask"
        started = time.monotonic()
        self.run.asks_started += 1
        status, seen, first_token = 0, b"", None
        try:
            async with client.post("api/v1/ask", json={"question": random.choice(QUESTIONS)}) as resp:
                status = resp.status
                self.run.authed += 1
                async for chunk in resp.content.iter_any():
                    seen = seen[-64:] + chunk if first_token else seen + chunk
                    if first_token is None and b"event: token" in seen:
                        first_token = time.monotonic()
                        self.run.add("ask first token", "ok", started)
                        if drop_after_token:
                            resp.close()  # the connection goes, mid-stream
                            self.run.add(route, "disconnected", started)
                            return
                ok = status == 200 and b"event: done" in seen and b"event: error" not in seen
                if ok:
                    m = re.search(rb'"mode": "(\w+)"', seen[seen.rfind(b"event: done"):])
                    self.run.modes[m.group(1).decode() if m else "?"] += 1
                self.run.add(route, outcome_of(status, ok), started,
                             "" if ok else f"{status} {seen[-200:]!r}")
        except Exception as exc:  # every failure is a result
            self.run.add(route, "failed", started, f"{type(exc).__name__}: {exc}")

    async def asker(self, i: int, drop: bool) -> None:
        await asyncio.sleep(random.uniform(0, 2))
        async with self.session(self.readers[i % len(self.readers)]) as client:
            while self.running():
                await self.ask(client, drop)
                await asyncio.sleep(random.uniform(0.5, 1.5) * (3 if drop else 1))

    async def searcher(self, i: int) -> None:
        async with self.session(self.readers[-1 - i % len(self.readers)]) as client:
            while self.running():
                mode = random.choice(["hybrid", "hybrid", "keyword", "vector"])
                query = random.choice([*QUESTIONS, "cython extension types", "table of contents",
                                       "release changes"])
                await self.request(client, f"search {mode}", "POST", "api/v1/search", 200,
                                   json={"query": query, "k": 10, "mode": mode})
                await asyncio.sleep(random.uniform(0.2, 0.8))

    async def uploader(self) -> None:
        seq = 0
        async with self.session(self.admin) as client:
            while self.running():
                seq += 1
                if seq % 5 == 0:
                    source = UPLOADED_FILES[(seq // 5) % len(UPLOADED_FILES)]
                    name = f"soak-{seq:05}-{source}"
                    data, word = (CORPUS / source).read_bytes(), ""
                else:
                    name, word = f"soak-{seq:05}.txt", f"soakmark{seq:05}"
                    data = (f"Soak note {seq}: the {random.choice(WORDS)} keeper logged {word} beside "
                            f"the {random.choice(WORDS)} at {time.time():.3f}.\n").encode()
                status, doc = await self.request(client, "upload", "POST", "api/v1/documents", 201,
                                                 params={"filename": name}, data=data,
                                                 headers={"Content-Type": "application/octet-stream"})
                if status == 201 and doc:
                    self.run.uploads[doc["path"]] = doc["id"]
                    if word:
                        self.run.upload_words[doc["path"]] = word
                if seq % 3 == 0 and len(self.run.uploads) > 3:  # remove an earlier upload
                    path = random.choice(list(self.run.uploads)[:-1])
                    status, _ = await self.request(client, "remove", "DELETE",
                                                   f"api/v1/documents/{self.run.uploads[path]}", 204)
                    if status == 204:
                        self.run.removed[path] = self.run.uploads.pop(path)
                        self.run.upload_words.pop(path, None)
                await asyncio.sleep(self.args.upload_every)

    async def token_churn(self) -> None:
        seq = 0
        async with self.session(self.admin) as admin:
            await asyncio.sleep(5)
            while self.running():
                seq += 1
                name = f"soak-tmp-{seq:04}"
                status, made = await self.request(admin, "token create", "POST", "api/v1/tokens", 201,
                                                  json={"name": name})
                if status == 201 and made:
                    self.run.tokens_created.append(name)
                    async with self.session(made["secret"]) as user:
                        await self.request(user, "me", "GET", "api/v1/me", 200)
                        await self.ask(user, drop_after_token=False)
                        status, _ = await self.request(admin, "token revoke", "DELETE",
                                                       f"api/v1/tokens/{name}", 204)
                        if status == 204:
                            self.run.tokens_revoked.append(name)
                            await self.request(user, "me (revoked: 401)", "GET", "api/v1/me", 401,
                                               authed=False)
                            self.run.refused_401 += 1
                await asyncio.sleep(self.args.token_every)

    async def scraper(self) -> None:
        async with self.session(self.admin) as client:
            while self.running():
                await self.request(client, "metrics", "GET", "metrics", 200)
                await self.request(client, "ready", "GET", "ready", 200)
                await self.request(client, "documents", "GET", "api/v1/documents", 200)
                await asyncio.sleep(15)

    async def backup(self) -> None:
        await asyncio.sleep(self.end / 2)
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ragdesk", "backup", str(self.backups), "--json", env=self.env, cwd=REPO,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        ok = proc.returncode == 0
        self.run.add("backup (CLI)", "ok" if ok else "failed", started, "" if ok else err.decode()[-300:])
        self.run.backup = {"ok": ok, "at_s": round(started - self.run.t0), **(json.loads(out) if ok else {})}

    async def sampler(self) -> None:
        while self.running():
            self.run.samples.append({"at": self.run.now(), "asks": self.run.asks_started,
                                     **proc_sample(self.pid)})
            await asyncio.sleep(self.args.sample_every)
        self.run.samples.append({"at": self.run.now(), "asks": self.run.asks_started,
                                 **proc_sample(self.pid)})

    async def main(self) -> None:
        tasks = [self.asker(i, False) for i in range(self.args.askers)]
        tasks += [self.asker(self.args.askers + i, True) for i in range(self.args.disconnectors)]
        tasks += [self.searcher(i) for i in range(self.args.searchers)]
        tasks += [self.uploader(), self.token_churn(), self.scraper(), self.backup(), self.sampler()]
        await asyncio.gather(*tasks)

    async def final_checks(self) -> dict[str, Any]:
        """While the server still runs: no stream slot left taken, every upload listed and found."""
        out: dict[str, Any] = {}
        await asyncio.sleep(3)  # dropped streams' slots are released when the server notices
        async with self.session(self.admin) as client:
            _, metrics_text = 0, ""
            async with client.get("metrics") as resp:
                metrics_text = await resp.text()
            self.run.authed += 1
            m = re.search(r"^ragdesk_streams_active (\S+)$", metrics_text, re.M)
            out["streams_active_after"] = float(m.group(1)) if m else None
            _, docs = await self.request(client, "documents", "GET", "api/v1/documents", 200)
            listed = {d["path"]: d["id"] for d in docs or []}
            out["uploads_kept"] = len(self.run.uploads)
            out["uploads_missing"] = sorted(p for p, i in self.run.uploads.items() if listed.get(p) != i)
            out["removed"] = len(self.run.removed)
            out["removed_still_listed"] = sorted(p for p in self.run.removed if p in listed)
            not_found = []
            for path, word in self.run.upload_words.items():
                _, hits = await self.request(client, "search keyword", "POST", "api/v1/search", 200,
                                             json={"query": word, "k": 3, "mode": "keyword"})
                if not any(h["path"] == path for h in (hits or {}).get("hits", [])):
                    not_found.append(path)
            out["uploads_not_found_by_their_word"] = not_found
            out["uploads_searched"] = len(self.run.upload_words)
        return out


# --- afterwards: the audit log ------------------------------------------------------------------


def audit_check(home: Path, run: Run) -> dict[str, Any]:
    """Every entry the run should have written, read through the store's audit role (the public
    interface every front end uses; no SQL here)."""
    from ragdesk.core.store.open import open_store

    store = open_store(home, PASSPHRASE, read_only=True)
    try:
        events = store.audit_events(10_000_000)
    finally:
        store.close()
    kinds = Counter(e.event for e in events)
    added = {e.detail.get("document_id") for e in events if e.event == "document added"
             and e.detail.get("via") == "lan"}
    removed = {e.detail.get("document_id") for e in events if e.event == "document removed"}
    created = {e.detail.get("name") for e in events if e.event == "token created"}
    revoked = {e.detail.get("name") for e in events if e.event == "token revoked"}
    acknowledged = set(run.uploads.values()) | set(run.removed.values())
    return {
        "entries": len(events),
        "by_event": dict(kinds.most_common()),
        "api_access": kinds["api access"], "api_access_expected": run.authed,
        "sign_in_failed": kinds["api sign-in failed"], "sign_in_failed_expected": run.refused_401,
        "questions": kinds["question asked"], "asks_started": run.asks_started,
        "uploads_unaudited": sorted(acknowledged - added),
        "removals_unaudited": sorted(set(run.removed.values()) - removed),
        "tokens_created_unaudited": sorted(set(run.tokens_created) - created),
        "tokens_revoked_unaudited": sorted(set(run.tokens_revoked) - revoked),
        "server_started_stopped": (kinds["server started"], kinds["server stopped"]),
    }


# --- report -------------------------------------------------------------------------------------


def _unit(key: str, value: float) -> str:
    return f"{value / 2**20:.1f} MiB" if key == "rss" else f"{value:.0f}"


def report(run: Run, args: argparse.Namespace, final: dict[str, Any], audit: dict[str, Any],
           server: dict[str, Any]) -> None:
    mib = 2**20
    print(f"soak: {args.minutes:g} min, {args.askers} askers + {args.disconnectors} disconnecting, "
          f"{args.searchers} searchers, an admin (upload every {args.upload_every:g} s, token churn every "
          f"{args.token_every:g} s, /metrics + /ready every 15 s), `ragdesk backup` at "
          f"{run.backup.get('at_s', '?')} s; model token delay {args.token_delay * 1000:.0f} ms")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    print(f"code: {REPO} at commit {commit or '?'}; answers by mode: {dict(run.modes)}")
    print("\nrequests by outcome per route:")
    by_route: dict[str, Counter[str]] = defaultdict(Counter)
    for r in run.records:
        by_route[r.route][r.outcome] += 1
    print(f"  {'route':24} {'ok':>7} {'refused':>8} {'failed':>7} {'dropped':>8}")
    for route in sorted(by_route):
        c = by_route[route]
        print(f"  {route:24} {c['ok']:7} {c['refused']:8} {c['failed']:7} {c['disconnected']:8}")
    failed = [r for r in run.records if r.outcome in ("failed", "refused")]
    print(f"  should have succeeded but did not: {len(failed)}")
    for r in failed[:10]:
        print(f"    {r.at:7.1f} s {r.route}: {r.detail}")

    window = args.window * 60
    n_windows = max(1, int(-(-args.minutes * 60 // window)))
    routes = [r for r in sorted(by_route) if r not in ("backup (CLI)",)]
    print(f"\np95 latency ms per {args.window:g}-minute window (successful requests):")
    print(f"  {'route':24} " + " ".join(f"{f'{k * args.window:g}-{(k + 1) * args.window:g}':>9}"
                                         for k in range(n_windows)))
    for route in routes:
        cells = []
        for k in range(n_windows):
            v = [r.ms for r in run.records if r.route == route and r.outcome in ("ok", "disconnected")
                 and k * window <= r.at < (k + 1) * window]
            cells.append(f"{pct(v, 95):9.0f}" if v else f"{'-':>9}")
        print(f"  {route:24} " + " ".join(cells))
    if run.backup:
        print(f"  backup: {run.backup}")

    print(f"\nserver process over time (every {args.sample_every:g} s; a line per {args.window:g} min):")
    print("  (asks so far: each opens a conversation the server keeps in memory, the oldest dropped past "
          "5,000)")
    print(f"  {'t (s)':>7} {'asks':>6} {'RSS MiB':>8} {'fds':>5} {'vault fds':>10} {'threads':>8} "
          f"{'children':>9} {'child RSS MiB':>14}")
    shown = -window
    for s in run.samples:
        if s["at"] - shown >= window or s is run.samples[-1]:
            shown = s["at"]
            print(f"  {s['at']:7.0f} {s['asks']:6.0f} {s['rss'] / mib:8.1f} {s['fds']:5.0f} "
                  f"{s['vault_fds']:10.0f} {s['threads']:8.0f} {s['children']:9.0f} "
                  f"{s['children_rss'] / mib:14.1f}")
    warm = args.warmup * 60
    after = [s for s in run.samples if s["at"] >= warm] or run.samples
    base = [s for s in after if s["at"] < after[0]["at"] + 60]
    last = [s for s in after if s["at"] >= after[-1]["at"] - 60]
    for key, label in (("rss", "RSS"), ("fds", "open fds"), ("vault_fds", "vault fds"),
                       ("threads", "threads")):
        b, e = pct([s[key] for s in base], 50), pct([s[key] for s in last], 50)
        peak = max(s[key] for s in after)
        growth = (e - b) / b * 100 if b else float("nan")
        print(f"  {label:9} after warm-up ({args.warmup:g} min): {_unit(key, b)} -> end {_unit(key, e)} "
              f"({growth:+.1f} %), peak {_unit(key, peak)}   (target < 10 %)")

    print("\nafterwards:")
    print(f"  stream slots still taken after the load (ragdesk_streams_active): "
          f"{final['streams_active_after']}")
    print(f"  uploads acknowledged and kept: {final['uploads_kept']}, missing from the list: "
          f"{len(final['uploads_missing'])} {final['uploads_missing'][:5]}")
    print(f"  uploads removed: {final['removed']}, still listed: {len(final['removed_still_listed'])}")
    lost = final["uploads_not_found_by_their_word"]
    print(f"  text uploads found by their own word: {final['uploads_searched'] - len(lost)}"
          f" of {final['uploads_searched']} {lost[:5]}")
    print(f"  server stop: exit {server['exit']}, {server['stop_s']:.1f} s, tracebacks in its log: "
          f"{server['tracebacks']}, error lines: {server['errors']}")
    print(f"  audit log: {audit['entries']} entries; 'api access' {audit['api_access']} "
          f"(requests sent with a valid token: {audit['api_access_expected']}); 'api sign-in failed' "
          f"{audit['sign_in_failed']} (revoked-token requests: {audit['sign_in_failed_expected']}); "
          f"'question asked' {audit['questions']} (asks started {audit['asks_started']})")
    print(f"  unaudited: uploads {audit['uploads_unaudited'][:5]}, removals "
          f"{audit['removals_unaudited'][:5]}, tokens created {audit['tokens_created_unaudited'][:5]}, "
          f"revoked {audit['tokens_revoked_unaudited'][:5]}; server started/stopped "
          f"{audit['server_started_stopped']}")
    print(f"  audit entries by event: {audit['by_event']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--askers", type=int, default=6)
    parser.add_argument("--disconnectors", type=int, default=2)
    parser.add_argument("--searchers", type=int, default=3)
    parser.add_argument("--upload-every", type=float, default=4.0, help="seconds between uploads")
    parser.add_argument("--token-every", type=float, default=20.0, help="seconds between token cycles")
    parser.add_argument("--token-delay", type=float, default=0.02, help="the model's seconds per word")
    parser.add_argument("--window", type=float, default=None, help="minutes per report window")
    parser.add_argument("--warmup", type=float, default=None, help="minutes before growth is measured")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between /proc samples")
    parser.add_argument("--keep", metavar="DIR", help="keep the vault, logs and backups in DIR")
    args = parser.parse_args()
    args.window = args.window or max(0.5, args.minutes / 6)
    args.warmup = args.warmup if args.warmup is not None else min(5.0, args.minutes / 3)

    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ragdesk-soak-"))
    tmp.mkdir(parents=True, exist_ok=True)
    home, backups, log = tmp / "vault", tmp / "backups", tmp / "serve.log"
    fake, ollama_host = start_fake(args.token_delay)
    env = {**os.environ, "RAGDESK_HOME": str(home), "RAGDESK_PASSPHRASE": PASSPHRASE,
           "OLLAMA_HOST": ollama_host, "TMPDIR": str(tmp)}
    server = None
    try:
        t = time.monotonic()
        cli(env, "init")
        indexed = json.loads(cli(env, "index", *(str(CORPUS / f) for f in INDEXED), "--json").stdout)
        print(f"vault: `ragdesk init` + `ragdesk index` of {len(INDEXED)} corpus files in "
              f"{time.monotonic() - t:.0f} s: {json.dumps(indexed)[:300]}", flush=True)
        readers = [cli(env, "token", "create", f"reader-{i}").stdout.strip()
                   for i in range(args.askers + args.disconnectors + args.searchers)]
        admin = cli(env, "token", "create", ADMIN, "--admin").stdout.strip()
        server, url = start_server(env, log)
        import ssl

        port = int(url.rstrip("/").rsplit(":", 1)[1])
        pem = ssl.get_server_certificate(("127.0.0.1", port))
        print(f"serving on {url} (pid {server.pid}); load for {args.minutes:g} min", flush=True)
        run = Run()
        load = Load(run, url, pem, readers, admin, args, env, backups, server.pid)
        asyncio.run(load.main())
        final = asyncio.run(load.final_checks())
        stopped = time.monotonic()
        server.send_signal(signal.SIGINT)
        code = server.wait(60)
        stop_s = time.monotonic() - stopped
        text = log.read_text(errors="replace")
        info = {"exit": code, "stop_s": stop_s, "tracebacks": text.count("Traceback"),
                "errors": sum(1 for line in text.splitlines() if " ERROR " in line or "ERROR:" in line)}
        audit = audit_check(home, run)
        report(run, args, final, audit, info)
        (tmp / "soak-records.json").write_text(json.dumps(
            {"records": [r.__dict__ for r in run.records], "samples": run.samples, "final": final,
             "audit": audit, "server": info}, default=str))
        if args.keep:
            print(f"\nraw records: {tmp / 'soak-records.json'}; server log: {log}")
    finally:
        if server is not None and server.poll() is None:
            server.kill()
            server.wait()
        fake.terminate()
        fake.wait(10)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
