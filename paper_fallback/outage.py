"""The outage journal: from the first failure, record verifiably why registration is impossible, and say what to do.

The procedure exempts workers only if the unavailability is *verifiable*, and only when the cause is a third
party (power, internet, phone network) or the service itself; a fault on our side (reader, configuration,
credentials, disk) is for the provider to fix. A clock problem is not an outage: registrations are still accepted
(it is a warning and a provider task). Every step is a signed record in the same log as the registrations:

- `suspected` at the first failed probe or delivery attempt (its start is the earliest failure seen);
- `cleared` when it ends within the grace period, or `opened` when the grace ends (the outage starts at the
  suspected record's start), `never_connected` instead when the device has never delivered anything (the
  procedure grants no exemption where connectivity is permanently missing, but the evidence is kept all the same);
- `reclassified`, periodic `evidence` (every probe round and the failed attempts since the last record), `closed`;
- `power_loss`: a heartbeat gap found at start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from sitegate.clock.timefmt import format_utc, parse_utc, show
from sitegate.errors import IdentifierError
from sitegate.jsonlog import event
from sitegate.paper_fallback import guidance
from sitegate.paper_fallback.guidance import Operation, OutageState
from sitegate.paper_fallback.probes import Probe, verdict
from sitegate.queue import delivery
from sitegate.queue.database import immediate
from sitegate.queue.delivery import QueueSummary
from sitegate.queue.failures import Cause
from sitegate.queue.log import LogView, RegistrationLog
from sitegate.queue.records import Kind

logger = logging.getLogger("sitegate.outage")
MAX_ROUNDS = 1000  # probe rounds kept between two signed evidence records (a day at one a minute fits easily)
# Journal states: what `observe` returns, and what `sitegate outage --json` reports as "state".


class OutageEvent(StrEnum):
    """What an outage record says happened (its `event`). Signed in the log: never rename a value."""

    SUSPECTED = "suspected"  # a first failing round: an episode begins
    OPENED = "opened"  # the grace period passed with the service still unreachable
    NEVER_CONNECTED = "never_connected"  # the same, for a gate that never delivered
    CLEARED = "cleared"  # a suspicion that ended within the grace period
    CLOSED = "closed"  # an episode past the grace period ended
    RECLASSIFIED = "reclassified"  # the cause changed
    EVIDENCE = "evidence"  # the probe rounds since the last record, every outage.summary_every_s
    POWER_LOSS = "power_loss"  # at start: a silence longer than three heartbeats, without a clean stop


ENDINGS = (OutageEvent.CLOSED, OutageEvent.CLEARED)
_ENDED = {  # an episode's state once it ended
    OutageState.SUSPECTED: OutageState.CLEARED,
    OutageState.OPEN: OutageState.CLOSED,
    OutageState.NEVER_CONNECTED: OutageState.CONNECTED,
}


def _round(probes: list[Probe]) -> dict:
    """One probe round, compactly: its time and what failed."""
    return {
        "at_utc": min(p.at_utc for p in probes),
        "failed": [
            {key: value for key, value in p.as_dict().items() if key not in ("ok", "at_utc")}
            for p in probes
            if not p.ok
        ],
    }


class OutageJournal:
    """Takes each round of evidence; its state survives a restart (in the log's meta table)."""

    def __init__(self, log: RegistrationLog, grace_s: float, summary_every_s: float = 900.0) -> None:
        self.log = log
        self.grace = timedelta(seconds=grace_s)
        self.summary_every = timedelta(seconds=summary_every_s)
        self.rounds: list[dict] = []
        self.last_summary: datetime | None = None

    def _note(self, note: delivery.OutageNote) -> None:
        with immediate(self.log.db):
            delivery.note_outage(self.log.db, note)

    def _record(self, what: OutageEvent, **fields) -> int:
        record = self.log.append(Kind.OUTAGE, {"event": what, **fields})
        level = logging.INFO if what in ENDINGS else logging.WARNING
        event(logger, f"outage_{what}", level, seq=record.seq, **{k: v for k, v in fields.items() if k == "cause"})
        return record.seq

    def observe(self, probes: list[Probe], summary: QueueSummary, now: datetime) -> OutageState:
        """One round of evidence; returns the journal's state: ok, suspected, open or never_connected."""
        found = verdict(probes)
        with immediate(self.log.db):
            delivery.note_internet_ok(self.log.db, found.internet_ok)
        note = delivery.outage_note(self.log.db)
        evidence = [p.as_dict() for p in probes]
        episode = note.episode
        if not found.failing:
            if episode is not None:
                what = OutageEvent.CLEARED if note.state == OutageState.SUSPECTED else OutageEvent.CLOSED
                self._record(what, episode=episode, at_utc=format_utc(now), probes=evidence)
                self._note(delivery.OutageNote())
            self.rounds.clear()
            return OutageState.OK
        self.rounds = [*self.rounds[-MAX_ROUNDS + 1 :], _round(probes)]
        if episode is None:
            failures = [p.at_utc for p in probes if not p.ok]
            since = min(failures + ([summary.first_failure_utc] if summary.first_failure_utc else []))
            seq = self._record(OutageEvent.SUSPECTED, since_utc=since, cause=found.cause, probes=evidence)
            self._note(delivery.OutageNote(seq, OutageState.SUSPECTED, since, found.cause))
            self.last_summary = now
            return OutageState.SUSPECTED
        state = note.state
        if state == OutageState.SUSPECTED:
            if now - parse_utc(note.since_utc) < self.grace:
                return OutageState.SUSPECTED
            state = OutageState.OPEN if summary.last_delivery_utc else OutageState.NEVER_CONNECTED
            self._record(
                OutageEvent.OPENED if state == OutageState.OPEN else OutageEvent.NEVER_CONNECTED,
                episode=episode,
                since_utc=note.since_utc,
                cause=found.cause,
                probes=evidence,
            )
            self._note(replace(note, state=state, cause=found.cause))
            self.last_summary = now
            return state
        if found.cause != note.cause:
            self._record(OutageEvent.RECLASSIFIED, episode=episode, cause=found.cause, probes=evidence)
            self._note(replace(note, cause=found.cause))
        elif self.last_summary is None or now - self.last_summary >= self.summary_every:
            self._record(
                OutageEvent.EVIDENCE,
                episode=episode,
                cause=found.cause,
                rounds=self.rounds,
                failed_attempts=summary.failed_attempts,
                first_failure_utc=summary.first_failure_utc,
            )
            self.rounds = []
            self.last_summary = now
        return state

    def power_gap(self, now: datetime, heartbeat_s: float) -> int | None:
        """At start: a silence longer than three heartbeats since the last one, without a clean stop, was power."""
        said = delivery.liveness(self.log.db)
        heartbeat, stopped = said.heartbeat_utc, said.stopped_utc
        if not heartbeat or (stopped and stopped >= heartbeat):
            return None
        last = parse_utc(heartbeat)
        if now - last < timedelta(seconds=3 * heartbeat_s):
            return None
        return self._record(
            OutageEvent.POWER_LOSS,
            cause=Cause.INFRASTRUCTURE,
            from_utc=heartbeat,
            to_utc=format_utc(now),
            duration_s=round((now - last).total_seconds()),
        )


@dataclass
class Outage:
    """One episode of unavailability, rebuilt from its signed records."""

    seq: int  # the episode's first record
    start_utc: str
    end_utc: str | None
    cause: str
    state: OutageState  # suspected, open, never_connected; once ended: cleared, closed, connected; or power_loss
    evidence: list = field(default_factory=list)  # every signed piece, each with its time
    references: dict[str, str] = field(default_factory=dict)  # employer ("" = the whole site) -> reference

    @property
    def is_outage(self) -> bool:
        """Registration was impossible past the grace period (or power was lost); not a blip, not never-connected."""
        return self.state in (OutageState.OPEN, OutageState.CLOSED, OutageState.POWER_LOSS)

    @property
    def reference(self) -> str | None:
        return self.references.get("") or next(iter(self.references.values()), None)

    def covers(self, wall_utc: str) -> bool:
        return self.start_utc <= wall_utc and (self.end_utc is None or wall_utc <= self.end_utc)

    def delayed(self, wall_utc: str, delivered_utc: str | None) -> bool:
        """Captured during the episode, or before it and still undelivered when it began: its first send failed
        in the episode (the very registration whose failed send opened it, captured a moment before its start)."""
        if self.covers(wall_utc):
            return True
        return wall_utc < self.start_utc and (delivered_utc is None or delivered_utc >= self.start_utc)

    @property
    def other_channel_tried(self) -> str | None:
        """The other channel, when the newest failed delivery in the signed evidence shows the gate tried it itself
        (a gate with a fallback; None when it was not tried: no fallback, or the first channel's answer was lost)."""
        for piece in reversed(self.evidence):
            answer = next((probe for probe in failed_probes(piece) if probe["name"] == "service_answer"), None)
            if answer is not None:
                channels = answer.get("channels") or []
                return channels[1] if len(channels) > 1 else None
        return None

    def what_to_do(self, language: str) -> str:
        if self.state == OutageState.SUSPECTED:
            return guidance.state_line(OutageState.SUSPECTED, language, since=show(self.start_utc))
        if self.state == OutageState.NEVER_CONNECTED:
            return guidance.state_line(OutageState.NEVER_CONNECTED, language)
        return guidance.what_to_do(self.cause, language, self.other_channel_tried)

    def as_dict(self, now: datetime, language: str = "en") -> dict:
        end = parse_utc(self.end_utc) if self.end_utc else now
        return {
            "seq": self.seq,
            "state": self.state,
            "start_utc": self.start_utc,
            "end_utc": self.end_utc,
            "duration_s": round((end - parse_utc(self.start_utc)).total_seconds()),
            "cause": self.cause,
            "exempt": Cause(self.cause).exempt and self.is_outage,
            "reference": self.reference,
            "references": self.references,
            "what_to_do": self.what_to_do(language),
            "evidence": self.evidence,
        }


def failed_probes(piece: dict) -> list[dict]:
    """What failed, as one signed piece of evidence says: its probes, or its latest probe round."""
    failed = [probe for probe in piece.get("probes", []) if not probe.get("ok", True)]
    return failed or (piece.get("rounds") or [{}])[-1].get("failed", [])


def episodes(log: RegistrationLog) -> list[Outage]:
    """Every episode, rebuilt from the signed records (the log is the only truth), oldest first."""
    found: dict[int, Outage] = {}
    for record in log.records(kind=Kind.OUTAGE):
        data = record.data
        what = data["event"]
        piece = {"event": what, "seq": record.seq, "at_utc": record.wall_utc, **data}
        if what == OutageEvent.POWER_LOSS:
            found[record.seq] = Outage(
                record.seq, data["from_utc"], data["to_utc"], data["cause"], OutageState.POWER_LOSS, [piece]
            )
        elif what == OutageEvent.SUSPECTED:
            found[record.seq] = Outage(
                record.seq, data["since_utc"], None, data["cause"], OutageState.SUSPECTED, [piece]
            )
        elif data.get("episode") in found:
            episode = found[data["episode"]]
            episode.evidence.append(piece)
            episode.cause = data.get("cause", episode.cause)
            if what in (OutageEvent.OPENED, OutageEvent.NEVER_CONNECTED):
                episode.state = OutageState.OPEN if what == OutageEvent.OPENED else OutageState.NEVER_CONNECTED
            elif what in ENDINGS:
                episode.state, episode.end_utc = _ENDED[episode.state], data["at_utc"]
    for record in log.records(kind=Kind.OUTAGE_REFERENCE):
        data = record.data
        for episode in found.values():
            if episode.covers(record.wall_utc) and episode.state != OutageState.CLEARED:
                episode.references[data.get("employer") or ""] = data["reference"]
    return list(found.values())


def loose_references(log: RegistrationLog) -> list[dict]:
    """References recorded while no episode was open (the gate dead, say, so nothing judged an outage): shown by
    `sitegate outage` all the same, never lost between episodes."""
    found = [episode for episode in episodes(log) if episode.state != OutageState.CLEARED]
    return [
        {"seq": r.seq, "at_utc": r.wall_utc, "reference": r.data["reference"], "employer": r.data.get("employer")}
        for r in log.records(kind=Kind.OUTAGE_REFERENCE)
        if not any(episode.covers(r.wall_utc) for episode in found)
    ]


def outages(log: RegistrationLog) -> list[Outage]:
    """The outages proper: past the grace period, or a power loss."""
    return [episode for episode in episodes(log) if episode.is_outage]


def current(log: RegistrationLog, found: list[Outage] | None = None) -> Outage | None:
    """The episode going on now (suspected, open or never connected), if any, among `found` when the caller read
    the episodes already (one reading: the daemon may sign a new episode between two)."""
    every = episodes(log) if found is None else found
    ongoing = [e for e in every if e.end_utc is None and e.state != OutageState.POWER_LOSS]
    return ongoing[-1] if ongoing else None


def never_connected(summary: QueueSummary, log: LogView) -> bool:
    """The procedure grants no exemption to a site that never had connectivity: say so, never call it an outage."""
    return summary.last_delivery_utc is None and log.has(Kind.REGISTRATION)


@dataclass(frozen=True)
class Situation:
    """Where the gate stands, decided once for the foreman's page, `sitegate outage` and `sitegate status`."""

    running: bool | None  # the daemon's heartbeat is fresh (None: not judged; `sitegate outage` speaks of the service)
    ongoing: Outage | None  # the episode going on
    never_connected: bool
    undelivered: int

    @property
    def outage_state(self) -> OutageState:
        """The episode going on, else never connected, else OK."""
        if self.ongoing is not None:
            return self.ongoing.state
        return OutageState.NEVER_CONNECTED if self.never_connected else OutageState.OK

    @property
    def state(self) -> Operation | OutageState:
        """A stopped daemon first (whatever the service does, the gate records nobody then), then the episode or
        never connected, then waiting or working."""
        if self.running is False:
            return Operation.DOWN
        if self.outage_state != OutageState.OK:
            return self.outage_state
        return Operation.WAITING if self.undelivered else Operation.WORKING


def situation(
    log: LogView, summary: QueueSummary, running: bool | None, found: list[Outage] | None = None
) -> Situation:
    return Situation(running, current(log, found), never_connected(summary, log), summary.undelivered)


MAX_REFERENCE = 64  # the page's field holds as many; the contact centre's numbers are far shorter


def check_reference(reference: str) -> str:
    """The reference as it is signed and printed (stripped). IdentifierError when it is empty, too long, or holds a
    character no paper shows as typed: a control character would be a command to the thermal printer."""
    text = reference.strip()
    if not text or len(text) > MAX_REFERENCE or not text.isprintable():
        raise IdentifierError(
            f"a reference number is 1 to {MAX_REFERENCE} printable characters (no control or formatting character)",
            "type it as the contact centre gave it: letters, digits, dashes",
        )
    return text


def record_reference(
    log: RegistrationLog, reference: str, now: datetime, employer: str | None = None, by: str | None = None
) -> int:
    """The contact centre's reference number, as a signed record (the paper listing prints it).

    employer: when the employers of the site called separately, each reference is for one of them.
    by: who entered it: the Unix user at the shell (sitegate.commissioning.actor), the foreman on the page."""
    payload = {"reference": check_reference(reference), "at_utc": format_utc(now)}
    if by:
        payload["by"] = by
    if employer:
        payload["employer"] = employer
    return log.append(Kind.OUTAGE_REFERENCE, payload).seq
