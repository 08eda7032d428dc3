"""The site as people see it: this gate's log and the mirror of its peers, read together.

Who is on site comes from `sitegate.presence.on_site` (the one presence computation, shared with the foreman's
page), fed with (gate, record) pairs of every gate. Each gate's freshness says how far the picture can be
trusted: a gate unheard for `bus.stale_after_s` is named, so a listing never silently misses its workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sitegate.config import Config
from sitegate.device import Device
from sitegate.presence import OnSite, on_site, recent_registrations
from sitegate.queue.records import Record
from sitegate.registration import Direction
from sitegate.site.mirror import Mirror
from sitegate.site.mirror import connect as connect_mirror
from sitegate.timefmt import format_utc, parse_utc


def open_mirror(config: Config) -> Mirror:
    return Mirror(connect_mirror(config.mirror_path), config.device_id, config.bus.peer_keys)


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
    from sitegate.identifiers import mask

    by_worker: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for gate, record in registrations:
        data = record.data
        key = (data["worker"]["kind"], data["worker"]["number"])
        by_worker.setdefault(key, []).append((record.wall_utc, gate, data["direction"]))
    found = []
    for (_, number), moves in by_worker.items():
        moves.sort()
        for (wall_a, gate_a, dir_a), (wall_b, gate_b, dir_b) in zip(moves, moves[1:], strict=False):
            if dir_a == dir_b and dir_a in (Direction.IN, Direction.OUT) and gate_a != gate_b:
                found.append(Conflict(mask(number), dir_a, f"{gate_a} @ {wall_a}", f"{gate_b} @ {wall_b}"))
    return found


@dataclass(frozen=True)
class SiteView:
    present: list[OnSite]
    gates: list[GateState]
    conflicts: list[Conflict]
    rejected: int
    latest_rejected: list[dict]


def site_view(device: Device, now: datetime) -> SiteView:
    """Who is on site now, the gates and their state, the conflicts between gates, the records rejected."""
    reset = timedelta(hours=device.config.gate.toggle_reset_hours)
    mirror = open_mirror(device.config)
    try:
        registrations = list(site_registrations(device, mirror, now - max(reset, timedelta(hours=24))))
        return SiteView(
            on_site(registrations, now, reset), gate_states(device, mirror, now), conflicts(registrations),
            mirror.rejected_count(), mirror.rejected(),
        )  # fmt: skip
    finally:
        mirror.db.close()
