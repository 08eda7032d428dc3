"""Who is on the site now: the evacuation headcount a foreman needs when the alarm sounds.

Computed from registrations only (the signed log is the only truth), from one gate or several: each worker's
newest registration across every gate decides. An IN younger than the toggle reset (a forgotten OUT does not keep
someone on site for ever), or a presence registration of today (Brussels), means on site; an OUT means gone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sitegate.queue.log import LogView
from sitegate.queue.records import Kind, Record
from sitegate.registration import Direction
from sitegate.timefmt import format_utc, local, parse_utc


@dataclass(frozen=True)
class OnSite:
    """One worker on the site, as their newest registration says."""

    worker_kind: str
    worker_number: str
    last_name: str
    first_name: str
    employer: str
    since_utc: str  # the registration that put them on site
    gate: str  # the device id of the gate where it was made
    reader: str

    def as_dict(self) -> dict:
        return asdict(self)


def recent_registrations(view: LogView, gate: str, now: datetime, window: timedelta) -> Iterator[tuple[str, Record]]:
    """One gate's registrations of the last `window`, paired with the gate's device id (the input of on_site)."""
    for record in view.between(Kind.REGISTRATION, format_utc(now - window), "9999"):
        yield gate, record


def on_site(registrations: Iterable[tuple[str, Record]], now: datetime, reset: timedelta) -> list[OnSite]:
    """Workers whose newest registration (across every gate given) keeps them on site, by employer and name."""
    newest: dict[tuple[str, str], tuple[str, str, Record]] = {}
    for gate, record in registrations:
        worker = record.data["worker"]
        key = (worker["kind"], worker["number"])
        seen = newest.get(key)
        if seen is None or (record.wall_utc, gate, record.seq) > (seen[0], seen[1], seen[2].seq):
            newest[key] = (record.wall_utc, gate, record)
    today = local(now).date()
    present = []
    for wall_utc, gate, record in newest.values():
        data = record.data
        moment = parse_utc(wall_utc)
        inside = (data["direction"] == Direction.IN and now - moment < reset) or (
            data["direction"] == Direction.PRESENCE and local(moment).date() == today
        )
        if inside:
            worker = data["worker"]
            present.append(
                OnSite(
                    worker["kind"],
                    worker["number"],
                    worker.get("last_name", ""),
                    worker.get("first_name", ""),
                    data["employer"],
                    wall_utc,
                    gate,
                    data.get("reader", ""),
                )
            )
    return sorted(present, key=lambda p: (p.employer, p.last_name.casefold(), p.first_name.casefold(), p.since_utc))
