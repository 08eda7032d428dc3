"""`sitegate run`: the gate's daemon, as wiring and supervision. Badge sources → gate decisions → durable append →
feedback; beside it the forwarder, the clock watch, the heartbeat, the outage probes, the foreman's held reads and,
when configured, the site bus and the metrics: named loops under one `Supervisor`, each with its own database
connection. `wire` builds every part from the configuration and ONE clock (a test gives a fake one); each loop's
body lives beside what it serves; nothing here sleeps.

systemd: READY once the gate takes badges, STATUS with the queue, WATCHDOG at half of WATCHDOG_USEC.
SIGTERM lets the append in progress finish, then stops cleanly; a crashed loop stops the daemon with exit code 1.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import sdnotify

from sitegate import __version__, startfailure
from sitegate.clock import Clock
from sitegate.clock.timefmt import format_utc
from sitegate.clock.timesource import best_reading
from sitegate.clock.watch import ClockWatch, default_sources
from sitegate.config import Config
from sitegate.device import Device, signing_key
from sitegate.domain.badge_path import BadgePath
from sitegate.domain.gate import HISTORY, Gate
from sitegate.domain.roster import RosterStore
from sitegate.jsonlog import event
from sitegate.paper_fallback.outage import OutageJournal
from sitegate.paper_fallback.print_job import PrintJob
from sitegate.paper_fallback.rounds import ProbeRounds
from sitegate.queue import database, delivery
from sitegate.queue.checkpoints import Checkpointer, Reason
from sitegate.queue.forwarder import Forwarder
from sitegate.queue.heartbeat import Heartbeat
from sitegate.queue.log import RegistrationLog
from sitegate.queue.signing import DeviceKey
from sitegate.reader.factory import make_source
from sitegate.reader.feedback import Feedback, Signal
from sitegate.reader.sources import BadgeSource
from sitegate.service.channels import channel_for
from sitegate.status import health_message
from sitegate.supervisor import Supervisor

if TYPE_CHECKING:
    from sitegate.metrics import Textfile
    from sitegate.site.bus import SiteBus

logger = logging.getLogger("sitegate.daemon")
WATCHDOG_UNSET_PING_S = 10.0  # without systemd's watchdog the supervisor still looks at the loops this often


@dataclass
class Daemon:
    """Starts the loops `wire` built, supervises them (the watchdog's ping; a crash → fault and exit 1) and stops
    them in order: the append in progress completes, a foreman's held read counts, the stop is noted."""

    config: Config
    clock: Clock
    key: DeviceKey
    feedback: Feedback
    sources: list[BadgeSource]
    supervisor: Supervisor
    watch: ClockWatch
    witnesses: Checkpointer
    heartbeat: Heartbeat
    badges: BadgePath
    forwarder: Forwarder
    probes: ProbeRounds
    printer: PrintJob
    site_bus: SiteBus | None = None
    metrics: Textfile | None = None
    notifier: sdnotify.SystemdNotifier = field(default_factory=sdnotify.SystemdNotifier)

    @property
    def stop(self) -> threading.Event:
        return self.supervisor.stop

    def loops(self) -> dict[str, Callable[[], None]]:
        """The lasting loops, by the name the journal gives a crash."""
        loops = {f"reader-{source.name}": partial(self.badges.keep_reading, source) for source in self.sources}
        loops |= {"forwarder": self.forwarder.run, "clock": partial(self.watch.keep_watching, self.stop)}
        loops |= {"heartbeat": self.heartbeat.run, "outage-probes": self.probes.run}
        loops["foreman-held"] = self.badges.keep_releasing_held
        if self.site_bus is not None:
            loops["site-bus"] = partial(self.site_bus.keep_running, self.stop)
        if self.metrics is not None:
            loops["metrics"] = self.metrics.run
        return loops

    def run(self, handle_signals: bool = True) -> int:
        # A badge must not wait 5 ms (CPython's default) for the GIL while the forwarder encodes a batch.
        sys.setswitchinterval(0.001)
        if handle_signals:  # only the main thread may; a benchmark runs the daemon in a thread
            signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
            signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        gate_log = self.badges.gate.log
        self.watch.check()
        OutageJournal(gate_log, self.config.outage.grace_s).power_gap(self.clock.now(), self.config.gate.heartbeat_s)
        self.witnesses.checkpoint(Reason.START)
        for source in self.sources:
            source.prepare()
        self.printer.attach_button()
        for name, loop in self.loops().items():
            self.supervisor.add(name, loop)
        self.supervisor.start()
        actions = None
        if self.config.web.enabled:  # the foreman's page asks the daemon to sign what a foreman does there
            from sitegate.page_actions import ActionServer

            actions = ActionServer(self.config, self.clock)
            actions.start()
        watchdog_usec = int(os.environ.get("WATCHDOG_USEC", "0") or 0)
        self.notifier.notify("READY=1")
        startfailure.clear(self.config)
        readers = [s.name for s in self.sources]
        event(logger, "ready", version=__version__, device_id=self.config.device_id, readers=readers,
              key=self.key.fingerprint)  # fmt: skip
        code = self.supervisor.supervise(self._ping, watchdog_usec / 2e6 if watchdog_usec else WATCHDOG_UNSET_PING_S)
        self.notifier.notify("STOPPING=1")
        self.watch.wake.set()
        if actions is not None:
            actions.stop()
        self.probes.ask()
        self.forwarder.stop()  # a backoff in progress ends (the append in progress, below, is the gate's)
        self.badges.finish(last=partial(self._note_stop, gate_log))
        event(logger, "stopped")
        return code

    def _ping(self) -> None:
        self.notifier.notify(f"WATCHDOG=1\nSTATUS=backlog {self.heartbeat.backlog}, clock {self.watch.current().state}")

    def _note_stop(self, gate_log: RegistrationLog) -> None:
        with database.immediate(gate_log.db):
            delivery.note_stopped(gate_log.db, format_utc(self.clock.now()))
        self.witnesses.checkpoint(Reason.STOP)  # inside the gate lock: the head is the last one


def wire(
    config: Config,
    clock: Clock,
    *,
    feedback: Feedback | None = None,
    sources: list[BadgeSource] | None = None,
    time_sources: list[Callable] | None = None,
) -> Daemon:
    """Every part from `config` and the one `clock` (its state comes from the clock watch from then on), each loop on
    a database connection of its own. feedback, sources, time_sources: the hardware and the time sources, for a
    test or a benchmark (by default those the configuration names)."""
    feedback = feedback or Feedback(config.gpio)
    fault = partial(feedback.show, Signal.FAULT)
    supervisor = Supervisor(clock, fault)
    stop = supervisor.stop
    sources = sources or [make_source(reader, clock) for reader in config.readers]
    time_sources = time_sources or default_sources(config.clock.ntp_server, config.clock.trust_system_clock)
    path = config.database_path
    database.open_or_move_aside(path, clock.now())
    key = signing_key(config)  # a lost key stops the start here, with the fix (never a new key)

    def log(with_ledger: bool = True) -> RegistrationLog:
        return RegistrationLog(database.connect(path, with_ledger), key, clock, config.device_id)

    warn_s = config.clock.warn_fraction * config.site.reception_delay_s
    watch = ClockWatch(log(), database.connect_ledger(path), lambda: best_reading(time_sources), warn_s, clock)
    clock.use_state(watch.current)  # from now on every record stores the watched clock state
    witnesses = Checkpointer(log(), database.connect_ledger(path), database.head_path(path), fault)
    online = lambda: [source.name for source in sources if source.online]  # noqa: E731
    heartbeat = Heartbeat(database.connect(path), clock, config.gate.heartbeat_s, online, witnesses, stop)
    gate_log = log(with_ledger=False)  # the badge path touches the log's file only
    gate = Gate(gate_log, RosterStore(gate_log.db), config, watch.current, lambda: heartbeat.backlog)
    checkpoint_outage = partial(witnesses.checkpoint, Reason.OUTAGE)
    probes = ProbeRounds(config, log(), clock, sources, lambda: forwarder.retry_soon(), checkpoint_outage, stop)
    forwarder = Forwarder(
        database.connect_ledger(path),
        config,
        channel_for(config, clock),
        clock,
        on_failure=lambda failure: probes.ask(),
        on_recovery=probes.ask,
        stopping=stop,
        yield_to_gate=lambda: badges.lull(),
    )
    site_bus = _site_bus(config, clock, gate, lambda *peer: badges.observe_peer(*peer), witnesses)
    printer = PrintJob(config, clock, feedback)
    badges = BadgePath(
        gate,
        feedback,
        clock,
        stop,
        registered=forwarder.wake.set,
        decided=site_bus.wake.set if site_bus is not None else lambda: None,
        print_listing=printer.ask,
    )
    metrics = None
    if config.metrics.textfile is not None:
        from sitegate.metrics import Textfile  # prometheus_client only when the metrics are written

        connected = lambda: site_bus.counters.connected if site_bus else None  # noqa: E731
        metrics = Textfile(config, clock, watch.current, connected, stop)
    return Daemon(config, clock, key, feedback, sources, supervisor, watch, witnesses, heartbeat, badges, forwarder,
                  probes, printer, site_bus, metrics)  # fmt: skip


def _site_bus(
    config: Config, clock: Clock, gate: Gate, observe_peer: Callable, witnesses: Checkpointer
) -> SiteBus | None:
    """The site bus, when configured: the gate first learns the site's last 48 h from the mirror."""
    if not config.bus.enabled:
        return None
    from sitegate.site.bus import SiteBus  # imported only then: a single gate starts no MQTT client
    from sitegate.site.view import site_history

    status = Device.open(config, clock, signing=False)

    def health() -> dict:
        counters = bus.counters
        said = {"published": counters.published, "mirrored": counters.stored, "rejected": counters.rejected}
        return health_message(status, clock.now(), said)

    for device, record in site_history(config, clock.now() - HISTORY):
        gate.observe(record, device, report=False)  # reported when they came in
    bus = SiteBus(config, clock, observe_peer, health, witnesses.held_elsewhere)
    gate.site_connected = lambda: bus.counters.connected  # a toggle's direction is in doubt without it
    return bus
