"""The site as people see it: this gate's log and the mirror of its peers, read together.

Who is on site comes from `sitegate.domain.presence.on_site` (the one presence computation, shared with the foreman's
page), fed with (gate, record) pairs of every gate. Each gate's freshness says how far the picture can be
trusted: a gate unheard for `bus.stale_after_s` is named, so a listing never silently misses its workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sitegate.clock.timefmt import day_bounds, format_utc, local, parse_utc
from sitegate.config import Config
from sitegate.device import Device
from sitegate.domain.presence import Doubt, OnSite, doubts, on_site, recent_registrations, same_direction_twice
from sitegate.queue.records import Record
from sitegate.site.mirror import Mirror, open_mirror

if TYPE_CHECKING:
    from sitegate.site.acknowledge import Acknowledged


def site_history(config: Config, since: datetime) -> Iterator[tuple[str, Record]]:
    """(gate, registration) mirrored since `since`: the gate's decisions start from them as from its own log."""
    mirror = open_mirror(config)
    try:
        yield from mirror.registrations_since(format_utc(since))
    finally:
        mirror.db.close()


def site_registrations(device: Device, mirror: Mirror, since: datetime) -> Iterator[tuple[str, Record]]:
    """(gate, registration) of this gate and every mirrored peer since `since`."""
    yield from recent_registrations(device.log, device.config.device_id, since, timedelta(0))
    yield from mirror.registrations_since(format_utc(since))


@dataclass(frozen=True)
class GateState:
    device: str
    own: bool
    heard_utc: str | None  # the last record received from it (for this gate: now)
    newest_record_utc: str | None
    records: int  # the seq up to which its chain is held without a gap
    missing: int  # records seen announced but not yet held (a gap being filled)
    stale: bool

    def as_dict(self) -> dict:
        return asdict(self)


def gate_states(device: Device, mirror: Mirror, now: datetime) -> list[GateState]:
    """This gate and each configured peer, with how fresh the mirror's copy of it is."""
    stale_after = timedelta(seconds=device.config.bus.stale_after_s)
    last = device.log.last()
    states = [
        GateState(device.config.device_id, True, format_utc(now), last.wall_utc if last else None,
                  last.seq if last else 0, 0, False)
    ]  # fmt: skip
    for peer in mirror.peer_states():
        heard = peer.heard_utc
        stale = heard is None or now - parse_utc(heard) > stale_after
        states.append(
            GateState(
                peer.device, False, heard, mirror.newest_wall(peer.device), peer.next_seq - 1, peer.missing, stale
            )
        )
    return states


@dataclass(frozen=True)
class Conflict:
    """Two gates decided the same direction for one worker one after the other (apart, while split)."""

    worker: str  # masked
    direction: str
    first: str  # "gate @ time"
    second: str


def conflicts(registrations: list[tuple[str, Record]]) -> list[Conflict]:
    from sitegate.domain.identifiers import mask

    return [
        Conflict(mask(number), first[2], f"{first[1]} @ {first[0]}", f"{second[1]} @ {second[0]}")
        for (_, number), first, second in same_direction_twice(registrations)
    ]


@dataclass(frozen=True)
class SiteView:
    present: list[OnSite]
    gates: list[GateState]
    conflicts: list[Conflict]
    doubts: dict[tuple[str, str], Doubt]  # today's, by (worker kind, number)
    rejected: int  # in all
    rejected_recently: int  # what warns: recent, received after the newest acknowledgement
    acknowledged: Acknowledged | None
    latest_rejected: list[dict]


def site_view(device: Device, now: datetime) -> SiteView:
    """Who is on site now, the gates and their state, the conflicts between gates, the records rejected."""
    from sitegate.site.acknowledge import acknowledged, recent_unacknowledged

    reset = timedelta(hours=device.config.gate.toggle_reset_hours)
    mirror = open_mirror(device.config)
    try:
        registrations = list(site_registrations(device, mirror, now - max(reset, timedelta(hours=24))))
        return SiteView(
            on_site(registrations, now, reset), gate_states(device, mirror, now), conflicts(registrations),
            doubts(registrations, day_bounds(local(now).date())[0]),
            mirror.rejected_count(), recent_unacknowledged(mirror, device.log, now), acknowledged(device.log),
            mirror.rejected(),
        )  # fmt: skip
    finally:
        mirror.db.close()


def doubt_lines(view: SiteView, language: str) -> list[str]:
    """The legend of the present list's mark, and the workers in doubt it does not count (their newest is an OUT)."""
    if not view.doubts:
        return []
    from sitegate.clock.timefmt import show
    from sitegate.domain.identifiers import mask
    from sitegate.domain.presence import DOUBT_WORDS

    present = {(p.worker_kind, p.worker_number) for p in view.present}
    absent = [
        f"  {d.last_name} {d.first_name} ({mask(d.worker_number)}): "
        + DOUBT_WORDS["last"][language].format(direction=d.direction, gate=d.gate, at=show(d.wall_utc))
        for key, d in sorted(view.doubts.items(), key=lambda item: item[1].last_name.casefold())
        if key not in present
    ]
    return [DOUBT_WORDS["legend"][language], *([DOUBT_WORDS["not_counted"][language], *absent] if absent else [])]
