"""The title each file of a folder shows, and where it came from (issue 16/17).

    .venv/bin/python benchmarks/bench_titles.py [FOLDER]          # default ../shared/corpus
    .venv/bin/python benchmarks/bench_titles.py --tsv [FOLDER]    # name, metadata, title

Prints one Markdown row per file: its name, the metadata title MuPDF reports (empty for formats
read by our own code) and the title `extract()` chooses, or the reason the file is refused. To
compare with another revision, run the --tsv form in a checkout of it and join the two outputs
on the name (RESULTS.md shows such a comparison).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ragdesk.core.extract import ExtractionError, extract


def _metadata_title(path: Path) -> str:
    try:
        import pymupdf

        with pymupdf.open(path) as doc:
            return str((doc.metadata or {}).get("title") or "")
    except Exception:  # not a format MuPDF opens: our own readers have no metadata title
        return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default="../shared/corpus", type=Path)
    parser.add_argument("--tsv", action="store_true", help="tab-separated, for joining")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"not a folder: {args.folder}", file=sys.stderr)
        return 2
    if not args.tsv:
        print("| file | metadata title | title shown |\n| --- | --- | --- |")
    for path in sorted(p for p in args.folder.iterdir() if p.is_file()):
        try:
            title = extract(path).title
        except ExtractionError as exc:
            title = f"(not indexed: {exc})"
        meta = _metadata_title(path)
        if args.tsv:
            print(f"{path.name}\t{meta}\t{title}")
        else:
            print(f"| {path.name} | {meta!r} | {title} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
