"""After an upgrade, documents an older release cut into chunks are indexed again in the
background on unlock (issue 16, "vaults already indexed"); a long update is asked for first;
files no longer on disk keep their old chunks."""

from __future__ import annotations

import time
from pathlib import Path

from ragdesk.core.indexing.pipeline import outdated_documents
from ragdesk.core.records import INDEXED
from ragdesk.gui.controllers import outdated
from tests.conftest import PASSPHRASE


def _mark_outdated_and_relock(qtbot, app) -> None:  # type: ignore[no-untyped-def]
    """As an upgrade's migration does: everything indexed so far is of an older release."""
    store = app.services.store
    store.set_setting("chunks_outdated_before", time.time())
    assert len(outdated_documents(store)) == 3  # (the fourth, a legacy .doc, was never indexed)
    app.lock()
    qtbot.waitUntil(lambda: app.dialog is not None and app.dialog.isVisible(), timeout=10000)


def _unlock(qtbot, app) -> None:  # type: ignore[no-untyped-def]
    app.dialog.passphrase.setText(PASSPHRASE)
    with qtbot.waitSignal(app.unlocked, timeout=10000):
        app.dialog.unlock_button.click()


def test_documents_of_an_older_version_are_updated_in_the_background(qtbot, indexed,
                                                                     small_corpus: Path) -> None:
    app = indexed()
    _mark_outdated_and_relock(qtbot, app)
    (small_corpus / "github_sample.pdf").unlink()  # gone meanwhile: it keeps its old chunks
    _unlock(qtbot, app)
    window = app.window
    status = window.index_status
    finished: list = []
    window.index_finished.connect(finished.append)
    qtbot.waitUntil(lambda: window.indexing, timeout=10000)
    assert not window.notice.isVisible(), "two documents are updated without asking"
    assert status.note.isVisible()
    assert status.note.text() == "Updating 2 documents for better search (indexed by an older version)"

    # Search keeps working meanwhile (over the old chunks, then the new).
    assert app.services.retriever().search("pyximport", k=3)

    qtbot.waitUntil(lambda: bool(finished), timeout=30000)
    progress = finished[0]
    assert progress.indexed == 2 and not progress.cancelled
    qtbot.waitUntil(lambda: not app.pool.busy, timeout=10000)
    store = app.services.store
    left = outdated_documents(store)
    assert [Path(d.path).name for d in left] == ["github_sample.pdf"]
    kept = left[0]
    assert kept.status == INDEXED and kept.chunks > 0, "a missing file keeps what was indexed"
    assert not status.note.isVisible(), "the note goes with its run"


def test_a_long_update_is_asked_for_first(qtbot, indexed, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(outdated, "ASK_DOCUMENTS", 1)
    app = indexed()
    _mark_outdated_and_relock(qtbot, app)
    _unlock(qtbot, app)
    window = app.window
    notice = window.notice
    qtbot.waitUntil(notice.isVisible, timeout=10000)
    assert "3 documents were indexed by an older version" in notice.text.text()
    assert notice.accept_button.text() == "Update now" and notice.decline_button.text() == "Later"
    assert not window.indexing, "nothing starts before the user says so"
    window.chat.question.setPlainText("pyximport")  # the window works meanwhile
    assert window.chat.send_button.isEnabled()

    notice.decline_button.click()
    assert not notice.isVisible() and not window.indexing
    assert len(outdated_documents(app.services.store)) == 3

    # Asked again at the next unlock; this time the update runs.
    app.lock()
    qtbot.waitUntil(lambda: app.dialog is not None and app.dialog.isVisible(), timeout=10000)
    _unlock(qtbot, app)
    window = app.window
    qtbot.waitUntil(window.notice.isVisible, timeout=10000)
    with qtbot.waitSignal(window.index_finished, timeout=30000):
        window.notice.accept_button.click()
        assert window.index_status.note.text().startswith("Updating 3 documents")
    qtbot.waitUntil(lambda: not app.pool.busy, timeout=10000)
    assert outdated_documents(app.services.store) == []
