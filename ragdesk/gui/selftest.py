"""`ragdesk gui --self-test`: prove the desktop app starts in this installation, then exit 0.

For packaging checks (a frozen bundle, a fresh install): opens the main window offscreen on a
throw-away vault in a temporary folder, and checks what a bundle most easily loses -- the Qt
platform and SVG plugins, the icons, SQLCipher with sqlite-vec, PyMuPDF rendering into a Qt
image. Nothing is indexed and no network connection is made. A frozen bundle first checks its
files against the SHA256SUMS manifest its build wrote (a changed byte fails, naming the file).
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("ragdesk.gui.selftest")


def run_self_test(argv: list[str]) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    started = time.perf_counter()
    if not _check_bundle():
        return 1
    try:
        from PySide6.QtCore import QSettings, QSize, QtMsgType, qInstallMessageHandler

        def quiet(kind: QtMsgType, _context: object, message: str) -> None:
            # The offscreen platform reports what it cannot do (raise, size hints): not a fault.
            if "This plugin does not support" not in message and kind != QtMsgType.QtDebugMsg:
                print(f"Qt: {message}", file=sys.stderr)

        qInstallMessageHandler(quiet)

        from ragdesk.app import Services
        from ragdesk.core.store.keys import KdfParams
        from ragdesk.core.store.open import open_store
        from ragdesk.gui import icons
        from ragdesk.gui.application import application
        from ragdesk.gui.mainwindow import MainWindow
        from ragdesk.gui.workers import WorkerPool

        app = application(argv)
        names = icons.all_names()
        if not names:
            raise RuntimeError(f"no icons in {icons.icons_dir()}")
        for name in names:
            if icons.icon(name).pixmap(QSize(24, 24), 2.0).isNull():
                raise RuntimeError(f"the icon {name} does not render (is the SVG plugin missing?)")
        _check_pdf_rendering()
        with tempfile.TemporaryDirectory(prefix="ragdesk-selftest-") as tmp:
            home = Path(tmp) / "vault"
            cheap = KdfParams.fresh(memory_kib=8192, iterations=1, lanes=1)
            vault = open_store(home, secrets.token_urlsafe(16), create=True, kdf=cheap)
            try:
                vault.set_setting("ollama_host", "http://127.0.0.1:9")  # loopback, never used
                pool = WorkerPool()
                settings = QSettings(str(Path(tmp) / "ui.ini"), QSettings.Format.IniFormat)
                window = MainWindow(pool, settings, poll_ollama=False, watch_folders=False,
                                    warm_embedder=False)
                window.attach(Services(vault, home))
                window.show()
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    app.processEvents()
                    handle = window.windowHandle()
                    if window.isVisible() and handle is not None and handle.isExposed() \
                            and not pool.busy:
                        break
                    time.sleep(0.01)
                else:
                    raise RuntimeError("the main window did not appear within 10 s")
                window.detach()
                pool.wait(5000)
                window.deleteLater()
            finally:
                vault.lock()
    except Exception as exc:  # the point is to say what is broken
        print(f"RagDesk self-test FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"RagDesk self-test OK: main window shown on {app.platformName()} "
          f"({len(names)} icons, SQLCipher vault, PyMuPDF rendering) "
          f"in {time.perf_counter() - started:.1f} s")
    return 0


def _check_bundle() -> bool:
    """A frozen bundle's files against its SHA256SUMS (core/bundle.py): is this the program that
    was shipped? Prints the outcome; False when a file was changed, removed or added."""
    from ragdesk.core import bundle

    root = bundle.bundle_root()
    if root is None:
        print("RagDesk self-test: bundle manifest: not a bundle, skipped")
        return True
    try:
        result = bundle.verify(root)
    except bundle.ManifestError as exc:
        print(f"RagDesk self-test FAILED: bundle manifest: {exc}", file=sys.stderr)
        return False
    if not result.ok:
        print(f"RagDesk self-test FAILED: the bundle differs from its manifest: {result.problems()}",
              file=sys.stderr)
        return False
    print(f"RagDesk self-test: bundle manifest: {result.checked} files match {bundle.MANIFEST}"
          f" (SHA-256 of {bundle.MANIFEST}: {result.manifest_digest})")
    return True


def _check_pdf_rendering() -> None:
    import pymupdf
    from PySide6.QtGui import QImage

    mupdf: Any = pymupdf  # not annotated: used through Any
    doc = mupdf.open()
    page = doc.new_page(width=200, height=100)
    page.insert_text((20, 50), "RagDesk self-test")
    pix = page.get_pixmap()
    image = QImage(pix.samples, pix.width, pix.height, pix.stride, QImage.Format.Format_RGB888)
    if image.isNull() or not page.search_for("self-test"):
        raise RuntimeError("PyMuPDF could not render a page into a Qt image")
    doc.close()
