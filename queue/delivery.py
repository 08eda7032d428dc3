"""Delivery state beside the signed records (the ledger, its own file): pending, in flight, delivered, rejected.

The gate never writes here. A registration is pending from the moment it is in the log; the forwarder takes it
into the ledger (catch_up) on its own write lock, so a delivery commit never holds up a badge.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum

import sqlite_utils

from sitegate.jsonlog import event
from sitegate.queue.clock import ClockState, read_boot_id
from sitegate.queue.database import immediate
from sitegate.queue.failures import cause
from sitegate.queue.log import LogView
from sitegate.queue.presence_rest_v1 import ItemResult
from sitegate.queue.records import Kind, Record
from sitegate.timefmt import parse_utc

logger = logging.getLogger("sitegate.delivery")


class State(StrEnum):
    """A registration's delivery state. SQL below binds these values; it spells none of them."""

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DELIVERED = "delivered"
    REJECTED = "rejected"


DELIVERY_META = "delivery_meta"


@dataclass(frozen=True)
class QueueSummary:
    pending: int
    in_flight: int
    delivered: int
    rejected: int
    oldest_pending_seq: int | None
    oldest_pending_utc: str | None
    oldest_pending_age_s: float | None
    last_delivery_utc: str | None = None
    last_error: str | None = None
    last_error_class: str | None = None  # a failures.Cause: the open outage's verdict, else as judged at the failure
    last_error_symptom: str | None = None  # a failures.Symptom value
    last_error_utc: str | None = None
    first_failure_utc: str | None = None  # the first failed attempt since the last delivery: an outage's start
    failed_attempts: int = 0  # failed calls since the last delivery
    resends: int = 0

    @property
    def undelivered(self) -> int:
        return self.pending + self.in_flight

    def as_dict(self) -> dict:
        return asdict(self)


def _ledgered(db: sqlite_utils.Database) -> int:
    """The last registration the ledger took in; registrations after it in the log are pending too."""
    return db.execute("SELECT coalesce(max(seq), 0) FROM delivery").fetchone()[0]


def summary(db: sqlite_utils.Database, now: datetime) -> QueueSummary:
    log = LogView(db)
    counts = dict.fromkeys(State, 0)
    counts.update(db.execute("SELECT state, count(*) FROM delivery GROUP BY state").fetchall())
    ledgered = _ledgered(db)
    counts["pending"] += log.count_kind(Kind.REGISTRATION, after=ledgered)
    row = db.execute(
        "SELECT seq FROM delivery WHERE state IN (?, ?) ORDER BY seq LIMIT 1", [State.PENDING, State.IN_FLIGHT]
    ).fetchone()
    oldest = log.get(row[0]) if row else next(log.records(ledgered + 1, Kind.REGISTRATION), None)
    oldest = (oldest.seq, oldest.wall_utc) if oldest else None
    age = round((now - parse_utc(oldest[1])).total_seconds(), 3) if oldest else None
    symptom = get_meta(db, "last_error_symptom", DELIVERY_META)
    return QueueSummary(
        pending=counts["pending"],
        in_flight=counts["in_flight"],
        delivered=counts["delivered"],
        rejected=counts["rejected"],
        oldest_pending_seq=oldest[0] if oldest else None,
        oldest_pending_utc=oldest[1] if oldest else None,
        oldest_pending_age_s=age,
        last_delivery_utc=get_meta(db, "last_delivery_utc", DELIVERY_META),
        last_error=get_meta(db, "last_error", DELIVERY_META),
        last_error_class=error_class(db, symptom),
        last_error_symptom=symptom,
        last_error_utc=get_meta(db, "last_error_utc", DELIVERY_META),
        first_failure_utc=get_meta(db, "first_failure_utc", DELIVERY_META),
        failed_attempts=int(get_meta(db, "failed_attempts", DELIVERY_META) or 0),
        resends=int(get_meta(db, "resends", DELIVERY_META) or 0),
    )


@dataclass(frozen=True)
class Pending:
    """One registration to send: its record and, when it was re-dated after a clock sync, the corrected time."""

    seq: int
    reference: str
    payload: str
    wall_utc: str
    corrected_utc: str | None

    @property
    def send_utc(self) -> str:
        return self.corrected_utc or self.wall_utc


def _agrees(record: Record | None, hash_taken: str | None) -> bool:
    """The log still holds the registration the ledger took in at this seq (rows of ledger v1-v2 have no hash)."""
    return record is not None and record.kind == Kind.REGISTRATION and hash_taken in (None, record.hash)


def _set_aside_lost(ledger: sqlite_utils.Database, now: str) -> int:
    """Rows whose registration the log no longer holds (a truncated log, an older copy put back) move to
    `superseded`, kept as evidence, from the newest seq where log and ledger agree: the gate keeps registering at
    those seqs, and the new registrations must be taken in and delivered. One look-up when nothing changed."""
    view = LogView(ledger)
    newest = ledger.execute("SELECT seq, hash FROM delivery ORDER BY seq DESC LIMIT 1").fetchone()
    if newest is None or _agrees(view.get(newest[0]), newest[1]):
        return 0
    first_lost = newest[0]
    for seq, hash_taken in ledger.execute("SELECT seq, hash FROM delivery ORDER BY seq DESC"):
        if _agrees(view.get(seq), hash_taken):
            break
        first_lost = seq
    lost = ledger.execute(
        "SELECT count(*), sum(state = ?) FROM delivery WHERE seq >= ?", [State.DELIVERED, first_lost]
    ).fetchone()
    columns = ", ".join(ledger["delivery"].columns_dict)  # named: later versions add columns to both tables
    ledger.execute(
        f"INSERT INTO superseded ({columns}, superseded_utc) SELECT {columns}, ? FROM delivery WHERE seq >= ?",
        [now, first_lost],
    )
    ledger.execute("DELETE FROM delivery WHERE seq >= ?", [first_lost])
    event(
        logger,
        "ledger_rows_superseded",
        logging.CRITICAL,
        problem=f"the log no longer holds {lost[0]} registrations the ledger took in from seq {first_lost} on "
        f"({lost[1] or 0} of them delivered): it was truncated or replaced",
        fix="keep every file as evidence, `sitegate verify`, report it; the rows are kept in the ledger's "
        "`superseded` table and the registrations made since are delivered",
    )
    return lost[0]


def catch_up(ledger: sqlite_utils.Database, device_id: str, now: str) -> int:
    """Take new registrations into the ledger (inside the caller's transaction); the reference is device-seq."""
    _set_aside_lost(ledger, now)
    new = LogView(ledger).registrations_after(_ledgered(ledger))
    return ledger.conn.executemany(
        "INSERT INTO delivery (seq, reference, state, attempts, expected_remarks, hash) VALUES (?, ?, ?, 0, ?, ?)",
        [(seq, f"{device_id}-{seq}", State.PENDING, expected, hash_) for seq, hash_, expected in new],
    ).rowcount


def take_batch(
    db: sqlite_utils.Database, limit: int, now: str, device_id: str, boot_id: str | None = None
) -> list[Pending]:
    """The oldest pending registrations, marked in flight (durably) before they are sent. A registration captured
    in this boot while the clock was not trusted waits for its corrected time: after a step the clock watch re-dates
    it within a second; before the first sync (a Pi has no RTC: it boots at the last saved time), at the sync."""
    with immediate(db):
        catch_up(db, device_id, now)
        rows = db.execute(
            "SELECT d.seq, d.reference, d.corrected_utc FROM delivery d JOIN records r ON r.seq = d.seq "
            "WHERE d.state = ? AND (d.corrected_utc IS NOT NULL OR r.clock_state NOT IN (?, ?, ?) OR r.boot_id != ?) "
            "ORDER BY d.seq LIMIT ?",
            [
                State.PENDING,
                ClockState.STEPPED,
                ClockState.UNSYNCED,
                ClockState.UNKNOWN,
                boot_id or read_boot_id(),
                limit,
            ],
        ).fetchall()
        records = LogView(db).get_many([row[0] for row in rows])
        db.conn.executemany(
            "UPDATE delivery SET state = ?, attempts = attempts + 1, updated_utc = ? WHERE seq = ?",
            [(State.IN_FLIGHT, now, row[0]) for row in rows],
        )
    return [Pending(seq, ref, records[seq].payload, records[seq].wall_utc, corrected) for seq, ref, corrected in rows]


def release(
    db: sqlite_utils.Database, seqs: list[int], error: str, symptom: str, now: str, answer_lost: bool = False
) -> None:
    """Back to pending after a failure that says nothing about the items themselves.

    answer_lost: the call went out and its answer was lost, so the service may hold the items already; counted on
    each row (only these rows), so a remark 14 on their resend is known as ours (queue/remarks.py).
    The first failure since the last delivery is kept: an outage starts at its earliest failed attempt."""
    with immediate(db):
        db.conn.executemany(
            "UPDATE delivery SET state = ?, last_error = ?, error_class = ?, updated_utc = ?, "
            "lost_answers = lost_answers + ? WHERE seq = ?",
            [(State.PENDING, error, symptom, now, int(answer_lost), seq) for seq in seqs],
        )
        attempts = int(get_meta(db, "failed_attempts", DELIVERY_META) or 0) + 1
        first = get_meta(db, "first_failure_utc", DELIVERY_META) or now
        set_meta(
            db,
            DELIVERY_META,
            last_error=error,
            last_error_class=judged_class(db, symptom),
            last_error_symptom=symptom,
            last_error_utc=now,
            first_failure_utc=first,
            failed_attempts=attempts,
        )


def settle(
    db: sqlite_utils.Database, outcomes: list[tuple[int, ItemResult]], now: str, server_offset_s: float | None = None
) -> None:
    """Store the service's answer: delivered with its id and remarks, or rejected with its reason (final)."""
    with immediate(db):
        for seq, result in outcomes:
            if result.created:
                db.execute(
                    "UPDATE delivery SET state = ?, service_id = ?, validity = ?, remarks = ?, "
                    "last_error = NULL, error_class = NULL, updated_utc = ?, delivered_utc = ? WHERE seq = ?",
                    [
                        State.DELIVERED,
                        result.service_id,
                        result.validity,
                        json.dumps(list(result.remarks)),
                        now,
                        now,
                        seq,
                    ],
                )
            else:
                db.execute(
                    "UPDATE delivery SET state = ?, last_error = ?, error_class = ?, updated_utc = ? WHERE seq = ?",
                    [State.REJECTED, result.reason, State.REJECTED, now, seq],
                )
        if any(result.created for _, result in outcomes):
            set_meta(db, DELIVERY_META, last_delivery_utc=now, first_failure_utc=None, failed_attempts=0)
        if server_offset_s is not None:
            set_meta(db, DELIVERY_META, service_offset_s=server_offset_s, service_offset_utc=now)


def recover_in_flight(db: sqlite_utils.Database) -> int:
    """After a crash, what was in flight may or may not have reached the service: send it again, and count it
    (its answer, if the call went out, was lost with the process)."""
    with immediate(db):
        count = db.execute("SELECT count(*) FROM delivery WHERE state = ?", [State.IN_FLIGHT]).fetchone()[0]
        if count:
            db.execute(
                "UPDATE delivery SET state = ?, lost_answers = lost_answers + 1 WHERE state = ?",
                [State.PENDING, State.IN_FLIGHT],
            )
            set_meta(db, DELIVERY_META, resends=int(get_meta(db, "resends", DELIVERY_META) or 0) + count)
    return count


def set_meta(db: sqlite_utils.Database, table: str = "meta", /, **values: object) -> None:
    """Key-value notes: `meta` in the log's file (device, heartbeat, outages), `delivery_meta` in the ledger."""
    db.conn.executemany(
        f"INSERT INTO {table} (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [(key, None if value is None else str(value)) for key, value in values.items()],
    )


def get_meta(db: sqlite_utils.Database, key: str, table: str = "meta") -> str | None:
    row = db.execute(f"SELECT value FROM {table} WHERE key = ?", [key]).fetchone()
    return row[0] if row else None


INTERNET_OK = "internet_ok"  # the outage probes' latest verdict on the independent reference host, in `meta`
OUTAGE_CLASS = "outage_class"  # the open outage episode's cause, kept by the outage journal in `meta`


def judged_class(db: sqlite_utils.Database, symptom: str) -> str:
    """Who must act on a failed call, now: while an outage episode is open, the journal's verdict (one rule, one
    answer: the queue and `sitegate outage` never disagree); else the rule on the symptom and the reference."""
    return get_meta(db, OUTAGE_CLASS) or cause(symptom, internet_ok(db))


def error_class(db: sqlite_utils.Database, symptom: str | None) -> str | None:
    """The last failed call's class: the open episode's verdict, else as it was judged when the call failed (an
    old error is never re-labelled by later probes)."""
    if symptom is None:
        return None
    return get_meta(db, OUTAGE_CLASS) or get_meta(db, "last_error_class", DELIVERY_META) or cause(symptom, None)


def internet_ok(db: sqlite_utils.Database) -> bool | None:
    """Whether the independent reference host answered at the last probe (None: not configured, not probed).

    `meta` lives in the log's file; SQLite finds it in the attached file from the ledger's connection too."""
    value = get_meta(db, INTERNET_OK)
    return None if value is None else value == "1"


def expect_remark(db: sqlite_utils.Database, seqs: list[int], code: int) -> None:
    """Note, beside the records, a remark the device expects the service to make."""
    with immediate(db):
        for seq in seqs:
            row = db.execute("SELECT expected_remarks FROM delivery WHERE seq = ?", [seq]).fetchone()
            expected = set(json.loads(row[0] or "[]")) | {code}
            db.execute("UPDATE delivery SET expected_remarks = ? WHERE seq = ?", [json.dumps(sorted(expected)), seq])
