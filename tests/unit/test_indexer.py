"""The indexing pipeline in-process: progress, cancel, idempotence, failures kept apart."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ragdesk.core.extract import ExtractionError, UnsupportedFormat
from ragdesk.core.indexing import Indexer, IndexOptions, Progress, path_text, walk
from ragdesk.core.store.sqlite.vault import Vault
from tests.fakes.embedder import HashEmbedder


def write_notes(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"note-{i:02d}.md").write_text(f"# Note {i}\n\nThe walrus number {i} eats clams.\n")
    return folder


@pytest.mark.parametrize("workers", [0, 1])
def test_progress_counts_every_file(vault: Vault, tmp_path: Path, workers: int) -> None:
    folder = write_notes(tmp_path / "notes", 6)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 nonsense")
    steps = list(Indexer(vault, HashEmbedder(), IndexOptions(workers=workers)).run([folder]))
    last = steps[-1]
    assert last.done and last.files_total == 7 and last.files_done == 7
    assert last.indexed == 6 and last.failed == 1 and last.chunks >= 6
    assert [p.files_done for p in steps] == sorted(p.files_done for p in steps), "progress never goes back"
    assert any(0 < p.files_done < 7 for p in steps), "progress is reported along the way"
    failed = [o for o in last.outcomes if o.status == "failed"]
    assert failed[0].path.endswith("broken.pdf") and failed[0].reason
    assert vault.collection("default").folders == (str(folder),)
    stored = {Path(d.path).name: d for d in vault.documents()}
    assert stored["broken.pdf"].status == "failed" and stored["broken.pdf"].error == failed[0].reason


def test_cancel_between_steps_keeps_finished_documents(vault: Vault, tmp_path: Path) -> None:
    folder = write_notes(tmp_path / "notes", 200)  # several embedding batches of 64
    indexer = Indexer(vault, HashEmbedder(), IndexOptions(workers=0))
    seen: list[Progress] = []
    for p in indexer.run([folder]):
        seen.append(p)
        if p.indexed >= 3:
            indexer.cancel()
    last = seen[-1]
    assert last.cancelled and 3 <= last.indexed < 200
    assert len(vault.documents()) == last.indexed
    # Running again completes the rest and redoes nothing.
    rest = list(Indexer(vault, HashEmbedder(), IndexOptions(workers=0)).run([folder]))[-1]
    assert rest.indexed == 200 - last.indexed and rest.unchanged == last.indexed


def test_unchanged_files_are_not_read_again(vault: Vault, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_notes(tmp_path / "notes", 3)
    list(Indexer(vault, HashEmbedder(), IndexOptions(workers=0)).run([folder]))
    from ragdesk.core.indexing import pipeline

    def boom(job):  # type: ignore[no-untyped-def]
        raise AssertionError("an unchanged file was parsed")

    monkeypatch.setattr(pipeline, "parse", boom)
    last = list(Indexer(vault, HashEmbedder(), IndexOptions(workers=0)).run([folder]))[-1]
    assert last.unchanged == 3 and last.indexed == 0


def test_a_different_embedder_is_refused_clearly(vault: Vault, tmp_path: Path) -> None:
    folder = write_notes(tmp_path / "notes", 1)
    list(Indexer(vault, HashEmbedder(64), IndexOptions(workers=0)).run([folder]))
    other = HashEmbedder(32)
    other.name = "test:other"
    with pytest.raises(Exception, match="re-embed"):
        list(Indexer(vault, other, IndexOptions(workers=0)).run([folder]))


def test_walk_survives_loops_and_skips_hidden(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.txt").write_text("a")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("x")
    os.symlink(root, root / "sub" / "back-to-root")  # a folder loop
    os.symlink(root / "x1", root / "x2")
    os.symlink(root / "x2", root / "x1")  # a file loop
    found = list(walk([root]))
    files = [f.path.name for f in found if hasattr(f, "size")]
    problems = {Path(o.path).name: o.reason for o in found if hasattr(o, "status")}
    assert files == ["a.txt"]
    assert problems == {"x1": "symbolic link loop", "x2": "symbolic link loop"}


def test_paths_that_are_not_utf8_are_stored(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/caf\xe9.txt"
    text = path_text(os.fsdecode(raw))
    text.encode("utf-8")  # storable
    assert text.endswith("caf\\xe9.txt")


def test_add_bytes_indexes_an_upload_as_a_file_is_indexed(vault: Vault) -> None:
    indexer = Indexer(vault, HashEmbedder(), IndexOptions(workers=0))
    text = b"# Walrus diet\n\nThe walrus eats clams.\n"
    doc = indexer.add_bytes("uploads/notes.md", text, "team", via="test")
    assert (doc.path, doc.title, doc.format, doc.status) == ("uploads/notes.md", "Walrus diet", "markdown",
                                                             "indexed")
    assert doc.chunks >= 1 and doc.collection_id == vault.collection("team").id
    assert vault.original(doc.id) == text
    again = indexer.add_bytes("uploads/notes.md", b"Now the walrus eats fish.\n", "team", via="test")
    assert [d.path for d in vault.documents()] == ["uploads/notes.md"], "the same name replaces"
    added = [e.detail for e in vault.audit_events(10) if e.event == "document added"]
    assert added[0]["document_id"] == again.id and added[0]["via"] == "test" and added[0]["replaced"]
    with pytest.raises(UnsupportedFormat, match=r"legacy Word \.doc"):
        indexer.add_bytes("old.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600)
    with pytest.raises(ExtractionError, match="no text found"):
        indexer.add_bytes("blank.txt", b"  \n\n  \n")
    assert len(vault.documents()) == 1, "a refused upload stores nothing"


def test_add_bytes_parses_in_a_parser_process(vault: Vault) -> None:
    indexer = Indexer(vault, HashEmbedder(), IndexOptions(parse_timeout=60))
    try:
        doc = indexer.add_bytes("a.txt", b"The harbour lamp was checked.\n")
        assert doc.chunks == 1 and vault.keyword_search("harbour", 5)
    finally:
        indexer.close()
