"""What a hostile client found in the LAN server (issue 19, items 1-8), against real uvicorn
servers on loopback: idle and slow-header connections, per-client connection caps, forged
X-Forwarded-For, unbounded conversation memory, lone surrogates in JSON, a hung upload parser,
conversations of a re-created token, an empty collection list, the certificate and HSTS."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import resource
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import psutil
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ragdesk.app import Services
from ragdesk.core.store.sqlite import vault as vault_store
from ragdesk.server import tls
from ragdesk.server.config import Limits, ServerConfig
from ragdesk.server.runner import ServerHandle
from tests.conftest import PASSPHRASE, fast_kdf, run_cli
from tests.fakes.embedder import HashEmbedder
from tests.fakes.ollama import FakeOllama
from tests.fakes.server import Running, fill, sse_events

pytestmark = pytest.mark.timeout(120)

HEAD_TIMEOUT = 1.5
LIMITS = Limits(max_streams=20, max_streams_per_token=3, auth_failures=5, auth_window=30.0,
                max_body_bytes=64 * 1024, max_upload_bytes=256 * 1024, max_question_chars=500,
                stream_timeout=20.0, head_timeout=HEAD_TIMEOUT, max_connections_per_client=60)

Start = Callable[..., Running]


@pytest.fixture(scope="module")
def start(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Start]:
    """Starts servers over one vault (each with its own settings); stops them all at the end."""
    home = tmp_path_factory.mktemp("hardening-home")
    vault = vault_store.create(home, PASSPHRASE, kdf=fast_kdf())
    fill(vault)
    handles: list[ServerHandle] = []
    with FakeOllama() as fake:
        vault.set_setting("ollama_host", fake.host)
        services = Services(store=vault, home=home, _embedder=HashEmbedder())

        def run(**config: object) -> Running:
            limits = config.pop("limits", LIMITS)
            handle = ServerHandle(services, ServerConfig(port=0, limits=limits, **config))  # type: ignore[arg-type]
            handle.start()
            handles.append(handle)
            return Running(handle, vault, fake, home)

        try:
            yield run
        finally:
            for handle in handles:
                handle.stop()
    vault.lock()


@pytest.fixture(scope="module")
def tls_server(start: Start) -> Running:
    return start()


def enough_descriptors(wanted: int) -> None:
    """Raise the soft limit on open files if `wanted` more would not fit (the test opens both
    ends of every connection in this process)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted + 512
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"this test needs {need} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def connect(server: Running, source: str, handshake: bool = True) -> socket.socket:
    """A connection from `source` (a loopback address) that sends nothing: TLS handshake only."""
    raw = socket.create_connection(("127.0.0.1", server.handle.port), timeout=10,
                                   source_address=(source, 0))
    if not handshake:
        return raw
    return server.verify.wrap_socket(raw, server_hostname="127.0.0.1")


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes `sock` within `within` seconds (reading nothing meanwhile)."""
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, ssl.SSLError, ssl.SSLEOFError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def still_open(sock: socket.socket) -> bool:
    return not closed_by_server(sock, 0.01)


def closed_while_trickling(sock: socket.socket, byte: bytes, limit: float, every: float) -> bool:
    """Whether the server closes `sock` within `limit` seconds while `byte` is sent on it once
    every `every` seconds."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        try:
            sock.sendall(byte)
        except OSError:
            return True
        if closed_by_server(sock, every):
            return True
    return False


# --- item 1: idle connections, slow request heads, connections per client ------------------------


def test_idle_connections_leave_room_for_real_requests(start: Start) -> None:
    # Plain HTTP, so that 2,100 connections open in a moment (the protocol that counts them is
    # the same under TLS: see the next test), and a head timeout longer than the test, so that
    # what makes room is the cap, not the timeout.
    server = start(tls=False, limits=replace(LIMITS, head_timeout=60.0))
    n = 2100
    enough_descriptors(2 * n)
    secret = server.token("busy-day")
    sources = [f"127.0.10.{i}" for i in range(1, 41)]  # 53 each: under the per-client cap
    idle: list[socket.socket] = []
    try:
        for i in range(n):
            idle.append(connect(server, sources[i % len(sources)], handshake=False))
        started = time.monotonic()
        r = httpx.get(server.url + "api/v1/me", headers={"Authorization": f"Bearer {secret}"}, timeout=2.0)
        assert r.status_code == 200, r.text
        assert time.monotonic() - started < 2.0
        table = server.handle.connections
        assert table is not None and len(table) <= LIMITS.max_connections
        assert closed_by_server(idle[0], 1.0), "the longest-idle connection made room"
    finally:
        for s in idle:
            s.close()


def test_idle_tls_connections_leave_room_and_are_dropped(start: Start) -> None:
    server = start(limits=replace(LIMITS, max_connections=200))
    secret = server.token("busy-tls")
    idle = [connect(server, f"127.0.13.{i % 10 + 1}") for i in range(260)]  # handshakes done
    try:
        with server.client(secret) as c:
            r = c.get("/api/v1/me", timeout=2.0)
        assert r.status_code == 200, r.text
        # The silent ones are dropped once the head timeout has passed.
        time.sleep(HEAD_TIMEOUT)
        assert all(closed_by_server(s, 1.0) for s in idle[-20:])
        table = server.handle.connections
        assert table is not None and len(table) <= 1  # (the client's kept-alive connection is closed)
    finally:
        for s in idle:
            s.close()


def test_slow_request_head_is_closed_within_the_timeout(tls_server: Running) -> None:
    sock = connect(tls_server, "127.0.11.1")
    try:
        started = time.monotonic()
        sock.sendall(b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\n")
        # one byte of a header at a time, as slowloris does
        assert closed_while_trickling(sock, b"X", HEAD_TIMEOUT + 3, 0.25), \
            "a request head that never ends keeps its connection"
        assert time.monotonic() - started < HEAD_TIMEOUT + 1.0
    finally:
        sock.close()


BODY_STALL = 1.0


@pytest.fixture(scope="module")
def paced_server(start: Start) -> Running:
    """A server whose request bodies may stall for BODY_STALL seconds (4 KiB/s on average after)."""
    return start(limits=replace(LIMITS, body_stall=BODY_STALL, body_min_rate=4096.0))


def _search_head(server: Running, secret: str, length: int) -> bytes:
    return (f"POST /api/v1/search HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n").encode()


def test_a_body_trickled_a_byte_at_a_time_is_closed(paced_server: Running) -> None:
    """Each byte comes well within the stall limit, but the body never gets anywhere: after its
    first BODY_STALL seconds it is below the minimum rate, and the connection is closed."""
    sock = connect(paced_server, "127.0.11.20")
    try:
        sock.sendall(_search_head(paced_server, paced_server.token("trickle"), 2000))
        started = time.monotonic()
        assert closed_while_trickling(sock, b" ", BODY_STALL + 4, 0.2), \
            "a body trickled a byte at a time keeps its connection"
        assert time.monotonic() - started < BODY_STALL + 1.5
    finally:
        sock.close()


def test_a_body_that_stops_is_closed(paced_server: Running) -> None:
    sock = connect(paced_server, "127.0.11.21")
    try:
        sock.sendall(_search_head(paced_server, paced_server.token("stall"), 500) + b'{"query": "wal')
        assert closed_by_server(sock, BODY_STALL + 1.5), "a body that stopped keeps its connection"
    finally:
        sock.close()


def test_a_slow_but_steady_body_is_answered(paced_server: Running) -> None:
    """48 KiB at 24 KiB/s takes twice the stall limit and is well above the minimum rate: the
    request is answered, the connection kept."""
    body = json.dumps({"query": "walrus", "k": 3, "note": "x" * (48 * 1024)}).encode()
    sock = connect(paced_server, "127.0.11.22")
    try:
        sock.sendall(_search_head(paced_server, paced_server.token("steady"), len(body)))
        for i in range(0, len(body), 6 * 1024):
            time.sleep(0.25)
            sock.sendall(body[i : i + 6 * 1024])
        sock.settimeout(10)
        reply = b""
        while b"\r\n\r\n" not in reply:
            part = sock.recv(4096)
            assert part, f"the server closed a steady upload: {reply!r}"
            reply += part
        assert reply.startswith(b"HTTP/1.1 ") and not reply.startswith(b"HTTP/1.1 5"), reply[:80]
        assert still_open(sock)
    finally:
        sock.close()


def test_connections_that_never_finish_a_handshake_or_a_request_are_dropped(tls_server: Running) -> None:
    no_handshake = connect(tls_server, "127.0.11.2", handshake=False)
    no_request = connect(tls_server, "127.0.11.3")
    try:
        started = time.monotonic()
        assert closed_by_server(no_request, HEAD_TIMEOUT + 1.0)
        assert closed_by_server(no_handshake, HEAD_TIMEOUT + 1.0 - (time.monotonic() - started))
    finally:
        no_handshake.close()
        no_request.close()


def test_one_address_cannot_hold_more_than_its_share(tls_server: Running) -> None:
    secret = tls_server.token("crowded")
    source = "127.0.11.9"
    cap = LIMITS.max_connections_per_client
    mine = [connect(tls_server, source) for _ in range(cap + 20)]
    try:
        # Its own real request still gets through (its longest-idle connection made room) ...
        with tls_server.client(secret, source=source) as c:
            assert c.get("/api/v1/me").status_code == 200
        # ... and no more than its share stays open.
        open_now = sum(still_open(s) for s in mine)
        assert open_now <= cap - 1, open_now
        # Another address is not affected.
        with tls_server.client(secret, source="127.0.11.10") as c:
            assert c.get("/api/v1/me").status_code == 200
    finally:
        for s in mine:
            s.close()


# --- item 3: forwarding headers only from the proxies named ---------------------------------------


def test_forged_forwarded_for_does_not_escape_the_throttle(tls_server: Running) -> None:
    ctx = tls_server.handle.app.state.ctx
    ctx.throttle.reset()
    codes = []
    with tls_server.client("rd_wrong") as c:  # from 127.0.0.1, where a local process would be
        for i in range(30):
            codes.append(c.get("/api/v1/me", headers={"X-Forwarded-For": f"10.66.{i}.1"}).status_code)
    assert codes[:LIMITS.auth_failures] == [401] * LIMITS.auth_failures
    assert set(codes[LIMITS.auth_failures:]) == {429}
    ctx.audit.flush()
    failed = [e for e in tls_server.vault.audit_events(500) if e.event == "api sign-in failed"]
    assert failed and all(e.detail.get("address") != "10.66.0.1" for e in failed)
    ctx.throttle.reset()


def test_a_named_proxy_may_forward_the_client_address(start: Start) -> None:
    proxied = start(trusted_proxies="127.0.12.5")
    ctx = proxied.handle.app.state.ctx
    with proxied.client("rd_wrong", source="127.0.12.5") as c:  # the proxy: believed
        codes = [c.get("/api/v1/me", headers={"X-Forwarded-For": f"10.67.{i}.1"}).status_code
                 for i in range(10)]
    assert codes == [401] * 10, "each forwarded address is its own client"
    with proxied.client("rd_wrong", source="127.0.12.6") as c:  # not the proxy: not believed
        codes = [c.get("/api/v1/me", headers={"X-Forwarded-For": f"10.68.{i}.1"}).status_code
                 for i in range(10)]
    assert 429 in codes
    ctx.audit.flush()
    addresses = {e.detail.get("address") for e in proxied.vault.audit_events(1000)
                 if e.event == "api sign-in failed"}
    assert "10.67.3.1" in addresses and "10.68.3.1" not in addresses
    ctx.throttle.reset()


def test_bad_trusted_proxy_is_refused_clearly(start: Start) -> None:
    from ragdesk.errors import RagdeskError

    with pytest.raises(RagdeskError, match="not an IP address"):
        start(trusted_proxies="nginx.local")





# --- item 4: lone surrogates in JSON; request bodies never logged ---------------------------------


SURROGATE_BODIES = {
    "/api/v1/ask": '{"question": "canary-4711 \\ud800"}',
    "/api/v1/search": '{"query": "canary-4711 \\ud800"}',
    "/v1/chat/completions": '{"messages": [{"role": "user", "content": "canary-4711 \\udfff"}]}',
    "/api/chat": '{"model": "ragdesk", "messages": [{"role": "user", "content": "canary-4711 \\ud800"}]}',
    "/api/v1/tokens": '{"name": "canary-4711", "collections": ["\\ud800canary-4711"]}',
}


def test_lone_surrogates_get_422_and_nothing_is_logged(tls_server: Running,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    admin = tls_server.token("surrogate-admin", admin=True)
    caplog.set_level("DEBUG")
    with tls_server.client(admin) as c:
        for path, body in SURROGATE_BODIES.items():
            r = c.post(path, content=body.encode(), headers={"Content-Type": "application/json"})
            assert r.status_code in (400, 422), (path, r.status_code, r.text)
            assert "canary-4711" not in r.text
            assert r.json()["detail"], path  # says which field is wrong
            # An unpaired surrogate in a key, too.
            r = c.post(path, content=b'{"\\ud800canary-4711": 1}',
                       headers={"Content-Type": "application/json"})
            assert r.status_code in (400, 422), (path, r.status_code, r.text)
    assert "canary-4711" not in caplog.text
    assert "Traceback" not in caplog.text


def test_a_failing_request_is_logged_without_what_was_sent(tls_server: Running,
                                                           caplog: pytest.LogCaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tls_server.token("bug-finder")
    services = tls_server.handle.app.state.ctx.services

    class Broken:
        def search(self, query: str, **kwargs: object) -> list[object]:
            raise RuntimeError(f"a bug while searching for {query}")

    monkeypatch.setattr(services, "retriever", lambda **kwargs: Broken())
    caplog.set_level("DEBUG")
    with tls_server.client(secret) as c:
        r = c.post("/api/v1/search", json={"query": "secret-plan-0815"})
    assert r.status_code == 500 and "secret-plan-0815" not in r.text
    assert "RuntimeError" in caplog.text and "test_server_hardening.py" in caplog.text  # where it failed
    assert "secret-plan-0815" not in caplog.text


# --- item 7: an empty collection list is refused, not read as "every collection" -----------------


def test_empty_collection_list_is_refused(locked_vault: Path, tls_server: Running) -> None:
    env = {"RAGDESK_PASSPHRASE": PASSPHRASE}
    for value in ("", " , "):
        r = run_cli("token", "create", "nothing", "--collections", value, env=env)
        assert r.returncode == 2, (value, r.stdout, r.stderr)
        assert "--collections names no collection" in r.stderr and not r.stdout.strip()
    with vault_store.unlock(locked_vault, PASSPHRASE) as vault:
        assert vault.tokens(include_revoked=True) == []
    # Over the API, an empty list is refused as well.
    admin = tls_server.token("scope-admin", admin=True)
    with tls_server.client(admin) as c:
        r = c.post("/api/v1/tokens", json={"name": "nothing", "collections": []})
        assert r.status_code == 422 and "at least one collection" in r.json()["detail"]
        assert "nothing" not in [t["name"] for t in c.get("/api/v1/tokens").json()]


# --- item 6: conversations belong to a token, not to a name ---------------------------------------


def ask(client: httpx.Client, question: str, conversation_id: int | None = None) -> httpx.Response:
    body: dict[str, object] = {"question": question}
    if conversation_id is not None:
        body["conversation_id"] = conversation_id
    return client.post("/api/v1/ask", json=body)


def test_a_recreated_token_does_not_inherit_conversations(tls_server: Running) -> None:
    first = tls_server.token("reused-name")
    with tls_server.client(first) as c:
        r = ask(c, "What is the lighthouse budget?")
        assert r.status_code == 200
        done = next(json.loads(d) for e, d in sse_events(r) if e == "done")
        conversation = done["conversation_id"]
        assert ask(c, "And the staffing?", conversation).status_code == 200  # its own follow-up
    assert tls_server.handle.tokens.revoke("reused-name")
    second = tls_server.token("reused-name")
    with tls_server.client(second) as c:
        r = ask(c, "And the staffing?", conversation)
        assert r.status_code == 404, "a new token with an old name continued the old conversation"
    ctx = tls_server.handle.app.state.ctx
    ctx.audit.flush()
    asked = [e for e in tls_server.vault.audit_events(500) if e.detail.get("token", "").startswith("reused")]
    assert asked and {e.detail["token"] for e in asked} == {"reused-name"}  # the audit log keeps the name


# --- item 2: what conversations may hold is bounded -----------------------------------------------


def test_conversation_memory_is_bounded_and_413_names_the_limit(start: Start) -> None:
    limits = replace(LIMITS, max_message_chars=1000, max_conversation_chars=3000, max_memory_chars=20_000,
                     max_streams_per_token=20)
    server = start(limits=limits)
    secret = server.token("long-talker")
    question = {"role": "user", "content": "What is the lighthouse budget?"}
    with server.client(secret) as c:
        long_message = [{"role": "user", "content": "x" * 1001}, {"role": "assistant", "content": "ok"},
                        question]
        r = c.post("/v1/chat/completions", json={"messages": long_message})
        assert r.status_code == 413 and "1000 characters" in r.text
        r = c.post("/api/chat", json={"model": "ragdesk", "stream": False, "messages": long_message})
        assert r.status_code == 413 and "1000 characters" in r.json()["error"]
        long_talk = [{"role": "user" if i % 2 == 0 else "assistant", "content": "y" * 900} for i in range(4)]
        r = c.post("/v1/chat/completions", json={"messages": [*long_talk, question]})
        assert r.status_code == 413 and "3000 characters" in r.text
        # Within the limits, however many conversations: the server keeps a bounded amount.
        history = long_talk[:3]
        for _ in range(15):
            r = c.post("/v1/chat/completions", json={"messages": [*history, question]})
            assert r.status_code == 200, r.text
    memory = server.handle.app.state.ctx.memory
    owner = server.handle.tokens.verify(secret).owner
    held = sum(len(m.content) for conv in memory.conversations(owner)
               for m in memory.messages(conv.id, owner))
    assert 0 < held <= 20_000, held


# --- item 5: an upload that takes too long to read leaves no parser behind ------------------------


def nested_forms_pdf(depth: int, fanout: int = 4) -> bytes:
    """A one-page PDF whose page draws a form XObject that draws the next one `fanout` times,
    `depth` levels deep: tiny, and fanout**depth text draws to extract (depth 14: hours)."""
    objs = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /X0 10 0 R >>"
           b" /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        4: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        5: b"<< /Length 6 >>\nstream\n/X0 Do\nendstream",
    }
    for level in range(depth):
        n = 10 + level
        if level == depth - 1:
            body, res = b"BT /F1 12 Tf 10 10 Td (nested) Tj ET", b"<< /Font << /F1 4 0 R >> >>"
        else:
            body, res = b" ".join([b"/X Do"] * fanout), b"<< /XObject << /X %d 0 R >> >>" % (n + 1)
        objs[n] = (b"<< /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources " + res
                   + b" /Length %d >>\nstream\n" % len(body) + body + b"\nendstream")
    out = bytearray(b"%PDF-1.7\n")
    offsets = {}
    for num in sorted(objs):
        offsets[num] = len(out)
        out += b"%d 0 obj\n" % num + objs[num] + b"\nendobj\n"
    xref, size = len(out), max(objs) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for num in range(1, size):
        out += b"%010d 00000 n \n" % offsets[num] if num in offsets else b"0000000000 65535 f \n"
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


def parser_processes() -> set[int]:
    """This process's parser processes (multiprocessing's spawned children) still running."""
    found = set()
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(child.cmdline()):
                found.add(child.pid)
    return found


def test_a_timed_out_upload_kills_its_parser_process(start: Start) -> None:
    server = start(limits=replace(LIMITS, upload_parse_timeout=2.0))
    admin = server.token("uploader", admin=True)
    before = parser_processes()
    answers: list[httpx.Response] = []
    with server.client(admin) as c:
        def upload() -> None:
            answers.append(c.post("/api/v1/documents", content=nested_forms_pdf(14),
                                  params={"filename": "forms.pdf", "collection": "default"},
                                  headers={"Content-Type": "application/octet-stream"}))

        uploading = threading.Thread(target=upload)
        uploading.start()
        deadline = time.monotonic() + 10
        while not parser_processes() - before and time.monotonic() < deadline:
            time.sleep(0.05)
        parsers = parser_processes() - before
        assert parsers, "the upload is read in a parser process"
        uploading.join(20)
        r = answers[0]
        assert r.status_code == 422 and "2 s" in r.json()["detail"], r.text
        deadline = time.monotonic() + 5
        while parsers & parser_processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not parsers & parser_processes(), "the parser of the timed-out upload is still running"
        # The next upload gets a fresh parser, and works.
        r = c.post("/api/v1/documents", params={"filename": "after.pdf", "collection": "default"},
                   content=nested_forms_pdf(2), headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
        assert c.delete(f"/api/v1/documents/{r.json()['id']}").status_code == 204
    assert "forms.pdf" not in {Path(d.path).name for d in server.vault.documents()}


# --- item 8: the certificate is a leaf, its fingerprint shown; HSTS -------------------------------


def forged_by(identity_key_pem: str, issuer: x509.Name, host: str) -> tuple[str, str]:
    """A certificate for `host` signed with the vault's key, naming the vault's certificate as
    its issuer: what a thief of the key would make. (cert PEM, key PEM)"""
    key = ec.generate_private_key(ec.SECP256R1())
    signer = serialization.load_pem_private_key(identity_key_pem.encode(), None)
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(issuer).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=5))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(signer, hashes.SHA256()))  # type: ignore[arg-type]
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def trusts(pinned_pem: str, cert_pem: str, key_pem: str, host: str) -> bool:
    """Whether a client that pinned `pinned_pem` accepts a server presenting `cert_pem` as `host`."""
    server_ctx = tls.server_context(tls.Identity(cert_pem, key_pem, "files"))
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with contextlib.suppress(OSError):
            server_ctx.wrap_socket(conn, server_side=True).close()
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with socket.create_connection(listener.getsockname(), timeout=5) as raw:
            tls.client_context(pinned_pem).wrap_socket(raw, server_hostname=host).close()
        return True
    except ssl.SSLCertVerificationError:
        return False
    finally:
        thread.join(5)
        listener.close()


def test_the_certificate_is_a_server_leaf_that_can_sign_nothing(tls_server: Running) -> None:
    pem = ssl.get_server_certificate(("127.0.0.1", tls_server.handle.port))
    cert = x509.load_pem_x509_certificate(pem.encode())
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    assert cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH])
    names = set(tls_server.handle.identity.names)  # type: ignore[union-attr]
    assert {"localhost", "127.0.0.1", "::1", socket.gethostname()} <= names
    assert tls.fingerprint(pem) == tls_server.handle.fingerprint
    # A client that pinned it does not trust what the vault's key signs for another site.
    stored = tls_server.vault.server_identity()
    assert stored is not None
    forged, forged_key = forged_by(stored[1], cert.subject, "bank.example")
    assert not trusts(pem, forged, forged_key, "bank.example")
    assert trusts(pem, stored[0], stored[1], "127.0.0.1")  # the pinned server itself: trusted


def test_a_vault_holding_a_ca_certificate_gets_a_leaf(tmp_path: Path) -> None:
    vault = vault_store.create(tmp_path / "old", PASSPHRASE, kdf=fast_kdf())
    try:
        old = tls.generate()
        key = serialization.load_pem_private_key(old.key_pem.encode(), None)
        leaf = x509.load_pem_x509_certificate(old.cert_pem.encode())
        ca = (x509.CertificateBuilder().subject_name(leaf.subject).issuer_name(leaf.subject)
              .public_key(leaf.public_key()).serial_number(1)
              .not_valid_before(leaf.not_valid_before_utc).not_valid_after(leaf.not_valid_after_utc)
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .sign(key, hashes.SHA256()))  # type: ignore[arg-type]
        ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
        vault.set_server_identity(ca_pem, old.key_pem)  # as an earlier version stored it
        identity = tls.vault_identity(vault)
        assert not tls.is_ca(identity.cert_pem) and identity.fingerprint != tls.fingerprint(ca_pem)
        assert vault.server_identity() == (identity.cert_pem, identity.key_pem)
        replaced = [e for e in vault.audit_events(20) if e.event == "server certificate replaced"]
        assert replaced and replaced[0].detail["old_fingerprint"] == tls.fingerprint(ca_pem)
        assert tls.vault_identity(vault).fingerprint == identity.fingerprint  # kept from now on
    finally:
        vault.lock()


def test_hsts_over_tls_only(tls_server: Running, start: Start) -> None:
    secret = tls_server.token("hsts")
    with tls_server.client(secret) as c:
        for r in (c.get("/api/v1/me"), c.get("/"), c.get("/health")):
            assert r.headers["strict-transport-security"] == "max-age=31536000"
    with tls_server.client(None) as c:
        assert c.get("/api/v1/me").headers["strict-transport-security"] == "max-age=31536000"  # 401 too
    plain = start(tls=False)
    assert "strict-transport-security" not in httpx.get(plain.url + "health").headers


def test_an_answer_that_fails_is_logged_without_the_question(tls_server: Running,
                                                             caplog: pytest.LogCaptureFixture,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from ragdesk.core.chat import ChatService

    def broken(self: object, question: str, *args: object, **kwargs: object) -> object:
        raise RuntimeError(f"a bug while answering {question}")

    monkeypatch.setattr(ChatService, "begin", broken)
    secret = tls_server.token("answer-bug")
    caplog.set_level("DEBUG")
    with tls_server.client(secret) as c:
        r = ask(c, "Where is the secret-plan-4242 kept?")
        assert r.status_code == 200 and ("error", '{"detail": "the server could not produce an answer"}') \
            in sse_events(r)
        r = c.post("/v1/chat/completions", json={"messages": [
            {"role": "user", "content": "Where is the secret-plan-4242 kept?"}]})
        assert r.status_code == 500 and "secret-plan-4242" not in r.text
    assert "RuntimeError" in caplog.text and "secret-plan-4242" not in caplog.text
