"""`sitegate status`: the device's health in one look, with an exit code monitoring can use."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta

import sqlite_utils

from sitegate import __version__, commissioning, health, startfailure
from sitegate.clock.timefmt import format_utc, parse_utc
from sitegate.clock.watch import last_clock_event, service_dispute, unsynced_records
from sitegate.device import Device
from sitegate.jsonlog import scrub
from sitegate.output import CRITICAL, OK, WARNING
from sitegate.paper_fallback import outage
from sitegate.queue import checkpoints, database, delivery
from sitegate.queue.records import Kind
from sitegate.queue.sendwindow import WINDOW_S
from sitegate.queue.signing import fingerprint

RUNNING, STALLED, STOPPED = "running", "stalled", "stopped"
# A late heartbeat is not yet a stall: the heartbeat thread's own work (a summary, a checkpoint) and a busy SD card.
STALL_MARGIN_S = 10.0


def daemon_state(heartbeat_age: float | None, stopped: str | None, heartbeat: str | None, every_s: float) -> str:
    """From the heartbeat alone (a technician's `sitegate status` cannot see the daemon's process): a daemon that
    said it stopped is stopped; one whose heartbeat is late is stalled (hung, SIGSTOPped, killed, or the power went):
    outside systemd nothing restarts it, and workers badge at a gate that does not answer."""
    if heartbeat_age is None or (stopped is not None and stopped >= heartbeat):
        return STOPPED
    return RUNNING if heartbeat_age <= every_s + STALL_MARGIN_S else STALLED


def collect(device: Device, now: datetime) -> tuple[dict, list[str], list[str]]:
    """The status, the warnings and the critical problems, each problem phrased with what to do."""
    config, db = device.config, device.db
    summary = delivery.summary(db, now)
    said = delivery.liveness(db)
    heartbeat = said.heartbeat_utc
    heartbeat_age = (now - parse_utc(heartbeat)).total_seconds() if heartbeat else None
    state = daemon_state(heartbeat_age, said.stopped_utc, heartbeat, config.gate.heartbeat_s)
    running = state == RUNNING
    found = outage.situation(device.log, summary, running)
    failure = None if running else startfailure.last(config)
    last_badge = next(device.log.newest(Kind.REGISTRATION, Kind.UNKNOWN_BADGE), None)
    clock_event, clock_utc = last_clock_event(device.log)
    tolerance = config.clock.warn_fraction * config.site.reception_delay_s
    recorded = next(device.log.newest(Kind.CLOCK), None)
    dispute = service_dispute(device.log, clock_event == "synced", recorded and recorded.data["source"], tolerance)
    disk = shutil.disk_usage(config.data_dir)
    keys, key_problem = device.keys, device.key_problem()
    verdicts = checkpoints.check(device.log, database.head_path(config.database_path), keys)
    size = sum(p.stat().st_size for p in config.data_dir.glob("sitegate.db*") if p.is_file())
    status = {
        "version": __version__,
        "device_id": config.device_id,
        "daemon_running": running,
        "last_start_failure": failure,
        "daemon_state": state,
        "heartbeat_utc": heartbeat,
        "heartbeat_age_s": round(heartbeat_age) if heartbeat_age is not None else None,
        "readers_online": list(said.readers_online) if running else [],
        "readers_configured": [r.name for r in config.readers],
        "last_badge_utc": last_badge.wall_utc if last_badge else None,
        "queue": summary.as_dict(),
        "clock_state": "disputed" if dispute else clock_event,  # never "synced" while the service's Date disagrees
        "clock_dispute": dispute,
        "clock_event_utc": clock_utc,
        "unsynced_records": unsynced_records(device.log),
        "disk_free_bytes": disk.free,
        "database_bytes": size,
        "records": device.log.count(),
        "key_fingerprint": fingerprint(keys.current) if keys else None,
        "key_problem": str(key_problem) if key_problem else None,
        "key_changes": [change.as_dict() for change in keys.changes] if keys else [],
        "outage": found.ongoing.as_dict(now, config.site.language) if found.ongoing else None,
        "never_connected": found.never_connected,
        "witnesses": [verdict.as_dict() for verdict in verdicts],
        "bus": site_bus(device, now) if config.bus.enabled else None,
    }
    offline = sorted(set(status["readers_configured"]) - set(status["readers_online"])) if running else []
    findings = [
        *health.daemon(state, heartbeat_age),
        *health.start_failure(failure),
        *health.device_key(key_problem),
        *health.readers(offline),
        *health.disk(disk.free),
        *health.backlog(summary, config.site.reception_delay_s),
        *health.delivery(summary),
        *health.flaky(*sends_last_hour(db, now), outage_open=status["outage"] is not None),
        *health.clock(status["clock_state"], dispute),
        *health.episode(status["outage"], status["never_connected"]),
        *health.witnesses(verdicts, checkpoints.unacknowledged(device.log)),
        *commissioning.certificate_health(config.service, now),
        *bus_findings(status["bus"], running),
    ]
    warnings = [f.text for f in findings if f.severity == health.WARNING]
    critical = [f.text for f in findings if f.severity == health.CRITICAL]
    return status, warnings, critical


def health_message(device: Device, now: datetime, bus: dict[str, int] | None) -> dict:
    """The retained health message the site bus publishes: what `sitegate status --json` says, with the bus's own
    counts (`bus`: published, mirrored, rejected), scrubbed: the broker is no place for a personal number, even
    inside an error message."""
    status, warnings, critical = collect(device, now)
    return scrub(
        {
            **status,
            "site": device.config.bus.site,
            "online": True,
            "sent_utc": format_utc(now),
            "warnings": warnings,
            "critical": critical,
            "bus": bus,
        }
    )


def daemon_running(db: sqlite_utils.Database, heartbeat_s: float, now: datetime) -> bool:
    """The one rule for `status`, the page and a key replacement: a fresh heartbeat and no clean stop since it."""
    said = delivery.liveness(db)
    age = (now - parse_utc(said.heartbeat_utc)).total_seconds() if said.heartbeat_utc else None
    return daemon_state(age, said.stopped_utc, said.heartbeat_utc, heartbeat_s) == RUNNING


def site_bus(device: Device, now: datetime) -> dict:
    """The site bus as the daemon last wrote it in the mirror file, and how fresh each peer is."""
    from sitegate.site.acknowledge import acknowledged, recent_unacknowledged
    from sitegate.site.bus import CONNECTED, CONNECTED_SINCE
    from sitegate.site.mirror import open_mirror
    from sitegate.site.view import gate_states

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
            "rejected_last_hour": recent_unacknowledged(mirror, device.log, now),  # after the acknowledgement
            "rejections_acknowledged": (done := acknowledged(device.log)) and done.as_dict(),
        }
    finally:
        mirror.db.close()


def bus_findings(bus: dict | None, running: bool) -> list[health.Finding]:
    if not bus:
        return []
    return health.site_bus(running and bus["connected"], bus["stale"], bus["rejected_last_hour"], bus["rejected"])


def sends_last_hour(db, now: datetime) -> tuple[int, int, float | None]:
    """The forwarder's calls and failures of the last hour (as it last wrote them), and the longest a registration
    delivered in that hour waited."""
    since = format_utc(now - timedelta(seconds=WINDOW_S))
    counted = delivery.sends(db)
    # Written at a call, not on a clock: counts older than the window say nothing of the last hour.
    calls, failed = counted[:2] if counted and counted[2] >= since else (0, 0)
    return calls, failed, delivery.longest_wait_since(db, since)


def exit_code(warnings: list[str], critical: list[str]) -> int:
    return CRITICAL if critical else WARNING if warnings else OK
