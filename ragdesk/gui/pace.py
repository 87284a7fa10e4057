"""How fast an indexing run goes and how long it has left, said only once it means something.

The first files of a run tell little: unchanged files are counted in milliseconds (a run once
opened on "170.3 files/s · under a second left"), and the embedding model and the parser
processes start meanwhile. So the rate counts only files that were read, and it is shown once
enough work was done (`MIN_FILES` files read or `MIN_SECONDS` of work) and the rate of the last
stretch agrees with the rate of the whole run (within `STABLE_RATIO`). Once shown it stays, so the
status bar does not flicker. No Qt here: the controller feeds it Progress records.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ragdesk.core.records import FAILED, INDEXED, UNSUPPORTED

if TYPE_CHECKING:
    from ragdesk.core.indexing import FileOutcome, Progress

MIN_FILES = 5  # files read before a rate is worth saying...
MIN_SECONDS = 10.0  # ...or seconds of work
FIRST_SECONDS = 3.0  # never in a run's first seconds, however many files went by
STABLE_RATIO = 1.5  # the last stretch's rate and the whole run's agree within this factor
WINDOW_SECONDS = 30.0  # "the last stretch": at most this long, at least a third of the run

READ = (INDEXED, FAILED, UNSUPPORTED)


@dataclass(frozen=True)
class Estimate:
    rate: float  # files read per second
    left: float | None  # seconds, None when nothing is left


class Pace:
    """Feed every Progress of one run; `estimate()` is None until a rate means something."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque()  # (elapsed, files read)
        self._read = 0
        self._shown = False
        self._estimate: Estimate | None = None

    def update(self, p: Progress, fresh: Iterable[FileOutcome]) -> Estimate | None:
        """Take the run's progress and the file outcomes new since the last call."""
        self._read += sum(1 for o in fresh if o.status in READ and o.read)
        read = self._read
        now = p.elapsed
        self._samples.append((now, read))
        window = max(min(WINDOW_SECONDS, now), now / 3)
        while len(self._samples) > 2 and self._samples[1][0] < now - window:
            self._samples.popleft()
        self._estimate = self._compute(p, now, read)
        return self._estimate

    def estimate(self) -> Estimate | None:
        return self._estimate

    def _compute(self, p: Progress, now: float, read: int) -> Estimate | None:
        if read == 0 or now < FIRST_SECONDS:
            return None
        if not self._shown and read < MIN_FILES and now < MIN_SECONDS:
            return None
        overall = read / now
        since, read_then = self._samples[0]
        recent = (read - read_then) / (now - since) if now - since > 1.0 else overall
        if not self._shown:
            if recent <= 0 or max(recent, overall) / min(recent, overall) > STABLE_RATIO:
                return None
            self._shown = True
        # The last stretch says more about the files still to come, the whole run steadies it.
        rate = (recent + overall) / 2 if recent > 0 else overall
        remaining = max(p.files_total - p.files_done, 0)
        return Estimate(rate, remaining / rate if remaining and rate > 0 else None)


def describe_left(seconds: float) -> str:
    """Time left in words, as rough as the estimate is: no "under a second"."""
    if seconds < 10:
        return "a few seconds left"
    if seconds < 90:
        return f"about {max(10, round(seconds / 5) * 5):.0f} s left"
    if seconds < 5400:
        return f"about {seconds / 60:.0f} min left"
    return f"about {seconds / 3600:.1f} h left"
