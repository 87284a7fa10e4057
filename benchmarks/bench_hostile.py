"""Indexing real and hostile files (issue 18): total time, the slowest files, pages degraded.

    .venv/bin/python benchmarks/bench_hostile.py [--corpus ../shared/corpus] [--hostile-only]
        [--keep DIR]

1. Builds a folder of crafted hostile files: tests/data/hostile/table-grid.pdf (page 2's ruled
   grid makes PyMuPDF's find_tables run ~21 s), a PDF with thousands of tiny images, a
   2,000-page text PDF, a scan too small for OCR, an encrypted PDF, a truncated and a damaged PDF.
2. Creates a vault in a temp folder and runs `ragdesk -v index --json CORPUS HOSTILE` as a user
   would (a child process: parser processes, the built-in embedder, encrypted writes all count).
3. Prints the total wall time, the seconds per stage, the slowest files (with pages), every
   degraded page and failure reason, the slowest file of at most 50 pages (target: <= 60 s), and
   any line the child wrote to its stderr that is not one of our log lines (target: none).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GRID = REPO / "tests" / "data" / "hostile" / "table-grid.pdf"
PASSPHRASE = "benchmark"


def make_vault(home: Path) -> None:
    from ragdesk.core.store.keys import KdfParams
    from ragdesk.core.store.sqlite import vault

    vault.create(home, PASSPHRASE, kdf=KdfParams.fresh(memory_kib=8192, iterations=1, lanes=1)).lock()


def build_hostile(folder: Path) -> None:
    import pymupdf

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(GRID, folder / "table-grid.pdf")

    # Thousands of tiny images: 4 pages x 1,500 draws of one 3x3-pixel image, and no text
    # (written into the content stream: insert_image per draw takes minutes).
    doc = pymupdf.open()
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 3, 3), False)
    pix.clear_with(90)
    for _ in range(4):
        page = doc.new_page()
        page.insert_image(pymupdf.Rect(20, 20, 23, 23), pixmap=pix)
        name = page.get_images(full=True)[0][7]
        ops = [f"q 3 0 0 3 {20 + (i % 50) * 11} {page.rect.height - 23 - (i // 50) * 25} cm /{name} Do Q"
               for i in range(1500)]
        xref = page.get_contents()[0]
        doc.update_stream(xref, doc.xref_stream(xref) + ("\n" + "\n".join(ops)).encode())
    doc.save(folder / "tiny-images.pdf", garbage=3, deflate=True)

    # 2,000 pages of text.
    doc = pymupdf.open()
    for n in range(1, 2001):
        page = doc.new_page()
        page.insert_text((72, 72), f"Page {n} of the long harbour register.", fontsize=12)
        page.insert_textbox(pymupdf.Rect(72, 100, 520, 700),
                            f"Entry {n}: the tide came in at {n % 12 + 1} o'clock and the keeper "
                            f"logged {n * 7 % 97} gulls on the north pier. " * 6, fontsize=10)
    doc.save(folder / "register-2000-pages.pdf", garbage=3, deflate=True)

    # A scan too small to read.
    doc = pymupdf.open()
    page = doc.new_page(width=20, height=20)
    small = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 4, 4), False)
    small.clear_with(200)
    page.insert_image(page.rect, pixmap=small)
    doc.save(folder / "tiny-scan.pdf")

    # Encrypted, and truncated.
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "Secret plans for the harbour.")
    doc.save(folder / "locked.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="u", owner_pw="o")
    data = (GRID).read_bytes()
    (folder / "truncated.pdf").write_bytes(data[: len(data) // 3])  # MuPDF repairs what it can
    (folder / "damaged.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(REPO.parent / "shared" / "corpus"))
    parser.add_argument("--hostile-only", action="store_true", help="leave the corpus out")
    parser.add_argument("--keep", default=None, metavar="DIR", help="build the files here and keep them")
    args = parser.parse_args()

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ragdesk-hostile-"))
    try:
        hostile = work / "hostile"
        started = time.perf_counter()
        build_hostile(hostile)
        print(f"built the hostile files in {time.perf_counter() - started:.1f} s: "
              + ", ".join(sorted(p.name for p in hostile.iterdir())))
        home = work / "home"
        shutil.rmtree(home, ignore_errors=True)
        make_vault(home)
        folders = [str(hostile)] if args.hostile_only else [args.corpus, str(hostile)]
        env = dict(os.environ, RAGDESK_HOME=str(home), RAGDESK_PASSPHRASE=PASSPHRASE)
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "ragdesk", "-v", "index", "--json", *folders],
                              env=env, cwd=REPO, capture_output=True, text=True, timeout=3600)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            print(proc.stderr[-3000:])
            return 1
        summary = json.loads(proc.stdout)
        report(summary, wall, proc.stderr)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def report(summary: dict, wall: float, stderr: str) -> None:
    files = summary["indexed"] + summary["failed"] + summary["unsupported"]
    pages = {d["path"]: d.get("pages", 0) for d in summary["indexed"]}
    print(f"files: {len(files)} ({len(summary['indexed'])} indexed, {len(summary['failed'])} failed,"
          f" {len(summary['unsupported'])} unsupported); pages {summary['pages']},"
          f" chunks {summary['chunks']}")
    print(f"wall time (child process, start to exit): {wall:.1f} s;"
          f" the run's own: {summary['seconds']:.1f} s")
    print("stage seconds (parsing and OCR summed over parser processes):",
          ", ".join(f"{k} {v:.1f}" for k, v in summary["stages"].items()))
    print("slowest files:")
    for d in summary["slowest"]:
        name = Path(d["path"]).name
        print(f"  {d['seconds']:7.1f} s  {name} ({pages.get(d['path'], 0)} pages, {d['status']})")
    short = [d for d in files if pages.get(d["path"], 0) <= 50 and d.get("seconds") is not None]
    worst = max(short, key=lambda d: d.get("seconds", 0.0), default=None)
    if worst is not None:
        print(f"slowest file of <= 50 pages: {Path(worst['path']).name} {worst.get('seconds', 0.0):.1f} s"
              " (target <= 60 s)")
    print(f"degraded pages: {summary['degraded_pages']}")
    for d in summary["indexed"]:
        for g in d.get("degraded", []):
            where = f"pages {g['page']}-{g['last_page']}" if "last_page" in g else f"page {g['page']}"
            print(f"  {Path(d['path']).name} {where}: {g['step']}: {g['reason']}")
    print("indexed with warnings:")
    for d in summary["indexed"]:
        if d.get("warning"):
            print(f"  {Path(d['path']).name}: {d['warning'][:160]}")
    print("failed / unsupported:")
    for d in summary["failed"] + summary["unsupported"]:
        print(f"  {Path(d['path']).name}: {d['reason']}")
    noise = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("INFO ragdesk.")]
    print(f"stderr lines that are not RagDesk's log: {len(noise)}")
    for ln in noise[:10]:
        print(f"  {ln}")


if __name__ == "__main__":
    sys.exit(main())
