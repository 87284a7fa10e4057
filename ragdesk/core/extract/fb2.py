"""FB2 e-books checked before MuPDF reads them: its FB2 reader (PyMuPDF 1.28) dies with SIGSEGV
on XML whose structure is broken -- a lone '<', a mismatched end tag, an unclosed tag at the end
(found by benchmarks/bench_fuzz.py: most damaged FB2 files crashed it; tests/data/fuzz/).

A parser process survives that (the indexer reports the file), but the user learns only that
"the reader crashed". Python's expat finds these errors first, in a fraction of the time, and
says where. Only the errors that crashed MuPDF every time are refused: a stray invalid byte in
the text, a wrong encoding name or a truncated end MuPDF often reads well, so those still go to it.
"""

from __future__ import annotations

import xml.parsers.expat as expat

from ragdesk.core.extract.formats import ExtractionError

# expat's errors after which MuPDF's FB2 reader crashed on every sample (see the docstring)
_CRASHING = {
    expat.errors.XML_ERROR_TAG_MISMATCH,
    expat.errors.XML_ERROR_UNCLOSED_TOKEN,
    expat.errors.XML_ERROR_SYNTAX,
    expat.errors.XML_ERROR_XML_DECL,
}


def check_fb2(data: bytes) -> None:
    """Raise ExtractionError when `data` is FB2 whose XML structure is broken in a way that
    crashes MuPDF's reader; anything else is left for MuPDF to judge."""
    parser = expat.ParserCreate()
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        if expat.ErrorString(exc.code) in _CRASHING:
            raise ExtractionError(f"damaged FB2 file ({expat.ErrorString(exc.code)} at line {exc.lineno},"
                                  f" column {exc.offset + 1})") from None
    except (ValueError, RecursionError):
        pass  # (an encoding expat does not know, ...): MuPDF judges
