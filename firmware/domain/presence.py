"""Who is on the site now: the evacuation headcount a foreman needs when the alarm sounds.

Computed from registrations only (the signed log is the only truth), from one gate or several: each worker's
newest registration across every gate decides. An IN younger than the toggle reset (a forgotten OUT does not keep
someone on site for ever), or a presence registration of today (Brussels), means on site; an OUT means gone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sitegate.clock.timefmt import format_utc, local, parse_utc
from sitegate.domain.registration import Direction
from sitegate.queue.log import LogView
from sitegate.queue.records import Kind, Record


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


CONFLICT, UNCERTAIN = "conflict", "uncertain"
DOUBT_MARK = "!"
DOUBT_WORDS: dict[str, dict[str, str]] = {
    "legend": {
        "en": "! direction uncertain: registered while the gates could not see each other (site bus down), or two "
        "gates registered the same direction one after the other; check with the worker",
        "fr": "! sens incertain : enregistré pendant que les portiques ne se voyaient pas (bus du chantier coupé), "
        "ou deux portiques ont enregistré le même sens l'un après l'autre ; vérifier auprès du travailleur",
        "nl": "! richting onzeker: geregistreerd terwijl de poorten elkaar niet zagen (werfbus onderbroken), of "
        "twee poorten registreerden na elkaar dezelfde richting; navragen bij de werknemer",
    },
    "not_counted": {
        "en": "Not counted as on site, direction uncertain:",
        "fr": "Non compté(e)s sur le chantier, sens incertain :",
        "nl": "Niet meegeteld op de werf, richting onzeker:",
    },
    "last": {
        "en": "last {direction} at {gate}, {at}",
        "fr": "dernier {direction} à {gate}, {at}",
        "nl": "laatste {direction} aan {gate}, {at}",
    },  # fmt: skip
}

Move = tuple[str, str, str]  # (wall_utc, gate, direction)


def same_direction_twice(registrations: Iterable[tuple[str, Record]]) -> Iterator[tuple[tuple[str, str], Move, Move]]:
    """Each worker's consecutive IN, IN or OUT, OUT made at two different gates: decided apart (a split)."""
    by_worker: dict[tuple[str, str], list[Move]] = {}
    for gate, record in registrations:
        data = record.data
        key = (data["worker"]["kind"], data["worker"]["number"])
        by_worker.setdefault(key, []).append((record.wall_utc, gate, data["direction"]))
    for key, moves in by_worker.items():
        moves.sort()
        for first, second in zip(moves, moves[1:], strict=False):
            if first[2] == second[2] and first[2] in (Direction.IN, Direction.OUT) and first[1] != second[1]:
                yield key, first, second


@dataclass(frozen=True)
class Doubt:
    """A worker whose direction is in doubt today, and the registration that decides their presence now."""

    worker_kind: str
    worker_number: str
    last_name: str
    first_name: str
    employer: str
    reason: str  # CONFLICT or UNCERTAIN
    direction: str
    gate: str
    wall_utc: str


def doubts(registrations: Iterable[tuple[str, Record]], since_utc: str) -> dict[tuple[str, str], Doubt]:
    """Workers whose direction is in doubt since `since_utc` (the day's start): two gates decided the same direction
    one after the other, or their newest registration was decided with the site bus down (a toggle reader)."""
    pairs = list(registrations)
    newest: dict[tuple[str, str], tuple[str, str, Record]] = {}
    for gate, record in pairs:
        worker = record.data["worker"]
        key = (worker["kind"], worker["number"])
        if key not in newest or (record.wall_utc, gate) > newest[key][:2]:
            newest[key] = (record.wall_utc, gate, record)
    reasons = {key: UNCERTAIN for key, (wall, _, record) in newest.items()
               if wall >= since_utc and record.data.get("direction_uncertain")}  # fmt: skip
    reasons.update({key: CONFLICT for key, _, second in same_direction_twice(pairs) if second[0] >= since_utc})
    found = {}
    for key, reason in reasons.items():
        wall, gate, record = newest[key]
        data, worker = record.data, record.data["worker"]
        found[key] = Doubt(*key, worker.get("last_name", ""), worker.get("first_name", ""), data["employer"], reason,
                           data["direction"], gate, wall)  # fmt: skip
    return found
