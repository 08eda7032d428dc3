"""Strings where enums belong (issue 21 §5): the outage vocabularies are StrEnums, their stored values frozen (they are
signed in the log), and no module compares or writes one of them as a bare literal (a typo there fails silently)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sitegate.paper_fallback.guidance import Operation, OutageState
from sitegate.paper_fallback.outage import OutageEvent
from sitegate.web.views import Band

REPO = Path(__file__).resolve().parent.parent
PRODUCT = ("firmware", "reader", "queue", "paper_fallback")
# Each value once and never renamed: older logs hold them under these signatures.
VOCABULARY = {v.value for enum in (OutageEvent, OutageState, Operation, Band) for v in enum} - {"ok"}  # "ok": SQLite's
WRITERS = {"_record", "PageState"}  # an outage record's event, the page's band: the first argument


def _words(node: ast.AST | None) -> list[str]:
    """The vocabulary's words in `node`, but not a key looked up (`status["outage"]` names a field, not a state)."""
    if node is None:
        return []
    keys = {id(inner.slice) for inner in ast.walk(node) if isinstance(inner, ast.Subscript)}
    return [
        c.value for c in ast.walk(node) if isinstance(c, ast.Constant) and c.value in VOCABULARY and id(c) not in keys
    ]


def bare_literals(path: Path) -> list[str]:
    """A vocabulary word compared (`== "cleared"`, `in ("opened", ...)`) or given to a writer as a literal."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Compare):
            words = _words(node)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in WRITERS:
            words = _words(node.args[0] if node.args else None)
        else:
            continue
        found += [f"{path.name}:{node.lineno} {word!r}" for word in words]
    return found


def test_the_stored_outage_events_keep_their_values():
    assert {event.value for event in OutageEvent} == {
        "suspected", "opened", "never_connected", "cleared", "closed", "reclassified", "evidence", "power_loss",
    }  # fmt: skip
    assert len(set(OutageEvent)) == len(OutageEvent.__members__)


def test_the_finder_sees_a_bare_outage_word(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        'a = state != "cleared"\nb = what in ("opened", "never_connected")\nc = self._record("power_loss", x=1)\n'
        'd = PageState("suspected", line)\ne = result == "ok"\nf = {"evidence": []}\ng = s["outage"] is None\n'
    )
    assert [line.split(" ")[0] for line in bare_literals(sample)] == [
        "sample.py:1", "sample.py:2", "sample.py:2", "sample.py:3", "sample.py:4",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "path",
    sorted(p for folder in PRODUCT for p in (REPO / folder).rglob("*.py")),
    ids=lambda path: str(path.relative_to(REPO)),
)
def test_no_module_spells_an_outage_word_by_hand(path):
    assert bare_literals(path) == [], "use OutageEvent, OutageState, Operation or Band"
