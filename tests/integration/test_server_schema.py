"""Schemathesis against the server's own OpenAPI description: generated requests (valid and
invalid) to every operation, over TLS with a read-only token, and never a 5xx.

The cases come from schemathesis' Python API (`operation.as_strategy`) driven by Hypothesis with
a fixed, small number of examples so that the run stays short and repeatable."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from tests.fakes.server import Running

pytestmark = pytest.mark.timeout(150)

EXAMPLES = {GenerationMode.POSITIVE: 6, GenerationMode.NEGATIVE: 4}


def test_generated_requests_never_get_a_server_error(server: Running, tmp_path: Path) -> None:
    reader = server.token("schemathesis")
    operations = _operations(server, reader)
    assert len(operations) >= 14
    calls = _fuzz(server, reader, operations, tmp_path)
    assert calls >= len(operations) * 4


def test_generated_admin_requests_never_get_a_server_error(server: Running, tmp_path: Path) -> None:
    """What only an admin token reaches: uploads, removals, token management (the read-only run
    stops at 403 before their bodies are looked at)."""
    admin = server.token("schemathesis-admin", admin=True)
    changing = [op for op in _operations(server, admin)
                if op.path.startswith(("/api/v1/documents", "/api/v1/tokens"))]
    assert {(op.method.upper(), op.path) for op in changing} >= {
        ("POST", "/api/v1/tokens"), ("GET", "/api/v1/tokens"), ("DELETE", "/api/v1/tokens/{name}"),
        ("POST", "/api/v1/documents"), ("DELETE", "/api/v1/documents/{document_id}")}
    assert _fuzz(server, admin, changing, tmp_path) >= len(changing) * 4


def _operations(server: Running, token: str) -> list:  # type: ignore[type-arg]
    with server.client(token) as c:
        spec = c.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(spec)
    return [result.ok() for result in schema.get_all_operations()]


def _fuzz(server: Running, token: str, operations: list, tmp_path: Path) -> int:  # type: ignore[type-arg]
    """Generated requests to each operation; fails on any 5xx. Returns the number sent."""
    ca_file = tmp_path / "server.pem"  # the certificate only: public
    ca_file.write_text(server.handle.cert_pem or "")
    base_url = server.url.rstrip("/")
    failures: list[str] = []
    calls = 0

    for operation in operations:
        for mode, count in EXAMPLES.items():
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=count, deadline=None, derandomize=True, database=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def check(case) -> None:  # type: ignore[no-untyped-def]
                nonlocal calls
                server.handle.app.state.ctx.throttle.reset()
                calls += 1
                response = case.call(base_url=base_url, headers={"Authorization": f"Bearer {token}"},
                                     verify=str(ca_file), timeout=30)
                case.validate_response(response, checks=[not_a_server_error])

            try:
                check()
            except Unsatisfiable:
                pass  # no parameter to make invalid (e.g. GET /health): nothing negative to send
            except Exception as exc:  # gathered, reported together
                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:500]}")
    assert not failures, "\n".join(failures)
    return calls
