"""What the `sitegate` command prints: readable tables for people, JSON for scripts, progress for long work.

The one place of the commands' formatting: exit codes, tables, flagged lines, times in Brussels time.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tqdm import tqdm

from sitegate.clock.timefmt import show

# Exit codes monitoring can use.
OK, WARNING, CRITICAL = 0, 1, 2
PIPE_CLOSED = 141  # the output's reader went away (`| head`): as a process stopped by SIGPIPE, 128 + 13


@dataclass
class Report:
    """What a command found: `data` for --json, `text` for a person, `code` for monitoring, `notes` to stderr."""

    data: object
    text: str = ""
    code: int = OK
    notes: list[str] = field(default_factory=list)


def severity(critical: object = False, warning: object = False) -> int:
    """The exit code of what a command found: critical before warning."""
    return CRITICAL if critical else WARNING if warning else OK


def emit(report: Report, as_json: bool) -> int:
    """The one place a command's answer is printed, as JSON or as text."""
    for note in report.notes:
        print(note, file=sys.stderr)
    if as_json:
        print_json(report.data)
    elif report.text:
        print(report.text)
    return report.code


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def table(rows: Iterable[Sequence[object]], headers: Sequence[str]) -> str:
    rows = [["" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def pairs(items: Iterable[tuple[str, object]]) -> str:
    """A two-column key: value listing."""
    items = list(items)
    width = max((len(k) for k, _ in items), default=0)
    return "\n".join(f"{k.ljust(width)}  {'' if v is None else v}" for k, v in items)


def fields(data: dict[str, object]) -> str:
    """A record's fields as a key: value listing, its names spelled as words."""
    return pairs((name.replace("_", " "), value) for name, value in data.items())


def flagged(warnings: Iterable[str] = (), critical: Iterable[str] = ()) -> str:
    """Lines under an answer that need someone, each with its level in front, the critical ones first."""
    return "".join(f"\nCRITICAL {line}" for line in critical) + "".join(f"\nWARNING  {line}" for line in warnings)


def when(moment: str | None, otherwise: str = "never") -> str:
    """A stored time in Brussels time, or what to say when there is none."""
    return show(moment) if moment else otherwise


def progress(total: int | None, description: str) -> tqdm:
    """A progress bar on stderr, shown only on a terminal (never in journald or a pipe)."""
    return tqdm(total=total, desc=description, unit="rec", file=sys.stderr, disable=None, leave=False)


def held_for_clock(count: int, oldest_utc: str | None, at_most_s: float | None) -> str:
    """Why registrations wait although the service may answer: the clock (delivery.ClockHold)."""
    if not count:
        return "none"
    some = f"{count} registration{'s' if count > 1 else ''} captured since {show(oldest_utc)} (by the clock"
    if at_most_s is None:
        return f"{some} before a step) wait for their corrected time: re-dated within seconds"
    left = max(0, round(at_most_s))
    within = f"{left // 60} min {left % 60:02d} s" if left >= 60 else f"{left} s"
    return (
        f"{some}, not yet synchronised) wait for its first sync: sent with their true time when it comes, "
        f"or as captured (a clock warning) in {within} at most"
    )
