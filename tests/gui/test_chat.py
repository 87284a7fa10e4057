"""Asking with the fake Ollama: the answer streams in, citations open the cited page with the
passage highlighted; Esc stops; document text never becomes live markup."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QTextCursor

from ragdesk.gui.preview import PreviewTarget
from ragdesk.gui.render import TranscriptEntry

QUESTION = "Where was the section about compiling with pyximport moved?"


def _ask(qtbot, window, question: str = QUESTION, *, keys: bool = True):  # type: ignore[no-untyped-def]
    window.chat.question.setPlainText(question)
    window.activateWindow()
    window.chat.question.setFocus()
    if keys:
        qtbot.keyClick(window.chat.question, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    else:
        window.act_send.trigger()


def _anchor_point(browser, href: str) -> QPoint:  # type: ignore[no-untyped-def]
    """Where the link `href` is drawn in the transcript's viewport."""
    doc = browser.document()
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            if fragment.charFormat().isAnchor() and fragment.charFormat().anchorHref() == href:
                cursor = QTextCursor(doc)
                cursor.setPosition(fragment.position() + 1)
                return browser.cursorRect(cursor).center()
            it += 1
        block = block.next()
    raise AssertionError(f"no link {href} in the transcript")


def test_ask_streams_a_cited_answer(qtbot, indexed, fake_ollama) -> None:
    fake_ollama.fault("slow_every_token", 0.01)
    app = indexed()
    window = app.window
    app.services.store.set_setting("ollama_host", fake_ollama.host)
    transcript = window.chat.transcript
    snapshots: list[str] = []
    window.chat_ctl.stream_timer.timeout.connect(lambda: snapshots.append(transcript.toPlainText()))

    with qtbot.waitSignal(window.answer_finished, timeout=20000) as done:
        _ask(qtbot, window)  # Ctrl+Enter
        assert window.answering and not window.chat.send_button.isEnabled()
        assert window.chat.stop_button.isEnabled()
    event = done.args[0]
    assert event.mode == "llm" and event.status == "complete" and event.citations
    answer_words = event.answer.split()
    partial = [s for s in snapshots if len(s.split()) > 0 and "▍" in s]
    assert len(partial) >= 3, "the answer appeared piece by piece"
    assert len(set(partial)) >= 3
    text = transcript.toPlainText()
    assert QUESTION in text and " ".join(answer_words[:6]) in " ".join(text.split())
    assert "▍" not in text
    html = transcript.toHtml()
    links = set(re.findall(r'href="([^"]+)"', html))
    assert links and all(link.startswith("cite:") for link in links)
    assert "cite:1/1" in links

    sources = window.sources.model
    assert sources.rowCount() >= 2
    assert any(item.cited for item in sources.items())
    assert window.chat.conversations.rowCount() == 1
    qtbot.waitUntil(lambda: not window.answering, timeout=5000)
    assert window.chat.regenerate_button.isEnabled() and window.chat.copy_button.isEnabled()
    stored = app.services.store.messages(event.conversation_id)
    assert [m.role for m in stored] == ["user", "assistant"] and stored[1].content == event.answer


def test_a_citation_opens_the_cited_page_highlighted(qtbot, indexed, fake_ollama) -> None:
    app = indexed()
    window = app.window
    app.services.store.set_setting("ollama_host", fake_ollama.host)
    with qtbot.waitSignal(window.answer_finished, timeout=20000) as done:
        _ask(qtbot, window, keys=False)
    first = done.args[0].citations[0]
    assert first["path"].endswith("cython.pdf") and first["page"] > 1

    transcript = window.chat.transcript
    point = _anchor_point(transcript, "cite:1/1")
    qtbot.mouseClick(transcript.viewport(), Qt.MouseButton.LeftButton, pos=point)
    qtbot.waitUntil(lambda: window.preview is not None, timeout=5000)
    preview = window.preview
    qtbot.waitUntil(lambda: preview.rendered is not None, timeout=10000)
    assert preview.isVisible() and preview.stack.currentWidget() is preview.page_view
    rendered = preview.rendered
    assert rendered.index == first["page"] - 1 and preview.page_spin.value() == first["page"]
    assert not preview.page_view.label.pixmap().isNull()
    assert rendered.highlights, "the cited passage is highlighted on the page"
    assert preview.page_count_label.text() == "of 11"
    assert "Cited passage [1]" in preview.passage_title.text()

    # Page navigation.
    with qtbot.waitSignal(preview.page_rendered, timeout=10000) as page:
        preview.next_button.click()
    assert page.args[0] == first["page"]
    with qtbot.waitSignal(preview.page_rendered, timeout=10000):
        preview.passage_button.click()
    assert preview.rendered.index == first["page"] - 1


def test_a_text_document_preview_marks_the_passage(qtbot, indexed) -> None:
    app = indexed()
    window = app.window
    store = app.services.store
    doc = next(d for d in store.documents() if d.path.endswith(".md"))
    chunk = store.document_chunks(doc.id)[1]
    window.open_preview(PreviewTarget(doc.id, chunk.page_start, chunk.text, chunk.char_start, chunk.char_end,
                                      doc.title, 2))
    preview = window.preview
    qtbot.waitUntil(lambda: preview.stack.currentWidget() is preview.text_view, timeout=10000)
    selections = preview.text_view.extraSelections()
    assert len(selections) == 1
    marked = selections[0].cursor.selectedText().replace("\u2029", "\n")
    assert marked == chunk.text or chunk.text.split()[0] in marked


def test_escape_stops_the_answer(qtbot, indexed, fake_ollama) -> None:
    fake_ollama.fault("slow_every_token", 0.3)
    app = indexed()
    window = app.window
    app.services.store.set_setting("ollama_host", fake_ollama.host)
    with qtbot.waitSignal(window.answer_finished, timeout=20000) as done:
        _ask(qtbot, window, keys=False)
        chats = window.chat_ctl
        qtbot.waitUntil(lambda: chats.streaming is not None and bool(chats.streaming.text), timeout=10000)
        qtbot.keyClick(window.chat.question, Qt.Key.Key_Escape)
    event = done.args[0]
    assert event.status == "stopped" and event.answer
    assert "stopped" in window.chat.transcript.toPlainText()
    qtbot.waitUntil(lambda: not window.answering, timeout=5000)
    assert window.chat.send_button.isEnabled() and not window.chat.stop_button.isEnabled()


def test_document_text_never_becomes_live_markup(qtbot, unlocked, tmp_path: Path, fake_ollama) -> None:
    from tests.gui.conftest import drop

    folder = tmp_path / "hostile"
    folder.mkdir()
    (folder / "notes.txt").write_text(
        "Lighthouse keepers <img src=\"file:///etc/hostname\"> and <a href=\"http://evil.example\">click</a> "
        "![pixel](file:///etc/hostname) [more](http://evil.example) <script>alert(1)</script> "
        "keep the lamp lit.\n",
        encoding="utf-8")
    app = unlocked()
    window = app.window
    app.services.store.set_setting("ollama_host", fake_ollama.host)
    with qtbot.waitSignal(window.index_finished, timeout=20000):
        drop(window, [folder])
    # A model quoting the document verbatim (the fake strips tags from what it quotes itself).
    hostile = ('Keepers keep the lamp lit [1]. <img src="file:///etc/hostname"> '
               '<a href="http://evil.example">click</a> ![p](file:///etc/hostname) '
               '[more](http://evil.example) '
               '<http://evil.example> www.evil.example')
    fake_ollama.script(hostile)
    with qtbot.waitSignal(window.answer_finished, timeout=20000):
        _ask(qtbot, window, "What do lighthouse keepers keep?", keys=False)
    transcript = window.chat.transcript
    html = transcript.toHtml()
    assert "<img" not in html and "<script" not in html
    links = set(re.findall(r'href="([^"]+)"', html))
    # Citations are the only links, with RagDesk's own marks on unsupported sentences (issue 22).
    assert {link for link in links if not re.fullmatch(r"check:1/\d+", link)} == {"cite:1/1"}
    shown = transcript.toPlainText()
    for piece in ('<img src="file:///etc/hostname">', '<a href="http://evil.example">click</a>',
                  "![p](file:///etc/hostname)", "[more](http://evil.example)"):
        assert piece in shown, f"{piece} is shown as text"
    # The sources pane and tooltips escape it too.
    index = window.sources.model.index(0)
    assert "&lt;img" in window.sources.model.data(index, Qt.ItemDataRole.ToolTipRole)


def test_earlier_conversations_come_back_with_their_citations(qtbot, indexed, fake_ollama) -> None:
    app = indexed()
    window = app.window
    app.services.store.set_setting("ollama_host", fake_ollama.host)
    with qtbot.waitSignal(window.answer_finished, timeout=20000) as done:
        _ask(qtbot, window, keys=False)
    qtbot.waitUntil(lambda: not window.answering)
    first_answer = done.args[0].answer
    window.act_new_chat.trigger()
    assert window.chat.transcript.entries == [] and window.sources.model.rowCount() == 0

    view = window.chat.conversation_view
    view.clicked.emit(window.chat.conversations.index(0))
    assert [e.role for e in window.chat.transcript.entries] == ["user", "assistant"]
    assert " ".join(first_answer.split()[:5]) in " ".join(window.chat.transcript.toPlainText().split())
    assert "cite:1/1" in window.chat.transcript.toHtml()
    assert window.sources.model.rowCount() >= 1 and all(s.cited for s in window.sources.model.items())
    point = _anchor_point(window.chat.transcript, "cite:1/1")
    qtbot.mouseClick(window.chat.transcript.viewport(), Qt.MouseButton.LeftButton, pos=point)
    qtbot.waitUntil(lambda: window.preview is not None and window.preview.rendered is not None, timeout=10000)


def test_while_the_model_thinks_the_transcript_says_so(qtbot, indexed, fake_ollama) -> None:
    """Issue 17, item 8: between the sources and the first token, the transcript says how many
    sources were found and which model is being waited for; Esc still stops."""
    fake_ollama.fault("slow_first_token", 1.5)
    app = indexed()
    window = app.window
    app.services.store.set_setting("ollama_host", fake_ollama.host)
    with qtbot.waitSignal(window.ollama_checked, timeout=10000):
        window.check_ollama()
    transcript = window.chat.transcript

    with qtbot.waitSignal(window.answer_finished, timeout=20000) as done:
        _ask(qtbot, window, keys=False)
        qtbot.waitUntil(lambda: "waiting for llama3.2:3b" in transcript.toPlainText(), timeout=10000)
        found = window.sources.model.rowCount()
        assert found >= 2
        text = transcript.toPlainText()
        assert f"Found {found} sources · waiting for llama3.2:3b…" in text
        streaming = window.chat_ctl.streaming
        assert "▍" not in text and streaming is not None and not streaming.text
    assert done.args[0].mode == "llm"
    assert "waiting for" not in transcript.toPlainText()
    qtbot.waitUntil(lambda: not window.answering, timeout=5000)

    with qtbot.waitSignal(window.answer_finished, timeout=20000) as done:
        _ask(qtbot, window, "What is Cython?", keys=False)
        qtbot.waitUntil(lambda: "waiting for llama3.2:3b" in transcript.toPlainText(), timeout=10000)
        qtbot.keyClick(window.chat.question, Qt.Key.Key_Escape)
    assert done.args[0].status == "stopped"
    assert "waiting for" not in transcript.toPlainText() and "stopped" in transcript.toPlainText()


def _click_in_question(qtbot, transcript, n: int) -> None:  # type: ignore[no-untyped-def]
    """Click into the text of the n-th question (0-based) of the transcript."""
    block, seen = transcript.document().begin(), -1
    while block.isValid():
        if block.blockFormat().headingLevel() == 4 and block.text() == "You":
            seen += 1
            if seen == n:
                cursor = QTextCursor(block.next())
                cursor.movePosition(QTextCursor.MoveOperation.Right)
                point = transcript.cursorRect(cursor).center()
                qtbot.mouseClick(transcript.viewport(), Qt.MouseButton.LeftButton, pos=point)
                return
        block = block.next()
    raise AssertionError(f"no question {n}")


def test_sources_follow_the_answer_in_focus(qtbot, indexed, fake_ollama) -> None:
    """Issue 17, item 6: an earlier answer selected shows its own sources."""
    app = indexed()
    window = app.window
    app.services.store.set_setting("ollama_host", fake_ollama.host)
    with qtbot.waitSignal(window.answer_finished, timeout=20000) as first:
        _ask(qtbot, window, keys=False)
    qtbot.waitUntil(lambda: not window.answering)
    earlier = [(i.chunk_id, i.cited) for i in window.sources.model.items()]
    with qtbot.waitSignal(window.answer_finished, timeout=20000) as second:
        _ask(qtbot, window, "What does the GitHub sample document show?", keys=False)
    qtbot.waitUntil(lambda: not window.answering)
    first_chunks = {c["chunk_id"] for c in first.args[0].citations}
    second_chunks = {c["chunk_id"] for c in second.args[0].citations}
    assert first_chunks and second_chunks and first_chunks != second_chunks
    model = window.sources.model
    latest = [(i.chunk_id, i.cited) for i in model.items()]
    assert {c for c, cited in latest if cited} == second_chunks

    transcript = window.chat.transcript
    window.show()
    _click_in_question(qtbot, transcript, 0)
    assert [(i.chunk_id, i.cited) for i in model.items()] == earlier, "all it found, what it cited marked"
    assert {c for c, cited in earlier if cited} == first_chunks
    # Moving the cursor (as the keyboard does) into the latest answer brings its sources back.
    cursor = transcript.textCursor()
    cursor.movePosition(QTextCursor.MoveOperation.End)
    transcript.setTextCursor(cursor)
    assert [(i.chunk_id, i.cited) for i in model.items()] == latest

    # Read back from the vault, each answer still shows its own.
    window.act_new_chat.trigger()
    window.chat.conversation_view.clicked.emit(window.chat.conversations.index(0))
    assert {i.chunk_id for i in model.items()} == second_chunks
    _click_in_question(qtbot, transcript, 0)
    assert {i.chunk_id for i in model.items()} == first_chunks


def test_the_last_conversation_is_reopened_after_unlock_and_restart(qtbot, indexed, make_app,
                                                                   fake_ollama) -> None:
    from tests.conftest import PASSPHRASE

    app = indexed()
    window = app.window
    app.services.store.set_setting("ollama_host", fake_ollama.host)
    with qtbot.waitSignal(window.answer_finished, timeout=20000) as done:
        _ask(qtbot, window, keys=False)
    qtbot.waitUntil(lambda: not window.answering and not app.pool.busy)
    conversation = done.args[0].conversation_id

    def unlock(a) -> None:  # type: ignore[no-untyped-def]
        a.dialog.passphrase.setText(PASSPHRASE)
        with qtbot.waitSignal(a.unlocked, timeout=10000):
            a.dialog.unlock_button.click()
        qtbot.waitUntil(lambda: not a.pool.busy, timeout=10000)

    with qtbot.waitSignal(app.locked, timeout=10000):
        app.lock()
    assert window.chat.transcript.entries == []
    unlock(app)
    assert window.chat_ctl.conversation_id == conversation
    assert [e.role for e in window.chat.transcript.entries] == ["user", "assistant"]
    assert QUESTION in window.chat.transcript.toPlainText() and window.sources.model.rowCount() >= 1
    current = window.chat.conversation_view.currentIndex()
    assert current.isValid() and window.chat.conversations.data(current, Qt.ItemDataRole.DisplayRole)

    with qtbot.waitSignal(app.locked, timeout=10000):
        app.lock()
    app.shutdown()
    again = make_app()
    again.start()
    unlock(again)
    assert again.window.chat_ctl.conversation_id == conversation
    assert QUESTION in again.window.chat.transcript.toPlainText()

    # Deleted: nothing is opened.
    again.services.store.delete_conversation(conversation)
    with qtbot.waitSignal(again.locked, timeout=10000):
        again.lock()
    unlock(again)
    assert again.window.chat_ctl.conversation_id is None and again.window.chat.transcript.entries == []



def _long_conversation(qtbot, width: int):  # type: ignore[no-untyped-def]
    """A transcript `width` pixels wide, 250 high, showing a question and an answer longer than it."""
    from ragdesk.gui.chatview import Transcript

    view = Transcript()
    qtbot.addWidget(view)
    view.resize(width, 250)
    view.show()
    long_answer = " ".join(f"Sentence {i} of an earlier answer." for i in range(120))
    view.set_entries([TranscriptEntry(0, "user", "An earlier question?"),
                      TranscriptEntry(1, "assistant", long_answer, mode="extractive")])
    return view


def test_a_new_answer_is_followed_from_its_start_after_a_long_conversation(qtbot) -> None:  # type: ignore[no-untyped-def]
    """Seen at 1024x700: after Regenerate in a conversation longer than the window, the view
    jumped to the conversation's top (the document is replaced when an answer begins) and the
    new answer streamed in out of sight below."""
    view = _long_conversation(qtbot, 500)
    view.verticalScrollBar().setValue(0)  # the user scrolled up to read it again
    view.begin_stream(TranscriptEntry(2, "assistant", "", status="streaming", waiting="searching…"))
    bar = view.verticalScrollBar()
    assert bar.maximum() > 0 and bar.value() >= bar.maximum() - 4
    view.update_stream(TranscriptEntry(2, "assistant", "The new answer begins here.", status="streaming"))
    assert bar.value() >= bar.maximum() - 4, "the streaming answer is followed"


def test_a_conversation_read_at_its_end_stays_there_when_the_window_narrows(qtbot) -> None:  # type: ignore[no-untyped-def]
    """Seen at 1024x700: a conversation reopened at start-up was rendered before the window had
    its size, and its last lines were cut off below the view."""
    view = _long_conversation(qtbot, 700)
    bar = view.verticalScrollBar()
    before = bar.maximum()
    view.resize(350, 250)  # more lines: the conversation grows below the view
    qtbot.waitUntil(lambda: bar.maximum() > before, timeout=2000)
    assert bar.value() >= bar.maximum() - 4
    bar.setValue(0)  # one read elsewhere stays where it is
    view.resize(300, 250)
    assert bar.value() == 0
