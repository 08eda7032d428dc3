"""Delivery state beside the signed records: what is pending, in flight, delivered or rejected."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

import sqlite_utils
from sitegate.timefmt import parse_utc

STATES = ("pending", "in_flight", "delivered", "rejected")


@dataclass(frozen=True)
class QueueSummary:
    pending: int
    in_flight: int
    delivered: int
    rejected: int
    oldest_pending_seq: int | None
    oldest_pending_utc: str | None
    oldest_pending_age_s: float | None

    @property
    def undelivered(self) -> int:
        return self.pending + self.in_flight

    def as_dict(self) -> dict:
        return asdict(self)


def summary(db: sqlite_utils.Database, now: datetime) -> QueueSummary:
    counts = dict.fromkeys(STATES, 0)
    counts.update(db.execute("SELECT state, count(*) FROM delivery GROUP BY state").fetchall())
    oldest = db.execute(
        "SELECT d.seq, r.wall_utc FROM delivery d JOIN records r ON r.seq = d.seq "
        "WHERE d.state IN ('pending', 'in_flight') ORDER BY d.seq LIMIT 1"
    ).fetchone()
    age = round((now - parse_utc(oldest[1])).total_seconds(), 3) if oldest else None
    return QueueSummary(
        pending=counts["pending"],
        in_flight=counts["in_flight"],
        delivered=counts["delivered"],
        rejected=counts["rejected"],
        oldest_pending_seq=oldest[0] if oldest else None,
        oldest_pending_utc=oldest[1] if oldest else None,
        oldest_pending_age_s=age,
    )
