"""The gate's decisions: who badged, which direction, whether it counts, and what to tell the worker.

badge → roster → direction policy → append (durable) → outcome. The green signal is chosen only after the
append returned. A foreman's badge read twice within `gate.foreman_print_s` asks for the day's listing and
registers nobody; so a foreman's single badge is held that long before it counts as their own IN/OUT (a mistaken
print costs a sheet of paper, a mistaken registration is a false declaration). Remarks the service would make
(1, 2/7/9, 21, 22, 24) are anticipated here: the worker gets the warning signal and the expected remark is
stored with the registration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum, StrEnum

from sitegate.clock import ClockReading, ClockState
from sitegate.clock.timefmt import format_utc, local, parse_utc
from sitegate.config import Config, ReaderConfig
from sitegate.domain.identifiers import WorkerId
from sitegate.domain.registration import Direction, Registration, append_registration
from sitegate.domain.roster import FOREMAN, RosterStore, Worker
from sitegate.errors import DuplicateRegistrationError, StorageError
from sitegate.jsonlog import event
from sitegate.queue.log import RegistrationLog
from sitegate.queue.records import Kind, Record
from sitegate.reader.feedback import Signal
from sitegate.reader.sources import BadgeRead, BadRead

logger = logging.getLogger("sitegate.domain.gate")
HISTORY = timedelta(hours=48)
UNCERTAIN = "direction uncertain: the site bus is down, the other gates' registrations are not seen"


class Result(StrEnum):
    """What became of one badge read (the `outcome` of its log line)."""

    REGISTERED = "registered"
    DUPLICATE_SUPPRESSED = "duplicate_suppressed"
    UNKNOWN_BADGE = "unknown_badge"
    BAD_READ = "bad_read"
    REFUSED = "refused"
    SEVERAL_BADGES = "several_badges"
    FOREMAN_HELD = "foreman_held"  # a foreman's first read: it counts once no second read follows
    PRINT_REQUESTED = "print_requested"  # a foreman's second read within the gesture: nobody registered


LOG_LEVELS = {
    Result.REGISTERED: logging.INFO,
    Result.DUPLICATE_SUPPRESSED: logging.INFO,
    Result.UNKNOWN_BADGE: logging.WARNING,
    Result.BAD_READ: logging.WARNING,
    Result.REFUSED: logging.ERROR,
    Result.SEVERAL_BADGES: logging.WARNING,
    Result.FOREMAN_HELD: logging.INFO,
    Result.PRINT_REQUESTED: logging.INFO,
}
MAX_RECENT = 20_000  # remembered badge reads before the ones older than an hour are forgotten


@dataclass(frozen=True)
class Outcome:
    outcome: Result
    signal: Signal
    seq: int | None = None
    direction: Direction | None = None
    warnings: tuple[str, ...] = ()
    expected_remarks: tuple[int, ...] = ()
    reason: str | None = None
    worker: Worker | None = field(default=None, compare=False)


@dataclass
class Last:
    direction: str
    moment: datetime
    last_in: datetime | None  # the worker's latest IN, for remark 24
    here: bool = True  # decided at this gate (False: a peer's, from the site bus)
    gate: str = ""  # the peer that decided it (here: "")


class Gesture(Enum):
    """What a foreman's read means within the gesture (ForemanGesture.read)."""

    HELD = "held"  # a first read: it counts as their IN/OUT once the gesture time passes without a second
    PRINT = "print"  # a second read within the gesture time: the listing, nobody registered
    ASKED_ALREADY = "asked already"  # a further read within the gesture time of the last: the same request


class ForemanGesture:
    """A foreman's badge read twice within `gate.foreman_print_s` asks for the day's listing; read once, it counts
    as their own IN/OUT once that time has passed. The whole gesture is here: what a read means, which held read
    is due (`due`, for the daemon's timer loop) and what a stop releases (`held_reads`). Times are the reads'
    monotonic stamps and the same clock's now: the daemon gives the sources and this loop one clock."""

    def __init__(self, gesture_s: float) -> None:
        self.gesture_ns = int(gesture_s * 1e9)
        self.held: dict[str, BadgeRead] = {}  # foreman badge uid -> its first read, until released or printed
        self.printing: dict[str, int] = {}  # foreman badge uid -> monotonic ns of its latest read asking to print

    def read(self, read: BadgeRead) -> Gesture | BadgeRead:
        """Further reads within the gesture time of the last one are the same request (a foreman tapping three
        times wants one listing, not a listing and a registration). A BadgeRead: a held first read whose release
        is late, to count now."""
        asked = self.printing.get(read.uid)
        if asked is not None and read.monotonic_ns - asked < self.gesture_ns:
            self.printing[read.uid] = read.monotonic_ns
            return Gesture.ASKED_ALREADY
        first = self.held.pop(read.uid, None)
        if first is not None and read.monotonic_ns - first.monotonic_ns < self.gesture_ns:
            self.printing[read.uid] = read.monotonic_ns
            return Gesture.PRINT
        if first is not None:
            return first
        self.held[read.uid] = read
        return Gesture.HELD

    def release(self, read: BadgeRead) -> bool:
        """Take a held read out to count it; False when it printed or counted already."""
        if self.held.get(read.uid) != read:
            return False
        del self.held[read.uid]
        return True

    def due(self, now_ns: int) -> list[BadgeRead]:
        """The held reads whose gesture time has passed at `now_ns`."""
        return [read for read in self.held.values() if now_ns - read.monotonic_ns >= self.gesture_ns]

    def next_due_ns(self) -> int | None:
        """When the next held read falls due (None: none held)."""
        return min((read.monotonic_ns + self.gesture_ns for read in self.held.values()), default=None)

    def held_reads(self) -> list[BadgeRead]:
        return list(self.held.values())


class Gate:
    def __init__(
        self,
        log: RegistrationLog,
        roster: RosterStore,
        config: Config,
        clock_state: Callable[[], ClockReading],
        backlog: Callable[[], int],
    ) -> None:
        self.log = log
        self.roster = roster
        self.config = config
        self.clock_state = clock_state
        self.backlog = backlog
        self.readers = {reader.name: reader for reader in config.readers}
        self.recent_uids: dict[str, int] = {}  # uid -> monotonic ns of the last read that counted
        self.last: dict[tuple[str, str], Last] = {}
        self.site_connected: Callable[[], bool] | None = None  # the site bus's state (the daemon sets it)
        self.gesture = ForemanGesture(config.gate.foreman_print_s)
        self._load_history()

    def _load_history(self) -> None:
        """Each worker's last registration, from the log's recent tail (the log is the only truth)."""
        cutoff = None
        for record in self.log.newest(Kind.REGISTRATION):
            moment = parse_utc(record.wall_utc)
            cutoff = cutoff or moment - HISTORY
            if moment < cutoff:
                break
            data = record.data
            key = (data["worker"]["kind"], data["worker"]["number"])
            last = self.last.setdefault(key, Last(data["direction"], moment, None))
            if last.last_in is None and data["direction"] == Direction.IN:
                last.last_in = moment

    def observe(self, record: Record, device: str = "", report: bool = True) -> None:
        """A peer gate's registration, verified by the site bus: the newest of the site's registrations decides
        the direction, the remarks anticipated and the same-badge window, as if it had been made here.
        Called under the daemon's gate lock (a dictionary update: the badge path never waits for the bus)."""
        moment = parse_utc(record.wall_utc)
        now = self.log.clock.now()
        if now - moment > HISTORY:
            return
        data = record.data
        key, direction = (data["worker"]["kind"], data["worker"]["number"]), data["direction"]
        last = self.last.setdefault(key, Last(direction, moment, None, here=False, gate=device))
        apart = last.here or last.gate != device  # two gates, this one or two peers: every gate of the site says it
        if report and apart and last.direction == direction and direction in (Direction.IN, Direction.OUT):
            # Decided apart (a split, a broker down): both stand, nothing is rewritten; people must know.
            event(
                logger, "site_conflict", logging.WARNING, worker=WorkerId(*key).masked, direction=direction,
                here_utc=format_utc(last.moment), first_gate=last.gate or self.config.device_id, gate=device,
                there_utc=record.wall_utc,
            )  # fmt: skip
        if moment > last.moment:
            last.direction, last.moment, last.here, last.gate = direction, moment, False, device
        if direction == Direction.IN and (last.last_in is None or moment > last.last_in):
            last.last_in = moment
        uid = data.get("badge_uid")
        if uid:  # the peer's monotonic clock means nothing here: its wall time, as an age on ours
            read_ns = self.log.clock.monotonic_ns() - int((now - moment).total_seconds() * 1e9)
            if read_ns > self.recent_uids.get(uid, read_ns - 1):
                self.recent_uids[uid] = read_ns

    def _reader(self, name: str) -> ReaderConfig:
        return self.readers.get(name) or self.config.readers[0]

    def _window_hit(self, read: BadgeRead, window_s: float) -> bool:
        if len(self.recent_uids) > MAX_RECENT:  # random unknown cards must not grow memory for months
            horizon = read.monotonic_ns - int(3600e9)
            self.recent_uids = {uid: ns for uid, ns in self.recent_uids.items() if ns > horizon}
        previous = self.recent_uids.get(read.uid)
        return previous is not None and (read.monotonic_ns - previous) / 1e9 < window_s

    def badge(self, read: BadgeRead | BadRead) -> Outcome:
        if isinstance(read, BadRead):
            return self._logged(Outcome(Result.BAD_READ, Signal.FAULT, reason=read.problem), None, read.reader)
        chosen = self._choose_badge(read)
        if isinstance(chosen, Outcome):
            return self._logged(chosen, read.uid, read.reader)
        read = chosen
        reader = self._reader(read.reader)
        worker = self.roster.lookup(read.uid)
        if worker is not None and worker.role == FOREMAN:
            return self._logged(self._foreman(read, worker), read.uid, reader.name)
        return self._counted(read, reader, worker)

    def _foreman(self, read: BadgeRead, worker: Worker) -> Outcome:
        answer = self.gesture.read(read)
        if answer is Gesture.ASKED_ALREADY:
            reason = "the listing is asked for already"
            return Outcome(Result.DUPLICATE_SUPPRESSED, Signal.PRINT_REQUESTED, reason=reason, worker=worker)
        if answer is Gesture.PRINT:
            return Outcome(Result.PRINT_REQUESTED, Signal.PRINT_REQUESTED, reason="foreman badge twice", worker=worker)
        if answer is Gesture.HELD:
            return Outcome(Result.FOREMAN_HELD, Signal.FOREMAN_NOTED, reason="a second read prints", worker=worker)
        # its release is late: the first read counts now, and this read falls in its same-badge window
        return self._counted(answer, self._reader(answer.reader), worker)

    def release(self, read: BadgeRead) -> Outcome | None:
        """A held foreman read whose gesture time has passed: it counts now as any badge (None: it printed, or
        already counted)."""
        if not self.gesture.release(read):
            return None
        return self._counted(read, self._reader(read.reader), self.roster.lookup(read.uid))

    def _counted(self, read: BadgeRead, reader: ReaderConfig, worker: Worker | None) -> Outcome:
        if self._window_hit(read, reader.same_badge_window_s):
            outcome = Outcome(
                Result.DUPLICATE_SUPPRESSED, Signal.ALREADY_REGISTERED, reason="same badge within the window"
            )
            return self._logged(outcome, read.uid, reader.name)
        try:
            outcome = self._decide(read, reader, worker)
        except StorageError as error:
            outcome = Outcome(Result.REFUSED, Signal.FAULT, reason=f"{error.problem} — fix: {error.fix}")
        return self._logged(outcome, read.uid, reader.name)

    def _choose_badge(self, read: BadgeRead) -> BadgeRead | Outcome:
        """Several cards at once (a badge in a wallet): the one in the roster is the badge. Two roster badges
        register nobody: a worker must not register a colleague by holding both badges."""
        if not read.also_in_field:
            return read
        badges = [uid for uid in read.uids if self.roster.lookup(uid) is not None]
        event(logger, "cards_in_field", reader=read.reader, uids=list(read.uids), roster_badges=len(badges))
        if len(badges) > 1:
            reason = f"{len(badges)} roster badges at once"
            return Outcome(Result.SEVERAL_BADGES, Signal.ONE_BADGE_AT_A_TIME, reason=reason)
        badge = badges[0] if badges else read.uid
        return replace(read, uid=badge, also_in_field=tuple(uid for uid in read.uids if uid != badge))

    @staticmethod
    def _logged(outcome: Outcome, uid: str | None, reader: str) -> Outcome:
        """One JSON line per badge, written after the decision (for "registered": after the commit)."""
        fields = {
            "outcome": outcome.outcome,
            "uid": uid,
            "reader": reader,
            "seq": outcome.seq,
            "worker": outcome.worker.worker.masked if outcome.worker else None,
            "direction": outcome.direction,
            "warnings": list(outcome.warnings),
            "expected_remarks": list(outcome.expected_remarks),
            "reason": outcome.reason,
        }
        event(logger, "badge", LOG_LEVELS[outcome.outcome], **{k: v for k, v in fields.items() if v not in (None, [])})
        return outcome

    def _decide(self, read: BadgeRead, reader: ReaderConfig, worker: Worker | None) -> Outcome:
        if worker is None:
            record = self.log.append(Kind.UNKNOWN_BADGE, {"uid": read.uid, "reader": reader.name})
            self.recent_uids[read.uid] = read.monotonic_ns
            return Outcome(Result.UNKNOWN_BADGE, Signal.UNKNOWN_BADGE, seq=record.seq, reason="badge not in the roster")
        now = self.log.clock.capture().wall_utc
        key = (worker.worker.kind, worker.worker.number)
        last = self.last.get(key)
        direction, expected, already = self._direction(reader, last, now)
        if already:
            self.recent_uids[read.uid] = read.monotonic_ns
            return Outcome(Result.DUPLICATE_SUPPRESSED, Signal.ALREADY_REGISTERED, reason=already, worker=worker)
        warnings = self._warnings(worker, now, expected)
        uncertain = self._uncertain(reader, direction)
        if uncertain:
            warnings.append(UNCERTAIN)
        registration = Registration(
            worker.worker,
            worker.employer,
            direction,
            self.config.site.works_declaration,
            read.uid,
            reader.name,
            worker.last_name,
            worker.first_name,
            uncertain,
        )
        try:
            record = append_registration(self.log, registration, tuple(expected))
        except DuplicateRegistrationError as error:
            return Outcome(Result.DUPLICATE_SUPPRESSED, Signal.ALREADY_REGISTERED, reason=error.problem, worker=worker)
        self.recent_uids[read.uid] = read.monotonic_ns
        moment = parse_utc(record.wall_utc)
        self.last[key] = Last(direction, moment, moment if direction == Direction.IN else last and last.last_in)
        signal = (
            Signal.WARNING
            if warnings
            else Signal.REGISTERED_OUT
            if direction == Direction.OUT
            else Signal.REGISTERED_IN
        )
        return Outcome(
            Result.REGISTERED, signal, record.seq, direction, tuple(warnings), tuple(sorted(expected)), worker=worker
        )

    def _direction(
        self, reader: ReaderConfig, last: Last | None, now: datetime
    ) -> tuple[Direction, set[int], str | None]:
        """The direction this badge registers, the remarks it would draw, or why it does not count."""
        presence = reader.direction == "presence" or self.config.site.registration_mode == "presence"
        if presence:
            if last and local(last.moment).date() == local(now).date():
                return Direction.PRESENCE, set(), "already registered today"
            return Direction.PRESENCE, set(), None
        recent = last is not None and now - last.moment < timedelta(hours=24)
        if reader.direction == "toggle":
            reset = timedelta(hours=self.config.gate.toggle_reset_hours)
            going_out = last is not None and last.direction == Direction.IN and now - last.moment < reset
            return (Direction.OUT if going_out else Direction.IN), set(), None
        if reader.direction == "entry":
            return Direction.IN, ({21} if recent and last.direction == Direction.IN else set()), None
        expected = {22} if recent and last.direction == Direction.OUT else set()
        if last is None or last.last_in is None or now - last.last_in > timedelta(hours=24):
            expected.add(24)
        return Direction.OUT, expected, None

    def _uncertain(self, reader: ReaderConfig, direction: str) -> bool:
        """A toggle reader's IN or OUT decided while the site bus is down may contradict a badge at another gate
        (OUT there, back in here: OUT again). It still counts (a registration is never lost), but the worker gets
        the warning signal and the signed record says so, for the site view, the page and the listing to flag.
        Entry and exit readers (a fixed direction per reader) are never in doubt."""
        connected = self.site_connected
        return (
            reader.direction == "toggle"
            and direction in (Direction.IN, Direction.OUT)
            and connected is not None
            and not connected()
        )

    def _warnings(self, worker: Worker, now: datetime, expected: set[int]) -> list[str]:
        warnings = [f"remark {code} expected" for code in sorted(expected)]
        if not worker.valid_on(local(now).date()):
            codes = (2,) if worker.worker.kind == "ssin" else (7, 9)
            expected.update(codes)
            warnings.append("outside the worker's validity dates (remark " + "/".join(map(str, codes)) + ")")
        if worker.employer not in self.config.site.employer_numbers:
            expected.add(1)
            warnings.append("employer not declared on this site (remark 1)")
        clock = self.clock_state()
        if clock.state != ClockState.SYNCED:
            warnings.append(f"clock {clock.state}")
        backlog = self.backlog()
        if backlog > self.config.gate.backlog_warning:
            warnings.append(f"{backlog} registrations waiting to be delivered")
        return warnings
