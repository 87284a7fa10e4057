"""The preview of a cited page: rendered from the original kept in the vault, passage highlighted.

Paginated formats (PDF, EPUB, XPS, DOCX, ...) are opened by PyMuPDF from the original's bytes
(never from the file on disk, which may have changed or gone) and one page at a time is rendered
to an image on a worker thread; the cited passage is found on the page by searching for it a few
words at a time, and drawn over with a translucent fill, an outline and a bar in the margin (so
it does not rely on colour). Text formats (plain text, Markdown, CSV, ...) show the text as it
was indexed, with the passage selected and underlined.

Nothing is written to disk: the bytes, the images and the text live in memory and are dropped
when the preview closes or the vault locks. PyMuPDF is not thread-safe, so every call into it
holds one lock.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QImage,
    QKeySequence,
    QPainter,
    QPainterPath,
    QPalette,
    QPen,
    QPixmap,
    QResizeEvent,
    QShortcut,
    QTextCharFormat,
    QTextCursor,
)
from PySide6.QtWidgets import (
    QDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QScrollArea,
    QSpinBox,
    QStackedWidget,
    QTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ragdesk.errors import RagdeskError
from ragdesk.gui import icons
from ragdesk.gui.workers import WorkerError, WorkerPool

log = logging.getLogger("ragdesk.gui.preview")

# Formats PyMuPDF lays out as pages, and the file type it is told (as the indexer reads them).
PAGINATED = {
    "pdf": "pdf", "epub": "epub", "xps": "xps", "mobi": "mobi", "fb2": "fb2", "cbz": "cbz",
    "svg": "svg", "html": "html", "xhtml": "xhtml", "docx": "docx", "xlsx": "xlsx",
    "pptx": "pptx", "hwpx": "hwpx",
}
MUPDF_LOCK = threading.Lock()
WINDOW_WORDS = 5
MAX_WINDOWS = 80
MIN_ZOOM, MAX_ZOOM = 0.25, 5.0
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class PreviewTarget:
    """What to show: a document, a page (1-based) and the passage to highlight."""

    document_id: int
    page: int = 1
    passage: str = ""
    char_start: int = 0
    char_end: int = 0
    title: str = ""
    n: int | None = None  # the citation number, when opened from a citation

    @classmethod
    def from_citation(cls, c: dict[str, Any]) -> PreviewTarget:
        return cls(int(c["document_id"]), int(c.get("page") or 1), str(c.get("text") or ""),
                   int(c.get("char_start") or 0), int(c.get("char_end") or 0),
                   str(c.get("title") or ""), int(c["n"]) if c.get("n") is not None else None)


@dataclass
class LoadedDocument:
    document_id: int
    title: str
    format: str
    kind: str  # "pages" | "text"
    page_count: int
    handle: Any = None  # pymupdf.Document for "pages"
    text_pages: list[str] = field(default_factory=list)

    def close(self) -> None:
        if self.handle is not None:
            with MUPDF_LOCK:
                self.handle.close()
            self.handle = None
        self.text_pages = []


@dataclass
class RenderedPage:
    index: int  # 0-based
    image: QImage
    highlights: list[QRectF]  # in logical pixels of the image
    zoom: float


def load_document(store: Any, document_id: int) -> LoadedDocument:
    """Open a document's original from the vault (runs on a worker thread)."""
    doc = store.document(document_id)
    if doc is None:
        raise RagdeskError("this document is no longer in the vault")
    data = store.original(document_id)
    if not data:
        raise RagdeskError("the original of this document is not kept in the vault")
    fmt = (doc.format or "").lower()
    if fmt in PAGINATED:
        import pymupdf

        mupdf: Any = pymupdf  # not annotated: used through Any
        with MUPDF_LOCK:
            try:
                handle = mupdf.open(stream=data, filetype=PAGINATED[fmt])
            except Exception as exc:  # a damaged original is the file's fault
                raise RagdeskError(f"the original could not be opened ({type(exc).__name__})") from exc
            count = handle.page_count
        return LoadedDocument(document_id, doc.title, fmt, "pages", count, handle=handle)
    from ragdesk.core import extract

    with MUPDF_LOCK:  # extract may use PyMuPDF for some formats
        extracted = extract.extract(Path(doc.path), data=data)
    pages = [p.text for p in extracted.pages] or [""]
    return LoadedDocument(document_id, doc.title, fmt, "text", len(pages), text_pages=pages)


def passage_windows(passage: str) -> list[str]:
    """The passage as runs of a few words, each searched for on the page."""
    words = _WORD.findall(passage)
    if not words:
        return []
    size = min(WINDOW_WORDS, len(words))
    starts = list(range(0, len(words) - size + 1, size))
    if starts[-1] + size < len(words):
        starts.append(len(words) - size)
    windows = [" ".join(words[s:s + size]) for s in starts[:MAX_WINDOWS]]
    return [w for w in windows if len(w) >= 8 or len(words) <= size]


def passage_rects(page: Any, passage: str) -> list[Any]:
    """Rectangles (page coordinates) of the passage's text on `page`."""
    windows = passage_windows(passage)
    if not windows:
        return []
    textpage = page.get_textpage()
    rects: list[Any] = []
    for window in windows:
        rects.extend(page.search_for(window, textpage=textpage))
    return rects


def render_page(loaded: LoadedDocument, index: int, zoom: float | None, fit_width: int,
                ratio: float, passage: str) -> RenderedPage:
    """Render one page to an image with the passage drawn over it (runs on a worker thread).
    `zoom=None` fits the page to `fit_width` logical pixels."""
    import pymupdf

    mupdf: Any = pymupdf  # not annotated: used through Any
    with MUPDF_LOCK:
        if loaded.handle is None:
            raise RagdeskError("the preview was closed")
        page = loaded.handle[index]
        width = page.rect.width or 1.0
        if zoom is None:
            zoom = max(MIN_ZOOM, min(MAX_ZOOM, (fit_width - 4) / width))
        scale = zoom * ratio
        pix = page.get_pixmap(matrix=mupdf.Matrix(scale, scale), alpha=False)
        image = QImage(pix.samples, pix.width, pix.height, pix.stride, QImage.Format.Format_RGB888).copy()
        rects = passage_rects(page, passage) if passage else []
    highlights = merge_lines([QRectF(r.x0 * zoom, r.y0 * zoom, (r.x1 - r.x0) * zoom, (r.y1 - r.y0) * zoom)
                              for r in rects])
    _draw_highlights(image, highlights, ratio)
    image.setDevicePixelRatio(ratio)
    return RenderedPage(index, image, highlights, zoom)


def merge_lines(rects: list[QRectF]) -> list[QRectF]:
    """Rectangles of the same text line that touch (adjacent search windows) become one, so
    the highlight reads as one marked run of text without seams."""
    merged: list[QRectF] = []
    for r in sorted(rects, key=lambda r: (round(r.center().y()), r.left())):
        last = merged[-1] if merged else None
        if last is not None:
            overlap = min(last.bottom(), r.bottom()) - max(last.top(), r.top())
            same_line = overlap > 0.5 * min(last.height(), r.height())
            if same_line and r.left() <= last.right() + 0.6 * r.height():
                merged[-1] = last.united(r)
                continue
        merged.append(QRectF(r))
    return merged


def _draw_highlights(image: QImage, rects: list[QRectF], ratio: float) -> None:
    if not rects:
        return
    path = QPainterPath()
    for r in rects:
        path.addRect(QRectF(r.x() * ratio - 2, r.y() * ratio - 1,
                            r.width() * ratio + 4, r.height() * ratio + 2))
    path = path.simplified()
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.fillPath(path, QBrush(QColor(255, 208, 0, 90)))
    painter.setPen(QPen(QColor(196, 112, 0), max(1.5, 1.5 * ratio)))
    painter.drawPath(path)
    # A bar in the left margin beside the passage: visible without telling colours apart.
    top = min(r.y() for r in rects) * ratio
    bottom = max(r.y() + r.height() for r in rects) * ratio
    painter.fillRect(QRectF(3 * ratio, top, 5 * ratio, bottom - top), QColor(196, 112, 0))
    painter.end()


class PageView(QScrollArea):
    """A rendered page in a scroll area."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setAccessibleName("Page image")
        self.setWidget(self.label)
        self.setWidgetResizable(True)
        self.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.setAccessibleName("Page")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setBackgroundRole(QPalette.ColorRole.Dark)

    def show_image(self, image: QImage) -> None:
        self.label.setPixmap(QPixmap.fromImage(image))

    def clear(self) -> None:
        self.label.clear()

    def reveal(self, rect: QRectF) -> None:
        pixmap = self.label.pixmap()
        if pixmap is None or pixmap.isNull():
            return
        size = pixmap.deviceIndependentSize()
        offset_x = max(0.0, (self.label.width() - size.width()) / 2)
        offset_y = max(0.0, (self.label.height() - size.height()) / 2)
        center = QPointF(offset_x + rect.center().x(), offset_y + rect.top())
        self.ensureVisible(int(center.x()), int(center.y()), 40, int(self.viewport().height() * 0.35))


class PreviewDialog(QDialog):
    """A window that shows one document's page at a time, the cited passage highlighted."""

    page_rendered = Signal(int)  # 0-based page index, once on screen

    def __init__(self, store_getter: Any, pool: WorkerPool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("previewDialog")
        self.setWindowTitle("Preview — RagDesk")
        self.setWindowIcon(icons.icon("document"))
        self._store = store_getter
        self.pool = pool
        self.loaded: LoadedDocument | None = None
        self.target: PreviewTarget | None = None
        self.page_index = 0
        self.zoom: float | None = None  # None: fit width
        self.rendered: RenderedPage | None = None
        self._generation = 0
        self._refit = QTimer(self)
        self._refit.setSingleShot(True)
        self._refit.setInterval(150)
        self._refit.timeout.connect(self._render)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.setSpacing(8)
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.title.setWordWrap(True)
        font = self.title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.title.setFont(font)
        self.title.setAccessibleName("Document title")
        layout.addWidget(self.title)

        bar = QHBoxLayout()
        bar.setSpacing(4)
        self.prev_button = self._tool("prev", "Previous page (Page Up)")
        self.prev_button.clicked.connect(lambda: self.go_to(self.page_index - 1))
        self.page_spin = QSpinBox()
        self.page_spin.setAccessibleName("Page number")
        self.page_spin.setToolTip("Go to page")
        self.page_spin.setKeyboardTracking(False)
        self.page_spin.valueChanged.connect(lambda v: self.go_to(v - 1))
        self.page_count_label = QLabel()
        self.page_count_label.setAccessibleName("Page count")
        self.next_button = self._tool("next", "Next page (Page Down)")
        self.next_button.clicked.connect(lambda: self.go_to(self.page_index + 1))
        self.zoom_out_button = self._tool("zoom-out", "Zoom out (Ctrl+-)")
        self.zoom_out_button.clicked.connect(lambda: self._zoom_by(1 / 1.25))
        self.zoom_in_button = self._tool("zoom-in", "Zoom in (Ctrl++)")
        self.zoom_in_button.clicked.connect(lambda: self._zoom_by(1.25))
        self.fit_button = self._tool("fit-width", "Fit the page to the window's width")
        self.fit_button.clicked.connect(self._fit)
        self.passage_button = self._tool("quote", "Go to the cited passage")
        self.passage_button.clicked.connect(self.go_to_passage)
        bar.addWidget(self.prev_button)
        bar.addWidget(QLabel("Page"))
        bar.addWidget(self.page_spin)
        bar.addWidget(self.page_count_label)
        bar.addWidget(self.next_button)
        bar.addSpacing(12)
        bar.addWidget(self.zoom_out_button)
        bar.addWidget(self.zoom_in_button)
        bar.addWidget(self.fit_button)
        bar.addSpacing(12)
        bar.addWidget(self.passage_button)
        bar.addStretch(1)
        layout.addLayout(bar)

        self.stack = QStackedWidget()
        self.page_view = PageView()
        self.text_view = QPlainTextEdit()
        self.text_view.setReadOnly(True)
        self.text_view.setAccessibleName("Document text")
        self.text_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.message = QLabel()
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setAccessibleName("Preview status")
        self.stack.addWidget(self.page_view)
        self.stack.addWidget(self.text_view)
        self.stack.addWidget(self.message)
        layout.addWidget(self.stack, 1)

        self.passage_title = QLabel()
        self.passage_title.setTextFormat(Qt.TextFormat.PlainText)
        self.passage_title.setAccessibleName("About the cited passage")
        layout.addWidget(self.passage_title)
        self.passage = QPlainTextEdit()
        self.passage.setReadOnly(True)
        self.passage.setAccessibleName("Cited passage")
        self.passage.setToolTip("The passage as it was indexed")
        self.passage.setMaximumHeight(self.passage.fontMetrics().lineSpacing() * 4 + 16)
        layout.addWidget(self.passage)

        for keys, slot in (
            (QKeySequence.StandardKey.MoveToPreviousPage, lambda: self.go_to(self.page_index - 1)),
            (QKeySequence.StandardKey.MoveToNextPage, lambda: self.go_to(self.page_index + 1)),
            (QKeySequence.StandardKey.ZoomIn, lambda: self._zoom_by(1.25)),
            (QKeySequence.StandardKey.ZoomOut, lambda: self._zoom_by(1 / 1.25)),
        ):
            QShortcut(QKeySequence(keys), self).activated.connect(slot)
        self.resize(820, 940)
        self._set_nav(False)

    @staticmethod
    def _tool(icon_name: str, tip: str) -> QToolButton:
        button = QToolButton()
        button.setIcon(icons.icon(icon_name))
        button.setToolTip(tip)
        button.setAccessibleName(tip.split(" (")[0])
        button.setAutoRaise(True)
        button.setIconSize(QSize(20, 20))
        return button

    # --- showing ------------------------------------------------------------------------

    def show_target(self, target: PreviewTarget) -> None:
        """Open the target's document (unless it is already open) at its page."""
        self.target = target
        self.title.setText(target.title or "Document")
        label = f"Cited passage [{target.n}]" if target.n is not None else "Passage"
        self.passage_title.setText(f"{label}, page {target.page}:")
        self.passage.setPlainText(target.passage)
        self.show()
        self.raise_()
        self.activateWindow()
        if self.loaded is not None and self.loaded.document_id == target.document_id:
            self.go_to(target.page - 1, force=True)
            return
        self._drop_document()
        self._show_message("Opening the document…")
        self._generation += 1
        generation = self._generation
        store = self._store()
        document_id = target.document_id
        self.pool.run(lambda: load_document(store, document_id), "open preview",
                      on_result=lambda loaded: self._loaded(loaded, generation),
                      on_error=self._failed)

    def _loaded(self, loaded: LoadedDocument, generation: int) -> None:
        if generation != self._generation or self.target is None or not self.isVisible():
            self.pool.run(loaded.close, "close preview")
            return
        self.loaded = loaded
        self.title.setText(loaded.title)
        self.page_spin.blockSignals(True)
        self.page_spin.setRange(1, loaded.page_count)
        self.page_spin.blockSignals(False)
        self.page_count_label.setText(f"of {loaded.page_count}")
        self._set_nav(True)
        self.go_to(self.target.page - 1, force=True)

    def _failed(self, error: WorkerError) -> None:
        self._show_message(f"The preview could not be shown: {error.message}")

    def _show_message(self, text: str) -> None:
        self.message.setText(text)
        self.stack.setCurrentWidget(self.message)

    def _set_nav(self, enabled: bool) -> None:
        paged = enabled and self.loaded is not None and self.loaded.kind == "pages"
        for w in (self.prev_button, self.next_button, self.page_spin):
            w.setEnabled(enabled and self.loaded is not None and self.loaded.page_count > 1)
        for w in (self.zoom_in_button, self.zoom_out_button, self.fit_button):
            w.setEnabled(paged)
        self.passage_button.setEnabled(enabled)

    def go_to(self, index: int, force: bool = False) -> None:
        if self.loaded is None:
            return
        index = max(0, min(self.loaded.page_count - 1, index))
        if index == self.page_index and not force and self.rendered is not None:
            return
        self.page_index = index
        self.page_spin.blockSignals(True)
        self.page_spin.setValue(index + 1)
        self.page_spin.blockSignals(False)
        self.prev_button.setEnabled(index > 0)
        self.next_button.setEnabled(index < self.loaded.page_count - 1)
        if self.loaded.kind == "text":
            self._show_text(index)
        else:
            self._render()

    def go_to_passage(self) -> None:
        if self.target is None:
            return
        if self.page_index != self.target.page - 1:
            self.go_to(self.target.page - 1)
        elif self.rendered and self.rendered.highlights:
            self.page_view.reveal(self.rendered.highlights[0])
        elif self.loaded is not None and self.loaded.kind == "text":
            self._show_text(self.page_index)

    def _passage_for(self, index: int) -> str:
        return self.target.passage if self.target is not None else ""

    def _render(self) -> None:
        loaded = self.loaded
        if loaded is None or loaded.kind != "pages":
            return
        self._generation += 1
        generation = self._generation
        index, zoom = self.page_index, self.zoom
        width = self.page_view.viewport().width() - 8
        ratio = self.devicePixelRatioF()
        passage = self._passage_for(index)
        self.pool.run(lambda: render_page(loaded, index, zoom, width, ratio, passage), "render page",
                      on_result=lambda page: self._rendered(page, generation), on_error=self._failed)

    def _rendered(self, page: RenderedPage, generation: int) -> None:
        if generation != self._generation or self.loaded is None:
            return
        self.rendered = page
        self.page_view.show_image(page.image)
        self.stack.setCurrentWidget(self.page_view)
        on_cited_page = self.target is not None and page.index == self.target.page - 1
        if page.highlights:
            QTimer.singleShot(0, lambda: self.page_view.reveal(page.highlights[0]))
            note = " — highlighted on this page" if on_cited_page else " — it continues on this page"
        elif on_cited_page:
            self.page_view.verticalScrollBar().setValue(0)
            note = " — its place on the page could not be marked; the text is below"
        else:
            self.page_view.verticalScrollBar().setValue(0)
            note = ""
        if self.target is not None:
            label = f"Cited passage [{self.target.n}]" if self.target.n is not None else "Passage"
            self.passage_title.setText(f"{label}, page {self.target.page}{note}:")
        self.page_rendered.emit(page.index)

    def _show_text(self, index: int) -> None:
        assert self.loaded is not None
        text = self.loaded.text_pages[index]
        self.text_view.setPlainText(text)
        self.stack.setCurrentWidget(self.text_view)
        selections = []
        target = self.target
        if target is not None and index == target.page - 1:
            start, end = self._text_span(text, target)
            if end > start:
                fmt = QTextCharFormat()
                fmt.setBackground(QColor(255, 208, 0, 110))
                fmt.setFontUnderline(True)
                fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.SingleUnderline)
                selection = QTextEdit.ExtraSelection()
                selection.format = fmt
                cursor = QTextCursor(self.text_view.document())
                cursor.setPosition(start)
                cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
                selection.cursor = cursor
                selections.append(selection)
                place = QTextCursor(self.text_view.document())
                place.setPosition(start)
                self.text_view.setTextCursor(place)
                self.text_view.centerCursor()
        self.text_view.setExtraSelections(selections)
        self.page_rendered.emit(index)

    @staticmethod
    def _text_span(text: str, target: PreviewTarget) -> tuple[int, int]:
        """Where the passage is in the page's text: the stored offsets when they match,
        otherwise the first place its opening words occur."""
        start, end = target.char_start, target.char_end
        passage = target.passage.strip()
        if 0 <= start < end <= len(text):
            return start, end
        if passage:
            head = " ".join(passage.split()[:6])
            found = text.find(head)
            if found >= 0:
                return found, min(len(text), found + len(passage))
        return 0, 0

    def _zoom_by(self, factor: float) -> None:
        if self.rendered is None:
            return
        self.zoom = max(MIN_ZOOM, min(MAX_ZOOM, (self.zoom or self.rendered.zoom) * factor))
        self._render()

    def _fit(self) -> None:
        self.zoom = None
        self._render()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.zoom is None and self.loaded is not None and self.loaded.kind == "pages":
            self._refit.start()

    # --- closing ------------------------------------------------------------------------

    def _drop_document(self) -> None:
        loaded, self.loaded = self.loaded, None
        self.rendered = None
        self.page_view.clear()
        self.text_view.clear()
        self.text_view.setExtraSelections([])
        if loaded is not None:
            self.pool.run(loaded.close, "close preview")

    def clear(self) -> None:
        """Forget everything shown (on close and on lock)."""
        self._generation += 1
        self._drop_document()
        self.target = None
        self.title.clear()
        self.passage.clear()
        self.passage_title.clear()
        self.message.clear()
        self._set_nav(False)

    def done(self, result: int) -> None:
        self.clear()
        super().done(result)
