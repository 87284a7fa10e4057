"""Nothing of RagDesk's or its libraries' is written outside the data folder and the cache
(issue 19, item 13): init, index, search, ask and serve run as child processes with an empty
HOME (XDG_* unset, so every platform default lands in it), their own TMPDIR and working folder;
afterwards every file or folder that appeared anywhere else is listed, and none may have.

Before the fix onnxruntime wrote its telemetry queue and a device id to
~/.cache/Microsoft/DeveloperTools/.onnxruntime/ when the built-in embedder loaded."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ragdesk.core.embedding import default_cache_dir
from tests.conftest import CORPUS, PASSPHRASE
from tests.fakes.ollama import FakeOllama

pytestmark = [pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG layout"),
              pytest.mark.slow]


def _outside(root: Path, allowed: list[Path]) -> list[str]:
    """Entries under `root` that are neither inside an allowed folder nor on the way to one."""
    found = []
    for path in sorted(root.rglob("*")):
        inside = any(path == a or path.is_relative_to(a) for a in allowed)
        on_the_way = any(a.is_relative_to(path) for a in allowed)
        if not inside and not on_the_way:
            found.append(str(path.relative_to(root)))
    return found


def _seed_model_cache(machine_cache: Path, cache: Path) -> None:
    """The built-in embedder's graph, if this machine's cache has it: building it again in the
    empty HOME would cost the test many seconds (a link, so no copy of 90 MB either)."""
    built = sorted(machine_cache.glob("minilm-l6-*.onnx"))
    if not built:
        return
    cache.mkdir(parents=True, mode=0o700)
    try:
        os.link(built[-1], cache / built[-1].name)
    except OSError:
        shutil.copyfile(built[-1], cache / built[-1].name)


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`ragdesk ARGS` in the working folder `cwd`, with this process's environment."""
    proc = subprocess.run([sys.executable, "-m", "ragdesk", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=180)
    assert "ZERO-EGRESS VIOLATION" not in proc.stderr, proc.stderr
    return proc


def _serve_once(cwd: Path) -> None:
    """Start `ragdesk serve` (TLS, its certificate made on first use), answer one request, stop."""
    proc = subprocess.Popen([sys.executable, "-m", "ragdesk", "serve", "--port", "0", "--new-token",
                             "probe"], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        token = url = None
        for line in proc.stdout:
            if re.fullmatch(r"rd_\S+\n", line):
                token = line.strip()
            if m := re.search(r"serving this vault on (\S+)", line):
                url = m.group(1)
                break
        assert url and token, proc.stderr.read() if proc.stderr else ""
        with httpx.Client(base_url=url, verify=False, timeout=30,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            assert client.get("/api/v1/me").status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "ZERO-EGRESS VIOLATION" not in err, err


def test_nothing_is_written_outside_the_data_folder_and_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_ollama: FakeOllama) -> None:
    machine_cache = default_cache_dir()  # (before HOME changes)
    user, tmp, cwd, docs = (tmp_path / name for name in ("user", "tmp-dir", "cwd", "docs"))
    for folder in (user, tmp, cwd, docs):
        folder.mkdir()
    shutil.copy(CORPUS / "small-table.pdf", docs)
    (docs / "budget.txt").write_text("The lighthouse budget is 4.2 million euros.\n", encoding="utf-8")
    for name in [k for k in os.environ if k.startswith("XDG_")] + ["RAGDESK_HOME"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(user))
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setenv("OLLAMA_HOST", fake_ollama.host)
    monkeypatch.setenv("RAGDESK_PASSPHRASE", PASSPHRASE)
    data = user / ".local" / "share" / "RagDesk"
    cache = user / ".cache" / "ragdesk"
    _seed_model_cache(machine_cache, cache)

    r = _run("init", cwd=cwd)
    assert r.returncode == 0, r.stderr
    r = _run("index", str(docs), cwd=cwd)  # parser processes and the built-in embedder
    assert r.returncode == 0, r.stderr
    r = _run("search", "lighthouse budget", cwd=cwd)
    assert r.returncode == 0 and "budget" in r.stdout, r.stderr
    fake_ollama.script("The budget is 4.2 million euros [1].")
    r = _run("ask", "--model", "llama3.2:3b", "What is the lighthouse budget?", cwd=cwd)
    assert r.returncode == 0 and "4.2 million" in r.stdout, r.stderr
    _serve_once(cwd)

    assert (data / "vault.db").is_file() and any(cache.glob("*.onnx")), "the run used both"
    assert _outside(user, [data, cache]) == [], "written outside the data folder and the cache"
    assert sorted(p.name for p in tmp.rglob("*")) == [], "temporary files left behind"
    assert sorted(p.name for p in cwd.rglob("*")) == [], "written into the working folder"
    assert sorted(p.name for p in docs.iterdir()) == ["budget.txt", "small-table.pdf"]
