"""The LAN server's security properties, against a real TLS server on loopback: tokens on every
route but /health, throttling, read-only tokens, TLS by default with the key only in the vault,
limits, and the headers that keep the web client's content inert."""

from __future__ import annotations

import json
import ssl
import threading
import time
from pathlib import Path

import httpx
import pytest

from ragdesk.server.tls import fingerprint
from tests.fakes.server import Running, sse_events

pytestmark = pytest.mark.timeout(90)

SAMPLE_BODIES = {
    "/api/v1/ask": {"question": "budget?"},
    "/api/v1/search": {"query": "budget"},
    "/v1/chat/completions": {"messages": [{"role": "user", "content": "budget?"}]},
    "/api/chat": {"model": "ragdesk", "messages": [{"role": "user", "content": "budget?"}]},
}


def routes(server: Running) -> list[tuple[str, str]]:
    """Every (method, path) in the OpenAPI description, plus the description itself."""
    secret = server.token(f"lister-{time.monotonic_ns()}")
    with server.client(secret) as c:
        spec = c.get("/openapi.json").json()
    found = [("GET", "/openapi.json")]
    for path, methods in spec["paths"].items():
        for method in methods:
            found.append((method.upper(), path.replace("{document_id}", "1")))
    return found


def test_every_route_but_health_needs_a_valid_token(server: Running) -> None:
    secret = server.token("soon-revoked")
    with server.client(secret) as c:
        assert c.get("/api/v1/me").status_code == 200
    assert server.handle.tokens.revoke("soon-revoked")
    all_routes = routes(server)
    assert len(all_routes) >= 14
    cases = {"no token": None, "wrong token": "rd_" + "A" * 43, "revoked token": secret,
             "not bearer": None}
    for i, (label, token) in enumerate(cases.items()):
        headers = {}
        if label == "not bearer":
            headers["Authorization"] = f"Basic {secret}"
        with server.client(token, source=f"127.0.9.{i + 1}", headers=headers) as c:  # no throttling here
            for method, path in all_routes:
                if path == "/health":
                    continue
                server.handle.app.state.ctx.throttle.reset()
                r = c.request(method, path, json=SAMPLE_BODIES.get(path))
                assert r.status_code == 401, (label, method, path, r.status_code)
                assert r.headers["www-authenticate"].startswith("Bearer")
            # Unknown paths too: nothing is learnt without a token.
            assert c.get("/api/v1/nothing-here").status_code == 401
    with server.client(None) as c:
        assert c.get("/health").json() == {"status": "ok"}
        assert c.get("/").status_code == 200  # the web client's static page holds no data


def test_repeated_failures_are_throttled_per_address(server: Running) -> None:
    server.handle.app.state.ctx.throttle.reset()
    good = server.token("throttle-victim")
    attacker = "127.0.9.9"
    with server.client("rd_wrong", source=attacker) as c:
        codes = [c.get("/api/v1/me").status_code for _ in range(5)]
        assert codes == [401] * 5
        r = c.get("/api/v1/me")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    # Even a valid token is refused from that address while it is throttled ...
    with server.client(good, source=attacker) as c:
        assert c.get("/api/v1/me").status_code == 429
    # ... but other addresses are not affected.
    with server.client(good, source="127.0.9.10") as c:
        assert c.get("/api/v1/me").status_code == 200
    server.handle.app.state.ctx.audit.flush()
    events = [e.event for e in server.vault.audit_events(500)]
    assert "api sign-in failed" in events and "api address throttled" in events
    server.handle.app.state.ctx.throttle.reset()


def test_read_only_token_cannot_change_anything(server: Running) -> None:
    reader = server.token("reader")
    before = [(d.id, d.path, d.content_hash) for d in server.vault.documents()]
    doc_id = before[0][0]
    with server.client(reader) as c:
        r = c.post("/api/v1/documents", params={"filename": "x.txt"}, content=b"new text here",
                   headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 403
        assert c.delete(f"/api/v1/documents/{doc_id}").status_code == 403
        for method in ("PUT", "PATCH", "DELETE"):
            assert c.request(method, "/api/v1/search", json={"query": "x"}).status_code == 405
    assert [(d.id, d.path, d.content_hash) for d in server.vault.documents()] == before

    admin = server.token("admin", admin=True)
    with server.client(admin) as c:
        r = c.post("/api/v1/documents", params={"filename": "../../notes.txt", "collection": "default"},
                   content=b"The zebra crossing budget is seventeen euros exactly.",
                   headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
        added = r.json()
        assert added["path"] == "lan-upload/admin/notes.txt" and added["chunks"] >= 1
        hits = c.post("/api/v1/search", json={"query": "zebra crossing"}).json()["hits"]
        assert hits[0]["document_id"] == added["id"]
        assert c.delete(f"/api/v1/documents/{added['id']}").status_code == 204
        assert c.delete(f"/api/v1/documents/{added['id']}").status_code == 404
    assert [(d.id, d.path, d.content_hash) for d in server.vault.documents()] == before
    server.handle.app.state.ctx.audit.flush()
    events = {e.event for e in server.vault.audit_events(500)}
    assert {"document added", "document removed", "api access"} <= events


def test_tls_by_default_and_plain_http_is_refused(server: Running) -> None:
    assert server.url.startswith("https://")
    # A plain-HTTP request to the TLS port gets no HTTP answer.
    with pytest.raises(httpx.HTTPError):
        httpx.get(server.url.replace("https://", "http://") + "health", timeout=5)
    # Without trusting the certificate, a client refuses the connection.
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "health", timeout=5)
    # The certificate served is the vault's, with the fingerprint the server shows.
    host, port = "127.0.0.1", server.handle.port
    pem = ssl.get_server_certificate((host, port))
    assert fingerprint(pem) == server.handle.fingerprint
    stored = server.vault.server_identity()
    assert stored is not None and fingerprint(stored[0]) == server.handle.fingerprint
    assert "PRIVATE KEY" in stored[1]


def test_private_key_is_never_on_disk(server: Running) -> None:
    key_pem = server.vault.server_identity()[1]  # type: ignore[index]
    body = "".join(key_pem.strip().splitlines()[1:-1])[:40].encode()
    for path in Path(server.home).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"PRIVATE KEY" not in data and body not in data, path


def test_security_headers_and_strict_csp(server: Running) -> None:
    with server.client(None) as c:
        for path in ("/", "/static/app.js", "/health"):
            r = c.get(path)
            csp = r.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["x-frame-options"] == "DENY"
        html = c.get("/").text
        assert "<script>" not in html and "style=" not in html and "http://" not in html \
            and "https://" not in html
        js = c.get("/static/app.js").text
        assert "innerHTML" not in js and "textContent" in js
        docs = c.get("/docs").text
        assert "cdn" not in docs.lower() and "/static/swagger/swagger-ui-bundle.js" in docs
        assert c.get("/static/swagger/swagger-ui-bundle.js").status_code == 200


def test_limits_body_question_and_streams(server: Running) -> None:
    secret = server.token("limited")
    with server.client(secret) as c:
        r = c.post("/api/v1/search", content=b"{" + b" " * (70 * 1024) + b"}",
                   headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        assert c.post("/api/v1/ask", json={"question": "x" * 501}).status_code == 413
        assert c.post("/v1/chat/completions", json={
            "messages": [{"role": "user", "content": "y" * 501}]}).status_code == 413
        assert c.post("/api/v1/search", json={"query": "budget", "k": 51}).status_code == 422

    # Three streams per token (the test server's limit): the fourth is told to wait (429).
    server.fake.fault("slow_first_token", 1.5)
    opened: list[int] = []
    try:
        def stream_one() -> None:
            with (server.client(secret) as c,
                  c.stream("POST", "/api/v1/ask", json={"question": "budget?"}) as r):
                opened.append(r.status_code)
                sse_events(r)

        threads = [threading.Thread(target=stream_one) for _ in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 5
        while len(opened) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        with server.client(secret) as c:
            r = c.post("/api/v1/ask", json={"question": "budget?"})
            assert r.status_code == 429 and r.headers["retry-after"] == "1"
        for t in threads:
            t.join(20)
        assert opened == [200, 200, 200]
    finally:
        server.fake.clear()
    with server.client(secret) as c:
        r = c.post("/api/v1/ask", json={"question": "budget?"})
        assert r.status_code == 200


def test_server_busy_answers_503(server: Running) -> None:
    ctx = server.handle.app.state.ctx
    secret = server.token("busy")
    deadline = time.monotonic() + 10  # streams of earlier tests may still be ending: they would
    while ctx._streams and time.monotonic() < deadline:  # free a slot meanwhile
        time.sleep(0.02)
    saved = ctx._streams
    ctx._streams = ctx.config.limits.max_streams  # the server is full
    try:
        with server.client(secret) as c:
            r = c.post("/api/v1/ask", json={"question": "budget?"})
            assert r.status_code == 503 and r.headers["retry-after"]
            r = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "b?"}]})
            assert r.status_code == 503
            assert c.get("/health").status_code == 200
    finally:
        ctx._streams = saved


def test_ready_and_metrics(server: Running) -> None:
    with server.client(server.token("ops")) as c:
        ready = c.get("/ready")
        assert ready.status_code == 200
        checks = ready.json()["checks"]
        assert all(checks[name]["ok"] for name in ("vault", "ollama", "disk", "memory")), checks
        text = c.get("/metrics").text
        assert "ragdesk_http_requests_total" in text and "ragdesk_streams_active" in text
        assert 'route="/api/v1/me"' in text or 'route="/ready"' in text
    server.handle.app.state.ctx.audit.flush()
    events = [e for e in server.vault.audit_events(1000) if e.event == "api access"]
    assert events and {"token", "address", "path", "status"} <= set(events[0].detail)
    assert json.dumps(events[0].detail)  # plain data


def test_an_admin_manages_tokens_while_the_server_runs(server: Running) -> None:
    admin = server.token("token-admin", admin=True)
    legal_admin = server.token("legal-admin", collections=["legal"], admin=True)
    with server.client(admin) as c:
        r = c.post("/api/v1/tokens", json={"name": "paralegal", "collections": ["legal"]})
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["collections"] == ["legal"] and not made["admin"] and made["secret"].startswith("rd_")
        listed = {t["name"]: t for t in c.get("/api/v1/tokens").json()}
        assert listed["paralegal"]["collections"] == ["legal"] and "secret" not in listed["paralegal"]
        assert not any("hash" in key for t in listed.values() for key in t), "no hashes either"
        # Bad requests: a taken name, an unknown collection, a name no token may have.
        assert c.post("/api/v1/tokens", json={"name": "paralegal"}).status_code == 409
        assert c.post("/api/v1/tokens", json={"name": "x", "collections": ["nowhere"]}).status_code == 422
        assert c.post("/api/v1/tokens", json={"name": "no spaces"}).status_code == 422
    # The new secret works at once, within its scope only.
    with server.client(made["secret"]) as c:
        assert c.get("/api/v1/me").json() == {"name": "paralegal", "admin": False, "collections": ["legal"]}
        assert c.get("/api/v1/collections").json() == ["legal"]
        assert c.get("/api/v1/tokens").status_code == 403, "a read-only token manages nothing"
    # An admin limited to "legal" hands out and sees only "legal".
    with server.client(legal_admin) as c:
        assert c.post("/api/v1/tokens", json={"name": "wide"}).status_code == 403
        assert c.post("/api/v1/tokens", json={"name": "w2", "collections": ["default"]}).status_code == 403
        names = {t["name"] for t in c.get("/api/v1/tokens").json()}
        assert "paralegal" in names and "token-admin" not in names
        assert c.delete("/api/v1/tokens/token-admin").status_code == 404, "out of its scope"
        assert c.delete("/api/v1/tokens/paralegal").status_code == 204
        assert c.delete("/api/v1/tokens/paralegal").status_code == 404
    with server.client(made["secret"]) as c:
        assert c.get("/api/v1/me").status_code == 401, "refused from its next request on"
    events = [(e.event, e.detail) for e in server.vault.audit_events(200)]
    assert ("token created", {"name": "paralegal", "admin": False, "collections": ["legal"],
                              "by": "token-admin"}) in events
    assert ("token revoked", {"name": "paralegal", "by": "legal-admin"}) in events
