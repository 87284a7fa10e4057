"""Fixtures for the GUI tests: an app controller on a cheap vault, the test embedder, a small
corpus folder. Every test here is marked `gui` and runs offscreen."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from ragdesk.core.store.sqlite import vault as vault_store
from tests.conftest import CORPUS, PASSPHRASE, fast_kdf
from tests.fakes.embedder import HashEmbedder

# The offscreen platform cannot pass size hints to a window manager and says so at warning
# level whenever a shown window's layout changes or it is raised: that is the test platform.
OFFSCREEN_NOISE = r"This plugin does not support (propagateSizeHints|raise)\(\)"

SMALL_CORPUS = ("cython.pdf", "github_sample.pdf", "test_markdown_bad_unicode.md", "test_open2.doc")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.gui)
            item.add_marker(pytest.mark.qt_log_ignore(OFFSCREEN_NOISE))


@pytest.fixture
def ui_settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_app(qtbot, home: Path, ui_settings: QSettings):  # type: ignore[no-untyped-def]
    """Build a RagdeskApp the way `run` does, with the test embedder and in-process parsing."""
    from ragdesk.gui.app import RagdeskApp

    made: list[RagdeskApp] = []

    def make(**options) -> RagdeskApp:  # type: ignore[no-untyped-def]
        options.setdefault("embedder", HashEmbedder())
        options.setdefault("kdf", fast_kdf())
        options.setdefault("index_options", {"workers": 0})
        options.setdefault("poll_ollama", False)
        app = RagdeskApp(home, ui_settings, **options)
        made.append(app)
        return app

    yield make
    for app in made:
        app.shutdown()


@pytest.fixture
def existing_vault(home: Path) -> Path:
    vault_store.create(home, PASSPHRASE, kdf=fast_kdf()).lock()
    return home


@pytest.fixture
def unlocked(qtbot, make_app, existing_vault: Path):  # type: ignore[no-untyped-def]
    """An app whose vault is unlocked through the dialog; yields the app (window: app.window)."""

    def open_app(keep_first_size: bool = False, **options):  # type: ignore[no-untyped-def]
        app = make_app(**options)
        app.start()
        dialog = app.dialog
        dialog.passphrase.setText(PASSPHRASE)
        with qtbot.waitSignal(app.unlocked, timeout=10000):
            dialog.unlock_button.click()
        window = app.window
        qtbot.waitUntil(lambda: window.isVisible() and not app.pool.busy, timeout=10000)
        if not keep_first_size:  # the offscreen screen is 800x600: the tests' window is larger
            window.resize(1360, 820)
        return app

    return open_app


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    """Four files from ../shared/corpus, one of which (a legacy .doc) cannot be indexed."""
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in SMALL_CORPUS:
        shutil.copy(CORPUS / name, folder / name)
    return folder


def drop(widget, paths: list[Path]) -> None:  # type: ignore[no-untyped-def]
    """Drag `paths` onto `widget` and drop them, as a file manager would."""
    from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPoint(widget.width() // 2, widget.height() // 2)
    enter = QDragEnterEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted(), "the window refused the drag"
    dropped = QDropEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                         Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, dropped)


@pytest.fixture
def indexed(qtbot, unlocked, small_corpus: Path):  # type: ignore[no-untyped-def]
    """An unlocked app with the small corpus indexed (dropped onto the window)."""

    def open_indexed(**options):  # type: ignore[no-untyped-def]
        app = unlocked(**options)
        window = app.window
        with qtbot.waitSignal(window.index_finished, timeout=30000):
            drop(window.chat.transcript.viewport(), [small_corpus])
        qtbot.waitUntil(
            lambda: window.library.documents.rowCount() == len(SMALL_CORPUS) and not app.pool.busy,
            timeout=10000)
        return app

    return open_indexed


@pytest.fixture
def iter_widgets():  # type: ignore[no-untyped-def]
    def walk(root):  # type: ignore[no-untyped-def]
        from PySide6.QtWidgets import QWidget

        yield root
        yield from root.findChildren(QWidget)

    return walk


@pytest.fixture(autouse=True)
def _quiet_file_dialog_history(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Keep Qt's own settings (QtProject) inside the test's folder."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    yield
