"""Zip containers (DOCX, EPUB, XPS, ...): which document format a zip holds, and the checks that
refuse zip bombs and damaged containers before a parser decompresses anything."""

from __future__ import annotations

import io
import zipfile

from ragdesk.core.extract.formats import LABEL, MB, ExtractionError, Limits, UnsupportedFormat


def _open_zip(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ExtractionError("corrupt or truncated file (damaged zip container)") from exc


def zip_format(data: bytes) -> str:
    """Tell a zip container's document format from its members (for unknown extensions)."""
    with _open_zip(data) as zf:
        names = set(zf.namelist())
        if "mimetype" in names:
            with zf.open("mimetype") as fh:
                if fh.read(64).strip() == b"application/epub+zip":
                    return "epub"
        if "word/document.xml" in names:
            return "docx"
        if "xl/workbook.xml" in names:
            return "xlsx"
        if "ppt/presentation.xml" in names:
            return "pptx"
        if "Contents/section0.xml" in names:
            return "hwpx"
        if any(n.endswith(".fdseq") for n in names) or "FixedDocSeq.fdseq" in names:
            return "xps"
    raise UnsupportedFormat("archives are not opened — unpack it first")


def check_zip(data: bytes, fmt: str, limits: Limits) -> None:
    """Refuse zip bombs and damaged containers before MuPDF decompresses anything.

    The declared sizes are checked first (cheap); then every member is decompressed and its CRC
    verified (``testzip``), which also catches headers that under-declare their size, because
    reading stops at the declared size and the CRC no longer matches. That pass is bounded by the
    declared total, already capped.
    """
    if not data.startswith(b"PK"):
        raise ExtractionError(
            f"not a valid {LABEL[fmt]} file (corrupt, or the extension does not match)"
        )
    bomb = "compressed content expands too much (possible zip bomb)"
    with _open_zip(data) as zf:
        infos = zf.infolist()
        total = 0
        for info in infos:
            total += info.file_size
            if info.file_size > 10 * MB and info.file_size > limits.max_compression_ratio * max(
                info.compress_size, 1
            ):
                raise ExtractionError(bomb)
        if total > limits.max_uncompressed_bytes:
            raise ExtractionError(bomb)
        if total > 10 * MB and total > limits.max_compression_ratio * len(data):
            raise ExtractionError(bomb)
        try:
            bad = zf.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise ExtractionError("corrupt or truncated file (damaged zip container)") from exc
        if bad is not None:
            raise ExtractionError("corrupt or truncated file (damaged zip container)")
