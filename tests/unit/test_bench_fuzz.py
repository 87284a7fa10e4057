"""benchmarks/bench_fuzz.py's own logic: mutations are reproducible from the seed and do what
they say, and the blame check counts a crash pinned on the wrong file (or lost) against target."""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path

import pytest

from benchmarks import bench_fuzz as fuzz
from tests.conftest import CORPUS


def test_a_file_is_reproducible_from_seed_and_number() -> None:
    originals = fuzz.load_corpus(CORPUS)
    first = fuzz.make_file(7, 42, originals)
    assert fuzz.make_file(7, 42, originals) == first
    assert fuzz.make_file(8, 42, originals)[1] != first[1]
    assert first[3].startswith("seed 7, file 42: ")


def test_pdf_object_mutations_change_the_objects() -> None:
    data = (CORPUS / "small-table.pdf").read_bytes()
    objects = len(fuzz.pdf_objects(data))
    rng = random.Random(1)
    assert len(fuzz.pdf_objects(fuzz.pdf_delete_object(data, rng))) < objects
    assert len(fuzz.pdf_objects(fuzz.pdf_duplicate_object(data, rng))) == objects + 1


def test_a_corrupted_zip_member_keeps_a_valid_container() -> None:
    data = (CORPUS / "test_open2.docx").read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        before = {i.filename: zf.read(i) for i in zf.infolist()}
    rng = random.Random(3)
    changed = 0
    for _ in range(20):
        out = fuzz.zip_member(data, rng)
        with zipfile.ZipFile(io.BytesIO(out)) as zf:
            after = {i.filename: zf.read(i) for i in zf.infolist()}
        changed += after != before
    assert changed >= 15  # (a member may be 'changed' into itself, e.g. truncated at its end)


def test_blame_on_the_wrong_file_or_a_lost_file_counts_against_target(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a.pdf", "b.pdf", "c.fb2", "d.md"):
        (tmp_path / name).write_bytes(b"x")
    alone = {"a.pdf": "ok", "c.fb2": "crashed"}  # a.pdf was blamed for another file's crash
    monkeypatch.setattr(fuzz, "parse_alone", lambda path, timeout: alone[path.name])
    outcomes = {
        "a.pdf": ["failed", "the reader crashed on this file (damaged or hostile content)"],
        "b.pdf": ["indexed", None],
        "c.fb2": ["failed", "the reader crashed on this file (damaged or hostile content)"],
        # d.md: no outcome at all
    }
    recipes = {name: (tmp_path / name, f"recipe {name}") for name in ("a.pdf", "b.pdf", "c.fb2", "d.md")}
    figures = fuzz.Figures(seed=1)
    (tmp_path / "findings").mkdir()
    fuzz.classify(outcomes, recipes, tmp_path, figures, tmp_path / "findings", 5.0)
    assert figures.parsed == 1 and figures.parser_crashes == 1
    assert figures.unreported_parser_crashes == 2  # a.pdf (wrong file) and d.md (lost)
    kept = sorted(p.name for p in (tmp_path / "findings").iterdir() if not p.name.endswith(".txt"))
    assert kept == ["a.pdf", "c.fb2", "d.md"]
