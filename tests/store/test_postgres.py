"""What only the PostgreSQL backend has: a shared schema built by concurrent instances under an
advisory lock, refusal of a newer schema, the passphrase-derived key for originals, and originals
and the server key stored encrypted."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from ragdesk.core.store import postgres
from ragdesk.errors import StorageError, VaultTooNew, WrongPassphrase
from tests.conftest import PASSPHRASE
from tests.store.conftest import open_pg


def test_migrations_are_recorded_by_name(pg_store: Any) -> None:
    with psycopg.connect(pg_store.url) as conn:
        rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    assert rows == [(i + 1, name) for i, (name, _) in enumerate(postgres.MIGRATIONS)]
    assert pg_store.status().schema_version == postgres.SCHEMA_VERSION


def test_instances_starting_at_once_migrate_once(pg_url: str) -> None:
    stores: list[Any] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            stores.append(open_pg(pg_url))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(stores) == 4
    stores[0].collection("shared")
    assert [c.name for c in stores[3].collections()] == ["shared"], "one database, one schema"
    for s in stores:
        s.close()


def test_a_newer_schema_is_refused_untouched(pg_store: Any, pg_url: str) -> None:
    pg_store.close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (99, 'm099_future', 0)")
    with pytest.raises(VaultTooNew, match="newer RagDesk"):
        open_pg(pg_url)


def test_wrong_passphrase_is_refused(pg_store: Any, pg_url: str) -> None:
    pg_store.close()
    with pytest.raises(WrongPassphrase):
        postgres.connect(pg_url, "not the passphrase", vector_index="exact")
    again = open_pg(pg_url)  # the right one still opens
    again.close()


def test_an_uninitialised_database_is_not_created_on_open(pg_url: str) -> None:
    with pytest.raises(StorageError, match="ragdesk init"):
        open_pg(pg_url, create=False)


def test_unreachable_database_is_a_clear_error(tmp_path: Any) -> None:
    with pytest.raises(StorageError, match="database"):
        postgres.connect(f"postgresql://nobody@/none?host={tmp_path}&connect_timeout=1", PASSPHRASE)


def test_originals_and_server_key_are_encrypted_in_the_database(pg_store: Any) -> None:
    from tests.store.test_behaviour import add

    canary = b"CANARY-7f3a original bytes"
    doc = add(pg_store, "some text", original=canary)
    pg_store.set_server_identity("CERT", "PRIVATE-KEY-CANARY")
    with psycopg.connect(pg_store.url) as conn:
        blob = bytes(conn.execute("SELECT data FROM originals").fetchone()[0])
        key = bytes(conn.execute("SELECT key_pem FROM server_identity").fetchone()[0])
        # Moving an original to another document is detected (the id is authenticated).
        conn.execute("UPDATE originals SET document_id = document_id")
    assert canary not in blob and b"PRIVATE-KEY-CANARY" not in key
    assert pg_store.original(doc.id) == canary
    assert pg_store.server_identity() == ("CERT", "PRIVATE-KEY-CANARY")
    with pytest.raises(Exception, match="managed by the store"):
        pg_store.set_setting("storage.kdf", {})


def test_change_passphrase_re_encrypts_originals(pg_store: Any, pg_url: str) -> None:
    from tests.conftest import fast_kdf
    from tests.store.test_behaviour import add

    doc = add(pg_store, "text", original=b"the original")
    pg_store.set_server_identity("CERT", "KEY")
    pg_store.change_passphrase("a new passphrase", kdf=fast_kdf())
    assert pg_store.original(doc.id) == b"the original"
    pg_store.close()
    with pytest.raises(WrongPassphrase):
        postgres.connect(pg_url, PASSPHRASE, vector_index="exact")
    again = postgres.connect(pg_url, "a new passphrase", vector_index="exact")
    assert again.original(doc.id) == b"the original" and again.server_identity() == ("CERT", "KEY")
    again.close()


def test_cli_on_postgres(pg_url: str, tmp_path: Any, cli: Any) -> None:
    """init, index, search and status through `--database` / $RAGDESK_DATABASE_URL."""
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "walrus.md").write_text("# Walrus\n\nThe walrus eats clams on the beach.\n")
    env = {"RAGDESK_PASSPHRASE": PASSPHRASE, "RAGDESK_PG_VECTOR_INDEX": "exact"}
    open_pg(pg_url).close()  # `init` with cheap key derivation, so that each command opens fast
    again = cli("--database", pg_url, "init", env=env)
    assert again.returncode == 0, again.stderr  # init on an initialised database changes nothing
    with_env = {**env, "RAGDESK_DATABASE_URL": pg_url}
    r = cli("index", str(notes), "--workers", "0", "--json", env=with_env)
    assert r.returncode == 0, r.stderr
    r = cli("search", "clams", "--mode", "keyword", "--json", env=with_env)
    assert r.returncode == 0 and "walrus.md" in r.stdout, r.stderr
    r = cli("status", "--json", env=with_env)
    assert r.returncode == 0 and '"documents": 1' in r.stdout
    bad = cli("--database", "mysql://x", "status", env=env)
    assert bad.returncode == 2 and "postgresql://" in bad.stderr
