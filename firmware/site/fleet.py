"""The fleet: every gate of every site on the broker, from the retained health messages, worst first.

Each gate keeps one retained message on `sitegate/<site>/<device>/health` (what `sitegate status --json` says)
and leaves a last will saying offline, so a technician responsible for forty gates reads them all in one look,
without an SSH session each, and a gate that lost power shows as offline, not as its last good state.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from datetime import datetime

from sitegate.clock import Clock
from sitegate.clock.timefmt import parse_utc
from sitegate.config import Config
from sitegate.errors import SitegateError
from sitegate.site import topics
from sitegate.site.bus import ClientFactory, connect_properties, mqtt_client

ORDER = {"offline": 0, "unreadable": 1, "silent": 2, "critical": 3, "warning": 4, "ok": 5}
UNREADABLE = "its health message is not one sitegate writes (another version, or someone with its password): check it"
FUTURE = (
    "its health message is dated in the future (REPORTED): its clock is wrong, or someone with its password wrote it; "
    "check `sitegate clock` on it"
)


@dataclass(frozen=True)
class GateHealth:
    site: str
    device: str
    state: str  # offline, unreadable, silent (no health for 3 periods), critical, warning, ok
    sent_utc: str | None
    undelivered: int | None
    oldest_undelivered_s: float | None
    clock: str | None
    problems: list[str]

    def as_dict(self) -> dict:
        return asdict(self)


def judge(site: str, device: str, body: dict, now: datetime, silent_after_s: float) -> GateHealth:
    """One gate's line; a message of another shape is that gate's problem, never the whole view's."""
    try:
        return _judge(site, device, body, now, silent_after_s)
    except (AttributeError, TypeError, ValueError):
        return GateHealth(site, device, "unreadable", None, None, None, None, [UNREADABLE])


def _judge(site: str, device: str, body: dict, now: datetime, silent_after_s: float) -> GateHealth:
    queue = body.get("queue") or {}
    problems = [str(problem) for problem in (*body.get("critical", []), *body.get("warnings", []))]
    sent = body.get("sent_utc")
    if sent is not None and (parse_utc(sent) - now).total_seconds() > silent_after_s:
        # Never OK for ever: a time in the future would never turn silent. Within silent_after_s: clocks that differ.
        return GateHealth(site, device, "unreadable", sent, None, None, None, [FUTURE])
    oldest = queue.get("oldest_pending_age_s")
    oldest = float(oldest) if oldest is not None else None
    clock = body.get("clock_state")
    clock = str(clock) if clock is not None else None
    if not body.get("online"):
        state = "offline"
    elif sent is None or (now - parse_utc(sent)).total_seconds() > silent_after_s:
        state = "silent"
    else:
        state = "critical" if body.get("critical") else "warning" if body.get("warnings") else "ok"
    undelivered = int(queue.get("pending", 0) + queue.get("in_flight", 0)) if queue else None
    return GateHealth(site, device, state, sent, undelivered, oldest, clock, problems)


def read_fleet(
    config: Config,
    clock: Clock,
    settle_s: float = 1.0,
    at_most_s: float = 5.0,
    make_client: ClientFactory = mqtt_client,
) -> list[GateHealth]:
    """Connect, take the retained health messages, disconnect. Worst first. make_client: as for SiteBus."""
    found: dict[tuple[str, str], dict] = {}
    subscribed, failed = threading.Event(), []
    client = make_client(config, f"sitegate-fleet-{config.device_id}-{clock.monotonic_ns()}", None)

    def on_connect(c, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            failed.append(str(reason_code))
            subscribed.set()
        else:
            c.subscribe(topics.FLEET_HEALTH, qos=1)

    def on_message(c, userdata, message) -> None:
        where = topics.parse(message.topic)
        try:
            body = json.loads(message.payload)
        except ValueError:
            return
        if where and isinstance(body, dict):
            found[(where.site, where.device)] = body

    client.on_connect, client.on_message = on_connect, on_message
    client.on_subscribe = lambda *args: subscribed.set()
    try:
        client.connect(config.bus.host, config.bus.port, keepalive=15, properties=connect_properties())
    except OSError as error:
        raise SitegateError(
            f"broker {config.bus.host}:{config.bus.port}: {error}", "check [bus] and the broker"
        ) from None
    client.loop_start()
    try:
        if not subscribed.wait(at_most_s) or failed:
            raise SitegateError(
                f"broker {config.bus.host}:{config.bus.port} did not let us in: {failed or 'no answer'}",
                "check [bus] username, password_file and ca_file, and the broker's ACL",
            )
        seen = -1
        while len(found) != seen:  # retained messages come right after the subscription: until a quiet moment
            seen = len(found)
            clock.wait(settle_s / 4)
    finally:
        client.loop_stop()
        client.disconnect()
    now = clock.now()
    gates = [judge(s, d, body, now, 3 * config.bus.health_every_s) for (s, d), body in found.items()]
    return sorted(gates, key=lambda g: (ORDER.get(g.state, 9), g.site, g.device))
