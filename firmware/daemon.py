"""`sitegate run`: the gate's daemon, as wiring and supervision. Badge sources → gate decisions → durable append →
feedback; beside it the forwarder, the clock watch, the heartbeat, the outage probes, the foreman's held reads and,
when configured, the site bus and the metrics: named loops under one `Supervisor`, each with its own database
connection, all built from the configuration and ONE clock (a test gives a fake one; nothing here sleeps).

systemd: READY once the gate takes badges, STATUS with the queue, WATCHDOG at half of WATCHDOG_USEC.
SIGTERM lets the append in progress finish, then stops cleanly; a crashed loop stops the daemon with exit code 1.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import sdnotify

from sitegate import __version__, health, startfailure
from sitegate.clock import Clock, SystemClock
from sitegate.clock.timefmt import format_utc
from sitegate.clock.timesource import best_reading
from sitegate.clock.watch import ClockWatch, default_sources, recheck_after_s
from sitegate.config import Config
from sitegate.device import Device, signing_key
from sitegate.domain.gate import HISTORY, Gate, Outcome, Result
from sitegate.domain.roster import RosterStore
from sitegate.errors import SitegateError
from sitegate.jsonlog import event
from sitegate.paper_fallback.guidance import OutageState
from sitegate.paper_fallback.outage import OutageJournal
from sitegate.paper_fallback.probes import Prober, service_reachable
from sitegate.queue import database, delivery
from sitegate.queue.checkpoints import Checkpointer, Reason
from sitegate.queue.forwarder import Forwarder
from sitegate.queue.log import RegistrationLog
from sitegate.reader.factory import make_source
from sitegate.reader.feedback import Feedback, Signal
from sitegate.reader.sources import BadgeSource, LineSource
from sitegate.service.channels import channel_for
from sitegate.status import health_message
from sitegate.supervisor import Supervisor

if TYPE_CHECKING:
    from sitegate.site.bus import SiteBus

logger = logging.getLogger("sitegate.daemon")
HOUR_S = 3600.0


class Daemon:
    def __init__(
        self,
        config: Config,
        feedback: Feedback | None = None,
        sources: list[BadgeSource] | None = None,
        time_sources: list[Callable] | None = None,
        clock: Clock | None = None,
    ) -> None:
        """The wiring: every part from `config` and the one `clock` (its state comes from the clock watch)."""
        self.config = config
        self.clock = clock = clock or SystemClock()
        self.feedback = feedback or Feedback(config.gpio)
        self.supervisor = Supervisor(clock, lambda: self.feedback.show(Signal.FAULT))
        self.stop = self.supervisor.stop
        self.gate_lock = threading.Lock()  # reader threads run the gate themselves, one badge at a time
        self.notifier = sdnotify.SystemdNotifier()
        self.sources = sources or [make_source(reader, clock) for reader in config.readers]
        time_sources = time_sources or default_sources(config.clock.ntp_server, config.clock.trust_system_clock)
        database.open_or_move_aside(config.database_path, clock.now())
        self.key = signing_key(config)  # a lost key stops the start here, with the fix (never a new key)
        watch_log = self._log()
        self.watch = ClockWatch(
            watch_log,
            database.connect_ledger(config.database_path),
            lambda: best_reading(time_sources),
            config.clock.warn_fraction * config.site.reception_delay_s,
            clock,
        )
        clock.use_state(self.watch.current)  # from now on every record stores the watched clock state
        self.log = self._log(with_ledger=False)  # the badge path touches the log's file only
        self.backlog = delivery.summary(watch_log.db, clock.now()).undelivered
        self.gate = Gate(self.log, RosterStore(self.log.db), config, self.watch.current, lambda: self.backlog)
        self.held_changed = threading.Event()  # a foreman's read is held: the gesture loop looks at its due time
        self.last_badge_ns = 0
        self.probe_now = threading.Event()  # a failed delivery asks for a probe round at once
        self.forwarder = Forwarder(
            database.connect_ledger(config.database_path),
            config,
            channel_for(config, clock),
            clock,
            on_failure=lambda failure: self.probe_now.set(),
            on_recovery=self.probe_now.set,
            stopping=self.stop,
            yield_to_gate=self._gate_lull,
        )
        self.witnesses = Checkpointer(
            self._log(),
            database.connect_ledger(config.database_path),
            database.head_path(config.database_path),
            lambda: self.feedback.show(Signal.FAULT),
        )
        self.site_bus: SiteBus | None = self._site_bus() if config.bus.enabled else None
        self.button = None  # the print button, when one is configured (gpiozero calls it from its own thread)

    def _log(self, with_ledger: bool = True) -> RegistrationLog:
        db = database.connect(self.config.database_path, with_ledger)
        return RegistrationLog(db, self.key, self.clock, self.config.device_id)

    def _site_bus(self) -> SiteBus:
        from sitegate.site.bus import SiteBus  # imported only then: a single gate loads no MQTT client
        from sitegate.site.view import site_history

        status = Device.open(self.config, self.clock, signing=False)

        def health() -> dict:
            counters = self.site_bus.counters
            bus = {"published": counters.published, "mirrored": counters.stored, "rejected": counters.rejected}
            return health_message(status, self.clock.now(), bus)

        for device, record in site_history(self.config, self.clock.now() - HISTORY):
            self.gate.observe(record, device, report=False)  # reported when they came in
        bus = SiteBus(self.config, self.clock, self._peer_registration, health, self.witnesses.held_elsewhere)
        self.gate.site_connected = lambda: bus.counters.connected  # a toggle's direction is in doubt without it
        return bus

    def loops(self) -> dict[str, Callable[[], None]]:
        """The lasting loops, by the name the journal gives a crash."""
        loops = {f"reader-{source.name}": lambda s=source: self._read_source(s) for source in self.sources}
        loops |= {"forwarder": self.forwarder.run, "clock": self._watch_clock, "heartbeat": self._heartbeat}
        loops |= {"outage-probes": self._probe, "foreman-held": self._release_held}
        if self.site_bus is not None:
            loops["site-bus"] = self._site
        if self.config.metrics.textfile is not None:
            loops["metrics"] = self._metrics
        return loops

    # The badge path.

    def _read_source(self, source: BadgeSource) -> None:
        while not self.stop.is_set():
            try:
                for read in source.reads(self.stop):
                    self.handle(read)
            except Exception as error:  # noqa: BLE001 - a reader fault must never stop the daemon
                event(logger, "reader_fault", logging.ERROR, reader=source.name, problem=str(error))
                self.feedback.show(Signal.FAULT)
                self.clock.wait(2, self.stop)
            if isinstance(source, LineSource):
                return

    def handle(self, read) -> None:
        outcome = self._answer(lambda: self.gate.badge(read))
        if outcome is None:
            return
        if outcome.outcome == Result.FOREMAN_HELD:  # it counts as their IN/OUT unless a second read comes
            self.held_changed.set()
        elif outcome.outcome == Result.PRINT_REQUESTED:
            name = f"{outcome.worker.first_name} {outcome.worker.last_name}"
            Supervisor.helper("print", lambda: self.print_listing(by=name))

    def _answer(self, decide: Callable[[], Outcome | None]) -> Outcome | None:
        """One decision of the gate under its lock, its signal shown, the forwarder woken for a registration."""
        with self.gate_lock:
            if self.stop.is_set():
                return None  # stopping: the source will see it again after the restart (fifo) or not at all
            outcome = decide()
            if outcome is None:
                return None
            self.feedback.show(outcome.signal)
            self.last_badge_ns = self.clock.monotonic_ns()
        if outcome.outcome == Result.REGISTERED:
            self.forwarder.wake.set()
        if self.site_bus is not None:
            self.site_bus.wake.set()
        return outcome

    def _release_held(self) -> None:
        """A foreman's held read counts once its gesture time has passed without a second read (gate.py)."""
        while not self.stop.is_set():
            for read in self.gate.gesture.due(self.clock.monotonic_ns()):
                self._answer(lambda read=read: self.gate.release(read))
            due = self.gate.gesture.next_due_ns()
            wait_s = HOUR_S if due is None else max(0.0, (due - self.clock.monotonic_ns()) / 1e9)
            self.clock.wait(wait_s, self.held_changed)
            self.held_changed.clear()

    def _gate_lull(self, quiet_s: float = 0.05, at_most_s: float = 5.0) -> None:
        """Let the gate go first: wait until no badge for `quiet_s`, never longer than `at_most_s` (delivery a few
        seconds later costs nothing against a reception delay of minutes; a worker waiting at the gate does)."""
        now = self.clock.monotonic_ns
        deadline = now() + at_most_s * 1e9
        while now() - self.last_badge_ns < quiet_s * 1e9 and now() < deadline:
            self.clock.wait(quiet_s, self.stop)

    def _peer_registration(self, device: str, record) -> None:
        with self.gate_lock:  # a dictionary update between two badges
            self.gate.observe(record, device)

    # The loops beside it.

    def _site(self) -> None:
        """The site bus, restarted after any failure: it must never take the gate down with it."""
        while not self.stop.is_set():
            try:
                self.site_bus.run(self.stop)
            except Exception as error:  # noqa: BLE001 - the gate goes on without the bus, loudly
                logger.exception("site bus failed", extra={"fields": {"event": "bus_failed", "problem": str(error)}})
                self.clock.wait(5, self.stop)

    def _metrics(self) -> None:
        """The node_exporter textfile, rewritten every metrics.every_s."""
        from sitegate.device import Device
        from sitegate.metrics import Metrics

        device, metrics = Device.open(self.config, self.clock, signing=False), Metrics()
        while not self.stop.is_set():
            connected = self.site_bus.counters.connected if self.site_bus else None
            try:
                metrics.refresh(device, self.clock.now(), self.watch.current(), connected)
                metrics.write(self.config.metrics.textfile)
            except (OSError, SitegateError) as error:  # monitoring must never take the gate down
                event(
                    logger, "metrics_failed", logging.ERROR, file=str(self.config.metrics.textfile), problem=str(error)
                )
            self.clock.wait(self.config.metrics.every_s, self.stop)

    def _watch_clock(self) -> None:
        """At the pace the clock's state asks for (recheck_after_s); at once when a badge saw a step."""
        while not self.stop.is_set():
            self.clock.wait(recheck_after_s(self.watch.check().state), self.watch.wake)

    def _probe(self) -> None:
        db = database.connect(self.config.database_path)
        outage = self.config.outage
        journal = OutageJournal(
            RegistrationLog(db, self.key, self.clock, self.config.device_id), outage.grace_s, outage.summary_every_s
        )
        prober = Prober(self.config, self.clock.now)
        state = None
        while not self.stop.is_set():
            asked = self.clock.wait(outage.probe_interval_s, self.probe_now)  # a failed delivery asks at once
            self.probe_now.clear()
            if self.stop.is_set():
                return
            summary = delivery.summary(db, self.clock.now())
            offline = [source.name for source in self.sources if not source.online]
            faults = health.own_faults(offline, shutil.disk_usage(self.config.data_dir).free)
            probes = prober.round(summary, faults)
            previous, state = state, journal.observe(probes, summary, self.clock.now())
            if not asked and state != OutageState.OK and service_reachable(probes):
                # The way to the service is open: try it now rather than at the backoff's end. Only from the
                # periodic rounds: one extra call per probe interval at most, never a loop of failure, probe, retry.
                self.forwarder.retry_soon()
            if previous is not None and state != previous:
                self.witnesses.checkpoint(Reason.OUTAGE)

    def _heartbeat(self) -> None:
        """Notes the daemon is alive (a power cut shows as a gap), refreshes the cached backlog, and checks the log's
        head against its witnesses (checkpointing it when it moved)."""
        db = database.connect(self.config.database_path)
        while not self.stop.is_set():
            now = self.clock.now()
            self.backlog = delivery.summary(db, now).undelivered
            with database.immediate(db):
                delivery.note_heartbeat(db, format_utc(now), [s.name for s in self.sources if s.online])
            self.witnesses.checkpoint(Reason.PERIODIC)
            self.clock.wait(self.config.gate.heartbeat_s, self.stop)

    def print_listing(self, by: str = "print button") -> None:
        """The print button (and a foreman's badge twice): today's listing to the configured printer, never holding
        up the gate; the signed record of the listing names who asked (`by`: the button, or the foreman)."""
        from sitegate.paper_fallback.printing import print_today

        device = Device.open(self.config, self.clock)
        try:
            document, printed = print_today(device, self.clock.now(), by)
            event(
                logger,
                "listing_printed",
                destination=printed.destination,
                seq=printed.seq,
                workers=len(document.rows),
                warnings=printed.warnings,
            )
            self.feedback.show(Signal.PRINTED)
        except SitegateError as error:
            event(logger, "listing_print_failed", logging.ERROR, problem=error.problem, fix=error.fix)
            self.feedback.show(Signal.PRINT_FAILED)
        finally:
            device.close()

    def _attach_button(self) -> None:
        from gpiozero import Button

        pin = self.config.gpio.print_button
        if pin is not None:
            self.button = Button(pin, pin_factory=self.feedback.pin_factory)
            self.button.when_pressed = lambda: Supervisor.helper("print", self.print_listing)

    # Supervision.

    def run(self, handle_signals: bool = True) -> int:
        # A badge must not wait 5 ms (CPython's default) for the GIL while the forwarder encodes a batch.
        sys.setswitchinterval(0.001)
        if handle_signals:  # only the main thread may; a benchmark runs the daemon in a thread
            signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
            signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        self.watch.check()
        OutageJournal(self.log, self.config.outage.grace_s).power_gap(self.clock.now(), self.config.gate.heartbeat_s)
        self.witnesses.checkpoint(Reason.START)
        for source in self.sources:
            source.prepare()
        self._attach_button()
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
        code = self.supervisor.supervise(
            lambda: self.notifier.notify(
                f"WATCHDOG=1\nSTATUS=backlog {self.backlog}, clock {self.watch.current().state}"
            ),
            watchdog_usec / 2e6 if watchdog_usec else 10.0,
        )
        self.notifier.notify("STOPPING=1")
        self.watch.wake.set()
        if actions is not None:
            actions.stop()
        self.probe_now.set()
        self.held_changed.set()
        self.forwarder.stop()  # a backoff in progress ends (the append in progress, below, is the gate's)
        with self.gate_lock:  # SIGTERM only set the flag: the append in progress completes first
            for held in self.gate.gesture.held_reads():  # a foreman badged once: their IN/OUT, not lost to a stop
                self.gate.release(held)
            with database.immediate(self.log.db):
                delivery.note_stopped(self.log.db, format_utc(self.clock.now()))
            self.witnesses.checkpoint(Reason.STOP)  # inside the gate lock: the head is the last one
        event(logger, "stopped")
        return code
