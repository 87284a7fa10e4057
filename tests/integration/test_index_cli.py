"""`ragdesk index` and `ragdesk sync` on real files: the corpus, bad input, kills, idempotence."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pymupdf
import pytest

from ragdesk.core.store.sqlite import vault as vault_store
from tests.conftest import CISI, CORPUS, PASSPHRASE, REPO, run_cli

ENV = {"RAGDESK_PASSPHRASE": PASSPHRASE}


def index(*args: str) -> dict:
    r = run_cli("index", "--json", *args, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def cisi_folder(target: Path, count: int) -> Path:
    """The first `count` CISI abstracts, one text file each."""
    target.mkdir(parents=True, exist_ok=True)
    text = (CISI / "CISI.ALL").read_text(encoding="utf-8", errors="replace")
    docs = text.split("\n.I ")
    for i, raw in enumerate(docs[:count]):
        body = raw.split("\n.W\n", 1)[-1].split("\n.X\n", 1)[0]
        title = raw.split("\n.T\n", 1)[-1].split("\n.A\n", 1)[0].split("\n.W\n", 1)[0]
        (target / f"cisi-{i:04d}.txt").write_text(f"{title.strip()}\n\n{body.strip()}\n", encoding="utf-8")
    return target


def open_vault(home: Path) -> vault_store.Vault:
    return vault_store.unlock(home, PASSPHRASE)


def consistency(v: vault_store.Vault) -> dict[str, int]:
    """Counts that must agree in a consistent vault."""
    q = v._query
    assert q("PRAGMA integrity_check")[0][0] == "ok"
    mismatched = q(
        "SELECT count(*) FROM documents d WHERE d.chunk_count !="
        " (SELECT count(*) FROM chunks c WHERE c.document_id = d.id)"
    )[0][0]
    assert mismatched == 0, "a document's chunk count disagrees with its chunks"
    chunks = q("SELECT count(*) FROM chunks")[0][0]
    vectors = q("SELECT count(*) FROM chunk_vectors")[0][0]
    assert vectors == chunks, "every chunk has exactly one vector"
    fts = q("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH '\"the\"'")[0][0]
    plain = q("SELECT count(*) FROM chunks WHERE text LIKE '% the %' OR text LIKE 'the %'")[0][0]
    assert fts >= plain * 0.9, "the keyword index follows the chunks"
    orphans = q("SELECT count(*) FROM chunks WHERE document_id NOT IN (SELECT id FROM documents)")[0][0]
    assert orphans == 0
    no_original = q(
        "SELECT count(*) FROM documents WHERE status = 'indexed'"
        " AND id NOT IN (SELECT document_id FROM originals)"
    )[0][0]
    assert no_original == 0
    return {"documents": q("SELECT count(*) FROM documents WHERE status='indexed'")[0][0], "chunks": chunks}


@pytest.mark.slow
def test_index_the_whole_corpus(locked_vault: Path) -> None:
    summary = index(str(CORPUS))
    indexed = {Path(d["path"]).name for d in summary["indexed"]}
    failed = {Path(d["path"]).name: d["reason"] for d in summary["failed"] + summary["unsupported"]}
    every = {p.name for p in CORPUS.iterdir()}
    assert indexed | set(failed) == every, "every corpus file is indexed or reported"
    assert all(reason for reason in failed.values())
    assert "test_open2.doc" in failed and "doc" in failed["test_open2.doc"].lower()
    for name in ("mupdf_explored.pdf", "Bezier.epub", "test_open2.docx", "test_open2.html",
                 "test_open2.xps", "test_open2.fb2", "chinese-tables.pdf", "test_3654.docx"):
        assert name in indexed, f"{name}: {failed.get(name)}"
    assert summary["chunks"] > 500 and summary["pages"] > 300

    v = open_vault(locked_vault)
    try:
        counts = consistency(v)
        assert counts["documents"] == len(indexed)
        manual = next(d for d in v.documents() if d.path.endswith("mupdf_explored.pdf"))
        assert v.original(manual.id) == (CORPUS / "mupdf_explored.pdf").read_bytes()
        chunks = v.document_chunks(manual.id)
        assert all(c.page_start >= 1 and c.page_end <= manual.pages for c in chunks)
        failures = {Path(d.path).name: d.error for d in v.documents() if d.status != "indexed"}
        assert failures.keys() == failed.keys()  # the library shows each failure with its reason
    finally:
        v.lock()

    again = index(str(CORPUS))
    assert again["indexed"] == [] and len(again["unchanged"]) == len(indexed)


def test_reindex_is_idempotent_and_changes_are_replaced(locked_vault: Path, tmp_path: Path) -> None:
    folder = cisi_folder(tmp_path / "docs", 12)
    first = index(str(folder))
    assert len(first["indexed"]) == 12 and first["failed"] == []

    # Same bytes, new mtime: recognised by its hash, nothing re-parsed.
    os.utime(folder / "cisi-0001.txt", (time.time() + 10, time.time() + 10))
    # New content: replaced atomically, under the same document id.
    (folder / "cisi-0002.txt").write_text("Quantum gardening of zucchini\n\nA new text entirely.\n")
    second = index(str(folder))
    assert [Path(d["path"]).name for d in second["indexed"]] == ["cisi-0002.txt"]
    assert len(second["unchanged"]) == 11

    v = open_vault(locked_vault)
    try:
        assert consistency(v)["documents"] == 12
        hits = v.chunks([cid for cid, _ in v.keyword_search("zucchini", 5)])
        assert [Path(v.document(c.document_id).path).name for c in hits] == ["cisi-0002.txt"]
    finally:
        v.lock()


def test_sync_picks_up_new_changed_and_removed_files(locked_vault: Path, tmp_path: Path) -> None:
    folder = cisi_folder(tmp_path / "docs", 5)
    index(str(folder))
    (folder / "cisi-0000.txt").unlink()
    (folder / "new.md").write_text("# Fresh notes\n\nAbout aardvark migration.\n")
    r = run_cli("sync", "--json", env=ENV)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert [Path(p).name for p in summary["removed"]] == ["cisi-0000.txt"]
    assert [Path(d["path"]).name for d in summary["indexed"]] == ["new.md"]
    v = open_vault(locked_vault)
    try:
        names = sorted(Path(d.path).name for d in v.documents())
        assert names == ["cisi-0001.txt", "cisi-0002.txt", "cisi-0003.txt", "cisi-0004.txt", "new.md"]
    finally:
        v.lock()


def make_bad_files(folder: Path) -> dict[str, str]:
    """Files a user may drop in by mistake; value: a word the reason must contain."""
    folder.mkdir()
    expected: dict[str, str] = {}
    (folder / "empty.pdf").write_bytes(b"")
    expected["empty.pdf"] = "zero-byte"
    good = pymupdf.open()
    good.new_page().insert_text((72, 72), "A perfectly fine page about walruses.")
    pdf_bytes = good.tobytes()
    (folder / "truncated.pdf").write_bytes(pdf_bytes[: len(pdf_bytes) // 3])
    expected["truncated.pdf"] = ""
    good.save(folder / "locked.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="u", owner_pw="o")
    expected["locked.pdf"] = "password"
    with zipfile.ZipFile(folder / "bomb.docx", "w", zipfile.ZIP_DEFLATED) as z, \
            z.open("word/document.xml", "w", force_zip64=True) as member:
        block = b"\0" * (1 << 20)
        for _ in range(1024):  # 1 GiB of zeros, about 1 MB compressed
            member.write(block)
    expected["bomb.docx"] = ""
    (folder / "garbage.txt").write_bytes(os.urandom(20_000))
    expected["garbage.txt"] = ""
    (folder / "legacy.doc").write_bytes(bytes.fromhex("d0cf11e0a1b11ae1") + b"\0" * 600)
    expected["legacy.doc"] = "doc"
    os.symlink(folder / "loop-b", folder / "loop-a")
    os.symlink(folder / "loop-a", folder / "loop-b")
    expected["loop-a"] = "loop"
    expected["loop-b"] = "loop"
    return expected


@pytest.mark.slow
def test_bad_input_is_reported_and_the_batch_continues(locked_vault: Path, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    expected = make_bad_files(folder)
    odd = folder / "Ünïcödé — 日本語 🙂 e\u0301 name.md"
    odd.write_text("# Odd names\n\nThe flamingo report is fine.\n")
    (folder / "latin1.txt").write_bytes(
        "Le château de Versailles, résidence des rois de France, est célèbre pour sa galerie des"
        " Glaces. Les jardins, dessinés par André Le Nôtre, s'étendent sur des kilomètres. À"
        " l'intérieur, on découvre des salons décorés où la cour se réunissait pour les fêtes."
        " Une crème brûlée au café était servie après le dîner.\n".encode("latin-1"))
    (folder / "fine.txt").write_text("Ordinary notes about the pelican budget.\n")

    summary = index(str(folder))
    reasons = {Path(d["path"]).name: d["reason"] for d in summary["failed"] + summary["unsupported"]}
    for name, word in expected.items():
        assert name in reasons, f"{name} not reported (got {sorted(reasons)})"
        assert word in reasons[name].lower(), f"{name}: {reasons[name]}"
    indexed = {Path(d["path"]).name for d in summary["indexed"]}
    assert {odd.name, "latin1.txt", "fine.txt"} <= indexed

    v = open_vault(locked_vault)
    try:
        hits = v.chunks([c for c, _ in v.keyword_search("crème brûlée", 3)])
        assert hits and "brûlée" in hits[0].text  # decoded as Latin-1, not mangled
        assert v.keyword_search("flamingo", 3)
    finally:
        v.lock()


def test_a_file_that_turns_bad_keeps_its_indexed_version(locked_vault: Path, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "The narwhal inventory for March.")
    doc.save(folder / "report.pdf")
    index(str(folder))
    (folder / "report.pdf").write_bytes(b"%PDF-1.7\n garbage")
    summary = index(str(folder))
    assert summary["failed"] and "kept" in summary["failed"][0]["reason"]
    v = open_vault(locked_vault)
    try:
        assert v.keyword_search("narwhal", 3), "the earlier version is still searchable"
    finally:
        v.lock()


def test_missing_path_is_a_clear_failure(locked_vault: Path) -> None:
    r = run_cli("index", "/no/such/place", env=ENV)
    assert r.returncode == 1 and "no such file or folder" in r.stderr


def test_originals_survive_the_file_moving(locked_vault: Path, tmp_path: Path) -> None:
    folder = cisi_folder(tmp_path / "docs", 2)
    index(str(folder / "cisi-0000.txt"))
    data = (folder / "cisi-0000.txt").read_bytes()
    shutil.move(folder / "cisi-0000.txt", tmp_path / "elsewhere.txt")
    v = open_vault(locked_vault)
    try:
        (doc,) = v.documents()
        assert v.original(doc.id) == data
    finally:
        v.lock()


@pytest.mark.slow
def test_index_survives_sigkill_at_random_moments(locked_vault: Path, tmp_path: Path) -> None:
    folder = cisi_folder(tmp_path / "docs", 100)
    shutil.copy(CORPUS / "cython.pdf", folder)
    shutil.copy(CORPUS / "Bezier.epub", folder)
    env = dict(os.environ, **ENV)
    rng = random.Random(1234)
    previous = 0
    for _trial in range(12):
        proc = subprocess.Popen([sys.executable, "-m", "ragdesk", "index", str(folder)], env=env,
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        time.sleep(rng.uniform(0.8, 3.0))
        proc.send_signal(signal.SIGKILL)  # the indexer itself, as a crash or `kill -9` would
        proc.wait()
        with contextlib.suppress(ProcessLookupError):  # then tidy up any parser worker it left,
            os.killpg(proc.pid, signal.SIGKILL)  # so the test leaks no process
        v = open_vault(locked_vault)
        try:
            counts = consistency(v)
        finally:
            v.lock()
        assert counts["documents"] >= previous, "nothing indexed earlier is lost"
        previous = counts["documents"]
    final = index(str(folder))
    assert final["failed"] == []
    v = open_vault(locked_vault)
    try:
        counts = consistency(v)
        assert counts["documents"] == 102
        paths = [d.path for d in v.documents()]
        assert len(paths) == len(set(paths)) == 102
    finally:
        v.lock()


def _session_pids(sid: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # (session id; zombies are gone already)
            pids.append(int(stat.parent.name))
    return pids


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return "?"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_parser_workers_end_when_the_indexer_is_killed(locked_vault: Path, tmp_path: Path) -> None:
    folder = cisi_folder(tmp_path / "docs", 300)
    for name in ("cython.pdf", "Bezier.epub"):
        shutil.copy(CORPUS / name, folder)
    proc = subprocess.Popen([sys.executable, "-m", "ragdesk", "index", str(folder)],
                            env=dict(os.environ, **ENV), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(_session_pids(proc.pid)) < 3 and time.monotonic() < deadline:  # parsers up
            time.sleep(0.1)
        assert len(_session_pids(proc.pid)) >= 3, "the parser workers never started"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while _session_pids(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = {pid: _cmdline(pid) for pid in _session_pids(proc.pid)}
        assert left == {}, "parser workers outlived the indexer"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def test_failed_files_are_not_read_again_until_they_change(locked_vault: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "notes.md").write_text("# Notes\n\nThe walrus census is due in May.\n")
    legacy = folder / "legacy.doc"
    legacy.write_bytes(bytes.fromhex("d0cf11e0a1b11ae1") + b"\0" * 600)
    good = pymupdf.open()
    good.new_page().insert_text((72, 72), "A page about walruses.")
    pdf_bytes = good.tobytes()
    broken = folder / "broken.pdf"
    broken.write_bytes(pdf_bytes[: len(pdf_bytes) // 3])

    first = index(str(folder))
    failures = {Path(f["path"]).name: f for f in first["failed"] + first["unsupported"]}
    assert set(failures) == {"legacy.doc", "broken.pdf"}
    assert not any(f.get("unchanged") for f in failures.values())

    # Unchanged: still reported with the same reason (the summary stays truthful), not read again.
    second = index(str(folder))
    again = {Path(f["path"]).name: f for f in second["failed"] + second["unsupported"]}
    assert set(again) == {"legacy.doc", "broken.pdf"}
    assert all(f["unchanged"] is True for f in again.values())
    assert {n: f["reason"] for n, f in again.items()} == {n: f["reason"] for n, f in failures.items()}
    assert [Path(p).name for p in second["unchanged"]] == ["notes.md"]
    text = run_cli("index", str(folder), env=ENV)
    assert "not read again" in text.stdout and "--retry-failed" in text.stdout

    # --retry-failed reads them; a fixed file is read because it changed.
    retried = index("--retry-failed", str(folder))
    assert not any(f.get("unchanged") for f in retried["failed"] + retried["unsupported"])
    broken.write_bytes(pdf_bytes)
    fixed = index(str(folder))
    assert [Path(d["path"]).name for d in fixed["indexed"]] == ["broken.pdf"]
    assert [Path(f["path"]).name for f in fixed["unsupported"]] == ["legacy.doc"]


HOSTILE = Path(__file__).resolve().parents[1] / "data" / "hostile"


def test_a_hostile_page_is_reported_degraded_with_stage_times_and_a_quiet_terminal(
    locked_vault: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(HOSTILE / "table-grid.pdf", folder)
    shutil.copy(CORPUS / "small-table.pdf", folder)
    shutil.copy(CORPUS / "image-file1.pdf", folder)  # a scan: OCR when Tesseract is here
    r = run_cli("-v", "index", "--json", str(folder), env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    grid = next(d for d in summary["indexed"] if d["path"].endswith("table-grid.pdf"))
    assert grid["degraded"] == [{"page": 2, "step": "tables",
                                 "reason": "table detection took longer than 5 s and was skipped"}]
    assert summary["degraded_pages"] == 1 and len(summary["indexed"]) == 3
    assert set(summary["stages"]) == {"parsing", "ocr", "embedding", "storing"}
    assert summary["stages"]["parsing"] > 5 and summary["stages"]["embedding"] > 0
    slowest = {Path(d["path"]).name: d["seconds"] for d in summary["slowest"]}
    assert slowest.keys() == {"table-grid.pdf", "small-table.pdf", "image-file1.pdf"}
    assert slowest["table-grid.pdf"] > 5 and list(slowest.values()) == sorted(slowest.values(), reverse=True)
    # -v names the file and page in work, and each file's time; nothing from the libraries.
    assert f"in work: {folder / 'table-grid.pdf'}: page 2 of 3, tables" in r.stderr
    assert f"indexed: {folder / 'small-table.pdf'} (1 pages, 1 chunks) in " in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert all(ln.startswith("INFO ragdesk.") for ln in lines), lines
    v = open_vault(locked_vault)
    try:
        stored = next(d for d in v.documents() if d.path.endswith("table-grid.pdf"))
        assert stored.error == "read in part: page 2: table detection took longer than 5 s and was skipped"
    finally:
        v.lock()
