"""The delivery ledger has one door (issue 21 §4): only queue/delivery.py reads or writes its tables, and the daemon's
notes beside the records (heartbeat, readers, stop, outage episode, internet_ok, the forwarder's counts) go through
named accessors there, never a free string key. queue/database.py creates and migrates the tables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PRODUCT = ("firmware", "reader", "queue", "paper_fallback")
DOOR = {REPO / "queue" / "delivery.py", REPO / "queue" / "database.py"}
LEDGER_SQL = re.compile(r"\b(FROM|INTO|UPDATE|JOIN)\s+(delivery|superseded|delivery_meta)\b", re.IGNORECASE)
META_BY_KEY = re.compile(r"\b(get_meta|set_meta)\s*\(")


def doors(text: str) -> list[str]:
    return [m.group(0) for m in LEDGER_SQL.finditer(text)] + [m.group(0) for m in META_BY_KEY.finditer(text)]


def test_the_finder_sees_a_side_door():
    assert doors('db.execute("UPDATE delivery SET corrected_utc = ?")') == ["UPDATE delivery"]
    assert doors('"SELECT seq FROM superseded ORDER BY seq"') == ["FROM superseded"]
    assert doors("delivery.get_meta(db, 'heartbeat_utc')") == ["get_meta("]
    assert doors("INSERT INTO checkpoints; FROM records; delivery.summary(db, now)") == []


@pytest.mark.parametrize(
    "path",
    sorted(p for folder in PRODUCT for p in (REPO / folder).rglob("*.py") if p not in DOOR),
    ids=lambda path: str(path.relative_to(REPO)),
)
def test_only_the_ledgers_module_opens_it(path):
    assert doors(path.read_text()) == [], "go through a named function of queue/delivery.py"
