"""Count copies of secrets in a process's memory (Linux: /proc/PID/maps and /proc/PID/mem), for
the tests that check what key material is left after a vault is locked (issue 19, item 11).

The secrets to look for are given as bytearrays and the scan reads memory into an mmap buffer,
so that in the scanning process itself neither the needles nor the scan's buffer count: the
count is of copies the code under test left behind."""

from __future__ import annotations

import ctypes
import mmap
import os

_CHUNK = 1 << 22
_SKIP = ("[vvar]", "[vsyscall]", "[vvar_vclock]")


def hex_of(raw: bytearray) -> bytearray:
    """Lower-case hex of `raw`, built without an immutable copy (bytes.hex() would be one)."""
    digits = b"0123456789abcdef"
    out = bytearray(2 * len(raw))
    for i, b in enumerate(raw):
        out[2 * i] = digits[b >> 4]
        out[2 * i + 1] = digits[b & 15]
    return out


def _address(buffer: bytearray | mmap.mmap) -> int:
    return ctypes.addressof((ctypes.c_char * len(buffer)).from_buffer(buffer))


def scan(needles: dict[str, bytearray], pid: int | str = "self") -> dict[str, int]:
    """How many times each needle occurs in the readable memory of process `pid`."""
    buf = mmap.mmap(-1, _CHUNK)
    own: list[tuple[int, int]] = []
    if pid == "self" or pid == os.getpid():
        own = [(a, a + len(b)) for b in (buf, *needles.values()) for a in [_address(b)]]
    counts = dict.fromkeys(needles, 0)
    longest = max(len(n) for n in needles.values())
    regions = []
    with open(f"/proc/{pid}/maps", encoding="ascii") as maps:
        for line in maps:
            parts = line.split()
            if parts[1][0] != "r" or (len(parts) > 5 and parts[5] in _SKIP):
                continue
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            regions.append((lo, hi))
    fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    view = memoryview(buf)
    try:
        for lo, hi in regions:
            pos = lo
            while pos < hi:
                size = min(_CHUNK, hi - pos)
                try:
                    got = os.preadv(fd, [view[:size]], pos)
                except OSError:
                    break
                if got <= 0:
                    break
                last = got < size or pos + got >= hi
                # Chunks overlap by the longest needle, so a copy across an edge is seen; a copy
                # starting in the overlap is counted with the next chunk.
                limit = got if last else got - longest + 1
                for name, needle in needles.items():
                    i = buf.find(needle, 0, got)
                    while 0 <= i < limit:
                        if not any(a <= pos + i < b for a, b in own):
                            counts[name] += 1
                        i = buf.find(needle, i + 1, got)
                if last:
                    break
                pos += limit
    finally:
        os.close(fd)
        view.release()
        buf.close()
    return counts
