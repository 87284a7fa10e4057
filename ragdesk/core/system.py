"""What the machine has left for RagDesk: available memory and this process's resident size.

Read by `doctor` (is there room for the vector index?) and by the LAN server's `/ready` and
metrics, from one place so both report the same figure.
"""

from __future__ import annotations

import contextlib
from pathlib import Path


def _proc_field(path: str, name: str) -> int | None:
    """A "Name:  123 kB" field of a /proc file, in bytes; None where it cannot be read."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(path).read_text(encoding="ascii").splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
    return None


def available_memory() -> int | None:
    """Bytes of memory available to new work, or None where it cannot be read."""
    found = _proc_field("/proc/meminfo", "MemAvailable")
    if found is not None:
        return found
    try:
        import psutil  # optional: present on some installs (and in the Windows/macOS bundles)
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def process_rss() -> int | None:
    """This process's resident memory in bytes, or None where it cannot be read."""
    return _proc_field("/proc/self/status", "VmRSS")
