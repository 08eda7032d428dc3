"""The floor every durable-write figure is measured against: one raw row committed with the log's pragmas.

Both sides are measured in the steady state of a gate that has run for a while. A new WAL file grows with every
commit, and on ext4 an fdatasync that extends a file also commits the file system's journal; once SQLite has
checkpointed (every 1000 pages) it writes the WAL again from its start, over blocks the file already has. Measured on
this machine: the raw insert costs ~90 µs while its WAL grows and ~40 µs after. Compared in different phases (the
floor growing, the log already rewriting its WAL), the ratio flattered the log by a third.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

WAL_RESTART_PAGES = 1000  # SQLite's default wal_autocheckpoint
WARM_CALLS = 1200  # enough for an insert writing one page or more to pass its first WAL restart


def warm(operation: Callable[[], object], calls: int = WARM_CALLS) -> None:
    """Run a durable write until its WAL has been restarted once: from then on it costs what it will for months."""
    for _ in range(calls):
        operation()


def raw_insert_floor(directory: Path, name: str = "raw.db") -> Callable[[], None]:
    """One row inserted and committed (one fsync), warmed to the steady state."""
    conn = sqlite3.connect(directory / name, isolation_level=None)
    for pragma in ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL"):
        conn.execute(pragma)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT)")
    payload = "x" * 300

    def insert() -> None:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t (payload) VALUES (?)", [payload])
        conn.execute("COMMIT")

    warm(insert)
    return insert


def timed_ms(operation: Callable[[], object]) -> Callable[[], float]:
    """The same operation, returning how long it took in ms (for latency distributions)."""

    def timed() -> float:
        start = time.perf_counter_ns()
        operation()
        return (time.perf_counter_ns() - start) / 1e6

    return timed
