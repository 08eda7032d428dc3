"""`sitegate status`: the device's health, in the exit code monitoring reads."""

from __future__ import annotations

import sys

from sitegate import config as configuration
from sitegate import health, startfailure
from sitegate.clock import SYSTEM
from sitegate.clock.timefmt import show
from sitegate.device import Device
from sitegate.errors import SitegateError
from sitegate.output import Report, flagged, held_for_clock, pairs, when
from sitegate.queue import delivery
from sitegate.status import collect, exit_code

DAEMON_STATES = {"running": "running", "stalled": "STALLED (no heartbeat for {age} s)", "stopped": "NOT RUNNING"}


def status(args) -> Report:
    config = configuration.load(args.config)
    try:
        device = Device.open(config, SYSTEM, signing=False)  # a key problem is one of its critical lines
    except SitegateError:
        if failure := startfailure.last(config):  # the daemon met the same wall: say when, and what it was
            print(f"daemon: NOT RUNNING; {health.start_failure(failure)[0].text}", file=sys.stderr)
        raise
    status, warnings, critical = collect(device, SYSTEM.now())
    hold = delivery.ClockHold.at(SYSTEM, config.clock.first_sync_wait_s)
    status["held_for_clock"] = delivery.held_for_clock(device.db, hold).as_dict()
    queue_state, ongoing = status["queue"], status["outage"]
    text = pairs(
        [
            ("device", f"{status['device_id']} (sitegate {status['version']})"),
            ("daemon", DAEMON_STATES[status["daemon_state"]].format(age=status["heartbeat_age_s"])),
            ("readers online", ", ".join(status["readers_online"]) or "none"),
            ("last badge", when(status["last_badge_utc"])),
            (
                "queue",
                f"{queue_state['pending']} pending, {queue_state['in_flight']} in flight, "
                f"{queue_state['delivered']} delivered, {queue_state['rejected']} rejected",
            ),
            ("last delivery", when(queue_state["last_delivery_utc"])),
            ("last error", queue_state["last_error"] or "none"),
            ("waiting for the clock", held_for_clock(**status["held_for_clock"])),
            ("clock", f"{status['clock_state']} ({status['unsynced_records']} records to re-date)"),
            ("disk free", f"{status['disk_free_bytes'] // 2**20} MiB"),
            ("database", f"{status['database_bytes'] // 1024} KiB, {status['records']} records"),
            ("device key", _key_line(status)),
            (
                "site bus",
                "off"
                if not (bus := status["bus"])
                else f"{'connected' if bus['connected'] else 'NOT CONNECTED'} since {show(bus['since_utc'])}, "
                f"{bus['peers_heard']}/{bus['peers']} peers heard, {bus['rejected']} rejected"
                if bus["since_utc"]
                else "never connected",
            ),
            (
                "outage",
                f"{ongoing['state']}: {ongoing['cause']} since {show(ongoing['start_utc'])}"
                if ongoing
                else "never connected"
                if status["never_connected"]
                else "none",
            ),
        ]
    )
    text += flagged(warnings, critical)
    return Report({**status, "warnings": warnings, "critical": critical}, text, exit_code(warnings, critical))


def _key_line(status: dict) -> str:
    if not status["key_fingerprint"]:
        return "none yet (made at the daemon's first start)"
    changes = status["key_changes"]
    since = f" (since record {changes[-1]['seq']}, started by {changes[-1]['by']})" if changes else ""
    return status["key_fingerprint"] + since
