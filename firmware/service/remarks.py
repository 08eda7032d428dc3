"""The service's remarks, explained: cause, action and, where a web-form report is due, its deadline.

The table is the official list (ciaw/remarks.csv), shipped in the package.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, partial
from importlib import resources

import sqlite_utils

from sitegate.clock.timefmt import format_utc, parse_utc
from sitegate.domain.identifiers import mask
from sitegate.queue import delivery
from sitegate.queue.delivery import DeliveryState
from sitegate.queue.log import LogView

REPORT_WINDOW = timedelta(days=30)  # "report ... within 30 days via the web form"
# The procedure says "within 30 days" without saying from when: we count from the registration's own time,
# the earliest reading, so the deadline shown is never later than the real one. Shown wherever a deadline is.
DEADLINE_BASIS = "assumed: 30 days from the registration (the procedure does not say from when)"


@dataclass(frozen=True)
class RemarkInfo:
    code: int
    text_fr: str
    text_en: str
    cause: str
    action: str
    device_can_anticipate: str

    @property
    def needs_action(self) -> bool:
        """Remarks with nothing to do, or that cannot be rectified (24: no registration took place), are not listed."""
        action = self.action.lower()
        return not action.startswith(("no action", "nothing to do")) and "cannot be rectified" not in action

    @property
    def web_form_report(self) -> bool:
        return "within 30 days" in self.action


def _read(name: str) -> dict[int, dict[str, str]]:
    """A remarks table of the package's data, by code. The list says "Same as 10." for many causes and actions:
    the reference is followed."""
    text = resources.files("sitegate").joinpath(f"data/{name}").read_text(encoding="utf-8")
    rows = {int(r["code"]): r for r in csv.DictReader(io.StringIO(text))}

    def resolved(code: int, column: str) -> str:
        value = rows[code][column]
        match = re.fullmatch(r"Same as (\d+)\.?", value.strip())
        return resolved(int(match.group(1)), column) if match else value

    return {code: {column: resolved(code, column) for column in row} for code, row in rows.items()}


@cache
def table() -> dict[int, RemarkInfo]:
    return {
        code: RemarkInfo(
            code,
            r["remark_fr"],
            r["remark_en"],
            r["cause"],
            r["action"],
            r["device_can_anticipate"],
        )
        for code, r in _read("remarks.csv").items()
    }


# The official list gives each remark in French and English and its action in English. The Dutch remarks and the
# French and Dutch actions are our translations (data/remarks_translated.csv, every row marked so): wherever one is
# shown it is said to be ours, never the service's wording.
OUR_TRANSLATION = {
    "en": "our translation, not the official wording",
    "fr": "notre traduction, pas le texte officiel",
    "nl": "onze vertaling, niet de officiële tekst",
}


@dataclass(frozen=True)
class Wording:
    text: str
    translated: bool = False  # our translation of the official wording: OUR_TRANSLATION is said beside it


@cache
def _translated() -> dict[int, dict[str, str]]:
    return _read("remarks_translated.csv")


def remark_wording(code: int, language: str) -> Wording | None:
    """The remark itself: the official French or English, our Dutch; None where no text exists in `language`."""
    remark = info(code)
    if language in ("fr", "en"):
        text = remark.text_fr if language == "fr" else remark.text_en
        return Wording(text) if text else None
    text = _translated().get(code, {}).get("remark_nl")
    return Wording(text, translated=True) if text else None


def action_wording(code: int, language: str) -> Wording | None:
    """What to do about the remark: the official list's (English), or our French or Dutch translation of it."""
    if language == "en":
        return Wording(info(code).action)
    text = _translated().get(code, {}).get(f"action_{language}")
    return Wording(text, translated=True) if text else None


def info(code: int) -> RemarkInfo:
    return table().get(code) or RemarkInfo(code, "", f"remark {code} (not in the official list)", "", "Check it.", "")


# Remark 14 on a registration we sent again because the answer to an earlier send was lost (queue/delivery.py
# `lost_answers`): the service holds it twice because of us, and the worker did nothing wrong. In each language
# the remarks are shown in (the CLI's English, the foreman's page in French, Dutch or English).
OWN_RESEND = {
    "en": "duplicate of our own resend after a lost answer: nothing to do",
    "fr": "doublon de notre propre renvoi après une réponse perdue : rien à faire",
    "nl": "dubbel door ons eigen herzenden na een verloren antwoord: niets te doen",
}
OWN_RESEND_CAUSE = (
    "the gate sent this registration again because the answer to an earlier send was lost (no answer in time, "
    "a broken connection, an unreadable answer, or a restart while it was in flight); the service has no "
    "idempotency key, so it kept both"
)


@dataclass(frozen=True)
class ActionItem:
    seq: int
    reference: str
    registered_utc: str
    worker: str  # masked
    code: int | None  # None: the registration was refused (not created)
    text: str
    cause: str
    action: str
    deadline_utc: str | None
    own_resend: bool = False  # remark 14 drawn by our own resend: explained, nothing to do

    @property
    def needs_action(self) -> bool:
        return not self.own_resend

    def action_in(self, language: str) -> str:
        return OWN_RESEND.get(language, OWN_RESEND["en"]) if self.own_resend else self.action

    def as_dict(self) -> dict:
        return {**self.__dict__, "deadline_basis": DEADLINE_BASIS if self.deadline_utc else None}


def needing_action(db: sqlite_utils.Database, outages: list | None = None) -> list[ActionItem]:
    """Remarks someone must act on, and refused registrations; soonest deadline first.

    A remark 32 on a registration an outage delayed (captured during it, or still waiting when it began: the one
    whose failed send opened it) is explained by that outage (and its reference).
    A remark 14 on a registration resent after a lost answer is our own duplicate: listed last, explained, with
    nothing to do (the foreman may see it on the service's side and must not blame the worker)."""
    rows = delivery.remarked_or_rejected(db)
    records = LogView(db).get_many([row.seq for row in rows])
    items = []
    for row in rows:
        wall, delivered = records[row.seq].wall_utc, row.delivered_utc
        item = partial(ActionItem, row.seq, row.reference, wall, mask(records[row.seq].data["worker"]["number"]))
        if row.state == DeliveryState.REJECTED:
            refused = f"refused by the service: {row.last_error}"
            action = "check the worker's data and register again through another channel"
            items.append(item(None, refused, "the service did not create this registration", action, None))
        for code in row.remarks:
            remark = info(code)
            if code == 14 and row.lost_answers:
                items.append(item(code, remark.text_en, OWN_RESEND_CAUSE, OWN_RESEND["en"], None, own_resend=True))
                continue
            if not remark.needs_action:
                continue
            deadline = parse_utc(wall) + REPORT_WINDOW if remark.web_form_report else None
            cause = remark.cause
            during = next((o for o in outages or () if o.delayed(wall, delivered)), None) if code == 32 else None
            if during:
                cause = (
                    f"captured during outage {during.seq} ({during.cause}"
                    f"{', reference ' + during.reference if during.reference else ''}): delivered late because "
                    "of the outage, not the clock"
                )
            items.append(item(code, remark.text_en, cause, remark.action, format_utc(deadline) if deadline else None))
    return sorted(items, key=lambda i: (i.own_resend, i.deadline_utc is None, i.deadline_utc or "", i.seq))


def days_left(deadline_utc: str, now: datetime) -> float:
    return (parse_utc(deadline_utc) - now).total_seconds() / 86400
