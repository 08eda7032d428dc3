"""`sitegate remarks`: the service's remarks and refusals that need someone's action, soonest deadline first."""

from __future__ import annotations

from sitegate.clock import SYSTEM
from sitegate.clock.timefmt import show
from sitegate.commands.device import open_device
from sitegate.output import Report, severity, table
from sitegate.paper_fallback.outage import outages
from sitegate.service.remarks import DEADLINE_BASIS, days_left, needing_action


def remarks(args) -> Report:
    device = open_device(args)
    items = needing_action(device.db, outages(device.log))
    now = SYSTEM.now()
    rows = (
        [
            i.seq,
            show(i.registered_utc),
            i.worker,
            i.code or "refused",
            i.text,
            f"{show(i.deadline_utc)[:10]} ({days_left(i.deadline_utc, now):.0f} d)" if i.deadline_utc else "",
            i.cause,
            i.action,
        ]
        for i in items
    )
    columns = ["seq", "registered", "worker", "remark", "what", "report by", "cause", "action"]
    text = table(rows, columns) if items else ""
    if any(i.deadline_utc for i in items):
        text += f"\nreport by: {DEADLINE_BASIS}"
    status = severity(warning=any(i.needs_action for i in items))  # our own resends' remark 14: nothing to do
    return Report([item.as_dict() for item in items], text or "no remark needs action", status)
