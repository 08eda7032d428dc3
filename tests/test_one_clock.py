"""One clock per process: only the clock's module reads the system clock; every other module asks the clock it was
given (issue 21 §2). Read from the sources, so a new `datetime.now()` anywhere fails here, not in a soak run."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PRODUCT = ("firmware", "reader", "queue", "paper_fallback")
CLOCK_MODULE = REPO / "firmware" / "clock" / "__init__.py"
# module (or class) name -> the functions on it that read the system's wall or monotonic clock
READS = {
    "time": {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "localtime", "gmtime"},
    "datetime": {"now", "utcnow", "today"},
    "date": {"today"},
}


def clock_reads(path: Path) -> list[str]:
    """`time.time()`, `datetime.now(...)`, `dt.datetime.now()`, `date.today()`, `from time import monotonic`."""
    found = []
    where = path.name
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            owner = node.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
            if node.attr in READS.get(name, ()):
                found.append(f"{where}:{node.lineno} {name}.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module in ("time", "datetime"):
            for alias in node.names:
                if alias.name in READS[node.module]:
                    found.append(f"{where}:{node.lineno} from {node.module} import {alias.name}")
    return found


def product_modules() -> list[Path]:
    return sorted(path for folder in PRODUCT for path in (REPO / folder).rglob("*.py"))


def test_the_finder_sees_each_way_of_reading_the_clock(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import time\nimport datetime as dt\nfrom datetime import UTC, date, datetime\nfrom time import monotonic\n"
        "a = time.time()\nb = dt.datetime.now(UTC)\nc = datetime.now()\nd = date.today()\ne = time.monotonic_ns()\n"
        "f = time.sleep\ng = datetime.fromisoformat('2026-01-01')\n"
    )
    found = sorted(line.split(" ", 1)[1] for line in clock_reads(sample))
    assert found == sorted(
        ["from time import monotonic", "time.time", "datetime.now", "datetime.now", "date.today", "time.monotonic_ns"]
    )


@pytest.mark.parametrize("path", product_modules(), ids=lambda path: str(path.relative_to(REPO)))
def test_no_module_but_the_clock_reads_the_system_clock(path):
    if path == CLOCK_MODULE:
        assert clock_reads(path), "the clock module itself must read the system clock: is the finder blind?"
        return
    assert clock_reads(path) == [], "ask the injected clock (sitegate.clock) instead"
