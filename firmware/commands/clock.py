"""`sitegate clock`: how good the clock is now, as the daemon would judge it."""

from __future__ import annotations

from sitegate.clock.timesource import best_reading
from sitegate.clock.watch import assess, default_sources, last_clock_event, service_dispute, unsynced_records
from sitegate.commands.device import open_device
from sitegate.output import Report, fields, severity
from sitegate.queue import delivery


def clock(args) -> Report:
    device = open_device(args)
    site = device.config.site
    threshold = device.config.clock.warn_fraction * site.reception_delay_s
    reading = best_reading(default_sources(device.config.clock.ntp_server, device.config.clock.trust_system_clock))
    synced, warning = assess(reading, threshold)
    dispute = service_dispute(device.log, synced, reading.source, threshold)
    watched = last_clock_event(device.log)[0]  # a step the daemon has not seen resolved yet: not synced either
    service_offset, service_offset_seen = delivery.service_offset(device.db)
    data = {
        "synced": synced and not dispute and watched != "stepped",
        "dispute": dispute,
        "daemon_clock_state": watched,
        "offset_s": reading.offset_s,
        "max_error_s": reading.max_error_s,
        "source": reading.source,
        "detail": reading.detail,
        "service_offset_s": service_offset,
        "service_offset_seen_utc": service_offset_seen,
        "unsynced_records": unsynced_records(device.log),
        "reception_delay_s": site.reception_delay_s,
        "warn_threshold_s": threshold,
        "warning": warning,
    }
    text = fields(data)
    return Report(data, text, severity(not data["synced"], warning))
