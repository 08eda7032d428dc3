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

from sitegate.clock import Clock, ClockState
from sitegate.clock.timefmt import parse_utc
from sitegate.jsonlog import event
from sitegate.queue.database import immediate
from sitegate.queue.failures import cause
from sitegate.queue.log import LogView
from sitegate.queue.records import Kind, Record
from sitegate.service.presence_rest_v1 import ItemResult

logger = logging.getLogger("sitegate.delivery")


class DeliveryState(StrEnum):
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
    last_error_channels: tuple[str, ...] = ()  # the channels the last failed call tried (a gate with a fallback)

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
    counts = dict.fromkeys(DeliveryState, 0)
    counts.update(db.execute("SELECT state, count(*) FROM delivery GROUP BY state").fetchall())
    ledgered = _ledgered(db)
    counts["pending"] += log.count_kind(Kind.REGISTRATION, after=ledgered)
    row = db.execute(
        "SELECT seq FROM delivery WHERE state IN (?, ?) ORDER BY seq LIMIT 1",
        [DeliveryState.PENDING, DeliveryState.IN_FLIGHT],
    ).fetchone()
    oldest = log.get(row[0]) if row else next(log.records(ledgered + 1, Kind.REGISTRATION), None)
    oldest = (oldest.seq, oldest.wall_utc) if oldest else None
    age = round((now - parse_utc(oldest[1])).total_seconds(), 3) if oldest else None
    symptom = _get_meta(db, "last_error_symptom", DELIVERY_META)
    return QueueSummary(
        pending=counts["pending"],
        in_flight=counts["in_flight"],
        delivered=counts["delivered"],
        rejected=counts["rejected"],
        oldest_pending_seq=oldest[0] if oldest else None,
        oldest_pending_utc=oldest[1] if oldest else None,
        oldest_pending_age_s=age,
        last_delivery_utc=_get_meta(db, "last_delivery_utc", DELIVERY_META),
        last_error=_get_meta(db, "last_error", DELIVERY_META),
        last_error_class=error_class(db, symptom),
        last_error_symptom=symptom,
        last_error_utc=_get_meta(db, "last_error_utc", DELIVERY_META),
        first_failure_utc=_get_meta(db, "first_failure_utc", DELIVERY_META),
        failed_attempts=int(_get_meta(db, "failed_attempts", DELIVERY_META) or 0),
        last_error_channels=tuple(filter(None, (_get_meta(db, "last_error_channels", DELIVERY_META) or "").split(","))),
        resends=int(_get_meta(db, "resends", DELIVERY_META) or 0),
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
        "SELECT count(*), sum(state = ?) FROM delivery WHERE seq >= ?", [DeliveryState.DELIVERED, first_lost]
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
        [(seq, f"{device_id}-{seq}", DeliveryState.PENDING, expected, hash_) for seq, hash_, expected in new],
    ).rowcount


@dataclass(frozen=True)
class ClockHold:
    """Which registrations wait for their corrected time: this boot's captured while the clock was not trusted.
    After a step, until the clock watch re-dates them (within a second). Before the first sync (a Pi has no RTC: it
    boots at the last saved time), until the sync re-dates them, but at most `first_sync_wait_s` of monotonic time
    since their capture: a gate with no time source must still deliver (an unsynced clock is a warning, never an
    outage); their signed correction follows at the sync. Monotonic time, as the records store it: a step of the
    wall clock cannot stretch or cut the wait, and a restarted daemon of the same boot keeps it."""

    boot_id: str
    monotonic_ns: int  # now, in the boot's monotonic time
    first_sync_wait_s: float

    @classmethod
    def at(cls, clock: Clock, first_sync_wait_s: float) -> ClockHold:
        return cls(clock.boot_id, clock.monotonic_ns(), first_sync_wait_s)

    def where(self) -> tuple[str, list]:
        """The SQL condition (on `delivery d JOIN records r`) of a registration held now, and its parameters."""
        return (
            "(d.corrected_utc IS NULL AND r.boot_id = ? "
            "AND (r.clock_state = ? OR (r.clock_state IN (?, ?) AND r.monotonic_ns > ?)))",
            [
                self.boot_id,
                ClockState.STEPPED,
                ClockState.UNSYNCED,
                ClockState.UNKNOWN,
                self.monotonic_ns - int(self.first_sync_wait_s * 1e9),
            ],
        )


@dataclass(frozen=True)
class HeldForClock:
    """Registrations waiting for their corrected time: how many, the oldest one's capture time by the untrusted
    clock, and the longest any of them may still wait (None: none waits for a first sync; after a step the clock
    watch re-dates within a second)."""

    count: int
    oldest_utc: str | None = None
    at_most_s: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def held_for_clock(db: sqlite_utils.Database, hold: ClockHold) -> HeldForClock:
    """What waits for the clock now (pending only: one in flight is already on its way)."""
    held, params = hold.where()
    count, oldest, newest_unsynced = db.execute(
        "SELECT count(*), min(r.wall_utc), max(CASE WHEN r.clock_state != ? THEN r.monotonic_ns END) "
        f"FROM delivery d JOIN records r ON r.seq = d.seq WHERE d.state = ? AND {held}",
        [ClockState.STEPPED, DeliveryState.PENDING, *params],
    ).fetchone()
    if newest_unsynced is None:
        return HeldForClock(count, oldest)
    return HeldForClock(count, oldest, round(hold.first_sync_wait_s - (hold.monotonic_ns - newest_unsynced) / 1e9))


def take_batch(db: sqlite_utils.Database, limit: int, now: str, device_id: str, hold: ClockHold) -> list[Pending]:
    """The oldest pending registrations not held for their corrected time (ClockHold), marked in flight (durably)
    before they are sent."""
    held, params = hold.where()
    with immediate(db):
        catch_up(db, device_id, now)
        rows = db.execute(
            "SELECT d.seq, d.reference, d.corrected_utc FROM delivery d JOIN records r ON r.seq = d.seq "
            f"WHERE d.state = ? AND NOT {held} ORDER BY d.seq LIMIT ?",
            [DeliveryState.PENDING, *params, limit],
        ).fetchall()
        records = LogView(db).get_many([row[0] for row in rows])
        db.conn.executemany(
            "UPDATE delivery SET state = ?, attempts = attempts + 1, updated_utc = ? WHERE seq = ?",
            [(DeliveryState.IN_FLIGHT, now, row[0]) for row in rows],
        )
    return [Pending(seq, ref, records[seq].payload, records[seq].wall_utc, corrected) for seq, ref, corrected in rows]


def release(
    db: sqlite_utils.Database,
    seqs: list[int],
    error: str,
    symptom: str,
    now: str,
    answer_lost: bool = False,
    channels: tuple[str, ...] = (),
) -> None:
    """Back to pending after a failure that says nothing about the items themselves.

    answer_lost: the call went out and its answer was lost, so the service may hold the items already; counted on
    each row (only these rows), so a remark 14 on their resend is known as ours (firmware/service/remarks.py).
    channels: the channels the call tried (a gate with a fallback), kept with the last error.
    The first failure since the last delivery is kept: an outage starts at its earliest failed attempt."""
    with immediate(db):
        db.conn.executemany(
            "UPDATE delivery SET state = ?, last_error = ?, error_class = ?, updated_utc = ?, "
            "lost_answers = lost_answers + ? WHERE seq = ?",
            [(DeliveryState.PENDING, error, symptom, now, int(answer_lost), seq) for seq in seqs],
        )
        attempts = int(_get_meta(db, "failed_attempts", DELIVERY_META) or 0) + 1
        first = _get_meta(db, "first_failure_utc", DELIVERY_META) or now
        _set_meta(
            db,
            DELIVERY_META,
            last_error=error,
            last_error_class=judged_class(db, symptom),
            last_error_symptom=symptom,
            last_error_utc=now,
            last_error_channels=",".join(channels),
            first_failure_utc=first,
            failed_attempts=attempts,
        )


def settle(
    db: sqlite_utils.Database,
    outcomes: list[tuple[int, ItemResult]],
    now: str,
    server_offset_s: float | None = None,
    asked_ns: int | None = None,
) -> None:
    """Store the service's answer: delivered with its id and remarks, or rejected with its reason (final).
    asked_ns: the monotonic time the call went out (its Date was measured after it; see service_offset_asked_ns)."""
    with immediate(db):
        for seq, result in outcomes:
            if result.created:
                db.execute(
                    "UPDATE delivery SET state = ?, service_id = ?, validity = ?, remarks = ?, "
                    "last_error = NULL, error_class = NULL, updated_utc = ?, delivered_utc = ? WHERE seq = ?",
                    [
                        DeliveryState.DELIVERED,
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
                    [DeliveryState.REJECTED, result.reason, DeliveryState.REJECTED, now, seq],
                )
        if any(result.created for _, result in outcomes):
            _set_meta(db, DELIVERY_META, last_delivery_utc=now, first_failure_utc=None, failed_attempts=0)
        if server_offset_s is not None:
            _set_meta(
                db,
                DELIVERY_META,
                service_offset_s=server_offset_s,
                service_offset_utc=now,
                service_offset_asked_ns=asked_ns,
            )


def going_through(db: sqlite_utils.Database, seqs: list[int], channel: str | None) -> None:
    """The channel these registrations go out through, written before the call (None: the call proved they did not
    get there); what a lost answer or a power cut leaves here is where they may be held."""
    with immediate(db):
        db.conn.executemany("UPDATE delivery SET channel = ? WHERE seq = ?", [(channel, seq) for seq in seqs])


def held_by(db: sqlite_utils.Database, seqs: list[int]) -> dict[int, str]:
    """The channel each of these registrations may already be at (a call through it went out unanswered)."""
    marks = ",".join("?" * len(seqs))
    found = db.execute(f"SELECT seq, channel FROM delivery WHERE channel IS NOT NULL AND seq IN ({marks})", seqs)
    return dict(found.fetchall())


def recover_in_flight(db: sqlite_utils.Database) -> int:
    """After a crash, what was in flight may or may not have reached the service: send it again, and count it
    (its answer, if the call went out, was lost with the process)."""
    with immediate(db):
        count = db.execute("SELECT count(*) FROM delivery WHERE state = ?", [DeliveryState.IN_FLIGHT]).fetchone()[0]
        if count:
            db.execute(
                "UPDATE delivery SET state = ?, lost_answers = lost_answers + 1 WHERE state = ?",
                [DeliveryState.PENDING, DeliveryState.IN_FLIGHT],
            )
            _set_meta(db, DELIVERY_META, resends=int(_get_meta(db, "resends", DELIVERY_META) or 0) + count)
    return count


def _set_meta(db: sqlite_utils.Database, table: str, /, **values: object) -> None:
    """Key-value notes: `meta` in the log's file (device, heartbeat, outages), `delivery_meta` in the ledger. Only
    the named accessors below spell a key."""
    db.conn.executemany(
        f"INSERT INTO {table} (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [(key, None if value is None else str(value)) for key, value in values.items()],
    )


def _get_meta(db: sqlite_utils.Database, key: str, table: str = "meta") -> str | None:
    row = db.execute(f"SELECT value FROM {table} WHERE key = ?", [key]).fetchone()
    return row[0] if row else None


# The daemon's notes beside the records, each with a name (in `meta`, the log's file; the caller's transaction).


@dataclass(frozen=True)
class Liveness:
    """What the daemon last said of itself: its heartbeat, its readers online then, and a clean stop."""

    heartbeat_utc: str | None
    stopped_utc: str | None
    readers_online: tuple[str, ...]


def note_heartbeat(db: sqlite_utils.Database, now_utc: str, readers_online: list[str]) -> None:
    _set_meta(db, "meta", heartbeat_utc=now_utc, reader_online=",".join(readers_online))


def note_stopped(db: sqlite_utils.Database, now_utc: str) -> None:
    _set_meta(db, "meta", stopped_utc=now_utc)


def liveness(db: sqlite_utils.Database) -> Liveness:
    readers = tuple(name for name in (_get_meta(db, "reader_online") or "").split(",") if name)
    return Liveness(_get_meta(db, "heartbeat_utc"), _get_meta(db, "stopped_utc"), readers)


@dataclass(frozen=True)
class OutageNote:
    """The open outage episode as the outage journal keeps it across a restart (all None: no episode open)."""

    episode: int | None = None  # the seq of the record that opened it
    state: str | None = None
    since_utc: str | None = None
    cause: str | None = None


def outage_note(db: sqlite_utils.Database) -> OutageNote:
    episode = _get_meta(db, "outage_episode")
    return OutageNote(
        int(episode) if episode else None,
        _get_meta(db, "outage_state"),
        _get_meta(db, "outage_since"),
        _get_meta(db, "outage_class"),
    )


def note_outage(db: sqlite_utils.Database, note: OutageNote) -> None:
    _set_meta(
        db,
        "meta",
        outage_episode=note.episode,
        outage_state=note.state,
        outage_since=note.since_utc,
        outage_class=note.cause,
    )


def note_internet_ok(db: sqlite_utils.Database, ok: bool | None) -> None:
    """The outage probes' latest verdict on the independent reference host (None: not configured)."""
    _set_meta(db, "meta", internet_ok=None if ok is None else int(ok))


# The forwarder's notes in the ledger (`delivery_meta`).


def service_offset(db: sqlite_utils.Database) -> tuple[float | None, str | None]:
    """The service's `Date` against this clock at the last answer (positive: this clock behind), and when."""
    offset = _get_meta(db, "service_offset_s", DELIVERY_META)
    return (float(offset) if offset else None), _get_meta(db, "service_offset_utc", DELIVERY_META)


def service_offset_asked_ns(db: sqlite_utils.Database) -> int | None:
    """When (monotonic time) the call whose answer gave the last service offset went out: a measurement counts as
    made after a clock step only if the call went out after the step was seen (an answer to a call made before the
    step, stored after it, measured the clock as it was before)."""
    asked = _get_meta(db, "service_offset_asked_ns", DELIVERY_META)
    return int(asked) if asked else None


def note_sends(db: sqlite_utils.Database, calls: int, failed: int, now_utc: str) -> None:
    """The forwarder's calls and failures of the last hour, and when it counted them (an idle gate's age out)."""
    _set_meta(db, DELIVERY_META, sends_last_hour=f"{calls},{failed},{now_utc}")


def sends(db: sqlite_utils.Database) -> tuple[int, int, str] | None:
    """The last hour's calls and failures as the forwarder last wrote them, and when (None: never written)."""
    counted = _get_meta(db, "sends_last_hour", DELIVERY_META)
    if not counted:
        return None
    calls, failed, at_utc = counted.split(",")
    return int(calls), int(failed), at_utc


def judged_class(db: sqlite_utils.Database, symptom: str) -> str:
    """Who must act on a failed call, now: while an outage episode is open, the journal's verdict (one rule, one
    answer: the queue and `sitegate outage` never disagree); else the rule on the symptom and the reference."""
    return _get_meta(db, "outage_class") or cause(symptom, internet_ok(db))


def error_class(db: sqlite_utils.Database, symptom: str | None) -> str | None:
    """The last failed call's class: the open episode's verdict, else as it was judged when the call failed (an
    old error is never re-labelled by later probes)."""
    if symptom is None:
        return None
    return _get_meta(db, "outage_class") or _get_meta(db, "last_error_class", DELIVERY_META) or cause(symptom, None)


def internet_ok(db: sqlite_utils.Database) -> bool | None:
    """Whether the independent reference host answered at the last probe (None: not configured, not probed).

    `meta` lives in the log's file; SQLite finds it in the attached file from the ledger's connection too."""
    value = _get_meta(db, "internet_ok")
    return None if value is None else value == "1"


def expect_remark(db: sqlite_utils.Database, seqs: list[int], code: int) -> None:
    """Note, beside the records, a remark the device expects the service to make."""
    with immediate(db):
        for seq in seqs:
            row = db.execute("SELECT expected_remarks FROM delivery WHERE seq = ?", [seq]).fetchone()
            expected = set(json.loads(row[0] or "[]")) | {code}
            db.execute("UPDATE delivery SET expected_remarks = ? WHERE seq = ?", [json.dumps(sorted(expected)), seq])


# Reads of the ledger for other modules: the rows, as values; no other module spells its SQL.


@dataclass(frozen=True)
class LedgerRow:
    """One registration's delivery as the ledger holds it."""

    seq: int
    reference: str
    state: str
    service_id: str | None
    remarks: tuple[int, ...]  # the service's
    expected_remarks: tuple[int, ...]  # the device's own expectation
    last_error: str | None
    delivered_utc: str | None
    lost_answers: int


_ROW = "seq, reference, state, service_id, remarks, expected_remarks, last_error, delivered_utc, lost_answers"


def _row(values: tuple) -> LedgerRow:
    seq, reference, state, service_id, remarks, expected, error, delivered, lost = values
    return LedgerRow(
        seq, reference, state, service_id, tuple(json.loads(remarks or "[]")), tuple(json.loads(expected or "[]")),
        error, delivered, lost or 0,
    )  # fmt: skip


def rows(db: sqlite_utils.Database) -> list[LedgerRow]:
    """Every row, in seq order (the demo's closing table)."""
    return [_row(values) for values in db.execute(f"SELECT {_ROW} FROM delivery ORDER BY seq")]


def remarked_or_rejected(db: sqlite_utils.Database) -> list[LedgerRow]:
    """The rows someone may have to act on: refused, or answered with remarks."""
    return [
        _row(values)
        for values in db.execute(
            f"SELECT {_ROW} FROM delivery WHERE state = ? OR (remarks IS NOT NULL AND remarks != '[]') ORDER BY seq",
            [DeliveryState.REJECTED],
        )
    ]


def newest_delivered(db: sqlite_utils.Database) -> tuple[int, str | None] | None:
    """The newest registration the service accepted: its seq and the hash the ledger took in (a witness)."""
    row = db.execute(
        "SELECT seq, hash FROM delivery WHERE state = ? ORDER BY seq DESC LIMIT 1", [DeliveryState.DELIVERED]
    ).fetchone()
    return (row[0], row[1]) if row else None


def newest_superseded(db: sqlite_utils.Database) -> tuple[int, str] | None:
    """The newest row set aside because the log lost it (_set_aside_lost): its seq and when it was set aside."""
    row = db.execute("SELECT seq, superseded_utc FROM superseded ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else None


def longest_wait_since(db: sqlite_utils.Database, since_utc: str) -> float | None:
    """The longest a registration delivered since `since_utc` waited between its capture and its delivery (s)."""
    return db.execute(
        "SELECT max((julianday(d.delivered_utc) - julianday(r.wall_utc)) * 86400) FROM delivery d "
        "JOIN records r ON r.seq = d.seq WHERE d.delivered_utc >= ?",
        [since_utc],
    ).fetchone()[0]


def corrected_seqs(db: sqlite_utils.Database) -> set[int]:
    """Registrations the ledger holds a corrected time for (re-dated after a clock sync)."""
    return {row[0] for row in db.execute("SELECT seq FROM delivery WHERE corrected_utc IS NOT NULL")}


def correct_times(db: sqlite_utils.Database, corrected: list[tuple[int, str]], correction_seq: int) -> None:
    """The corrected times (seq, corrected_utc) the service receives, from the signed correction record
    `correction_seq` (inside the caller's transaction, after catch_up)."""
    db.conn.executemany("UPDATE delivery SET corrected_utc = ? WHERE seq = ?", [(utc, seq) for seq, utc in corrected])
    _set_meta(db, DELIVERY_META, last_correction_seq=correction_seq)
