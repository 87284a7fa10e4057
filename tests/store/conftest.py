"""Fixtures for the storage suite: `store`, parametrized over both backends. The PostgreSQL
fixtures (`pg_server`, `pg_url`, `pg_store`) live in tests/fakes/postgres.py, shared with the
integration tests.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.postgres import open_pg  # noqa: F401 - imported from here by older tests


@pytest.fixture(params=["vault", "postgres"])
def store(request: pytest.FixtureRequest) -> Any:
    """The same behaviour suite, once per backend."""
    return request.getfixturevalue("vault" if request.param == "vault" else "pg_store")


def raw_execute(store: Any, sql: str) -> None:
    """Run SQL on the backend directly, around the Store protocol (for append-only checks)."""
    if hasattr(store, "db"):
        store.db.execute(sql)
    else:
        import psycopg

        with psycopg.connect(store.url, autocommit=True) as conn:
            conn.execute(sql)
