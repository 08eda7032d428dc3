"""`sitegate status`: the device's health in one look, with an exit code monitoring can use."""

from __future__ import annotations

import shutil
from datetime import datetime

from sitegate import __version__
from sitegate.device import Device
from sitegate.output import CRITICAL, OK, WARNING
from sitegate.paper_fallback import outage
from sitegate.queue import delivery
from sitegate.queue.clockwatch import last_clock_event, unsynced_records
from sitegate.queue.failures import Cause
from sitegate.timefmt import parse_utc

LOW_DISK_BYTES = 200 * 1024 * 1024


def collect(device: Device, now: datetime) -> tuple[dict, list[str], list[str]]:
    """The status, the warnings and the critical problems, each problem phrased with what to do."""
    config, db = device.config, device.db
    summary = delivery.summary(db, now)
    heartbeat = delivery.get_meta(db, "heartbeat_utc")
    heartbeat_age = (now - parse_utc(heartbeat)).total_seconds() if heartbeat else None
    stopped = delivery.get_meta(db, "stopped_utc")
    running = (
        heartbeat_age is not None
        and heartbeat_age < 3 * config.gate.heartbeat_s
        and (stopped is None or stopped < heartbeat)
    )
    last_badge = next(device.log.newest("registration", "unknown_badge"), None)
    clock_event, clock_utc = last_clock_event(device.log)
    disk = shutil.disk_usage(config.data_dir)
    size = sum(p.stat().st_size for p in config.data_dir.glob("sitegate.db*") if p.is_file())
    status = {
        "version": __version__,
        "device_id": config.device_id,
        "daemon_running": running,
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
        "never_connected": never_connected(summary, device),
    }
    warnings, critical = [], []
    if not running:
        critical.append(
            "the daemon is not running (no heartbeat): `systemctl status sitegate`, `journalctl -u sitegate`"
        )
    elif set(status["readers_configured"]) - set(status["readers_online"]):
        critical.append("a reader is offline: check its cable and `journalctl -u sitegate`")
    if disk.free < LOW_DISK_BYTES:
        critical.append(
            f"only {disk.free // 2**20} MiB free on the data partition: new badges will be refused; "
            "free space (old exports, journal: `journalctl --vacuum-size=50M`)"
        )
    delay = config.site.reception_delay_s
    age = summary.oldest_pending_age_s or 0
    if age >= delay:
        critical.append(
            f"the oldest undelivered registration is {age:.0f} s old (reception delay {delay} s: "
            "remark 32): see `sitegate queue` and `sitegate outage`"
        )
    elif age >= delay / 2:
        warnings.append(f"the oldest undelivered registration is {age:.0f} s old")
    if summary.last_error_class == Cause.OURS and summary.undelivered:
        critical.append(f"delivery fails on our side: {summary.last_error} — the provider must act")
    if summary.rejected:
        warnings.append(f"{summary.rejected} registration(s) refused by the service: `sitegate remarks`")
    if clock_event != "synced":
        warnings.append(f"clock {clock_event}: `sitegate clock`")
    ongoing = status["outage"]
    if ongoing and ongoing["state"] == outage.SUSPECTED:
        warnings.append(
            f"registration failing since {ongoing['start_utc']} ({ongoing['cause']}, suspected: an outage opens "
            "after the grace period): `sitegate outage`"
        )
    elif ongoing and ongoing["state"] == outage.OPEN:
        (warnings if ongoing["exempt"] else critical).append(
            f"outage since {ongoing['start_utc']} ({ongoing['cause']}): `sitegate outage` says what to do"
        )
    if status["never_connected"]:
        warnings.append("never connected: no registration has ever been delivered (`sitegate outage`)")
    return status, warnings, critical


def never_connected(summary: delivery.QueueSummary, device: Device) -> bool:
    """The procedure grants no exemption to a site that never had connectivity: say so, never call it an outage."""
    return summary.last_delivery_utc is None and device.log.has("registration")


def current_outage(device: Device, now: datetime) -> dict | None:
    ongoing = outage.current(device.log)
    return ongoing.as_dict(now, device.config.site.language) if ongoing else None


def exit_code(warnings: list[str], critical: list[str]) -> int:
    return CRITICAL if critical else WARNING if warnings else OK
