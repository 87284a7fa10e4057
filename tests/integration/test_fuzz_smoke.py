"""The fuzz smoke: a seeded ~20 s run of benchmarks/bench_fuzz.py in `make test`.

Mutated corpus files (PDF objects duplicated and deleted, zip members corrupted, encodings
broken, bytes flipped, files truncated) go through the real Indexer and its parser processes.
The two targets must hold: the indexing process never dies, and no parser crash is pinned on a
file that does not cause it (or lost). The longer run's figures are in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.mark.fuzz
@pytest.mark.timeout(180)
def test_fuzz_smoke_seeded_20s(tmp_path: Path) -> None:
    figures_file = tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_fuzz.py"), "--seconds", "20", "--seed", "1",
         "--json", str(figures_file), "--findings", str(tmp_path / "findings")],
        cwd=REPO, capture_output=True, text=True, timeout=170,
    )
    assert figures_file.exists(), proc.stdout + proc.stderr
    figures = json.loads(figures_file.read_text())
    report = proc.stdout[-3000:]
    assert figures["indexing_process_crashes"] == 0, report
    assert figures["unreported_parser_crashes"] == 0, report
    assert figures["tried"] >= 16, report  # at least one batch of mutated files went through
    assert figures["parsed"] > 0 and figures["refused"] > 0, report  # both outcomes were exercised
    assert figures["tried"] == (figures["parsed"] + figures["refused"] + figures["timed_out"]
                                + figures["parser_crashes"] + figures["unreported_parser_crashes"]), report
    assert proc.returncode == 0, report
