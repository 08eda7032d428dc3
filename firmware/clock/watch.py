"""Keeping the device's time honest: watch the time source, record what changes, re-date what needs it.

Remark 32 names "the badge system's clock" as the cause of late registrations. The watch turns every change
of clock state (unsynced, synced, stepped, offset beyond the warning threshold) into a signed record, and when
the clock becomes synced in the same boot, re-dates the registrations captured before from monotonic time:
a signed correction record lists them; the originals stay untouched; the service receives the corrected time.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

import sqlite_utils

from sitegate.clock import Clock, ClockReading, ClockState, read_boot_id, timesource
from sitegate.clock.timefmt import format_utc, parse_utc, show
from sitegate.clock.timesource import TimeReading
from sitegate.jsonlog import event
from sitegate.queue import delivery
from sitegate.queue.database import immediate
from sitegate.queue.log import LogView, RegistrationLog
from sitegate.queue.records import Kind

logger = logging.getLogger("sitegate.clock")
STEP_THRESHOLD_S = 1.0  # wall time moving this much more or less than monotonic time is a step
CONFIGURED = "system (trusted by configuration)"  # the source when `clock.trust_system_clock`: no witness of a step


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
        return TimeReading(CONFIGURED, True, 0.0, None, "clock.trust_system_clock = true")

    return [trusted] if trust_system_clock else [timesource.chrony, timesource.timesyncd, ntp]


@dataclass(frozen=True)
class Anchor:
    """True time at one monotonic instant of this boot: the timeline a step cannot move."""

    true_utc: datetime
    monotonic_ns: int

    def at(self, monotonic_ns: int) -> datetime:
        return self.true_utc + timedelta(microseconds=(monotonic_ns - self.monotonic_ns) / 1000)


def recheck_after_s(state: str) -> float:
    """How soon the time source is read again: every second while re-dating after a step; every 5 s while the clock
    is not trusted (registrations captured meanwhile wait for the first sync, a bounded wait: see
    delivery.ClockHold); once trusted, every minute (a badge that sees a step wakes the watch at once)."""
    if state == ClockState.STEPPED:
        return 1.0
    return 60.0 if state == ClockState.SYNCED else 5.0


def discount_applied(reading: TimeReading, moves: Iterable[float]) -> TimeReading:
    """The reading with a move of the clock it was measured before taken out. A source can answer with a figure that
    predates a step: chronyc's tracking line went on reporting, until chronyd's next update, the offset it had just
    applied by stepping the clock (timesource.parse_chrony no longer reads it), and an NTP answer can come just
    before a step. Added to the corrected clock, such a figure dated 10 registrations 3 hours ahead on the arm64 VM.
    An offset of the same sign and size (within STEP_THRESHOLD_S) as a move of the wall clock seen since the source
    last reported a small one was measured before that move. A move the other way (the clock set wrong, and the
    source measuring it) explains nothing, and is not taken out."""
    offset = reading.offset_s
    if offset is None or abs(offset) <= STEP_THRESHOLD_S:
        return reading
    applied = next((move for move in reversed(list(moves)) if abs(offset - move) <= STEP_THRESHOLD_S), None)
    if applied is None:
        return reading
    left = round(offset - applied, 6)
    error = None if reading.max_error_s is None else round(reading.max_error_s - abs(offset) + abs(left), 6)
    said = f"{reading.detail}; its offset {offset:+.3f} s was measured before the clock was stepped by {applied:+.3f} s"
    return replace(reading, offset_s=left, max_error_s=error, detail=said)


TIGHT_READING_NS = 1_000_000
READING_TRIES = 5


def read_together(wall: Callable[[], datetime], monotonic_ns: Callable[[], int]) -> tuple[datetime, int]:
    """Wall and monotonic time at one instant: monotonic time read on both sides of the wall clock and the midpoint
    kept, from the tightest of a few tries. Read one after the other, a thread paused between the two reads (a loaded
    2-core machine paused one for 108 ms in CI) would move the anchor, and every re-dated time with it, by the pause."""
    best: tuple[int, datetime, int] | None = None
    for _ in range(READING_TRIES):
        before = monotonic_ns()
        now = wall()
        after = monotonic_ns()
        if best is None or after - before < best[0]:
            best = (after - before, now, (before + after) // 2)
        if after - before <= TIGHT_READING_NS:
            break
    return best[1], best[2]


class ClockWatch:
    def __init__(
        self,
        log: RegistrationLog,
        ledger: sqlite_utils.Database,
        read: Callable[[], TimeReading],
        warn_threshold_s: float,
        clock: Clock,
        boot_id: str | None = None,
    ) -> None:
        self.log = log
        self.ledger = ledger  # where corrected times go: the delivery ledger
        self.read = read
        self.warn_threshold_s = warn_threshold_s  # also the tolerance against the service's Date
        self.wall = clock.now
        self.monotonic_ns = clock.monotonic_ns
        self.wait = clock.wait
        self.boot_id = boot_id or read_boot_id()
        self.wake = threading.Event()  # set when a badge saw a step: the clock thread records it at once
        self._lock = threading.Lock()
        self._reading = ClockReading(ClockState.UNKNOWN)
        self._last: tuple[datetime, int] | None = None
        self._steps: list[tuple[float, int]] = []  # (jump, monotonic ns) seen and not yet recorded
        self._moves: deque[float] = deque(maxlen=8)  # jumps since the source last reported a small offset
        self._last_state: str | None = None
        self._warned = False
        self._anchor: Anchor | None = None  # the last trusted time; None: not trusted in this process yet
        self._step_seen_ns: int | None = None  # when the last step was seen: a service Date asked after it counts
        self._resume()

    def _resume(self) -> None:
        """A daemon restarted in the same boot after an unresolved step carries on from the step's anchor."""
        record = next((r for r in self.log.newest(Kind.CLOCK) if r.data["event"] != "offset_warning"), None)
        carried = record.data.get("carried") if record and record.data["event"] == ClockState.STEPPED else None
        if carried and record.boot_id == self.boot_id:
            self._anchor = Anchor(parse_utc(carried["true_utc"]), carried["monotonic_ns"])
            self._step_seen_ns = record.data["seen_monotonic_ns"]
            self._reading = ClockReading(ClockState.STEPPED, record.clock_offset_us)
            self._last_state = ClockState.STEPPED

    def current(self) -> ClockReading:
        """What each new record stores as its clock state. A step is seen here, at the badge that follows it (wall
        time against monotonic time since the last reading): that registration and the ones after it are stored
        as `stepped`, and the clock thread is woken to record the step and re-date them. No I/O on the badge path.
        Both clocks are read together: a badge thread paused for a second between two plain reads would see a step."""
        with self._lock:
            self._observe(*read_together(self.wall, self.monotonic_ns))
            return self._reading

    def _observe(self, wall: datetime, mono: int) -> None:
        """Under the lock: compare this reading with the last one; a step untrusts a trusted clock."""
        previous, self._last = self._last, (wall, mono)
        if previous is None:
            return
        jump = (wall - previous[0]).total_seconds() - (mono - previous[1]) / 1e9
        if abs(jump) <= STEP_THRESHOLD_S:
            return
        self._steps.append((jump, mono))
        if self._anchor is not None:
            self._reading = ClockReading(ClockState.STEPPED, self._reading.offset_us)
        self.wake.set()

    def keep_watching(self, stop: threading.Event) -> None:
        """The daemon's clock loop, at the pace the clock's state asks for (recheck_after_s); at once when a badge
        saw a step."""
        while not stop.is_set():
            self.wait(recheck_after_s(self.check().state), self.wake)

    def check(self) -> ClockStatus:
        """Read the time source once; record changes; re-date what needs it. Called by the daemon."""
        reading = self.read()
        with self._lock:
            wall, mono = read_together(self.wall, self.monotonic_ns)
            self._observe(wall, mono)
            steps, self._steps = self._steps, []
            stepped = self._reading.state == ClockState.STEPPED
            self.wake.clear()
        reading = self._measured_since(reading, [jump for jump, _ in steps])
        offset = reading.offset_s
        synced, warning = assess(reading, self.warn_threshold_s)
        for jump, at_ns in steps:
            self._record_step(reading, jump, at_ns)
        if stepped:
            return self._after_step(reading, wall, mono, synced, warning)
        state = ClockState.SYNCED if synced else ClockState.UNSYNCED
        if not self._set(state, offset, Anchor(wall + timedelta(seconds=offset or 0.0), mono) if synced else None):
            return self._read_again(reading)
        if state != self._last_state:
            self._record(state, reading)
            if state == ClockState.SYNCED:
                self.redate(self._anchor, mono)
        self._warn(reading, synced, warning)
        self._last_state = state
        return ClockStatus(state, synced, offset, reading.max_error_s, reading.source, reading.detail, warning)

    def _measured_since(self, reading: TimeReading, jumps: list[float]) -> TimeReading:
        """The reading as of now: moves of the clock it predates taken out (discount_applied). A small offset from a
        synced source was measured after every move seen before it: those are forgotten."""
        if reading.synced and reading.offset_s is not None and abs(reading.offset_s) <= STEP_THRESHOLD_S:
            self._moves.clear()
        self._moves.extend(jumps)
        return discount_applied(reading, self._moves)

    def _set(self, state: str, offset_s: float | None, anchor: Anchor | None) -> bool:
        """The verdict, unless a badge saw a step since this check read the clock (False): set, it would cover the
        step, and the badges after it would be stored `synced` with the stepped time. The badge woke the watch: the
        next check, at once, records the step."""
        with self._lock:
            if self._steps:
                return False
            self._reading = ClockReading(state, None if offset_s is None else int(offset_s * 1e6))
            self._anchor = anchor
            return True

    @staticmethod
    def _read_again(reading: TimeReading) -> ClockStatus:
        detail = "a step was seen while the clock was being read: reading it again"
        return ClockStatus(ClockState.STEPPED, False, reading.offset_s, None, reading.source, detail, None)

    def _after_step(
        self, reading: TimeReading, wall: datetime, mono: int, synced: bool, warning: str | None
    ) -> ClockStatus:
        """After a step the clock is trusted again only on evidence: a time source whose time agrees with the time
        carried over the step by monotonic time (chrony stepped it back; a source that has not measured since the
        step still agrees with the clock, not with the carried time), or the service's Date, measured after the
        step, agreeing with the clock within the tolerance and better than with the carried time. Until then what
        is registered is re-dated by the carried time, before it is sent."""
        carried = self._anchor.at(mono)
        source_time = wall + timedelta(seconds=reading.offset_s or 0.0)
        service = self._service_offset_since_step()
        self._warn(reading, synced, warning)
        if synced and abs((source_time - carried).total_seconds()) <= STEP_THRESHOLD_S:
            trusted = Anchor(source_time, mono)
            if abs(reading.offset_s or 0.0) > STEP_THRESHOLD_S:
                return self._still_off(trusted, mono, reading, warning)
        elif (
            service is not None
            and abs(service) <= self.warn_threshold_s
            and abs(service) < abs((wall + timedelta(seconds=service) - carried).total_seconds())
        ):
            trusted = Anchor(wall + timedelta(seconds=service), mono)
            reading = TimeReading(reading.source, True, service, None, "the service's Date agrees with the clock")
        else:
            self.redate(self._anchor, mono)
            detail = f"not trusted since the step: re-dating by the time carried over it ({format_utc(carried)})"
            return ClockStatus(ClockState.STEPPED, False, reading.offset_s, None, reading.source, detail, warning)
        if not self._set(ClockState.SYNCED, reading.offset_s, trusted):
            return self._read_again(reading)
        self._record(ClockState.SYNCED, reading)
        self.redate(trusted, mono)
        self._last_state = ClockState.SYNCED
        return ClockStatus(
            ClockState.SYNCED, True, reading.offset_s, reading.max_error_s, reading.source, reading.detail, warning
        )

    def _still_off(self, trusted: Anchor, mono: int, reading: TimeReading, warning: str | None) -> ClockStatus:
        """The source knows the true time again, but the clock still shows the step (chrony measured it and slews,
        or waits for a `makestep`): what is captured now would be stored with the wrong time as `synced`. So the
        clock stays untrusted, and what is registered is re-dated by the source's time until the clock is set back."""
        with self._lock:
            self._anchor = trusted
        self.redate(trusted, mono)
        detail = (
            f"the time source agrees with the time carried over the step, but the clock is still "
            f"{reading.offset_s:+.0f} s off: re-dating until it is set back"
        )
        return ClockStatus(ClockState.STEPPED, False, reading.offset_s, None, reading.source, detail, warning)

    def _service_offset_since_step(self) -> float | None:
        """The service's Date against this clock, when measured after the step (None: not measured since)."""
        offset, asked_ns = delivery.service_offset(self.ledger)[0], delivery.service_offset_asked_ns(self.ledger)
        after_step = asked_ns is not None and asked_ns > (self._step_seen_ns or 0)
        return offset if offset is not None and after_step else None

    def _record_step(self, reading: TimeReading, jump: float, at_ns: int) -> None:
        """The step, with the time carried over it (when the clock was trusted before it)."""
        extra = {"jump_s": round(jump, 3), "seen_monotonic_ns": at_ns}
        if self._anchor is not None:
            extra["carried"] = {
                "true_utc": format_utc(self._anchor.true_utc),
                "monotonic_ns": self._anchor.monotonic_ns,
            }
            self._step_seen_ns = at_ns
        self._record(ClockState.STEPPED, reading, **extra)

    def _warn(self, reading: TimeReading, synced: bool, warning: str | None) -> None:
        if bool(warning and synced) != self._warned:
            self._warned = bool(warning and synced)
            if self._warned:
                self._record("offset_warning", reading, threshold_s=self.warn_threshold_s)

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

    def redate(self, anchor: Anchor | None, mono_now: int) -> int:
        """Correct the times of this boot's registrations captured while the clock was not trusted (before the
        first sync, or after a step), from monotonic time against `anchor`: a signed correction record lists them,
        the ledger gets the corrected time the service receives, the originals stay untouched."""
        if anchor is None:
            return 0
        corrected = delivery.corrected_seqs(self.log.db)
        rows = [(r.seq, r.monotonic_ns) for r in self.log.not_synced(self.boot_id) if r.seq not in corrected]
        if not rows:
            return 0
        true_now = anchor.at(mono_now)
        corrections = [{"seq": seq, "corrected_utc": format_utc(anchor.at(mono))} for seq, mono in rows]
        wall = self.wall()
        record = self.log.append(
            Kind.CLOCK_CORRECTION,
            {
                "boot_id": self.boot_id,
                "reference": {
                    "wall_utc": format_utc(wall),
                    "monotonic_ns": mono_now,
                    "offset_us": int((true_now - wall).total_seconds() * 1e6),
                },
                "corrections": corrections,
            },
        )
        with immediate(self.ledger):
            delivery.catch_up(self.ledger, self.log.device_id, format_utc(true_now))
            delivery.correct_times(self.ledger, [(c["seq"], c["corrected_utc"]) for c in corrections], record.seq)
        event(logger, "registrations_redated", count=len(corrections), correction_seq=record.seq)
        return len(corrections)


def unsynced_records(log: LogView) -> int:
    """Registrations captured while the clock was not trusted, and not (yet) re-dated."""
    corrected = delivery.corrected_seqs(log.db)
    return sum(1 for record in log.not_synced() if record.seq not in corrected)


def last_clock_event(log: RegistrationLog) -> tuple[str, str | None]:
    """The clock state as last recorded (event, when), for status screens and the paper listing."""
    record = next(log.newest(Kind.CLOCK), None)
    return (record.data["event"], record.wall_utc) if record else (ClockState.UNKNOWN, None)


def service_dispute(log: LogView, synced: bool, source: str, tolerance_s: float) -> str | None:
    """Why a clock called synced must not be reported so: the service's `Date` disagrees beyond the tolerance.
    Says which to believe, and why (None: no disagreement, or the clock is not called synced anyway)."""
    offset, seen = delivery.service_offset(log.db)
    if not synced or offset is None or abs(offset) <= tolerance_s:
        return None
    said = f"the service's Date was {offset:+.0f} s from this clock at {show(seen)} (tolerance {tolerance_s:.0f} s)"
    _, changed = last_clock_event(log)
    if changed and seen < changed:
        return f"{said}, before the clock's last change at {show(changed)}: believe the clock until the next delivery"
    if source == CONFIGURED:
        return (
            f"{said}; only the configuration vouches for the clock (`clock.trust_system_clock`): believe the "
            "service, set the clock and use a time source (chrony)"
        )
    return (
        f"{said}, though {source} calls it synced: believe the service's Date (remark 32 is judged on its clock) "
        "until `chronyc sources -v` shows why they differ"
    )
