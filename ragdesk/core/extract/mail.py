"""E-mail messages (.eml): subject as the heading, the main headers, then the body (its plain
part, or its HTML part as text); attachments are listed by name, not read."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from ragdesk.core.extract.formats import ExtractionError
from ragdesk.core.extract.html import html_to_text
from ragdesk.core.extract.text import clean, paragraph_blocks
from ragdesk.core.extract.title import choose_title
from ragdesk.core.records import Block, Extracted, Page


def _part_text(part: Any) -> str:
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):  # unknown or lying charset
        payload = part.get_payload(decode=True) or b""
        content = payload.decode("utf-8", errors="replace")
    if isinstance(content, bytes):
        content = content.decode("utf-8", errors="replace")
    return str(content)


def extract_email(data: bytes, path: Path, warnings: list[str]) -> Extracted:
    msg = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    if not any(msg.get(h) for h in ("From", "To", "Subject", "Date", "Message-ID")):
        raise ExtractionError("not an e-mail message (no headers found)")
    subject = " ".join(str(msg.get("Subject", "")).split())
    body = ""
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is not None:
        body = _part_text(part)
        if part.get_content_type() == "text/html":
            body = html_to_text(body)
    body = clean(body.replace("\r\n", "\n")).strip()
    attachments = []
    for att in msg.iter_attachments():
        name = att.get_filename()
        attachments.append(name or att.get_content_type())

    blocks: list[Block] = []
    text = ""
    if subject:
        text = "Subject: "
        blocks.append(Block(1, len(text), len(text) + len(subject), "heading", 1))
        text += subject + "\n"
    header_start = len(text)
    for name in ("From", "To", "Cc", "Date"):
        value = msg.get(name)
        if value:
            text += f"{name}: {' '.join(str(value).split())}\n"
    if attachments:
        text += "Attachments: " + ", ".join(attachments) + "\n"
    if len(text) > header_start:
        blocks.append(Block(1, header_start, len(text) - 1, "paragraph", 0))
    if body:
        text += "\n"
        blocks += paragraph_blocks(body, base=len(text))
        text += body
    title = choose_title(subject, [], path.name)
    return Extracted(title, "email", [Page(1, text)], blocks, warnings)
