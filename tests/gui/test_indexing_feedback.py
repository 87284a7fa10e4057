"""What the status bar says while documents are indexed (issue 17, item 3): the file and page in
work, a rate and time left only once they mean something, collection counts that keep up with
the list, and a count of the files that could not be indexed that stays true after Cancel."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

from ragdesk.core.indexing import FileOutcome, Progress, Working
from ragdesk.core.indexing import pipeline as indexing
from ragdesk.core.records import FAILED, INDEXED, UNSUPPORTED
from ragdesk.gui.pace import Pace, describe_left
from ragdesk.gui.statusbar import in_work
from tests.conftest import CORPUS, PASSPHRASE
from tests.fakes.embedder import HashEmbedder
from tests.gui.conftest import SMALL_CORPUS


def _labels(window) -> list[tuple[float, str]]:  # type: ignore[no-untyped-def]
    """Every text the indexing label shows, with the seconds since this call."""
    began = time.monotonic()
    seen: list[tuple[float, str]] = []
    label = window.index_status.label
    original = label.setText

    def record(text: str) -> None:
        seen.append((time.monotonic() - began, text))
        original(text)

    label.setText = record
    return seen


def test_the_file_and_page_in_work_are_named(qtbot, unlocked, tmp_path: Path) -> None:
    folder = tmp_path / "manuals"
    folder.mkdir()
    for name in ("mupdf_explored.pdf", "cython.pdf"):
        shutil.copy(CORPUS / name, folder / name)
    app = unlocked(index_options={"workers": 1})  # a parser process, as in the app
    window = app.window
    seen = _labels(window)
    with qtbot.waitSignal(window.index_finished, timeout=120000):
        window.index_paths([str(folder)])
    texts = [t for _, t in seen]
    in_work = [t for t in texts if re.search(r"reading (mupdf_explored|cython)\.pdf, page \d+ of \d+", t)]
    assert in_work, texts
    # The page moves on while the big manual is read (285 pages).
    pages = {int(m.group(1)) for t in texts if (m := re.search(r"mupdf_explored\.pdf, page (\d+)", t))}
    assert len(pages) >= 2, texts
    assert texts[-1].startswith("Indexed: 2 new or changed")


class _SlowEmbedder(HashEmbedder):
    def embed(self, texts):  # type: ignore[no-untyped-def]
        time.sleep(0.1)
        return super().embed(texts)


def test_a_rate_and_time_left_only_once_they_mean_something(qtbot, unlocked, tmp_path: Path,
                                                             monkeypatch) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(70):
        (folder / f"note-{i:02d}.txt").write_text(f"Note {i}: the harbour lamp was checked on day {i}.\n",
                                                  encoding="utf-8")
    monkeypatch.setattr(indexing, "EMBED_BATCH_CHUNKS", 2)
    app = unlocked(embedder=_SlowEmbedder())
    window = app.window
    seen = _labels(window)
    with qtbot.waitSignal(window.index_finished, timeout=60000):
        window.index_paths([str(folder)])
    with_rate = [(at, t) for at, t in seen if "files/" in t]
    assert with_rate, seen
    assert all(at >= 3.0 for at, _ in with_rate), "no rate in a run's first seconds"
    first = with_rate[0][1]
    done = int(re.search(r"Indexing (\d+) of", first).group(1))  # type: ignore[union-attr]
    assert done >= 5, first
    assert any(" left" in t for _, t in with_rate)
    assert "under a second" not in " ".join(t for _, t in seen)


def test_collection_counts_keep_up_with_the_list(qtbot, unlocked, small_corpus: Path) -> None:
    app = unlocked()
    window = app.window
    library = window.library
    counts: list[tuple[int, str]] = []
    original = window.index_ctl._update

    def update_and_count(update) -> None:  # type: ignore[no-untyped-def]
        original(update)  # what the window shows after each update of the run
        counts.append((library.documents.rowCount(), library.collections.index(0).data()))

    window.index_ctl._update = update_and_count  # (handed to the worker when the run starts)
    with qtbot.waitSignal(window.index_finished, timeout=30000):
        window.index_paths([str(small_corpus)])
    assert counts
    for rows, text in counts:
        assert f"All documents  ({rows})" in text, (rows, text)


def test_failures_stay_counted_after_cancel(qtbot, indexed, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    app = indexed(embedder=_SlowEmbedder())
    window = app.window
    status = window.index_status
    assert status.problems_button.isVisible() and status.problems_button.text() == "1 could not be indexed"

    folder = tmp_path / "more"
    folder.mkdir()
    for i in range(3):  # legacy Word files: not supported, recorded with their reason
        shutil.copy(CORPUS / "test_open2.doc", folder / f"a-old-{i}.doc")  # (read first)
    for i in range(80):
        (folder / f"note-{i:02d}.txt").write_text(f"Note {i} about the harbour.\n", encoding="utf-8")
    monkeypatch.setattr(indexing, "EMBED_BATCH_CHUNKS", 2)
    with qtbot.waitSignal(window.index_finished, timeout=30000) as finished:
        window.index_paths([str(folder)])
        qtbot.waitUntil(lambda: status.problems_button.text() == "4 could not be indexed", timeout=10000)
        status.cancel_button.click()
    assert finished.args[0].cancelled
    qtbot.waitUntil(lambda: not app.pool.busy, timeout=10000)
    problems = [d for d in app.services.store.documents() if d.status in (FAILED, UNSUPPORTED)]
    assert len(problems) == 4
    assert status.label.text().startswith("Stopped:")
    assert status.problems_button.isVisible() and status.problems_button.text() == "4 could not be indexed"
    status.problems_button.click()
    assert window.library.filter.rowCount() == 4


def test_the_problem_count_is_shown_after_unlock(qtbot, indexed) -> None:  # type: ignore[no-untyped-def]
    """What the vault holds, not one run's: the count is there again after a lock."""
    app = indexed()
    app.lock()
    qtbot.waitUntil(lambda: app.dialog is not None and app.dialog.isVisible(), timeout=10000)
    app.dialog.passphrase.setText(PASSPHRASE)
    with qtbot.waitSignal(app.unlocked, timeout=10000):
        app.dialog.unlock_button.click()
    window = app.window
    qtbot.waitUntil(lambda: window.index_status.problems_button.isVisible(), timeout=10000)
    assert window.index_status.problems_button.text() == "1 could not be indexed"
    assert len(SMALL_CORPUS) == window.library.documents.rowCount()


def test_progress_never_draws_over_a_status_bar_message(qtbot, unlocked) -> None:  # type: ignore[no-untyped-def]
    """Seen at 1366x768: the mouse still on "Add folder" after the click kept the button's tip in
    the status bar, and every progress tick showed the indexing line over it, both texts drawn
    across each other. The line waits until the message is gone, then shows what it has."""
    window = unlocked().window
    status, bar = window.index_status, window.statusBar()
    bar.showMessage("Add a folder; it is watched for changes (Ctrl+Shift+O)")
    p = Progress(files_total=28, files_done=3)
    status.running(p)
    assert not status.isVisible(), "the indexing line was shown over the message"
    p.files_done = 4
    status.running(p)
    assert not status.isVisible()
    bar.clearMessage()
    qtbot.waitUntil(status.isVisible, timeout=2000)
    assert status.label.text().startswith("Indexing 4 of 28 files")
    status.reset()
    bar.showMessage("a tip")
    bar.clearMessage()
    assert not status.isVisible(), "nothing to show once the run is over and reset"


# --- the pace, on its own ----------------------------------------------------------------------


def _progress(elapsed: float, done: int, total: int) -> Progress:
    p = Progress(files_total=total, files_done=done)
    p.started = time.monotonic() - elapsed
    return p


def _read(n: int) -> list[FileOutcome]:
    return [FileOutcome(f"/f{i}", INDEXED) for i in range(n)]


def test_pace_says_nothing_at_the_start_of_a_run() -> None:
    pace = Pace()
    # 20 unchanged files counted in 10 ms, then one read: the old "170 files/s" moment.
    unchanged = [FileOutcome(f"/u{i}", "unchanged") for i in range(20)]
    assert pace.update(_progress(0.01, 20, 28), unchanged) is None
    assert pace.update(_progress(0.2, 21, 28), _read(1)) is None
    assert pace.update(_progress(2.5, 26, 28), _read(5)) is None  # still the first seconds


def test_pace_waits_for_a_steady_rate_and_then_keeps_it() -> None:
    pace = Pace()
    # Nothing for 6 s (the model loads), then a file a second: the run's rate and the last
    # stretch's disagree at first.
    t, done = 6.0, 0
    pace.update(_progress(t, done, 100), [])
    shown_at = None
    while t < 40:
        t += 1.0
        done += 1
        if pace.update(_progress(t, done, 100), _read(1)) is not None and shown_at is None:
            shown_at = t
    assert shown_at is not None and shown_at >= 10
    estimate = pace.estimate()
    assert estimate is not None and 0.6 < estimate.rate < 1.2
    assert estimate.left is not None and 50 < estimate.left < 110
    assert describe_left(estimate.left).startswith("about")
    assert describe_left(0.4) == "a few seconds left"


def test_what_is_in_work_reads_plainly() -> None:
    p = Progress(files_total=3)
    scan, big = Working("/docs/scan.pdf", 2, 4, "ocr", 3.0), Working("/docs/big.pdf", 65, 285, "layout", 12.0)
    p.in_work = (scan, big)  # the longest in work first
    assert in_work(p) == ("reading big.pdf, page 65 of 285 and 1 more", ["/docs/big.pdf", "/docs/scan.pdf"])
    p.in_work = (scan,)
    assert in_work(p)[0] == "reading scan.pdf, page 2 of 4 (OCR)"
    p.in_work = ()
    p.current = "/docs/notes.md"  # read, its passages being added
    assert in_work(p)[0] == "adding notes.md"
    p.done = True
    assert in_work(p) == ("", [])


def test_the_problems_button_shows_them_wherever_they_are(qtbot, indexed) -> None:  # type: ignore[no-untyped-def]
    app = indexed()
    window = app.window
    library = window.library
    with qtbot.waitSignal(window.library_loaded, timeout=10000):
        window.library_ctl.new_collection("Letters")  # empty: the failure is in the default one
    row = next(r for r in range(library.collections.rowCount())
               if "Letters" in library.collections.index(r).data())
    library.collection_view.setCurrentIndex(library.collections.index(row))
    assert library.filter.rowCount() == 0
    window.index_status.problems_button.click()
    assert library.current_collection() is None  # All documents
    assert library.filter.rowCount() == 1
    assert library.filter.index(0, 1).data() == "test_open2.doc"
