"""The delivery to the service: what waits (`sitegate queue`), and a drain by hand (`sitegate forward --once`)."""

from __future__ import annotations

from sitegate.clock import SYSTEM
from sitegate.clock.timefmt import show
from sitegate.commands.device import open_device
from sitegate.output import Report, fields, held_for_clock, pairs, severity
from sitegate.queue import delivery
from sitegate.queue.forwarder import Forwarder
from sitegate.service.channels import channel_for


def queue(args) -> Report:
    device = open_device(args)
    summary = delivery.summary(device.db, SYSTEM.now())
    held = delivery.held_for_clock(device.db, delivery.ClockHold.at(SYSTEM, device.config.clock.first_sync_wait_s))
    oldest = (
        f"record {summary.oldest_pending_seq}, {show(summary.oldest_pending_utc)} "
        f"({summary.oldest_pending_age_s:.0f} s ago)"
        if summary.oldest_pending_seq
        else "none"
    )
    text = pairs(
        [
            ("pending", summary.pending),
            ("in flight", summary.in_flight),
            ("delivered", summary.delivered),
            ("rejected", summary.rejected),
            ("oldest undelivered", oldest),
            ("waiting for the clock", held_for_clock(**held.as_dict())),
            ("last error", f"{summary.last_error} ({summary.last_error_class})" if summary.last_error else "none"),
        ]
    )
    return Report({**summary.as_dict(), "held_for_clock": held.as_dict()}, text, severity(warning=summary.rejected))


def forward(args) -> Report:
    device = open_device(args)
    forwarder = Forwarder(device.ledger, device.config, channel_for(device.config, SYSTEM), SYSTEM)
    report = forwarder.drain()
    result = {
        "calls": report.calls,
        "sent": report.sent,
        "delivered": report.delivered,
        "rejected": report.rejected,
        "failures": report.failures,
        "resent_after_crash": forwarder.resent_after_crash,
        "pending": delivery.summary(device.db, SYSTEM.now()).pending,
    }
    text = fields({k: "; ".join(v) if isinstance(v, list) else v for k, v in result.items()})
    return Report(result, text, severity(report.failures, report.rejected))
