"""core/extract/fb2.py: FB2 whose XML structure is broken is refused before MuPDF's reader
(which crashes on it); damage MuPDF reads well is left to MuPDF."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragdesk.core import extract
from ragdesk.core.extract.fb2 import check_fb2
from tests.conftest import CORPUS

GOOD = (CORPUS / "test_open2.fb2").read_bytes()


def test_a_good_fb2_passes_and_is_read() -> None:
    check_fb2(GOOD)
    assert extract.extract(Path("book.fb2"), data=GOOD).pages


@pytest.mark.parametrize(("damage", "says"), [
    (GOOD.replace(b"</title-info>", b"</titleinfo>", 1), "mismatched tag at line"),
    (GOOD + b"<", "unclosed token"),
    (b"<", "unclosed token at line 1, column 1"),
])
def test_broken_structure_is_refused_with_where(damage: bytes, says: str) -> None:
    with pytest.raises(extract.ExtractionError, match="damaged FB2 file") as caught:
        extract.extract(Path("book.fb2"), data=damage)
    assert says in str(caught.value)


@pytest.mark.parametrize("damage", [
    GOOD.replace(b"<body>", b"<body>\xc3(", 1),  # an invalid byte in the text
    GOOD.replace(b"</FictionBook>", b""),  # cut before the last end tag
])
def test_damage_mupdf_reads_is_left_to_it(damage: bytes) -> None:
    check_fb2(damage)
    assert extract.extract(Path("book.fb2"), data=damage).pages
