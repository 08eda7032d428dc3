"""The emergency paper attendance listing: what the procedure requires, and what ties it to the signed log.

Required (the contact centre's procedure, step 4): its reference number, the works-declaration number, the date,
and for each worker present or to be present: the national register (NISS) or Limosa L1 number, last and first
name. Every row comes from the signed log: the names are those stored with each registration when it was made,
so a roster import later in the day takes nothing off the paper; the roster only adds the "expected, not badged"
rows on request. Added so an inspector can check the paper against the device: the employer of each row, the IN
and OUT times, the device id, the time printed with the clock state, and the log checkpoint (also as a QR code).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime

from sitegate.clock.timefmt import day_bounds, local, show
from sitegate.clock.watch import last_clock_event
from sitegate.device import Device
from sitegate.domain.presence import doubts
from sitegate.domain.registration import Direction
from sitegate.domain.roster import sort_key
from sitegate.paper_fallback.guidance import OutageState
from sitegate.paper_fallback.outage import check_reference, episodes
from sitegate.queue import delivery
from sitegate.queue.records import Kind, Record

BLANK_ROWS = 8
SITE = ""  # the key of a reference given for the whole site, not for one employer


@dataclass
class Row:
    number: str  # full NISS or Limosa number: the paper is where the procedure wants it
    kind: str  # "NISS" or "Limosa"
    last_name: str
    first_name: str
    employer: str  # KBO/BCE number
    employer_name: str
    time_in: str = ""  # Brussels time of the first IN (or presence) that day
    time_out: str = ""  # Brussels time of the last OUT that day
    badged: bool = True  # False: on the roster, expected, not badged
    doubt: bool = False  # the direction is uncertain today (decided apart, or with the site bus down): marked


@dataclass(frozen=True)
class Listing:
    day: date
    references: dict[str, str]  # employer KBO (or SITE) -> the contact centre's reference number
    employer: str | None  # None: the whole site; else this employer's listing only
    works_declaration: str | None
    device_id: str
    printed_at: str
    clock_state: str
    checkpoint_seq: int | None  # None: the log was empty, there is no head to check the paper against
    checkpoint_hash: str | None
    key_fingerprint: str
    language: str = "fr"
    rows: list[Row] = field(default_factory=list)
    blank_rows: int = BLANK_ROWS
    gates: list[str] = field(default_factory=list)  # with the site bus: the gates whose records it holds, how fresh
    earlier_references: list[str] = field(default_factory=list)  # the day's other references, with time and employer
    coverage: list[str] = field(default_factory=list)  # each reference with its outage and the rows it covers

    @property
    def reference(self) -> str | None:
        """This listing's reference: the employer's own when it called separately, else the site's."""
        if self.employer:
            return self.references.get(self.employer) or self.references.get(SITE)
        return self.references.get(SITE)

    @property
    def other_references(self) -> dict[str, str]:
        """On a whole-site listing, the references employers obtained on their own."""
        return {} if self.employer else {k: v for k, v in self.references.items() if k != SITE}

    @property
    def checkpoint(self) -> str | None:
        """What the QR code holds: enough to find and check the record in the log or an export. None for an empty
        log: a made-up head (0, zeros) would be printed only for `sitegate verify --checkpoint` to refuse it."""
        if self.checkpoint_seq is None or self.checkpoint_hash is None:
            return None
        return f"sitegate:{self.device_id}:{self.checkpoint_seq}:{self.checkpoint_hash[:16]}:{self.key_fingerprint}"


def references(device: Device, day: date) -> tuple[dict[str, str], list[str]]:
    """This listing's references (the site's, and each employer's that called on its own), and every other one of
    the day, each with its time and employer: none is left off the paper.

    A listing's own are those recorded since the day's latest episode began (its first failure): a second outage's
    listing never carries the first one's reference before anyone has called about it."""
    start, end = day_bounds(day)
    began = [e.start_utc for e in episodes(device.log) if start <= e.start_utc < end and e.state != OutageState.CLEARED]
    since = max(began, default=start)
    own: dict[str, Record] = {}
    others: list[Record] = []
    for record in device.log.between(Kind.OUTAGE_REFERENCE, start, end):
        key = record.data.get("employer") or SITE
        if record.wall_utc < since:
            others.append(record)
            continue
        if key in own:
            others.append(own[key])  # replaced by a later call: still printed, among the others
        own[key] = record
    described = [
        f"{r.data['reference']} ({local(r.wall_utc):%H:%M}"
        + (f", {r.data['employer']})" if r.data.get("employer") else ")")
        for r in sorted(others, key=lambda r: r.seq)
    ]
    return {key: record.data["reference"] for key, record in own.items()}, described


def coverage(device: Device, day: date, registrations: list[tuple[str, Record]], ordered: list[Row]) -> list[str]:
    """Each reference of the day with its episode's times and the rows of this listing (their numbers) that the
    episode covers: the workers of registrations captured during it, or whose first send failed in it (this gate's
    delivery ledger says when each was delivered); an employer's own reference covers that employer's rows only."""
    start, end = day_bounds(day)
    numbers = {row.number: index for index, row in enumerate(ordered, start=1)}
    delivered = {row.seq: row.delivered_utc for row in delivery.rows(device.ledger)}
    found = [e for e in episodes(device.log) if e.state != OutageState.CLEARED]
    lines = []
    for record in device.log.between(Kind.OUTAGE_REFERENCE, start, end):
        episode = next((e for e in found if e.covers(record.wall_utc)), None)
        if episode is None:
            continue  # recorded with no episode open: printed among the references, with no rows to claim
        employer = record.data.get("employer")
        rows = {
            numbers.get(registration.data["worker"]["number"])
            for gate, registration in registrations
            if (not employer or registration.data["employer"] == employer)
            and (
                episode.delayed(registration.wall_utc, delivered.get(registration.seq))
                if gate == device.config.device_id
                else episode.covers(registration.wall_utc)  # another gate's: its own ledger knows its sends
            )
        } - {None}
        until = f"{local(episode.end_utc):%H:%M}" if episode.end_utc else "..."  # ASCII: any slip prints it
        lines.append(
            f"{record.data['reference']} ({local(episode.start_utc):%H:%M}-{until}"
            + (f", {employer}): " if employer else "): ")
            + (_spans(sorted(rows)) or "-")
        )
    return lines


def _spans(numbers: list[int]) -> str:
    """1, 2, 3, 5 as "1-3, 5"."""
    spans: list[list[int]] = []
    for number in numbers:
        if spans and number == spans[-1][-1] + 1:
            spans[-1].append(number)
        else:
            spans.append([number])
    return ", ".join(f"{s[0]}-{s[-1]}" if len(s) > 1 else str(s[0]) for s in spans)


def _registrations(device: Device, day: date, now: datetime) -> tuple[list[tuple[str, Record]], list[str]]:
    """The day's (gate, registration) of this gate, and with the site bus on, of every gate of the site (in time
    order), with one line per gate saying how fresh its records are here (an unheard gate is named)."""
    start, end = day_bounds(day)
    own = [(device.config.device_id, record) for record in device.log.between(Kind.REGISTRATION, start, end)]
    if not device.config.bus.enabled:
        return own, []
    from sitegate.site.mirror import open_mirror
    from sitegate.site.view import gate_states

    mirror = open_mirror(device.config)
    try:
        mirrored = [(gate, record) for gate, record in mirror.registrations_since(start) if record.wall_utc < end]
        gates = [
            f"{g.device}: {g.records} records, newest {show(g.newest_record_utc) if g.newest_record_utc else '-'}"
            + (f", NOT HEARD since {show(g.heard_utc) if g.heard_utc else 'ever'}" if g.stale else "")
            + (f", {g.missing} missing" if g.missing else "")
            for g in gate_states(device, mirror, now)
        ]
    finally:
        mirror.db.close()
    return sorted(own + mirrored, key=lambda pair: pair[1].wall_utc), gates


def _rows(registrations: list[tuple[str, Record]], device: Device, employer: str | None) -> dict[tuple[str, str], Row]:
    site = device.config.site
    rows: dict[tuple[str, str], Row] = {}
    for _, record in registrations:
        data = record.data
        if employer and data["employer"] != employer:
            continue
        worker = data["worker"]
        key = (worker["kind"], worker["number"])
        row = rows.get(key) or Row(
            worker["number"],
            "NISS" if worker["kind"] == "ssin" else "Limosa",
            worker.get("last_name", ""),
            worker.get("first_name", ""),
            data["employer"],
            site.employer_name(data["employer"]),
        )
        rows[key] = row
        moment = local(record.wall_utc).strftime("%H:%M")
        if data["direction"] == Direction.OUT:
            row.time_out = moment
        elif not row.time_in:
            row.time_in = moment
    return rows


def build(
    device: Device,
    day: date,
    reference: str | None = None,
    with_roster: bool = False,
    *,
    now: datetime,
    employer: str | None = None,
    language: str | None = None,
) -> Listing:
    """Everyone who badged on `day` (Brussels) from the signed log; on request, every roster worker valid that day.

    reference: given on the command line, it is this listing's reference (the employer's, or the site's)."""
    site = device.config.site
    registrations, gates = _registrations(device, day, now)
    rows = _rows(registrations, device, employer)
    for key in doubts(registrations, day_bounds(day)[0]).keys() & rows.keys():
        rows[key].doubt = True
    if with_roster:
        for worker in device.roster.all():
            key = (worker.worker.kind, worker.worker.number)
            if key in rows or not worker.valid_on(day) or (employer and worker.employer != employer):
                continue
            rows[key] = Row(
                worker.worker.number,
                "NISS" if worker.worker.kind == "ssin" else "Limosa",
                worker.last_name,
                worker.first_name,
                worker.employer,
                site.employer_name(worker.employer),
                badged=False,
            )
    ordered = sorted(rows.values(), key=lambda r: (not r.badged, sort_key(r.last_name), sort_key(r.first_name)))
    found, earlier = references(device, day)
    if reference:
        found[employer or SITE] = check_reference(reference)
    last = device.log.last()
    return Listing(
        day=day,
        references=found,
        employer=employer,
        works_declaration=site.works_declaration,
        device_id=device.config.device_id,
        printed_at=show(now),
        clock_state=last_clock_event(device.log)[0],
        checkpoint_seq=last.seq if last else None,
        checkpoint_hash=last.hash if last else None,
        key_fingerprint=device.key.fingerprint,
        language=language or site.language,
        rows=ordered,
        gates=gates,
        earlier_references=earlier,
        coverage=coverage(device, day, registrations, ordered),
    )


def record_printing(
    device: Device, listing: Listing, output_format: str, destination: str, content: bytes, by: str | None = None
) -> int:
    """Each printed listing is itself a signed record: what was printed, when, for which reference, for whom."""
    record = device.log.append(
        Kind.PAPER_LISTING,
        {
            **({"by": by} if by else {}),
            "date": listing.day.isoformat(),
            "reference": listing.reference,
            "employer": listing.employer,
            "format": output_format,
            "destination": destination,
            "checkpoint_seq": listing.checkpoint_seq,
            "workers": [row.number for row in listing.rows],
            "sha256": hashlib.sha256(content).hexdigest(),
            "printed_at": listing.printed_at,
        },
    )
    return record.seq
