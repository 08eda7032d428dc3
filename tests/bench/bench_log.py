"""The log's benchmarks: a durable signed append against the raw fsync floor, and at 1,000,000 records.

`append_pages` counts the pages one append writes to the WAL (each commit appends one frame per page it changed:
a 24-byte header and the page), from the WAL file's growth over many appends. `strace -c -e pwrite64` counts
about twice as many calls: SQLite writes each frame's header and page with two pwrite64 calls (the ~5.4 "page
writes" once quoted were 2.6 frames). Measured on this schema, 4 KiB pages, 600 appends (pages per append):
remark 14's key in its own WITHOUT ROWID table 2.59, as a column of records with a partial UNIQUE index 2.59 (the
index is a B-tree of its own all the same), records alone 1.33; 8 KiB pages 2.27 but 18.6 KiB written per append
against 10.6 KiB: fewer pages, more bytes (and the page size of a WAL database cannot change without a VACUUM).
"""

from __future__ import annotations

import itertools
import sqlite3
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from floor import warm

from sitegate.clock import SystemClock
from sitegate.clock.timefmt import format_utc
from sitegate.domain.identifiers import WorkerId
from sitegate.domain.registration import Registration, append_registration
from sitegate.queue import database
from sitegate.queue.log import RegistrationLog
from sitegate.queue.records import GENESIS_HASH, canonical_json, digest, signed_message
from sitegate.queue.signing import DeviceKey

SAMPLES = 1000
PAGE_SAMPLES = 200  # appends counted; fewer frames than the WAL's auto-checkpoint (1000 pages) would restart at
WAL_FRAME_HEADER = 24
BIG = 1_000_000
_counter = itertools.count()


def next_registration() -> Registration:
    index = next(_counter)
    return Registration(WorkerId("limosa", f"{index:017d}"), "0403170701", "IN", "1Y101DRUNWB5Z", "04A1B2C3", "gate")


def fill(path: Path, key: DeviceKey, count: int) -> None:
    """Write `count` real signed, chained registrations fast (one transaction, no fsync per row)."""
    db = database.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    RegistrationLog(db, key, SystemClock(), "bench")  # records the key in meta
    start = datetime(2026, 1, 1, tzinfo=UTC)
    prev = GENESIS_HASH
    records, keys = [], []
    with database.immediate(db):
        for seq in range(1, count + 1):
            registration = next_registration()
            payload = registration.payload()
            wall = format_utc(start + timedelta(seconds=seq))
            message = signed_message(seq, "registration", payload, wall, seq * 1000, "bench", "synced", 0, prev)
            record_hash = digest(message)
            records.append(
                (
                    seq,
                    "registration",
                    canonical_json(payload),
                    wall,
                    seq * 1000,
                    "bench",
                    "synced",
                    0,
                    prev,
                    record_hash,
                    key.sign(message),
                )
            )
            keys.append((record_hash, seq))
            prev = record_hash
            if len(records) == 20_000 or seq == count:
                db.conn.executemany("INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?)", records)
                db.conn.executemany("INSERT INTO registration_keys VALUES (?,?)", keys)
                records.clear(), keys.clear()
    db.close()


def appender(path: Path, key: DeviceKey):
    log = RegistrationLog(database.connect(path, with_ledger=False), key, SystemClock(), "bench")  # as the gate
    return lambda: append_registration(log, next_registration())


def wal_pages_per_append(path: Path, operation, count: int = PAGE_SAMPLES) -> float:
    """Pages one call of `operation` writes to the WAL of `path`, from the WAL file's growth (measured, not known)."""
    watcher = sqlite3.connect(path, isolation_level=None)
    try:
        page_size = watcher.execute("PRAGMA page_size").fetchone()[0]
        watcher.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # an empty WAL: what follows only grows it
        wal = Path(f"{path}-wal")
        before = wal.stat().st_size
        for _ in range(count):
            operation()
        frames = (wal.stat().st_size - before) / (page_size + WAL_FRAME_HEADER)
    finally:
        watcher.close()
    return frames / count


def interleaved_medians(operations: dict, samples: int) -> dict:
    """Median time of each operation, taken in turn one call each, so disk and machine drift hit all alike."""
    times: dict[str, list[float]] = {name: [] for name in operations}
    for _ in range(samples):
        for name, operation in operations.items():
            start = time.perf_counter_ns()
            operation()
            times[name].append((time.perf_counter_ns() - start) / 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def bench_log(scratch: Path, cache: Path, raw_insert_floor, result, settle=lambda: None) -> list[dict]:
    key_path = cache / "bench-1m.key"
    big_path = cache / f"bench-1m-log-v{database.SCHEMA_VERSION}.db"
    key = DeviceKey.load_or_create(key_path)
    if not big_path.exists():
        print(f"building a log of {BIG:,} signed records once (cached in {big_path}) …", flush=True)
        partial = big_path.with_suffix(".partial")
        for leftover in cache.glob(partial.name + "*"):
            leftover.unlink()
        fill(partial, key, BIG)
        partial.rename(big_path)
    settle()  # building the big log leaves hundreds of MB to write back: not during the measurement
    operations = {
        "raw": raw_insert_floor(scratch),
        "empty": appender(scratch / "empty.db", key),
        "big": appender(big_path, key),
    }
    warm(operations["empty"])
    warm(operations["big"])
    medians = interleaved_medians(operations, SAMPLES)
    pages = wal_pages_per_append(scratch / "empty.db", operations["empty"])
    floor_pages = wal_pages_per_append(scratch / "raw.db", operations["raw"])
    return [
        result("append_pages", pages, "pg", floor_pages, "value <= 3"),
        result("append_durable", medians["empty"], "us", medians["raw"], "ratio <= 1.3"),
        result("append_at_1m", medians["big"], "us", medians["empty"], "ratio <= 1.1"),
    ]
