"""Fuzzing the parsers through the real indexer: do hostile files stay each file's own failure?

Mutates the files of ../shared/corpus -- byte flips and overwrites, truncation, duplicated and
deleted PDF objects, broken xref offsets and stream lengths, corrupted zip members and central
directories for the office/e-book formats, broken encodings and markup for text -- and indexes
them in batches with the real `Indexer` (core/indexing/pipeline.py) into a real encrypted vault:
its parser processes (core/indexing/parse.py: spawned, memory-bounded, killed when they hang)
read every file not small plain text; small text files are read on a thread of the indexing
process itself. The indexing process is a child of this script, so that its death is observed
and counted rather than ending the run.

Reported: files tried; parsed; refused with a reason; refused by an unexpected exception (a
parser bug, still reported as that file's failure); timed out; parser processes that crashed
(reported as that file's failure); and the two targets, both none:
  * crashes of the indexing process (it died, hung, or its run raised);
  * parser crashes not reported as that file's failure: a file blamed for a crash or hang that
    parses alone in a fresh parser process (someone else's crash), or a file with no outcome.
Every finding is kept with its mutation recipe under --findings; `--minimise FILE` shrinks one
while the readers still fail on it the same way (crash, hang, unexpected exception) alone.

Why not atheris (libFuzzer for Python; 3.0 installs on this Python): its mutator only runs inside
its own in-process fuzzing loop, where a hostile file would be parsed in the fuzzer's process --
a native crash ends the run instead of being measured, and the indexer's batch and pool are not
exercised; its coverage feedback sees only instrumented Python, not MuPDF's C, and not across
the process boundary; and its byte-level mutations know nothing of PDF objects or zip members.
So a seeded, format-aware mutator (random.Random per file, reproducible from the seed and the
file's number) does the job here.

Usage:
  python benchmarks/bench_fuzz.py --seconds 600 --seed 1 [--json out.json] [--findings DIR]
  python benchmarks/bench_fuzz.py --minimise FILE [--out SMALL]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

CORPUS = REPO.parent / "shared" / "corpus"
PASSPHRASE = "fuzz"
ZIP_FORMATS = {".docx", ".xlsx", ".pptx", ".epub", ".hwpx", ".xps", ".oxps", ".cbz"}
PDF_OBJECT = re.compile(rb"\d+\s+\d+\s+obj\b.*?endobj", re.S)
CRASHED = "the reader crashed"
TIMED_OUT = "took longer than"
UNEXPECTED = re.compile(r"could not be read \([A-Za-z_][\w.]*(:|\))")  # parse.py's catch-all for a bug


# --- mutations ---------------------------------------------------------------------------------
# Each takes the bytes and a seeded Random and returns new bytes; `name` goes into the recipe.

def flip_bits(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 16)):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


INTERESTING = [b"\x00", b"\xff", b"\x7f", b"\x80", b"(", b")", b"<", b">", b"[", b"]", b"/", b"\\",
               b"-1", b"0", b"2147483647", b"4294967296", b"99999999999", b"\xff\xfe", b"\xef\xbb\xbf"]


def overwrite(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        token = rng.choice(INTERESTING)
        i = rng.randrange(len(out))
        out[i:i + len(token)] = token
    return bytes(out)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(max(1, len(data)))]


def duplicate_span(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data))
    j = min(len(data), i + rng.randint(1, 4096))
    k = rng.randrange(len(data))
    return data[:k] + data[i:j] * rng.randint(1, 8) + data[k:]


def delete_span(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data))
    return data[:i] + data[i + rng.randint(1, 4096):]


def pdf_objects(data: bytes) -> list[re.Match[bytes]]:
    return list(PDF_OBJECT.finditer(data))


def pdf_duplicate_object(data: bytes, rng: random.Random) -> bytes:
    objs = pdf_objects(data)
    if not objs:
        return duplicate_span(data, rng)
    obj = rng.choice(objs)
    body = obj.group(0)
    if rng.random() < 0.5:  # the same object number twice, the copy changed
        body = flip_bits(body, rng) if len(body) > 16 else body
    at = rng.choice(objs).end()
    return data[:at] + b"\n" + body + data[at:]


def pdf_delete_object(data: bytes, rng: random.Random) -> bytes:
    objs = pdf_objects(data)
    if not objs:
        return delete_span(data, rng)
    for obj in sorted(rng.sample(objs, min(len(objs), rng.randint(1, 3))), key=lambda m: -m.start()):
        data = data[:obj.start()] + data[obj.end():]
    return data


def pdf_renumber(data: bytes, rng: random.Random) -> bytes:
    """An object given another's number, or a reference pointing at itself / nowhere."""
    refs = list(re.finditer(rb"(\d+) 0 R", data))
    if not refs:
        return flip_bits(data, rng)
    out = data
    for ref in sorted(rng.sample(refs, min(len(refs), rng.randint(1, 6))), key=lambda m: -m.start()):
        new = str(rng.choice([0, 1, 2, 99999, int(ref.group(1)) + 1, 2**31])).encode()
        out = out[:ref.start(1)] + new + out[ref.end(1):]
    return out


def pdf_numbers(data: bytes, rng: random.Random) -> bytes:
    """/Length, xref offsets, /Count and startxref set to wrong values."""
    targets = list(re.finditer(rb"(/Length|/Count|/N|/First|startxref\s*|/Size|/W \[)\s*(\d+)", data))
    targets += list(re.finditer(rb"^(\d{10}) \d{5} [nf]", data, re.M))
    if not targets:
        return overwrite(data, rng)
    out = data
    for m in sorted(rng.sample(targets, min(len(targets), rng.randint(1, 4))), key=lambda m: -m.start()):
        group = m.lastindex or 1
        new = str(rng.choice([0, 1, -1, 7, 2**31 - 1, 2**32, 10**12, rng.randrange(1 << 20)])).encode()
        out = out[:m.start(group)] + new + out[m.end(group):]
    return out


def pdf_stream(data: bytes, rng: random.Random) -> bytes:
    """Damage inside a (usually compressed) stream: flate data, images, fonts, content."""
    streams = list(re.finditer(rb"stream\r?\n(.*?)endstream", data, re.S))
    if not streams:
        return flip_bits(data, rng)
    m = rng.choice(streams)
    body = m.group(1)
    if not body:
        return data
    body = rng.choice([flip_bits, truncate, overwrite, duplicate_span])(body, rng)
    return data[:m.start(1)] + body + data[m.end(1):]


def zip_member(data: bytes, rng: random.Random) -> bytes:
    """One member's content corrupted (XML broken, truncated, bits flipped), rewritten as a
    valid zip; or a member dropped, or duplicated under the same name."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [(info, zf.read(info)) for info in zf.infolist()]
    except Exception:  # an input already damaged by an earlier mutation: damage it further
        return flip_bits(data, rng)
    if not members:
        return data
    victim = rng.randrange(len(members))
    how = rng.choice(["content", "content", "content", "drop", "twice", "huge-name"])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        for i, (info, content) in enumerate(members):
            if i == victim and how == "drop":
                continue
            if i == victim and how == "content" and content:
                content = rng.choice([flip_bits, truncate, overwrite, delete_span, duplicate_span,
                                      broken_encoding])(content, rng)
            if i == victim and how == "huge-name":
                info = zipfile.ZipInfo(info.filename + "/" + "x" * 4000, info.date_time)
            with __import__("warnings").catch_warnings():
                __import__("warnings").simplefilter("ignore")  # duplicate names are the point
                out.writestr(info, content, compress_type=info.compress_type)
                if i == victim and how == "twice":
                    out.writestr(info, flip_bits(content, rng) if content else b"x")
    return buf.getvalue()


def zip_raw(data: bytes, rng: random.Random) -> bytes:
    """The container itself damaged: compressed bytes flipped behind a valid CRC, the central
    directory's sizes and offsets changed, sizes claiming far more than is there."""
    out = bytearray(data)
    spots = [m.start() for m in re.finditer(rb"PK\x01\x02", data)] or [0]
    how = rng.choice(["payload", "directory", "local"])
    if how == "payload":
        return flip_bits(data, rng)
    table = spots if how == "directory" else [m.start() for m in re.finditer(rb"PK\x03\x04", data)] or [0]
    at = rng.choice(table)
    # central header: sizes at +20/+24, offset at +42; local header: sizes at +18/+22
    field_at = at + rng.choice([20, 24, 42] if how == "directory" else [18, 22, 26])
    value = rng.choice([0, 1, 0xFFFFFFFF, 0x7FFFFFFF, rng.randrange(1 << 32)])
    out[field_at:field_at + 4] = value.to_bytes(4, "little")
    return bytes(out[:len(data)])


def broken_encoding(data: bytes, rng: random.Random) -> bytes:
    """Invalid UTF-8, overlong forms, encoded surrogates, a BOM that lies, NULs, mixed code pages,
    a multi-byte character cut at the end."""
    junk = rng.choice([b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xff\xfe",
                       b"\xfe\xff", b"\x00" * rng.randint(1, 64), "é".encode("latin-1"),
                       "中文".encode("gb18030"), b"\xe2\x82", b"\x1b$B", b"\r" * 50])
    how = rng.choice(["insert", "insert", "bom", "utf16", "cut"])
    if how == "bom":
        return rng.choice([b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf\xef\xbb\xbf", b"\x00\x00\xfe\xff"]) + data
    if how == "utf16":
        try:
            return data.decode("utf-8", "replace").encode(rng.choice(["utf-16-le", "utf-16-be", "utf-32"]))
        except UnicodeError:
            return data
    if how == "cut":
        return data + "€".encode()[:rng.randint(1, 2)]
    out = data
    for _ in range(rng.randint(1, 10)):
        i = rng.randrange(len(out) + 1)
        out = out[:i] + junk + out[i:]
    return out


def broken_markup(data: bytes, rng: random.Random) -> bytes:
    """Deep nesting, unclosed tags, entities that expand, a huge attribute."""
    how = rng.choice(["nest", "unclosed", "entity", "attribute"])
    i = rng.randrange(len(data) + 1)
    if how == "nest":
        depth = rng.choice([100, 5000, 50000])
        tag = rng.choice([b"div", b"b", b"table", b"ul", b"p"])
        return data[:i] + (b"<" + tag + b">") * depth + b"x" + data[i:]
    if how == "unclosed":
        return data[:i] + b"<a href=\"" + data[i:]
    if how == "entity":
        return data[:i] + b"&#x110000;&#0;&#xD800;&bogus;&amp" * rng.randint(1, 200) + data[i:]
    return data[:i] + b"<span title=\"" + b"A" * rng.choice([10**4, 10**6]) + b"\">" + data[i:]


GENERIC: list[Callable[[bytes, random.Random], bytes]] = [
    flip_bits, overwrite, truncate, duplicate_span, delete_span]
BY_KIND: dict[str, list[Callable[[bytes, random.Random], bytes]]] = {
    "pdf": [pdf_duplicate_object, pdf_delete_object, pdf_renumber, pdf_numbers, pdf_stream, pdf_stream,
            *GENERIC],
    # Mostly a member's content: damage to the container itself is refused before any reader
    # sees it (core/extract/zipsafe.py), which a few tries show well enough.
    "zip": [zip_member] * 8 + [zip_raw, flip_bits, truncate],
    "text": [broken_encoding, broken_encoding, broken_markup, *GENERIC],
    "other": GENERIC,
}
TEXT_SUFFIXES = {".md", ".txt", ".html", ".htm", ".xhtml", ".svg", ".fb2", ".csv", ".json", ".xml", ".eml"}


def kind_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return "pdf"
    if suffix in ZIP_FORMATS:
        return "zip"
    return "text" if suffix in TEXT_SUFFIXES else "other"


def mutate(data: bytes, kind: str, rng: random.Random) -> tuple[bytes, list[str]]:
    """One to three stacked mutations of `kind`'s set; the names applied."""
    names = []
    for _ in range(1 if kind == "zip" else rng.choice([1, 1, 1, 2, 3])):
        if not data:
            break
        op = rng.choice(BY_KIND[kind])
        data = op(data, rng)
        names.append(op.__name__)
    return data, names


# --- the indexing process (a child of the fuzzer) ----------------------------------------------

def indexer_main(home: Path, workers: int, parse_timeout: float) -> int:
    """Read batch folders from stdin, index each with the real Indexer into the vault at `home`,
    answer one JSON line per batch: each file's status and reason."""
    from ragdesk.core import extract
    from ragdesk.core.indexing import Indexer, IndexOptions
    from ragdesk.core.store.open import open_store
    from tests.fakes.embedder import HashEmbedder

    store = open_store(home, PASSPHRASE)
    # OCR off: Tesseract is an outside program and slow; the target is the readers themselves.
    options = IndexOptions(workers=workers, parse_timeout=parse_timeout, keep_originals=False,
                           limits=extract.Limits(ocr=False))
    embedder = HashEmbedder()
    for line in sys.stdin:
        folder = Path(line.strip())
        t0 = time.perf_counter()
        try:
            outcomes = {}
            progress = list(Indexer(store, embedder, options).run([folder]))
            for o in progress[-1].outcomes if progress else []:
                outcomes[Path(o.path).name] = [o.status, o.reason]
            answer = {"outcomes": outcomes, "seconds": time.perf_counter() - t0}
        except Exception:
            answer = {"error": traceback.format_exc(), "seconds": time.perf_counter() - t0}
        print(json.dumps(answer), flush=True)
    store.lock()
    return 0


class IndexingProcess:
    """The child that indexes; restarted after it dies."""

    def __init__(self, work: Path, workers: int, parse_timeout: float) -> None:
        self.work, self.workers, self.parse_timeout = work, workers, parse_timeout
        self.starts = 0
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        from ragdesk.core.store.keys import KdfParams
        from ragdesk.core.store.open import open_store

        self.starts += 1
        home = self.work / f"vault-{self.starts}"
        open_store(home, PASSPHRASE, create=True, kdf=KdfParams.fresh(memory_kib=8192, iterations=1,
                                                                       lanes=1)).lock()
        self.log_path = self.work / f"indexer-{self.starts}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--indexer", str(home), "--workers", str(self.workers),
             "--parse-timeout", str(self.parse_timeout)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=REPO,
            start_new_session=True)

    def index(self, folder: Path, timeout: float) -> dict | str:
        """The batch's answer, or why the indexing process failed ('died with ...', 'hung')."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.write(f"{folder}\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return self._ended()
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            self.stop()
            return f"hung: no answer within {timeout:.0f} s"
        line = self.proc.stdout.readline()
        if not line:
            return self._ended()
        answer = json.loads(line)
        if "error" in answer:
            return "its run raised: " + answer["error"].strip().splitlines()[-1]
        return answer

    def _ended(self) -> str:
        assert self.proc is not None
        code = self.proc.wait()
        self.proc = None
        self.log.close()
        last = self.log_path.read_text(errors="replace").strip().splitlines()[-3:]
        how = f"died with exit code {code}" if code >= 0 else f"died by signal {signal.Signals(-code).name}"
        return how + (f" ({' | '.join(last)})" if last else "")

    def stop(self) -> None:
        if self.proc is not None:
            with __import__("contextlib").suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None


# --- one file alone, in a fresh indexing process (the oracle for blame) -----------------------

def verdict(status: str, reason: str) -> str:
    """'crashed', 'timed out' or 'ok' (indexed or refused for a reason of its own)."""
    if status != "indexed" and CRASHED in reason:
        return "crashed"
    if status != "indexed" and (TIMED_OUT in reason or "hung" in reason):
        return "timed out"
    return "ok"


def parse_alone(path: Path, timeout: float) -> str:
    """How `path` fares indexed alone by a fresh indexing process with one parser process:
    'crashed', 'timed out', 'ok', or 'indexing process: ...' when that process itself failed."""
    work = Path(tempfile.mkdtemp(prefix="ragdesk-fuzz-alone-"))
    try:
        folder = work / "alone"
        folder.mkdir()
        shutil.copy(path, folder / path.name)
        child = IndexingProcess(work, workers=1, parse_timeout=timeout)
        try:
            answer = child.index(folder, timeout=timeout * 3 + 120)
        finally:
            child.stop()
        if isinstance(answer, str):
            return f"indexing process: {answer}"
        status, reason = answer["outcomes"].get(path.name, ["missing", "no outcome"])
        return verdict(status, reason or "")
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- the run -----------------------------------------------------------------------------------

@dataclass
class Figures:
    seed: int
    seconds: float = 0.0
    batches: int = 0
    tried: int = 0
    parsed: int = 0
    refused: int = 0  # failed or unsupported, with a reason
    refused_unexpected: int = 0  # of those: an exception the readers did not anticipate (a bug)
    timed_out: int = 0
    parser_crashes: int = 0  # reported as that file's failure
    pages_skipped_after_crash: int = 0  # indexed, with a page its reader crashed on left out
    indexing_process_crashes: int = 0  # target: none
    unreported_parser_crashes: int = 0  # target: none
    seconds_indexing: float = 0.0  # the indexing process's runs over the batches
    seconds_alone: float = 0.0  # indexing blamed files again, alone (the blame check)
    by_format: dict[str, Counter[str]] = field(default_factory=dict)
    reasons: Counter[str] = field(default_factory=Counter)
    findings: list[dict[str, str]] = field(default_factory=list)


def reason_class(reason: str) -> str:
    """A reason without its numbers and quoted parts, to count like reasons together."""
    return re.sub(r"\b\d+(\.\d+)?\b", "N", re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", reason))[:110]


def make_file(seed: int, number: int, originals: list[tuple[Path, bytes]]) -> tuple[str, bytes, Path, str]:
    """File `number` of the run with `seed`: its name, bytes, source and recipe (reproducible)."""
    rng = random.Random(f"{seed}:{number}")
    source, data = rng.choice(originals)
    mutated, ops = mutate(data, kind_of(source), rng)
    name = f"{number:06d}-{source.stem[:24]}{source.suffix}"
    return name, mutated, source, f"seed {seed}, file {number}: {source.name} <- {'+'.join(ops)}"


def load_corpus(corpus: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in sorted(corpus.iterdir()) if p.is_file()]


def run(seconds: float, seed: int, batch: int, workers: int, parse_timeout: float,
        findings_dir: Path, corpus: Path, verbose: bool) -> Figures:
    originals = load_corpus(corpus)
    figures = Figures(seed=seed)
    findings_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ragdesk-fuzz-"))
    indexer = IndexingProcess(work, workers, parse_timeout)
    started = time.monotonic()
    number = 0
    try:
        indexer.start()
        while time.monotonic() - started < seconds:
            folder = work / f"batch-{figures.batches:05d}"
            folder.mkdir()
            recipes: dict[str, tuple[Path, str]] = {}
            for _ in range(batch):
                name, mutated, source, recipe = make_file(seed, number, originals)
                (folder / name).write_bytes(mutated)
                recipes[name] = (source, recipe)
                number += 1
            answer = indexer.index(folder, timeout=batch * parse_timeout * 2 + 120)
            figures.batches += 1
            figures.tried += len(recipes)
            if isinstance(answer, str):
                figures.indexing_process_crashes += 1
                keep = findings_dir / f"indexing-process-{folder.name}"
                shutil.copytree(folder, keep, dirs_exist_ok=True)
                figures.findings.append({"kind": "indexing process", "what": answer, "kept": str(keep)})
                print(f"fuzz: the indexing process {answer} on {folder.name} (kept in {keep})", flush=True)
            else:
                figures.seconds_indexing += answer["seconds"]
                classify(answer["outcomes"], recipes, folder, figures, findings_dir, parse_timeout)
            shutil.rmtree(folder, ignore_errors=True)
            if verbose:
                print(f"fuzz: {time.monotonic() - started:5.0f} s, {figures.tried} tried", flush=True)
    finally:
        indexer.stop()
        shutil.rmtree(work, ignore_errors=True)
    figures.seconds = round(time.monotonic() - started, 1)
    return figures


def classify(outcomes: dict[str, list], recipes: dict[str, tuple[Path, str]], folder: Path,
             figures: Figures, findings_dir: Path, parse_timeout: float) -> None:
    for name, (source, recipe) in recipes.items():
        fmt = source.suffix.lower().lstrip(".")
        counts = figures.by_format.setdefault(fmt, Counter())
        counts["tried"] += 1
        if name not in outcomes:
            figures.unreported_parser_crashes += 1
            keep_finding(figures, findings_dir, folder / name, recipe, "no outcome reported")
            continue
        status, reason = outcomes[name]
        reason = reason or ""
        if status == "indexed":
            figures.parsed += 1
            counts["parsed"] += 1
            if "crash" in reason:  # a page that crashed its reader was skipped, the rest kept
                figures.pages_skipped_after_crash += 1
            continue
        seen = verdict(status, reason)
        if seen != "ok":
            crashed = seen == "crashed"
            t0 = time.monotonic()
            alone = parse_alone(folder / name, timeout=parse_timeout)
            figures.seconds_alone += time.monotonic() - t0
            if alone == "ok":  # blamed for a crash or hang that was not its own
                figures.unreported_parser_crashes += 1
                keep_finding(figures, findings_dir, folder / name, recipe,
                             f"blamed ('{reason}') but parses alone")
                continue
            if crashed:
                figures.parser_crashes += 1
                counts["crashed"] += 1
            else:
                figures.timed_out += 1
                counts["timed out"] += 1
            keep_finding(figures, findings_dir, folder / name, recipe, f"{reason} (alone: {alone})")
            continue
        figures.refused += 1
        counts["refused"] += 1
        figures.reasons[reason_class(reason)] += 1
        if UNEXPECTED.search(reason):
            figures.refused_unexpected += 1
            keep_finding(figures, findings_dir, folder / name, recipe, reason)


def keep_finding(figures: Figures, findings_dir: Path, path: Path, recipe: str, what: str) -> None:
    keep = findings_dir / path.name
    shutil.copy(path, keep)
    keep.with_suffix(keep.suffix + ".txt").write_text(f"{recipe}\n{what}\n", encoding="utf-8")
    figures.findings.append({"file": str(keep), "recipe": recipe, "what": what})
    print(f"fuzz: finding: {path.name}: {what} ({recipe})", flush=True)


def report(f: Figures) -> str:
    lines = [
        f"fuzz: seed {f.seed}, {f.seconds:.0f} s, {f.batches} batches, {f.tried} files tried "
        f"({f.tried / max(f.seconds, 1e-9):.1f}/s; indexing {f.seconds_indexing:.0f} s,"
        f" blamed files again alone {f.seconds_alone:.0f} s)",
        f"  parsed                                   {f.parsed}",
        f"  refused with a reason                    {f.refused}"
        f" (of which by an unexpected exception: {f.refused_unexpected})",
        f"  timed out                                {f.timed_out}",
        f"  parser process crashed (reported as that file's failure) {f.parser_crashes}",
        f"  indexed with a page that crashed its reader skipped {f.pages_skipped_after_crash}",
        f"  indexing process crashed                 {f.indexing_process_crashes}  (target 0)",
        f"  parser crashes not reported as that file's failure {f.unreported_parser_crashes}  (target 0)",
        "  by format (tried / parsed / refused / timed out / crashed):",
    ]
    for fmt, c in sorted(f.by_format.items()):
        lines.append(f"    {fmt:<6} {c['tried']:>5} {c['parsed']:>6} {c['refused']:>6} {c['timed out']:>5}"
                     f" {c['crashed']:>5}")
    lines.append("  most common reasons:")
    lines.extend(f"    {n:>5}  {r}" for r, n in f.reasons.most_common(12))
    return "\n".join(lines)


# --- minimising a finding ----------------------------------------------------------------------

EXTRACT_ALONE = """
import sys
from pathlib import Path
from ragdesk.core import extract
try:
    extract.extract(Path(sys.argv[1]), limits=extract.Limits(ocr=False))
    print("ok")
except extract.ExtractionError:
    print("ok")
except Exception as exc:
    print("raised " + type(exc).__name__)
"""


def extract_alone(path: Path, timeout: float) -> str:
    """How the readers (core/extract) fare on `path` in a fresh process: 'ok' (read or refused
    with a reason), 'raised X' (an unexpected exception), 'crashed (SIGSEGV)', 'timed out'."""
    try:
        proc = subprocess.run([sys.executable, "-c", EXTRACT_ALONE, str(path)], capture_output=True,
                              text=True, timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return "timed out"
    if proc.returncode < 0:
        return f"crashed ({signal.Signals(-proc.returncode).name})"
    lines = proc.stdout.strip().splitlines()
    return lines[-1] if lines else f"crashed (exit {proc.returncode})"


def minimise(path: Path, out: Path, timeout: float) -> int:
    """Shrink `path` (delta debugging over byte ranges) while the readers still fail on it the
    same way in a fresh process (extract_alone); write the result to `out`."""
    with tempfile.TemporaryDirectory(prefix="ragdesk-min-") as folder:
        return _minimise(path, Path(folder) / path.name, out, timeout)


def _minimise(path: Path, tmp: Path, out: Path, timeout: float) -> int:
    data = path.read_bytes()
    tmp.write_bytes(data)
    wanted = extract_alone(tmp, timeout)
    if wanted == "ok":
        print(f"minimise: the readers read or refuse {path} alone: nothing to minimise", file=sys.stderr)
        return 1
    chunk = len(data) // 2
    while chunk >= 1:
        i, shrunk = 0, False
        while i < len(data):
            candidate = data[:i] + data[i + chunk:]
            tmp.write_bytes(candidate)
            if candidate and extract_alone(tmp, timeout) == wanted:
                data, shrunk = candidate, True
            else:
                i += chunk
        print(f"minimise: {len(data)} bytes (chunk {chunk})", flush=True)
        if not shrunk:
            chunk //= 2
        if chunk < 64 and len(data) > 64 * 1024:
            break  # byte by byte over a big file takes hours; small enough for a regression file
    out.write_bytes(data)
    print(f"minimise: {path} ({path.stat().st_size} bytes) -> {out} ({len(data)} bytes), still {wanted}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to fuzz")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=24, help="files per indexing run")
    parser.add_argument("--workers", type=int, default=2, help="parser processes of the indexer")
    parser.add_argument("--parse-timeout", type=float, default=20.0,
                        help="seconds one file may take (the indexer's parse_timeout)")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--findings", type=Path,
                        default=Path(tempfile.gettempdir()) / "ragdesk-fuzz-findings")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--minimise", type=Path, metavar="FILE", help="shrink a finding instead of fuzzing")
    parser.add_argument("--out", type=Path, help="where --minimise writes (default FILE.min)")
    parser.add_argument("--replay", nargs=3, metavar=("FIRST", "COUNT", "DIR"),
                        help="write files FIRST..FIRST+COUNT-1 of the run with --seed into DIR")
    parser.add_argument("--indexer", type=Path, help=argparse.SUPPRESS)  # the child's role
    args = parser.parse_args()
    if args.indexer:
        return indexer_main(args.indexer, args.workers, args.parse_timeout)
    if args.replay:
        first, count, folder = int(args.replay[0]), int(args.replay[1]), Path(args.replay[2])
        folder.mkdir(parents=True, exist_ok=True)
        originals = load_corpus(args.corpus)
        for number in range(first, first + count):
            name, data, _source, recipe = make_file(args.seed, number, originals)
            (folder / name).write_bytes(data)
            print(f"{name}: {recipe}")
        return 0
    if args.minimise:
        return minimise(args.minimise, args.out or args.minimise.with_name(args.minimise.name + ".min"),
                        args.parse_timeout)
    figures = run(args.seconds, args.seed, args.batch, args.workers, args.parse_timeout,
                  args.findings, args.corpus, args.verbose)
    print(report(figures))
    if args.json:
        # (asdict would rebuild each Counter from its (key, count) pairs: plain dicts first)
        plain = {**vars(figures), "reasons": dict(figures.reasons),
                 "by_format": {k: dict(v) for k, v in figures.by_format.items()}}
        args.json.write_text(json.dumps(plain, indent=1), encoding="utf-8")
    return 0 if not (figures.indexing_process_crashes or figures.unreported_parser_crashes) else 1


if __name__ == "__main__":
    sys.exit(main())
