"""Answers checked against their sources, as the window shows them (issue 22): sentences the
sources do not support, or that cite none, are underlined with dots and say why in a tooltip,
with the closest passage a click away; the footer counts the supported ones; Settings hides the
marks (the check still runs, the footer stays); a reopened conversation shows them again."""

from __future__ import annotations

import re
from dataclasses import replace

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QTextCharFormat, QTextCursor

from ragdesk.gui.render import TranscriptEntry, grounding_footer, grounding_marks
from ragdesk.gui.settings import SettingsDialog, SettingsValues

QUESTION = "Where was the section about compiling with pyximport moved?"
INVENTED = "The section was moved in 1997 to Antarctica"
SCRIPT = f"{{source:1}} [1]. {INVENTED} [1]. Penguins maintain the reference guide."
DOTTED = QTextCharFormat.UnderlineStyle.DotLine


def _ask(qtbot, window, fake_ollama):  # type: ignore[no-untyped-def]
    fake_ollama.script(SCRIPT)
    window.chat.question.setPlainText(QUESTION)
    with qtbot.waitSignal(window.answer_finished, timeout=20000) as done:
        window.act_send.trigger()
    qtbot.waitUntil(lambda: not window.answering, timeout=5000)
    return done.args[0]


def _format_of(browser, text: str) -> QTextCharFormat:  # type: ignore[no-untyped-def]
    """The character format in the middle of `text` as the transcript shows it."""
    found = browser.document().find(text)
    assert not found.isNull(), f"{text!r} is not in the transcript"
    cursor = QTextCursor(browser.document())
    cursor.setPosition((found.selectionStart() + found.selectionEnd()) // 2)
    return cursor.charFormat()


def _point_of(browser, text: str) -> QPoint:  # type: ignore[no-untyped-def]
    found = browser.document().find(text)
    cursor = QTextCursor(browser.document())
    cursor.setPosition(found.selectionStart() + 3)
    return browser.cursorRect(cursor).center()


def _dotted(browser) -> list[str]:  # type: ignore[no-untyped-def]
    out = []
    block = browser.document().begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            if fragment.charFormat().underlineStyle() == DOTTED:
                out.append(fragment.text())
            it += 1
        block = block.next()
    return out


def test_unsupported_sentences_are_marked_with_why(qtbot, indexed, fake_ollama) -> None:
    app = indexed()
    window = app.window
    app.services.store.set_setting("ollama_host", fake_ollama.host)
    event = _ask(qtbot, window, fake_ollama)
    verdicts = [s["verdict"] for s in event.grounding["sentences"]]
    assert verdicts[-2:] == ["not supported", "uncited"] and "supported" in verdicts

    transcript = window.chat.transcript
    text = transcript.toPlainText()
    assert re.search(r"⚠ \d of 3 sentences supported by their sources", text)
    invented = _format_of(transcript, INVENTED)
    assert invented.underlineStyle() == DOTTED
    tip = invented.toolTip()
    assert "Not supported by its sources" in tip and "1997" in tip and "Antarctica" in tip
    assert "Closest passage: [1]" in tip
    uncited = _format_of(transcript, "Penguins maintain")
    assert uncited.underlineStyle() == DOTTED and "Uncited claim" in uncited.toolTip()
    assert "Sources" not in "".join(_dotted(transcript))  # the question and headings are not marked
    assert len(_dotted(transcript)) >= 2 and all("[1]" not in t for t in _dotted(transcript))

    # A click on the marked sentence opens the passage that came closest.
    qtbot.mouseClick(transcript.viewport(), Qt.MouseButton.LeftButton, pos=_point_of(transcript, INVENTED))
    qtbot.waitUntil(lambda: window.preview is not None, timeout=5000)
    assert window.preview.target.document_id == event.citations[0]["document_id"]


def test_settings_hide_the_marks_and_a_reopened_answer_shows_them(qtbot, indexed, fake_ollama) -> None:
    app = indexed()
    window = app.window
    app.services.store.set_setting("ollama_host", fake_ollama.host)
    event = _ask(qtbot, window, fake_ollama)
    transcript = window.chat.transcript
    assert _dotted(transcript)

    values = window.settings_ctl.reload()
    with qtbot.waitSignal(window.settings_saved, timeout=5000):
        window.settings_ctl.save(replace(values, grounding_marks=False))
    assert not _dotted(transcript)
    assert "sentences supported by their sources" in transcript.toPlainText()  # the footer stays
    assert app.services.store.get_setting("grounding_marks") is False
    stored = app.services.store.messages(event.conversation_id)[-1]
    assert stored.meta["grounding"]["sentences"][-1]["verdict"] == "uncited"  # still checked

    with qtbot.waitSignal(window.settings_saved, timeout=5000):
        window.settings_ctl.save(replace(values, grounding_marks=True))
    window.chat_ctl.new_conversation()
    assert not _dotted(transcript)
    window.chat_ctl.open_conversation(event.conversation_id)
    assert _format_of(transcript, INVENTED).underlineStyle() == DOTTED


def test_the_settings_dialog_has_the_switch(qtbot, unlocked) -> None:
    app = unlocked()
    dialog = SettingsDialog(SettingsValues(), None, app.pool, probe=lambda host: None)
    qtbot.addWidget(dialog)
    box = dialog.grounding_marks
    assert box.isChecked() and box.accessibleName() and "always runs" in box.toolTip()
    box.setChecked(False)
    assert dialog.result_values().grounding_marks is False


def test_marks_and_footer_from_the_stored_check() -> None:
    grounding = {"summary": "1 of 2 sentences supported by their sources", "sentences": [
        {"text": "It costs 4.2 million euros [1].", "verdict": "supported", "citations": [1]},
        {"text": "- It was **built** in 1997 [1].", "verdict": "not supported", "citations": [1],
         "reason": "1997 does not appear in [1]",
         "closest": {"n": 2, "title": "t.pdf", "page": 3, "text": "Built in 1907.", "document_id": 7}}]}
    entry = TranscriptEntry(key=3, role="assistant", text="…", grounding=grounding)
    assert grounding_footer(entry) == "*⚠ 1 of 2 sentences supported by their sources*"
    (mark,) = grounding_marks(entry)
    assert mark.target == "It was built in 1997" and mark.index == 1
    assert "1997 does not appear in [1]" in mark.tooltip and "“Built in 1907.”" in mark.tooltip
    assert mark.closest is not None and mark.closest["document_id"] == 7 and mark.closest["page"] == 3
    assert grounding_footer(replace(entry, grounding=None)) == ""
