"""Render the desktop app's main states offscreen into docs/screenshots/*.png (`make screenshots`).

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

A throw-away vault in a temporary folder is filled with a few files from ../shared/corpus (one
of them a legacy .doc that is refused), indexed with the built-in embedder; questions go to the
fake Ollama server from tests/fakes (no Ollama can be installed on the build machines), whose
reply is scripted for the main screenshot so that it reads like a model's answer. Everything
else -- retrieval, citations, sources, the preview and its highlight -- is the real thing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CORPUS = REPO.parent / "shared" / "corpus"
FILES = ("cython.pdf", "v110-changes.pdf", "github_sample.pdf", "test_open2.docx",
         "test_markdown_bad_unicode.md", "test_open2.doc")
PASSPHRASE = "lantern orchard violet gravel"
QUESTION = "Where did the section on compiling with pyximport go?"
ANSWER = (
    "The Cython Reference Guide no longer documents it in place: the section **Compiling with "
    "pyximport** now only says that it *was moved to pyximport* in the user guide [1]. "
    "The same happened to the neighbouring sections of the compilation chapter:\n\n"
    "- *Compiling with distutils* and *Configuring the C-Build* moved to basic_setup.py [2]\n"
    "- *Integrating multiple modules* moved to integrating_multiple_modules [1]\n\n"
    "So look for pyximport in the user guide rather than in this reference [1][2]."
)


def wait_for(app, condition: Callable[[], bool], timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("timed out waiting for the app")
        app.processEvents()
        time.sleep(0.005)
    for _ in range(5):
        app.processEvents()


def save(widget, out: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    path = out / f"{name}.png"
    if not widget.grab().save(str(path)):
        raise RuntimeError(f"could not write {path}")
    print(f"  {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")


def dark_palette():  # type: ignore[no-untyped-def]
    from PySide6.QtGui import QColor, QPalette

    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#2b2d30", QPalette.ColorRole.WindowText: "#e6e6e6",
        QPalette.ColorRole.Base: "#1e1f22", QPalette.ColorRole.AlternateBase: "#26282b",
        QPalette.ColorRole.Text: "#e6e6e6", QPalette.ColorRole.Button: "#35373b",
        QPalette.ColorRole.ButtonText: "#e6e6e6", QPalette.ColorRole.Highlight: "#3d6ea5",
        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.Link: "#8ab4f8",
        QPalette.ColorRole.ToolTipBase: "#35373b", QPalette.ColorRole.ToolTipText: "#e6e6e6",
        QPalette.ColorRole.PlaceholderText: "#8c8f94", QPalette.ColorRole.Mid: "#4a4d52",
        QPalette.ColorRole.Dark: "#18191b", QPalette.ColorRole.Light: "#4a4d52",
    }
    for role, colour in roles.items():
        p.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7c7f85"))
    return p


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication, QDialogButtonBox

    from ragdesk.core.store.keys import KdfParams
    from ragdesk.gui.app import RagdeskApp
    from ragdesk.gui.application import configure
    from ragdesk.gui.preview import PreviewTarget
    from tests.fakes.ollama import FakeOllama

    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)
    configure(app)
    print(f"Rendering into {out} (platform {app.platformName()}, font {app.font().family()}):")
    with tempfile.TemporaryDirectory(prefix="ragdesk-shots-") as tmp, FakeOllama() as fake:
        tmp_path = Path(tmp)
        docs = tmp_path / "Reports"
        docs.mkdir()
        for name in FILES:
            shutil.copy(CORPUS / name, docs / name)
        settings = QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat)
        home = tmp_path / "vault"
        controller = RagdeskApp(home, settings, kdf=KdfParams.fresh(memory_kib=8192, iterations=1, lanes=1),
                                watch_folders=False)

        # 1. First start: create the vault.
        controller.start()
        dialog = controller.dialog
        dialog.passphrase.setText(PASSPHRASE)
        dialog.repeat.setText(PASSPHRASE)
        dialog.understood.setChecked(True)
        dialog.adjustSize()
        wait_for(app, dialog.isVisible)
        save(dialog, out, "01-create-vault")
        dialog.create_button.click()
        wait_for(app, lambda: controller.window is not None and controller.window.isVisible())
        window = controller.window
        window.resize(1400, 860)
        controller.services.store.set_setting("ollama_host", fake.host)
        window.check_ollama()
        wait_for(app, lambda: window.ollama is not None and not controller.pool.busy)

        # 2. Index the folder as a drop would, then ask.
        window.index_paths([str(docs)])
        wait_for(app, lambda: not window.indexing and not controller.pool.busy, 600)
        fake.script(ANSWER)
        fake.fault("slow_every_token", 0.002)
        window.chat.question.setPlainText(QUESTION)
        window.ask()
        wait_for(app, lambda: not window.answering and not controller.pool.busy)
        fake.clear()
        library = window.library
        for row in range(library.filter.rowCount()):
            if library.filter.index(row, 0).data().startswith("test_open2.doc"):
                library.view.setCurrentIndex(library.filter.index(row, 0))
        window.chat.question.setPlainText("And what changed in version 1.10?")
        wait_for(app, lambda: True)
        save(window, out, "03-main-window")

        # The same at smaller window sizes: the side panes give way, the chat keeps its width.
        for name, (width, height) in (("08-small-1024x700", (1024, 700)), ("09-small-800x600", (800, 600))):
            window.resize(width, height)
            wait_for(app, lambda w=width, h=height: window.size().toTuple() == (w, h))
            save(window, out, name)
        window.resize(1400, 860)
        wait_for(app, lambda: window.size().toTuple() == (1400, 860))

        # 3. The preview of citation [1], passage highlighted.
        entry = next(e for e in window.chat.transcript.entries if e.role == "assistant")
        window.open_preview(PreviewTarget.from_citation(dict(entry.citations[0])))
        preview = window.preview
        preview.resize(860, 980)
        wait_for(app, lambda: preview.rendered is not None and not controller.pool.busy)
        wait_for(app, lambda: True)
        save(preview, out, "04-preview")
        preview.close()

        # 4. Settings, with the models Ollama offers.
        window.open_settings()
        settings_dialog = window.settings_dialog
        settings_dialog.check()
        wait_for(app, lambda: settings_dialog.chat_model.count() > 1 and not controller.pool.busy)
        settings_dialog.adjustSize()
        wait_for(app, lambda: True)
        save(settings_dialog, out, "05-settings")
        settings_dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Cancel).click()

        # 5. Ollama down: the banner, and an extractive answer.
        controller.services.store.set_setting("ollama_host", FakeOllama.unused_host())
        window.check_ollama()
        wait_for(app, lambda: window.banner.isVisible() and not controller.pool.busy)
        window.new_conversation()
        window.chat.question.setPlainText("What is new in MuPDF 1.10?")
        window.ask()
        wait_for(app, lambda: not window.answering and not controller.pool.busy)
        library.view.clearSelection()
        save(window, out, "06-ollama-down")

        # 6. The same window under a dark system palette (the offscreen platform has no colour
        # scheme of its own, so a dark palette stands in for it).
        light = app.palette()
        app.setPalette(dark_palette())
        wait_for(app, lambda: True)
        save(window, out, "07-dark")
        app.setPalette(light)
        wait_for(app, lambda: True)

        # 7. Locked: the unlock dialog, after a wrong passphrase.
        controller.lock("The vault was locked after 10 minutes without activity.")
        wait_for(app, lambda: controller.is_locked and controller.dialog is not None)
        unlock = controller.dialog
        unlock.passphrase.setText("not my passphrase")
        unlock.submit()
        wait_for(app, lambda: unlock.error.isVisible() and not unlock.busy)
        unlock.adjustSize()
        wait_for(app, lambda: True)
        save(unlock, out, "02-unlock")
        controller.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
