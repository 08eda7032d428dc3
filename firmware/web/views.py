"""What the page shows, read through a read-only connection: the state line, who is on site, today's
registrations, the remarks to act on. Each comes from the function the `sitegate` command uses (the outage
verdict and its guidance, presence, remarks): the page never computes its own version of them."""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import chain

import sqlite_utils

from sitegate.clock.timefmt import day_bounds, local, show
from sitegate.config import Config
from sitegate.domain.identifiers import mask
from sitegate.domain.presence import Doubt, OnSite, doubts, on_site, recent_registrations
from sitegate.paper_fallback import guidance
from sitegate.paper_fallback.guidance import Operation, OutageState
from sitegate.paper_fallback.outage import failed_probes, outages, situation
from sitegate.queue import delivery
from sitegate.queue.log import LogView
from sitegate.queue.records import Kind, Record
from sitegate.service.remarks import ActionItem, Wording, action_wording, needing_action, remark_wording
from sitegate.status import daemon_running
from sitegate.web import words
from sitegate.web.words import say

PRESENCE_WINDOW = timedelta(hours=24)  # registrations older than this cannot keep anyone on site (reset <= 24 h)


@dataclass(frozen=True)
class Evidence:
    at_utc: str
    what: str  # the signed record's event: suspected, opened, evidence, ...
    failed: list[dict] = field(default_factory=list)  # the probes that failed: name, symptom, detail


class Band(StrEnum):
    """The colour of the page's state band and its word (the template's CSS class and words' `level`)."""

    OK = "ok"
    WAITING = "waiting"
    SUSPECTED = "suspected"
    OUTAGE = "outage"  # the service's side: workers exempt, the paper procedure
    FAULT = "fault"  # our side, or a gate that never connected: no exemption
    DOWN = "down"  # the daemon is not running


@dataclass(frozen=True)
class PageState:
    """The gate's state as a foreman reads it: a headline, the steps to take (the action first), the evidence."""

    level: Band
    line: str
    steps: list[guidance.ProcedureStep] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    since_utc: str | None = None


@dataclass(frozen=True)
class RegistrationLine:
    seq: int
    at_utc: str
    name: str
    number: str  # masked
    employer: str
    direction: str
    reader: str


def state(db: sqlite_utils.Database, config: Config, now: datetime, language: str) -> PageState:
    """Stopped, working, waiting, or the episode going on, in the words of the outage verdict (guidance.py).

    A stopped daemon comes first: whatever the service does, the gate records nobody then."""
    found = situation(LogView(db), delivery.summary(db, now), daemon_running(db, config.gate.heartbeat_s, now))
    ongoing = found.ongoing
    if found.state == Operation.DOWN:
        return PageState(Band.DOWN, *guidance.state_steps(Operation.DOWN, language))
    if ongoing is not None:
        shown = ongoing.as_dict(now, language)
        evidence = [Evidence(piece["at_utc"], piece["event"], failed_probes(piece)) for piece in shown["evidence"]]
        if ongoing.state == OutageState.SUSPECTED:
            line = guidance.state_line(OutageState.SUSPECTED, language, since=show(ongoing.start_utc))
            return PageState(Band.SUSPECTED, line, [], evidence)  # its line says since when
        if ongoing.state == OutageState.NEVER_CONNECTED:
            headline, steps = guidance.state_steps(OutageState.NEVER_CONNECTED, language)
            return PageState(Band.FAULT, headline, steps, evidence, ongoing.start_utc)
        headline, steps = guidance.steps(ongoing.cause, language, ongoing.other_channel_tried)
        return PageState(Band.OUTAGE if shown["exempt"] else Band.FAULT, headline, steps, evidence, ongoing.start_utc)
    if found.state == OutageState.NEVER_CONNECTED:
        return PageState(Band.FAULT, *guidance.state_steps(OutageState.NEVER_CONNECTED, language))
    level = Band.WAITING if found.state == Operation.WAITING else Band.OK
    return PageState(level, guidance.state_line(found.state, language))


def phone_linked(step: str) -> str:
    """A step's text as HTML, the contact centre's number a tap away (tel:), every other character escaped."""
    before, found, after = step.partition(guidance.CONTACT_NUMBER)
    if not found:
        return html.escape(step)
    link = f'<a href="{guidance.CONTACT_TEL}">{guidance.CONTACT_NUMBER}</a>'
    return f"{html.escape(before)}{link}{html.escape(after)}"


def printer_configured(config: Config) -> bool:
    """A printer the print button can reach: a CUPS queue for PDF, or a thermal printer's address."""
    printer = config.printer
    return bool(printer.cups_name if printer.format == "pdf" else printer.escpos)


def _site_registrations(db: sqlite_utils.Database, config: Config, now: datetime) -> Iterator[tuple[str, Record]]:
    """This gate's registrations and, with the site bus on, every gate's (the verified mirror)."""
    registrations = recent_registrations(LogView(db), config.device_id, now, PRESENCE_WINDOW)
    if config.bus.enabled:
        from sitegate.site.view import site_history

        registrations = chain(registrations, site_history(config, now - PRESENCE_WINDOW))
    return registrations


def who_is_on_site(db: sqlite_utils.Database, config: Config, now: datetime) -> list[OnSite]:
    """The headcount of the whole site."""
    return on_site(_site_registrations(db, config, now), now, timedelta(hours=config.gate.toggle_reset_hours))


def direction_doubts(db: sqlite_utils.Database, config: Config, now: datetime) -> list[Doubt]:
    """Today's workers whose direction is in doubt (the same rule as `sitegate site` and the listing), by name."""
    found = doubts(_site_registrations(db, config, now), day_bounds(local(now).date())[0])
    return sorted(found.values(), key=lambda d: (d.last_name.casefold(), d.first_name.casefold()))


def todays_registrations(db: sqlite_utils.Database, config: Config, now: datetime) -> list[RegistrationLine]:
    """Today's registrations (Brussels day), newest first."""
    found = []
    for record in LogView(db).between(Kind.REGISTRATION, *day_bounds(local(now).date())):
        data = record.data
        worker = data["worker"]
        found.append(
            RegistrationLine(
                record.seq,
                record.wall_utc,
                f"{worker.get('last_name', '')} {worker.get('first_name', '')}".strip(),
                mask(worker["number"]),
                config.site.employer_name(data["employer"]) or data["employer"],
                data["direction"],
                data.get("reader", ""),
            )
        )
    return found[::-1]


def remarks(db: sqlite_utils.Database) -> list[ActionItem]:
    """The remarks and refusals someone must act on, soonest deadline first (as `sitegate remarks`)."""
    return needing_action(db, outages(LogView(db)))


def remark_text(item: ActionItem, language: str) -> Wording:
    """The remark in the page's language: the official French or English wording, our Dutch translation (marked);
    a refused registration in the page's words (the service's own error is in the journal)."""
    if item.code is None:
        return Wording(say("refused_registration", language))
    return remark_wording(item.code, language) or Wording(say("remark_unknown", language))


def remark_action(item: ActionItem, language: str) -> Wording:
    """What to do: the official list's action in English, our French or Dutch translation of it (marked)."""
    if item.own_resend:  # our own duplicate after a lost answer: nothing to do, in the page's language
        return Wording(item.action_in(language))
    if item.code is None:
        return Wording(words.fallback_action(True, language))
    return action_wording(item.code, language) or Wording(words.fallback_action(False, language))


def references_today(db: sqlite_utils.Database, now: datetime) -> list[dict]:
    """The reference numbers recorded today, oldest first, each with who entered it."""
    return [
        {**record.data, "seq": record.seq, "at_utc": record.wall_utc}
        for record in LogView(db).between(Kind.OUTAGE_REFERENCE, *day_bounds(local(now).date()))
    ]
