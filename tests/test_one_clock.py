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


# Issue 21 §2: where a clock matters it is required, so a caller that forgets it fails at once instead of silently
# running on a second clock. Only the command-line layer names the process's clock (and passes it down).
COMMAND_LINE = {
    REPO / "firmware" / "cli.py",
    *(REPO / "firmware" / "demo").glob("*.py"),  # `sitegate demo`: a scripted morning, in real time
    REPO / "firmware" / "doctor.py",  # `sitegate doctor`: the device's own reader and service, opened as they are
    *(REPO / "firmware" / "commands").glob("*.py"),
}
SYSTEM_NAMES = {"SYSTEM", "SystemClock"}


def _names_system(node: ast.AST | None) -> bool:
    return node is not None and any(
        isinstance(inner, ast.Name) and inner.id in SYSTEM_NAMES for inner in ast.walk(node)
    )


def _optional_clock(annotation: ast.AST | None) -> bool:
    """`Clock | None` (or None | Clock): a clock someone fills in later, when it is missing."""
    if not isinstance(annotation, ast.BinOp) or not isinstance(annotation.op, ast.BitOr):
        return False
    sides = (annotation.left, annotation.right)
    return any(isinstance(side, ast.Name) and side.id == "Clock" for side in sides) and any(
        isinstance(side, ast.Constant) and side.value is None for side in sides
    )


def clock_fallbacks(path: Path) -> list[str]:
    """A parameter defaulting to the system clock (`clock=SYSTEM`, `clock=SystemClock()`), a parameter typed
    `Clock | None`, and a fallback to it (`clock or SystemClock()`, `now or SYSTEM.now()`, `x if x else SYSTEM`)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = node.args
            for default in [*arguments.defaults, *arguments.kw_defaults]:
                if _names_system(default):
                    found.append(f"{path.name}:{node.lineno} {node.name}: a default on the system clock")
            for argument in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
                if _optional_clock(argument.annotation):
                    found.append(f"{path.name}:{node.lineno} {node.name}: {argument.arg}: Clock | None")
        elif isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or) and _names_system(node):
            found.append(f"{path.name}:{node.lineno} a fallback to the system clock")
        elif isinstance(node, ast.IfExp) and (_names_system(node.body) or _names_system(node.orelse)):
            found.append(f"{path.name}:{node.lineno} a fallback to the system clock")
    return found


def test_the_fallback_finder_sees_each_way_of_defaulting_to_the_system_clock(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from sitegate.clock import SYSTEM, Clock, SystemClock\n"
        "def a(clock=SYSTEM): ...\n"
        "def b(*, clock: Clock = SystemClock()): ...\n"
        "def c(clock: Clock | None = None): ...\n"
        "def d(now=None):\n    return now or SYSTEM.now()\n"
        "def e(clock):\n    return clock if clock else SystemClock()\n"
        "def f(clock: Clock, now=None):\n    return now or clock.now()\n"
    )
    found = clock_fallbacks(sample)
    assert [line.split(" ", 1)[0] for line in found] == [f"sample.py:{n}" for n in (2, 3, 4, 6, 8)], found


@pytest.mark.parametrize("path", product_modules(), ids=lambda path: str(path.relative_to(REPO)))
def test_no_signature_falls_back_to_the_system_clock(path):
    if path == CLOCK_MODULE:
        return
    assert clock_fallbacks(path) == [], "require the clock (the command line passes sitegate.clock.SYSTEM)"


@pytest.mark.parametrize("path", product_modules(), ids=lambda path: str(path.relative_to(REPO)))
def test_only_the_command_line_names_the_system_clock(path):
    if path == CLOCK_MODULE or path in COMMAND_LINE:
        return
    names = [node.id for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Name)]
    assert not SYSTEM_NAMES & set(names), "take the clock as an argument; the command that runs it passes SYSTEM"
