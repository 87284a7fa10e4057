"""Small things a newcomer trips over (issue 17): a conversation's whole title in its tooltip, and
the library's details box, which shows the selected document and nothing else."""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, Qt

from ragdesk.gui.models import RecordRole


def test_a_cut_conversation_title_has_the_whole_title_in_its_tooltip(qtbot, unlocked) -> None:  # type: ignore[no-untyped-def]
    app = unlocked()
    window = app.window
    title = ("Which of the harbour committee's decisions about the lighthouse lamp were taken "
             "before the storm of 1887, and which after it?")
    app.services.store.create_conversation(title)
    with qtbot.waitSignal(window.library_loaded, timeout=10000):
        window.library_ctl.reload()
    view = window.chat.conversation_view
    index = window.chat.conversations.index(0)
    assert index.data() == title
    assert view.viewport().width() < view.fontMetrics().horizontalAdvance(title), "(it is cut)"
    tip = index.data(Qt.ItemDataRole.ToolTipRole)
    assert "before the storm of 1887, and which after it?" in tip


def _select(library, title: str) -> None:  # type: ignore[no-untyped-def]
    flags = QItemSelectionModel.SelectionFlag
    for row in range(library.filter.rowCount()):
        index = library.filter.index(row, 0)
        if library.filter.data(index, RecordRole).title == title:
            library.view.selectionModel().setCurrentIndex(index, flags.ClearAndSelect | flags.Rows)
            return
    raise AssertionError(f"{title} is not listed")


def test_the_details_box_never_shows_a_row_that_is_not_selected(qtbot, indexed) -> None:  # type: ignore[no-untyped-def]
    app = indexed()
    window = app.window
    library = window.library
    details = library.details

    _select(library, "github_sample")
    assert details.isVisible() and details.text().startswith("github_sample")

    library.search.setText("cython")  # the selected row is filtered out
    assert library.filter.rowCount() == 1
    assert not details.isVisible()
    library.search.clear()

    _select(library, "github_sample")
    with qtbot.waitSignal(window.library_loaded, timeout=10000):
        window.library_ctl.reload()  # (as after every indexing run): the selection stays
    assert [d.title for d in library.selected_documents()] == ["github_sample"]
    assert details.isVisible() and details.text().startswith("github_sample")

    library.view.clearSelection()
    assert not details.isVisible()

    _select(library, "github_sample")
    combo = library.status_filter
    combo.setCurrentIndex(combo.findData("problems"))  # only the legacy .doc is left
    assert not details.isVisible()
