"""`sitegate remarks`: the service's remarks and refusals that need someone's action, soonest deadline first."""

from __future__ import annotations

from sitegate.clock import SYSTEM
from sitegate.clock.timefmt import show
from sitegate.commands.device import open_device
from sitegate.output import Report, severity, table
from sitegate.paper_fallback.outage import outages
from sitegate.service.remarks import (
    DEADLINE_BASIS,
    OUR_TRANSLATION,
    ActionItem,
    Wording,
    action_wording,
    days_left,
    needing_action,
    remark_wording,
)


def remarks(args) -> Report:
    """In English by default (the technician's); `--lang fr|nl` gives the remark and its action as the foreman's
    page does, our translations marked "*" and said so. The cause stays the official list's English."""
    device = open_device(args)
    language = getattr(args, "lang", None) or "en"
    items = needing_action(device.db, outages(device.log))
    worded = [(item, *in_language(item, language)) for item in items]
    now = SYSTEM.now()
    rows = (
        [
            i.seq,
            show(i.registered_utc),
            i.worker,
            i.code or "refused",
            marked(text),
            f"{show(i.deadline_utc)[:10]} ({days_left(i.deadline_utc, now):.0f} d)" if i.deadline_utc else "",
            i.cause,
            marked(action),
        ]
        for i, text, action in worded
    )
    columns = ["seq", "registered", "worker", "remark", "what", "report by", "cause", "action"]
    text = table(rows, columns) if items else ""
    if any(i.deadline_utc for i in items):
        text += f"\nreport by: {DEADLINE_BASIS}"
    if any(w.translated for _, *pair in worded for w in pair):
        text += f"\n* {OUR_TRANSLATION[language]}"
    status = severity(warning=any(i.needs_action for i in items))  # our own resends' remark 14: nothing to do
    data = [
        {**item.as_dict(), "language": language, "text": t.text, "action": a.text, "translated": translated(t, a)}
        for item, t, a in worded
    ]
    return Report(data, text or "no remark needs action", status)


def in_language(item: ActionItem, language: str) -> tuple[Wording, Wording]:
    """The remark and its action in `language` where a text exists in it, else the list's English; a refusal
    keeps the service's own words."""
    text = (remark_wording(item.code, language) if item.code else None) or Wording(item.text)
    if item.own_resend or not item.code or language == "en":
        return text, Wording(item.action_in(language))
    return text, action_wording(item.code, language) or Wording(item.action)


def marked(wording: Wording) -> str:
    return f"{wording.text} *" if wording.translated else wording.text


def translated(text: Wording, action: Wording) -> list[str]:
    """Which fields are our translation (not the official wording), for the JSON reader."""
    return [name for name, wording in (("text", text), ("action", action)) if wording.translated]
