"""The doctor's report: every check's outcome, whether all is well, and how it is printed
(plain text, one line per check; or JSON)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ragdesk import __version__
from ragdesk.cli.doctor.checks import FAIL, PASS, SKIP, WARN, Check


@dataclass
class Report:
    checks: list[Check]
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not any(c.status == FAIL for c in self.checks)

    @property
    def skipped(self) -> list[Check]:
        return [c for c in self.checks if c.status == SKIP]

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "version": __version__, "seconds": round(self.seconds, 3),
                "checks": [asdict(c) for c in self.checks],
                "skipped": [c.name for c in self.skipped]}


_MARK = {PASS: "ok  ", WARN: "warn", FAIL: "FAIL", SKIP: "skip"}


def render(report: Report) -> str:
    """Plain-text report: one line per check, remedies indented below."""
    lines = []
    for c in report.checks:
        lines.append(f"[{_MARK[c.status]}] {c.name:<22} {c.summary}")
        if c.remedy and c.status != PASS:
            lines.append(f"       {'':<22} -> {c.remedy}")
    fails = sum(c.status == FAIL for c in report.checks)
    warns = sum(c.status == WARN for c in report.checks)
    skips = len(report.skipped)
    lines.append("")
    lines.append(f"{'No problems' if not fails else f'{fails} problem(s)'}"
                 f", {warns} warning(s), {skips} check(s) skipped ({report.seconds:.1f} s)")
    return "\n".join(lines)
