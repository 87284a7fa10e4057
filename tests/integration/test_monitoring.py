"""installer/monitoring/ against the real server: every metric the alert rules and the Grafana
dashboard use is one that `ragdesk serve`'s /metrics exports (with the labels they select on),
the files are well-formed, and the health gauges say what the deployment's state is."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from ragdesk.server.tls import client_context
from tests.conftest import PASSPHRASE, REPO, run_cli
from tests.fakes.ollama import FakeOllama
from tests.integration.test_server_cli import start_serve, stop

pytestmark = pytest.mark.timeout(120)
MONITORING = REPO / "installer" / "monitoring"
RULES = MONITORING / "ragdesk-alerts.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
SCRAPE = MONITORING / "prometheus.yml"
ENV = {"RAGDESK_PASSPHRASE": PASSPHRASE}
# Series Prometheus makes itself for every target, not exported by /metrics.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
            "summary": ("_count", "_sum", "_created", ""), "gauge": ("",), "info": ("_info",),
            "untyped": ("",)}


# --- the expressions in the files ---------------------------------------------------------------


def rule_expressions() -> dict[str, str]:
    doc = yaml.safe_load(RULES.read_text())
    return {r["alert"]: r["expr"] for g in doc["groups"] for r in g["rules"]}


def dashboard_expressions() -> dict[str, str]:
    doc = json.loads(DASHBOARD.read_text())
    out = {f"{p['title']} / {t['refId']}": t["expr"] for p in doc["panels"] for t in p["targets"]}
    for var in doc["templating"]["list"]:
        out[f"variable {var['name']}"] = var["query"]["query"]
    return out


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """(metric name, label names matched on) for each series selector in a PromQL expression
    (or a Grafana `label_values(metric, label)` query)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string contents hold no names
    text = re.sub(r"label_values\(\s*([^,()]+?)\s*,\s*\w+\s*\)", r" \1 ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery durations
    found = []
    for m in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?", text):
        name, braces = m.group(1), m.group(2)
        if name in PROMQL_WORDS or (braces is None and text[m.end():].startswith("(")):
            continue  # a keyword, a function or an aggregation
        found.append((name, set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", braces or ""))))
    return found


def test_selectors_are_read_the_way_prometheus_reads_them() -> None:
    expr = ('sum by (instance) (rate(ragdesk_http_requests_total{status=~"5..",instance=~"$i"}[5m]))'
            " / on (instance) ragdesk_disk_size_bytes > 14 * 86400 and up == 0")
    assert selectors(expr) == [("ragdesk_http_requests_total", {"status", "instance"}),
                               ("ragdesk_disk_size_bytes", set()), ("up", set())]
    assert selectors("label_values(ragdesk_build_info, instance)") == [("ragdesk_build_info", set())]


# --- the files' shape ---------------------------------------------------------------------------


def test_alert_rules_are_well_formed() -> None:
    doc = yaml.safe_load(RULES.read_text())
    rules = [r for g in doc["groups"] for r in g["rules"]]
    assert all(set(g) == {"name", "rules"} for g in doc["groups"])
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for r in rules:
        assert set(r) <= {"alert", "expr", "for", "labels", "annotations"}, r
        assert r["expr"].strip() and r["expr"].count("(") == r["expr"].count(")"), r["alert"]
        assert r.get("for") is None or re.fullmatch(r"\d+[smhd]", r["for"]), r["alert"]
        assert r["labels"]["severity"] in ("warning", "critical"), r["alert"]
        assert r["annotations"]["summary"], r["alert"]
    # What the deployment asks to be told about, each by its own rule.
    text = {name: rule_expressions()[name] for name in names}
    assert "ragdesk_ready" in text["RagDeskNotReady"]
    assert 'status=~"5.."' in text["RagDeskHighErrorRate"]
    assert "ragdesk_disk_free_bytes" in text["RagDeskDiskNearlyFull"]
    assert "ragdesk_tls_certificate_expiry_timestamp_seconds" in text["RagDeskCertificateExpiresSoon"]
    assert "ragdesk_backup_last_success_timestamp_seconds" in text["RagDeskBackupTooOld"]
    if shutil.which("promtool"):  # the real check, where Prometheus' tool is installed
        r = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


def test_dashboard_and_scrape_recipe_are_well_formed() -> None:
    doc = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids)) and doc["uid"] and doc["title"]
    for p in doc["panels"]:
        assert p["targets"] and all(t["expr"].strip() for t in p["targets"]), p["title"]
        assert p["datasource"]["uid"] == "${DS_PROMETHEUS}"
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
    scrape = yaml.safe_load(SCRAPE.read_text())
    assert scrape["rule_files"]
    for job in scrape["scrape_configs"]:
        assert job["metrics_path"] == "/metrics"
        assert job["authorization"]["credentials_file"], "/metrics needs a token"
        if job["scheme"] == "https":
            assert job["tls_config"]["ca_file"], "the self-signed certificate is pinned"


# --- against the real server --------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    with FakeOllama() as f:
        yield f


def exported(text: str) -> dict[str, set[str]]:
    """Every series name /metrics exports -> its label names (a labelled family with no sample
    yet is exported too: its HELP/TYPE lines name it, and it appears as soon as counted)."""
    out: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        labels = {k for s in family.samples for k in s.labels}
        for suffix in SUFFIXES[family.type]:
            out.setdefault(family.name + suffix, set()).update(labels)
        for s in family.samples:
            out.setdefault(s.name, set()).update(s.labels)
    return out


def values(text: str) -> dict[str, float]:
    return {s.name + json.dumps(s.labels, sort_keys=True) if s.labels else s.name: s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_every_metric_the_rules_and_dashboard_use_is_exported(locked_vault: Path, fake: FakeOllama,
                                                              tmp_path: Path) -> None:
    backed_up = time.time()
    r = run_cli("backup", str(tmp_path / "backups"), env=ENV)  # as the nightly timer does
    assert r.returncode == 0, r.stderr
    proc, seen = start_serve("--new-token", "prometheus", env={**ENV, "OLLAMA_HOST": fake.host})
    try:
        port = int(seen["url"].rstrip("/").rsplit(":", 1)[1])
        import ssl

        pem = ssl.get_server_certificate(("127.0.0.1", port))
        with httpx.Client(base_url=seen["url"], verify=client_context(pem), timeout=30) as c:
            assert c.get("/metrics").status_code == 401, "a scrape needs a token"
            auth = {"Authorization": f"Bearer {seen['token']}"}
            with c.stream("POST", "/api/v1/ask", json={"question": "anything?"}, headers=auth) as resp:
                assert "event: done" in "".join(resp.iter_text())
            c.get("/api/v1/me", headers={"Authorization": "Bearer rd_wrong"})
            resp = c.get("/metrics", headers=auth)
            assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
            text = resp.text
    finally:
        code, err = stop(proc)
    assert code == 0, err

    names = exported(text)
    used: dict[str, set[str]] = {}
    for where, expr in {**rule_expressions(), **dashboard_expressions()}.items():
        found = selectors(expr)
        assert found, f"{where}: no metric in {expr!r}"
        for name, labels in found:
            if name in SYNTHETIC:
                continue
            assert name in names, f"{where} uses {name}, which /metrics does not export"
            missing = labels - names[name] - {"instance", "job"}  # those two Prometheus adds
            assert not missing, f"{where} selects {name} on labels {missing} it does not have"
            used.setdefault(name, set()).update(labels)
    assert len(used) >= 15, sorted(used)

    # The gauges say what the deployment's state is.
    v = values(text)
    assert v["ragdesk_ready"] == 1
    assert v['ragdesk_ready_check{"check": "ollama"}'] == 1
    assert 0 < v["ragdesk_disk_free_bytes"] <= v["ragdesk_disk_size_bytes"]
    assert backed_up - 1 <= v["ragdesk_backup_last_success_timestamp_seconds"] <= time.time()
    assert v["ragdesk_backup_last_size_bytes"] > 0
    expiry = v["ragdesk_tls_certificate_expiry_timestamp_seconds"]
    assert time.time() + 30 * 86400 < expiry, "the vault's certificate is fresh"
    assert v["process_resident_memory_bytes"] > 0 and v["process_open_fds"] > 0
    assert v['ragdesk_answers_total{"mode": "llm", "status": "complete"}'] == 1
    assert v["ragdesk_auth_failures_total"] >= 1


def test_without_a_backup_the_gauge_is_zero_and_the_plain_http_server_has_no_certificate_gauge(
        locked_vault: Path, fake: FakeOllama) -> None:
    proc, seen = start_serve("--insecure-http", "--new-token", "prometheus",
                             env={**ENV, "OLLAMA_HOST": fake.host})
    try:
        resp = httpx.get(seen["url"] + "metrics", headers={"Authorization": f"Bearer {seen['token']}"})
    finally:
        stop(proc)
    v: dict[str, Any] = values(resp.text)
    assert v["ragdesk_backup_last_success_timestamp_seconds"] == 0, "never backed up: the alert fires"
    assert not any(k.startswith("ragdesk_tls_certificate") for k in v), "nginx's certificate is not ours"
