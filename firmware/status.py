"""`sitegate status`: the device's health in one look, with an exit code monitoring can use."""

from __future__ import annotations

import shutil
from datetime import datetime

import sqlite_utils

from sitegate import __version__, commissioning, health, startfailure
from sitegate.device import Device
from sitegate.output import CRITICAL, OK, WARNING
from sitegate.paper_fallback import outage
from sitegate.queue import checkpoints, database, delivery
from sitegate.queue.clockwatch import last_clock_event, unsynced_records
from sitegate.queue.log import LogView
from sitegate.queue.records import Kind
from sitegate.timefmt import parse_utc


def collect(device: Device, now: datetime) -> tuple[dict, list[str], list[str]]:
    """The status, the warnings and the critical problems, each problem phrased with what to do."""
    config, db = device.config, device.db
    summary = delivery.summary(db, now)
    heartbeat = delivery.get_meta(db, "heartbeat_utc")
    running = daemon_running(db, config.gate.heartbeat_s, now)
    failure = None if running else startfailure.last(config)
    last_badge = next(device.log.newest(Kind.REGISTRATION, Kind.UNKNOWN_BADGE), None)
    clock_event, clock_utc = last_clock_event(device.log)
    disk = shutil.disk_usage(config.data_dir)
    verdicts = checkpoints.check(device.log, database.head_path(config.database_path), device.key.public_key_hex)
    size = sum(p.stat().st_size for p in config.data_dir.glob("sitegate.db*") if p.is_file())
    status = {
        "version": __version__,
        "device_id": config.device_id,
        "daemon_running": running,
        "last_start_failure": failure,
        "heartbeat_utc": heartbeat,
        "readers_online": [r for r in (delivery.get_meta(db, "reader_online") or "").split(",") if r]
        if running
        else [],
        "readers_configured": [r.name for r in config.readers],
        "last_badge_utc": last_badge.wall_utc if last_badge else None,
        "queue": summary.as_dict(),
        "clock_state": clock_event,
        "clock_event_utc": clock_utc,
        "unsynced_records": unsynced_records(device.log),
        "disk_free_bytes": disk.free,
        "database_bytes": size,
        "records": device.log.count(),
        "key_fingerprint": device.key.fingerprint,
        "outage": current_outage(device, now),
        "never_connected": never_connected(summary, device.log),
        "witnesses": [verdict.as_dict() for verdict in verdicts],
        "bus": site_bus(device, now) if config.bus.enabled else None,
    }
    offline = sorted(set(status["readers_configured"]) - set(status["readers_online"])) if running else []
    findings = [
        *health.daemon(running),
        *health.start_failure(failure),
        *health.readers(offline),
        *health.disk(disk.free),
        *health.backlog(summary, config.site.reception_delay_s),
        *health.delivery(summary),
        *health.clock(clock_event),
        *health.episode(status["outage"], status["never_connected"]),
        *health.witnesses(verdicts, checkpoints.unacknowledged(device.log)),
        *commissioning.certificate_health(config.service, now),
        *bus_findings(status["bus"], running),
    ]
    warnings = [f.text for f in findings if f.severity == health.WARNING]
    critical = [f.text for f in findings if f.severity == health.CRITICAL]
    return status, warnings, critical


def daemon_running(db: sqlite_utils.Database, heartbeat_s: float, now: datetime) -> bool:
    """A heartbeat younger than three beats and no clean stop since: the one rule for `status` and the page."""
    heartbeat = delivery.get_meta(db, "heartbeat_utc")
    stopped = delivery.get_meta(db, "stopped_utc")
    if heartbeat is None or (stopped is not None and stopped >= heartbeat):
        return False
    return (now - parse_utc(heartbeat)).total_seconds() < 3 * heartbeat_s


def site_bus(device: Device, now: datetime) -> dict:
    """The site bus as the daemon last wrote it in the mirror file, and how fresh each peer is."""
    from sitegate.site.bus import CONNECTED, CONNECTED_SINCE
    from sitegate.site.view import gate_states, open_mirror

    mirror = open_mirror(device.config)
    try:
        peers = [g for g in gate_states(device, mirror, now) if not g.own]
        return {
            "connected": mirror.state(CONNECTED) == "1",
            "since_utc": mirror.state(CONNECTED_SINCE),
            "peers": len(peers),
            "peers_heard": sum(1 for g in peers if not g.stale),
            "stale": [g.device for g in peers if g.stale],
            "rejected": mirror.rejected_count(),
        }
    finally:
        mirror.db.close()


def bus_findings(bus: dict | None, running: bool) -> list[health.Finding]:
    return health.site_bus(running and bus["connected"], bus["stale"], bus["rejected"]) if bus else []


def never_connected(summary: delivery.QueueSummary, log: LogView) -> bool:
    """The procedure grants no exemption to a site that never had connectivity: say so, never call it an outage."""
    return summary.last_delivery_utc is None and log.has(Kind.REGISTRATION)


def current_outage(device: Device, now: datetime) -> dict | None:
    ongoing = outage.current(device.log)
    return ongoing.as_dict(now, device.config.site.language) if ongoing else None


def exit_code(warnings: list[str], critical: list[str]) -> int:
    return CRITICAL if critical else WARNING if warnings else OK
