"""`ragdesk audit` as a user runs it on a vault: verify (exit 0 with the count and head, exit 1
naming the entry), anchor, export, retention and prune; a restore of an older backup is recorded
in the log and caught by the anchor taken before it; `doctor` fails on a tampered log.
"""

from __future__ import annotations

import json
from pathlib import Path

from ragdesk.core.store.sqlite import keyfile
from ragdesk.core.store.sqlite.keyfile import Sidecar
from tests.conftest import PASSPHRASE, run_cli

ENV = {"RAGDESK_PASSPHRASE": PASSPHRASE}


def ragdesk(*args: str) -> tuple[int, str, str]:
    r = run_cli(*args, env=ENV)
    return r.returncode, r.stdout, r.stderr


def tamper(home: Path, *sql: str) -> None:
    """SQL straight on the vault file with the passphrase (sqlcipher3), around RagDesk."""
    key, _params = keyfile.matching_key(home / keyfile.DB_NAME, PASSPHRASE, Sidecar.read(home))
    conn = keyfile.connect(home / keyfile.DB_NAME, key, read_only=False)
    try:
        for statement in sql:
            conn.execute(statement)
    finally:
        conn.close()


def test_verify_anchor_export_and_a_tampered_entry(locked_vault: Path) -> None:
    home = locked_vault
    code, out, err = ragdesk("audit", "verify")
    assert code == 0, err
    assert out.startswith("audit log intact: 1 entry (1-1), head 1:")
    code, anchor, err = ragdesk("audit", "anchor")
    assert code == 0 and anchor.strip().startswith("1:") and len(anchor.strip()) == 66
    assert ragdesk("audit", "verify", "--anchor", anchor.strip())[0] == 0
    # reading commands open the vault read-only: they add no entry
    code, out, _ = ragdesk("audit", "verify", "--json")
    assert json.loads(out)["entries"] == 1
    code, out, _ = ragdesk("audit", "retention", "30")  # a normal open: two entries more
    assert code == 0 and "30 days" in out
    code, out, _ = ragdesk("audit", "export", "--since", "2000-01-01", "--json")
    exported = json.loads(out)
    assert code == 0 and exported["verification"]["ok"]
    assert [e["event"] for e in exported["entries"]] == ["vault created", "vault opened",
                                                         "settings changed"]
    assert exported["entries"][2]["detail"] == {"audit_retention_days": 30.0}
    # an auditor recomputes every hash from the export alone, as its "hash" field says
    import hashlib

    prev = "0" * 64
    for e in exported["entries"]:
        event, text = e["event"].encode(), e["detail_text"].encode()
        data = b"%d\n%s\n%d:%s\n%d:%s\n%s" % (e["seq"], repr(e["at"]).encode(), len(event), event,
                                                len(text), text, prev.encode())
        assert e["prev_hash"] == prev and hashlib.sha256(data).hexdigest() == e["hash"]
        prev = e["hash"]
    assert ragdesk("audit", "export", "--since", "yesterday")[0] == 2
    tamper(home, "DROP TRIGGER audit_log_no_update",
           "UPDATE audit_log SET detail = '{\"audit_retention_days\": 3650}' WHERE seq = 3")
    code, out, _ = ragdesk("audit", "verify")
    assert code == 1
    assert out.startswith("entry 3 ('settings changed'") and "was changed" in out
    code, out, _ = ragdesk("audit", "verify", "--json")
    problem = json.loads(out)["problem"]
    assert code == 1 and (problem["kind"], problem["seq"]) == ("changed", 3)
    code, out, _ = ragdesk("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert code == 1 and checks["vault.audit"]["status"] == "fail"
    assert "entry 3" in checks["vault.audit"]["summary"] and "evidence" in checks["vault.audit"]["remedy"]
    code, out, err = ragdesk("audit", "prune", "--older-than", "0.00001")  # ~1 s: all of them
    assert code == 1 and "not pruned" in err  # a tampered log is kept as it is


def test_restoring_an_older_backup_is_recorded_and_caught_by_the_anchor(locked_vault: Path,
                                                                         tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    assert ragdesk("backup", str(backups))[0] == 0
    assert ragdesk("audit", "retention", "400")[0] == 0  # entries written after the backup
    code, anchor, _ = ragdesk("audit", "anchor")
    anchor = anchor.strip()
    code, out, err = ragdesk("restore", str(backups), "--yes", "--json")
    assert code == 0, err
    audit = json.loads(out)["audit"]
    assert audit["replaced_head"] == anchor and audit["restored_head"] != anchor
    # the restored log is intact and says what happened
    code, out, _ = ragdesk("audit", "export", "--since", "2000-01-01", "--json")
    last = json.loads(out)["entries"][-1]
    assert last["event"] == "backup restored" and last["detail"]["replaced_head"] == anchor
    assert ragdesk("audit", "verify")[0] == 0
    # ... but it no longer holds the anchored point: the older copy is caught
    code, out, _ = ragdesk("audit", "verify", "--anchor", anchor)
    assert code == 1
    assert f"anchor names entry {anchor.split(':')[0]}" in out or "differs from the anchor" in out


def test_serve_prints_the_audit_anchor_at_start(locked_vault: Path) -> None:
    from tests.integration.test_server_cli import start_serve, stop

    proc, _seen = start_serve("--insecure-http", env=ENV)
    try:
        assert proc.stdout is not None
        anchor = ""
        for _ in range(3):  # the lines after the address (a TLS line comes first with TLS)
            anchor = proc.stdout.readline()
            if anchor.startswith("Audit log anchor: "):
                break
        assert anchor.startswith("Audit log anchor: "), anchor
    finally:
        stop(proc)
    point = anchor.split()[3]
    code, out, _ = ragdesk("audit", "verify", "--anchor", point)
    assert code == 0 and f"anchor {point.split(':')[0]} found" in out


def test_a_tampered_postgresql_log_fails_verify_and_doctor(pg_url: str, home: Path) -> None:
    import psycopg

    from ragdesk.cli.doctor import runner
    from tests.fakes.postgres import open_pg

    with open_pg(pg_url) as store:
        store.audit("token created", name="ana", address="10.0.0.7")
        seq = store.audit_head().seq
    code, out, _ = ragdesk("--database", pg_url, "audit", "verify")
    assert code == 0 and out.startswith("audit log intact:")
    with psycopg.connect(pg_url, autocommit=True) as conn:  # with the database's own credentials
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change")
        conn.execute("UPDATE audit_log SET detail = replace(detail, '10.0.0.7', '10.9.9.9')")
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change")
    code, out, _ = ragdesk("--database", pg_url, "audit", "verify", "--json")
    problem = json.loads(out)["problem"]
    assert code == 1 and (problem["kind"], problem["seq"]) == ("changed", seq)
    check = runner.run(home, PASSPHRASE, ollama_host="http://127.0.0.1:9", database=pg_url).check("db.audit")
    assert check.status == "fail" and f"entry {seq} ('token created'" in check.summary
