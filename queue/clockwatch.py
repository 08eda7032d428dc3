"""Keeping the device's time honest: watch the time source, record what changes, re-date what needs it.

Remark 32 names "the badge system's clock" as the cause of late registrations. The watch turns every change
of clock state (unsynced, synced, stepped, offset beyond the warning threshold) into a signed record, and when
the clock becomes synced in the same boot, re-dates the registrations captured before from monotonic time:
a signed correction record lists them; the originals stay untouched; the service receives the corrected time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import sqlite_utils

from sitegate.jsonlog import event
from sitegate.queue import delivery, timesource
from sitegate.queue.clock import SYSTEM, Clock, ClockReading, ClockState, read_boot_id
from sitegate.queue.database import immediate
from sitegate.queue.log import LogView, RegistrationLog
from sitegate.queue.records import Kind
from sitegate.queue.timesource import TimeReading
from sitegate.timefmt import format_utc

logger = logging.getLogger("sitegate.clock")
STEP_THRESHOLD_S = 1.0  # wall time moving this much more or less than monotonic time is a step


@dataclass(frozen=True)
class ClockStatus:
    state: str
    synced: bool
    offset_s: float | None
    max_error_s: float | None
    source: str
    detail: str
    warning: str | None

    def as_dict(self) -> dict:
        return asdict(self)


def assess(reading: TimeReading, warn_threshold_s: float) -> tuple[bool, str | None]:
    """Is the clock to be trusted, and what should a technician be told about it?

    A direct NTP query cannot tell whether the system clock is disciplined; a small measured offset is taken
    as good enough.
    """
    offset = reading.offset_s
    small = offset is not None and abs(offset) < warn_threshold_s
    synced = reading.synced or (reading.source == "ntp" and small)
    if not synced:
        return False, f"clock not synchronised ({reading.detail})"
    if offset is not None and not small:
        return True, f"clock offset {offset:+.3f} s exceeds {warn_threshold_s:.0f} s (remark 32 risk)"
    return True, None


def default_sources(ntp_server: str, trust_system_clock: bool = False) -> list[Callable[[], TimeReading]]:
    def ntp() -> TimeReading:
        return timesource.ntp(ntp_server)

    def trusted() -> TimeReading:
        return TimeReading("system (trusted by configuration)", True, 0.0, None, "clock.trust_system_clock = true")

    return [trusted] if trust_system_clock else [timesource.chrony, timesource.timesyncd, ntp]


class ClockWatch:
    def __init__(
        self,
        log: RegistrationLog,
        ledger: sqlite_utils.Database,
        read: Callable[[], TimeReading],
        warn_threshold_s: float,
        clock: Clock = SYSTEM,
        boot_id: str | None = None,
    ) -> None:
        self.log = log
        self.ledger = ledger  # where corrected times go: the delivery ledger
        self.read = read
        self.warn_threshold_s = warn_threshold_s
        self.wall = clock.now
        self.monotonic_ns = clock.monotonic_ns
        self.boot_id = boot_id or read_boot_id()
        self._lock = threading.Lock()
        self._reading = ClockReading(ClockState.UNKNOWN)
        self._last: tuple[datetime, int] | None = None
        self._last_state: str | None = None
        self._warned = False

    def current(self) -> ClockReading:
        """What each new record stores as its clock state (cheap: no I/O on the badge path)."""
        with self._lock:
            return self._reading

    def _stepped(self, wall: datetime, mono: int) -> float | None:
        previous, self._last = self._last, (wall, mono)
        if previous is None:
            return None
        jump = (wall - previous[0]).total_seconds() - (mono - previous[1]) / 1e9
        return jump if abs(jump) > STEP_THRESHOLD_S else None

    def check(self) -> ClockStatus:
        """Read the time source once; record changes; re-date after a first sync. Called by the daemon."""
        reading = self.read()
        wall, mono = self.wall(), self.monotonic_ns()
        offset = reading.offset_s
        synced, warning = assess(reading, self.warn_threshold_s)
        jump = self._stepped(wall, mono)
        state = ClockState.STEPPED if jump is not None else ClockState.SYNCED if synced else ClockState.UNSYNCED
        with self._lock:
            self._reading = ClockReading(state, None if offset is None else int(offset * 1e6))
        if jump is not None:
            self._record(ClockState.STEPPED, reading, jump_s=round(jump, 3))
        if state != self._last_state and state != ClockState.STEPPED:
            self._record(state, reading)
            if state == ClockState.SYNCED:
                self.redate(wall, offset or 0.0)
        if bool(warning and synced) != self._warned:
            self._warned = bool(warning and synced)
            if self._warned:
                self._record("offset_warning", reading, threshold_s=self.warn_threshold_s)
        self._last_state = state if state != ClockState.STEPPED else self._last_state
        return ClockStatus(state, synced, offset, reading.max_error_s, reading.source, reading.detail, warning)

    def _record(self, what: str, reading: TimeReading, **extra) -> None:
        payload = {
            "event": what,
            "source": reading.source,
            "detail": reading.detail,
            "offset_us": None if reading.offset_s is None else int(reading.offset_s * 1e6),
            **extra,
        }
        self.log.append(Kind.CLOCK, payload)
        level = logging.INFO if what == ClockState.SYNCED else logging.WARNING
        event(logger, f"clock_{what}", level, **{k: v for k, v in payload.items() if k != "event"})

    def redate(self, wall: datetime, offset_s: float) -> int:
        """Correct the times of this boot's registrations captured before the clock was trusted."""
        corrected = _corrected(self.log.db)
        rows = [(r.seq, r.monotonic_ns) for r in self.log.not_synced(self.boot_id) if r.seq not in corrected]
        if not rows:
            return 0
        true_now, mono_now = wall + timedelta(seconds=offset_s), self.monotonic_ns()
        corrections = [
            {"seq": seq, "corrected_utc": format_utc(true_now - timedelta(microseconds=(mono_now - mono) / 1000))}
            for seq, mono in rows
        ]
        record = self.log.append(
            Kind.CLOCK_CORRECTION,
            {
                "boot_id": self.boot_id,
                "reference": {"wall_utc": format_utc(wall), "monotonic_ns": mono_now, "offset_us": int(offset_s * 1e6)},
                "corrections": corrections,
            },
        )
        with immediate(self.ledger):
            delivery.catch_up(self.ledger, self.log.device_id, format_utc(true_now))
            self.ledger.conn.executemany(
                "UPDATE delivery SET corrected_utc = ? WHERE seq = ?",
                [(c["corrected_utc"], c["seq"]) for c in corrections],
            )
            delivery.set_meta(self.ledger, delivery.DELIVERY_META, last_correction_seq=record.seq)
        event(logger, "registrations_redated", count=len(corrections), correction_seq=record.seq)
        return len(corrections)


def _corrected(db) -> set[int]:
    """Registrations the ledger holds a corrected time for."""
    return {row[0] for row in db.execute("SELECT seq FROM delivery WHERE corrected_utc IS NOT NULL")}


def unsynced_records(log: LogView) -> int:
    """Registrations captured while the clock was not trusted, and not (yet) re-dated."""
    corrected = _corrected(log.db)
    return sum(1 for record in log.not_synced() if record.seq not in corrected)


def last_clock_event(log: RegistrationLog) -> tuple[str, str | None]:
    """The clock state as last recorded (event, when), for status screens and the paper listing."""
    record = next(log.newest(Kind.CLOCK), None)
    return (record.data["event"], record.wall_utc) if record else (ClockState.UNKNOWN, None)
