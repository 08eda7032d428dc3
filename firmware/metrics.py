"""The gate's health as Prometheus metrics, written as a node_exporter textfile.

A textfile rather than a port of its own: a Pi on a site already runs node_exporter (disk, memory, temperature,
SD-card wear), so the gate adds no listening socket, no HTTP server thread in the firmware, no firewall rule; the
file is written atomically (rename) and node_exporter serves it with its own TLS and auth. The file also carries
the time it was written: a gate whose daemon died shows as silent, where a dead port would just vanish.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, generate_latest, write_to_textfile

from sitegate.clock import Clock, ClockReading, ClockState
from sitegate.clock.timefmt import parse_utc
from sitegate.commissioning import certificate_expiry
from sitegate.config import Config
from sitegate.device import Device
from sitegate.errors import SitegateError
from sitegate.jsonlog import event
from sitegate.paper_fallback.guidance import OutageState
from sitegate.status import collect

PREFIX = "sitegate"
logger = logging.getLogger("sitegate.daemon")


class Metrics:
    """One registry, refreshed from the same sources as `sitegate status` (never a copy of their logic)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()

        def gauge(name: str, text: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(f"{PREFIX}_{name}", text, labels, registry=self.registry)

        self.info = gauge("gate_info", "This gate (value 1)", ("device", "site"))
        self.written = gauge("metrics_timestamp_seconds", "When these metrics were written (Unix time)")
        self.running = gauge("daemon_running", "1 when the daemon's heartbeat is fresh")
        self.pending = gauge("queue_undelivered", "Registrations not yet delivered to the service")
        self.oldest = gauge("oldest_undelivered_age_seconds", "Age of the oldest undelivered registration (0: none)")
        self.delay = gauge("reception_delay_seconds", "The reception delay behind remark 32 (site.reception_delay_s)")
        self.offset = gauge("clock_offset_seconds", "Last known clock offset (positive: local clock behind)")
        self.synced = gauge("clock_synced", "1 when the clock is synchronised")
        self.outage = gauge("outage_open", "1 while an outage is open (the paper procedure applies)")
        self.reader = gauge("reader_up", "1 when the reader answers", ("reader",))
        self.last_badge = gauge("last_badge_age_seconds", "Seconds since the last badge (NaN: never)")
        self.disk = gauge("disk_free_bytes", "Free space on the data partition")
        self.certificate = gauge("client_certificate_expiry_days", "Days until the client certificate expires")
        self.connected = gauge("bus_connected", "1 when the site bus is connected (NaN: no bus)")
        self.peers = gauge("bus_peers_heard", "Peers heard within bus.stale_after_s")
        self.peers_configured = gauge("bus_peers_configured", "Peers configured")
        self.rejected = gauge("bus_rejected_records", "Records from the bus rejected (failed verification)")

    def refresh(
        self, device: Device, now: datetime, clock: ClockReading | None = None, bus_connected: bool | None = None
    ) -> None:
        config = device.config
        status, _, _ = collect(device, now)
        self.info.labels(config.device_id, config.bus.site if config.bus.enabled else "").set(1)
        self.written.set(now.timestamp())
        self.running.set(int(status["daemon_running"]))
        queue = status["queue"]
        self.pending.set(queue["pending"] + queue["in_flight"])
        self.oldest.set(queue["oldest_pending_age_s"] or 0)
        self.delay.set(config.site.reception_delay_s)
        disputed = status["clock_dispute"] is not None  # the service's Date disagrees: never report synced
        state = status["clock_state"] if disputed or clock is None else clock.state
        self.synced.set(int(state == ClockState.SYNCED))
        self.offset.set(clock.offset_us / 1e6 if clock and clock.offset_us is not None else math.nan)
        self.outage.set(int(bool(status["outage"]) and status["outage"].get("state") == OutageState.OPEN))
        for reader in status["readers_configured"]:
            self.reader.labels(reader).set(int(reader in status["readers_online"]))
        last = status["last_badge_utc"]
        self.last_badge.set((now - parse_utc(last)).total_seconds() if last else math.nan)
        self.disk.set(status["disk_free_bytes"])
        expiry = certificate_expiry(config.service)
        self.certificate.set((expiry - now).total_seconds() / 86400 if expiry else math.nan)
        bus = status["bus"]
        if bus is None:
            self.connected.set(math.nan)
            return
        self.connected.set(int(bus["connected"] if bus_connected is None else bus_connected))
        self.peers.set(bus["peers_heard"])
        self.peers_configured.set(bus["peers"])
        self.rejected.set(bus["rejected"])

    def text(self) -> str:
        return generate_latest(self.registry).decode("utf-8")

    def write(self, path: Path) -> None:
        """Atomically (a temporary file renamed over it): node_exporter never reads half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), self.registry)


class Textfile:
    """The daemon's metrics loop: the textfile rewritten every `metrics.every_s`; a failure is said and the gate goes
    on (monitoring must never take the gate down)."""

    def __init__(
        self,
        config: Config,
        clock: Clock,
        reading: Callable[[], ClockReading],
        bus_connected: Callable[[], bool | None],
        stop: threading.Event,
    ) -> None:
        """reading: the clock watch's; bus_connected: the running bus's (None: no bus)."""
        self.config = config
        self.clock = clock
        self.reading = reading
        self.bus_connected = bus_connected
        self.stop = stop

    def run(self) -> None:
        device, metrics = Device.open(self.config, self.clock, signing=False), Metrics()
        path = self.config.metrics.textfile
        while not self.stop.is_set():
            try:
                metrics.refresh(device, self.clock.now(), self.reading(), self.bus_connected())
                metrics.write(path)
            except (OSError, SitegateError) as error:
                event(logger, "metrics_failed", logging.ERROR, file=str(path), problem=str(error))
            self.clock.wait(self.config.metrics.every_s, self.stop)
