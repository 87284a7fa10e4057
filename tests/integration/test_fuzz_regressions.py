"""Files the parser fuzzer found (benchmarks/bench_fuzz.py), minimised, under tests/data/fuzz/.

Each is indexed by the real Indexer in a child process (so that a crash fails the test instead
of ending the test run), alone and beside a good file: the indexing process must survive, the
hostile file must be that file's failure with a reason, and the good file must be indexed.

* lone-angle-bracket.fb2 -- the single byte '<' named .fb2: PyMuPDF 1.28.2 (MuPDF's FB2 reader)
  dies with SIGSEGV on it. Found as a truncated test_open2.fb2 (seed 1, file 33); alone it was
  parsed in the indexing process itself and took it down (fixed in f836845). Now refused before
  MuPDF sees it: expat finds the unclosed tag (core/extract/fb2.py), the reason says where.
* end-tag-start.fb2 -- the two bytes '</': also SIGSEGV in MuPDF's FB2 reader, but expat calls it
  an "invalid token", which MuPDF reads well in other files, so it still reaches MuPDF: the parser
  process dies and the indexer must pin that on this file alone (minimised from seed 2, file 9).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CORPUS, REPO

DATA = Path(__file__).resolve().parents[1] / "data" / "fuzz"

INDEX = """
import json, sys
from pathlib import Path
from ragdesk.core import extract
from ragdesk.core.indexing import Indexer, IndexOptions
from ragdesk.core.store.keys import KdfParams
from ragdesk.core.store.open import open_store
from tests.fakes.embedder import HashEmbedder

kdf = KdfParams.fresh(memory_kib=8192, iterations=1, lanes=1)
store = open_store(Path(sys.argv[1]), "fuzz", create=True, kdf=kdf)
options = IndexOptions(limits=extract.Limits(ocr=False), parse_timeout=60)
progress = list(Indexer(store, HashEmbedder(), options).run([Path(p) for p in sys.argv[2:]]))
print(json.dumps({Path(o.path).name: [o.status, o.reason] for o in progress[-1].outcomes}))
store.lock()
"""


def index(home: Path, *paths: Path) -> dict[str, list[str | None]]:
    proc = subprocess.run([sys.executable, "-c", INDEX, str(home), *map(str, paths)], cwd=REPO,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"the indexing process ended with {proc.returncode}: {proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("name", "reason"), [
    ("lone-angle-bracket.fb2", "damaged FB2 file (unclosed token at line 1"),
    ("end-tag-start.fb2", "crashed"),  # (PyMuPDF 1.28.2; a later one may refuse it instead)
])
def test_a_file_that_crashes_its_reader_is_its_own_failure(name: str, reason: str, tmp_path: Path) -> None:
    alone = index(tmp_path / "alone", DATA / name)
    assert alone[name][0] == "failed" and reason in (alone[name][1] or ""), alone

    folder = tmp_path / "batch"
    folder.mkdir()
    shutil.copy(DATA / name, folder / name)
    shutil.copy(CORPUS / "small-table.pdf", folder / "small-table.pdf")
    both = index(tmp_path / "both", folder)
    assert both[name][0] == "failed" and reason in (both[name][1] or ""), both
    assert both["small-table.pdf"][0] == "indexed", both
