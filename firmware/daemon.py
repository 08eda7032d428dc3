"""`sitegate run`: the gate's daemon. Badge sources → gate decisions → durable append → feedback; beside it the
forwarder, the clock watch and a heartbeat, each a thread with its own database connection.

systemd: READY once the gate takes badges, STATUS with the queue, WATCHDOG at half of WATCHDOG_USEC.
SIGTERM lets the append in progress finish, then stops cleanly.
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
from sitegate.clock import ClockState, SystemClock
from sitegate.clock.timefmt import format_utc
from sitegate.clock.timesource import best_reading
from sitegate.clock.watch import ClockWatch, default_sources
from sitegate.config import Config
from sitegate.device import signing_key
from sitegate.domain.gate import HISTORY, Gate, Outcome, Result
from sitegate.domain.roster import RosterStore
from sitegate.errors import SitegateError
from sitegate.jsonlog import event, scrub
from sitegate.paper_fallback.outage import OK, OutageJournal
from sitegate.paper_fallback.probes import Prober, service_reachable
from sitegate.queue import checkpoints, database, delivery
from sitegate.queue.failures import Symptom
from sitegate.queue.forwarder import Forwarder
from sitegate.queue.keychain import KeyChain
from sitegate.queue.log import RegistrationLog
from sitegate.queue.records import Kind
from sitegate.reader.factory import make_source
from sitegate.reader.feedback import Feedback, Signal
from sitegate.reader.sources import BadgeSource, LineSource
from sitegate.service.channels import channel_for

if TYPE_CHECKING:
    from sitegate.site.bus import SiteBus

logger = logging.getLogger("sitegate.daemon")


class Daemon:
    def __init__(
        self,
        config: Config,
        feedback: Feedback | None = None,
        sources: list[BadgeSource] | None = None,
        time_sources: list[Callable] | None = None,
        clock: SystemClock | None = None,
    ) -> None:
        """clock: the one clock of the daemon (its state comes from the clock watch); a test may give its own."""
        self.config = config
        self.stop = threading.Event()
        # Reader threads run the gate themselves (no hand-off on the badge path), one badge at a time.
        self.gate_lock = threading.Lock()
        self.notifier = sdnotify.SystemdNotifier()
        self.feedback = feedback or Feedback(config.gpio)
        self.sources = sources or [make_source(reader) for reader in config.readers]
        self.time_sources = time_sources or default_sources(config.clock.ntp_server, config.clock.trust_system_clock)
        self.clock = clock or SystemClock()
        database.open_or_move_aside(config.database_path, self.clock.now())
        self.key = signing_key(config)  # a lost key stops the start here, with the fix (never a new key)
        self.watch_log = self._log(self.clock)
        self.watch = ClockWatch(
            self.watch_log,
            database.connect_ledger(config.database_path),
            lambda: best_reading(self.time_sources),
            config.clock.warn_fraction * config.site.reception_delay_s,
            self.clock,
        )
        self.clock.use_state(self.watch.current)  # from now on every record stores the watched clock state
        self.log = self._log(self.clock, with_ledger=False)  # the badge path touches the log's file only
        self.backlog = delivery.summary(self.watch_log.db, self.clock.now()).undelivered
        self.gate = Gate(self.log, RosterStore(self.log.db), config, self.watch.current, lambda: self.backlog)
        self.threads: list[threading.Thread] = []
        self._status_device = None
        self.last_badge_ns = 0
        self.forwarder: Forwarder | None = None
        self.probe_now = threading.Event()  # a failed delivery asks for a probe round at once
        self.site_bus: SiteBus | None = None
        if config.bus.enabled:  # imported only then: a single gate loads no MQTT client
            from sitegate.site.bus import SiteBus
            from sitegate.site.view import site_history

            self.site_bus = SiteBus(config, self.clock, self._peer_registration, self._health, self._bus_witness)
            self.gate.site_connected = lambda bus=self.site_bus: bus.counters.connected  # toggles doubt without it
            for device, record in site_history(config, self.clock.now() - HISTORY):
                self.gate.observe(record, device, report=False)  # reported when they came in
        # Checkpoints: their own connections (never the gate's), one checkpoint at a time, from any thread.
        self.witness_log = self._log(self.clock)
        self.keys = KeyChain.of_log(self.witness_log)  # a key changes only while the daemon is stopped
        self.witness_ledger = database.connect_ledger(config.database_path)
        self.witness_lock = threading.Lock()
        self.head_file = database.head_path(config.database_path)
        self.bus_witness: checkpoints.Witness | None = None  # this gate's checkpoint as the broker or a peer holds it

    def _log(self, clock, with_ledger: bool = True) -> RegistrationLog:
        db = database.connect(self.config.database_path, with_ledger)
        return RegistrationLog(db, self.key, clock, self.config.device_id)

    def _thread(self, name: str, target: Callable) -> None:
        def guarded() -> None:
            try:
                target()
            except Exception:  # a thread that dies must say so, loudly, and the gate must show a fault
                logger.exception("thread %s died", name, extra={"fields": {"event": "thread_died", "thread": name}})
                self.feedback.show(Signal.FAULT)

        thread = threading.Thread(target=guarded, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

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

    def _forward(self) -> None:
        ledger = database.connect_ledger(self.config.database_path)
        self.forwarder = Forwarder(
            ledger,
            self.config,
            channel_for(self.config, self.clock),
            on_failure=lambda failure: self.probe_now.set(),
            on_recovery=self.probe_now.set,
            stopping=self.stop,
            yield_to_gate=self._gate_lull,
        )
        self.forwarder.run()

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

    def _health(self) -> dict:
        """The retained health message: what `sitegate status --json` says, from the bus thread."""
        from sitegate.device import Device
        from sitegate.status import collect

        if self._status_device is None:
            self._status_device = Device.open(self.config, self.clock, signing=False)
        status, warnings, critical = collect(self._status_device, self.clock.now())
        bus = self.site_bus.counters if self.site_bus else None
        return scrub(
            {  # the broker is no place for a personal number, even inside an error message
                **status,
                "site": self.config.bus.site,
                "online": True,
                "sent_utc": format_utc(self.clock.now()),
                "warnings": warnings,
                "critical": critical,
                "bus": {"published": bus.published, "mirrored": bus.stored, "rejected": bus.rejected} if bus else None,
            }
        )

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
        from sitegate.site.metrics import Metrics

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
        """Every minute; at once when a badge saw a step; every second while re-dating after one."""
        while not self.stop.is_set():
            stepped = self.watch.check().state == ClockState.STEPPED
            self.clock.wait(1 if stepped else 60, self.watch.wake)

    def checkpoint(self, reason: checkpoints.Reason) -> None:
        """Compare the log's head with its witnesses and checkpoint it; when the log no longer extends them, raise
        the alarm (journal, fault signal, a signed record of it in the log) and keep registering. Nothing here may
        stop the daemon: a damaged witness or a full disk is logged with its fix and the gate goes on."""
        with self.witness_lock:
            try:
                now = format_utc(self.clock.now())
                _, verdicts = checkpoints.checkpoint(
                    self.witness_log,
                    self.witness_ledger,
                    self.key,
                    self.head_file,
                    now,
                    reason,
                    reason == checkpoints.Reason.PERIODIC,
                    self.keys,
                    [self.bus_witness] if self.bus_witness else [],
                )
                self._witness_findings(self.witness_log, verdicts)
            except Exception as error:  # noqa: BLE001 - the heartbeat, the start and the stop must survive it
                problem = getattr(error, "problem", None) or f"{type(error).__name__}: {error}"
                fix = getattr(error, "fix", None) or "check free disk (`sitegate status`) and `sitegate verify`"
                event(logger, "checkpoint_failed", logging.ERROR, reason=reason, problem=problem, fix=fix)
                self.feedback.show(Signal.FAULT)

    def _bus_witness(self, held: checkpoints.Checkpoint, held_by: str) -> None:
        """This gate's checkpoint as the broker (retained) or a peer holds it: a witness a rollback of the data
        directory cannot reach. The highest seen counts; the log is judged against it at once. One this gate did not
        sign is no evidence of anything but of who sent it (anyone with a peer's password): said, never judged."""
        if not held.signed_by(self.keys.at(held.seq)):
            event(logger, "bus_checkpoint_forged", logging.ERROR, held_by=held_by, seq=held.seq)
            return
        if self.bus_witness is None or held.seq > self.bus_witness.seq:
            self.bus_witness = checkpoints.Witness.of(held_by, held)
            self.checkpoint(checkpoints.Reason.PERIODIC)

    def _witness_findings(self, log: RegistrationLog, verdicts: list[checkpoints.Verdict]) -> None:
        """A broken witness is critical (journal, fault signal); a missing one a warning. Either is written to the
        log once per change, so a head file deleted and written again at the next start leaves a signed trace."""
        noted = [v for v in verdicts if v.broken or v.state == checkpoints.MISSING]
        for verdict in noted:
            level, name = (
                (logging.CRITICAL, "log_witness_mismatch") if verdict.broken else (logging.WARNING, "witness_missing")
            )
            event(logger, name, level, witness=verdict.witness.name, problem=verdict.text)
        if any(verdict.broken for verdict in noted):
            self.feedback.show(Signal.FAULT)
        if not noted:
            return
        findings = [{**v.finding, "state": v.state} for v in noted]
        recorded = next(log.newest(Kind.WITNESS_MISMATCH), None)
        if recorded is None or recorded.data["findings"] != findings:  # once per discrepancy, not every heartbeat
            last = log.last()
            payload = {"findings": findings, "texts": [v.text for v in noted], "log_end": last.seq if last else 0}
            try:
                log.append(Kind.WITNESS_MISMATCH, payload)
            except SitegateError as error:  # a full disk must not stop the heartbeat; the journal has it
                event(logger, "witness_mismatch_not_recorded", logging.ERROR, problem=error.problem, fix=error.fix)

    def own_faults(self) -> list[tuple[Symptom, str]]:
        """Faults on our side that make registration impossible: the procedure gives no exemption for these.

        The clock is not one of them: badges are still registered; an unsynced clock is a warning (status, signal,
        remark 32 risk) for the provider, never a reason to send the foreman to the emergency procedure."""
        findings = health.readers([s.name for s in self.sources if not s.online])
        findings += health.disk(shutil.disk_usage(self.config.data_dir).free)
        return [(Symptom.DEVICE, f.text) for f in findings if f.registration_impossible]

    def _probe(self) -> None:
        db = database.connect(self.config.database_path)
        journal = OutageJournal(
            RegistrationLog(db, self.key, self.clock, self.config.device_id),
            self.config.outage.grace_s,
            self.config.outage.summary_every_s,
        )
        prober = Prober(self.config, self.clock.now)
        state = None
        while not self.stop.is_set():
            asked = self.probe_now.wait(self.config.outage.probe_interval_s)  # a failed delivery asks at once
            self.probe_now.clear()
            if self.stop.is_set():
                return
            summary = delivery.summary(db, self.clock.now())
            probes = prober.round(summary, self.own_faults())
            previous, state = state, journal.observe(probes, summary, self.clock.now())
            if not asked and state != OK and service_reachable(probes):
                # The way to the service is open: try it now rather than at the backoff's end. Only from the
                # periodic rounds: one extra call per probe interval at most, never a loop of failure, probe, retry.
                self.forwarder.retry_soon()
            if previous is not None and state != previous:
                self.checkpoint(checkpoints.Reason.OUTAGE)

    def print_listing(self, by: str = "print button") -> None:
        """The print button (and a foreman's badge twice): today's listing to the configured printer, never holding
        up the gate; the signed record of the listing names who asked (`by`: the button, or the foreman)."""
        from sitegate.device import Device
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

    def _button(self) -> None:
        from gpiozero import Button

        pin = self.config.gpio.print_button
        if pin is None:
            return
        self.button = Button(pin, pin_factory=self.feedback.pin_factory)
        self.button.when_pressed = lambda: self._thread_quiet("print", self.print_listing)

    def _heartbeat(self) -> None:
        """Notes the daemon is alive (a power cut shows as a gap), refreshes the cached backlog, and checks the log's
        head against its witnesses (checkpointing it when it moved)."""
        db = database.connect(self.config.database_path)
        while not self.stop.is_set():
            now = self.clock.now()
            self.backlog = delivery.summary(db, now).undelivered
            with database.immediate(db):
                delivery.set_meta(
                    db,
                    heartbeat_utc=format_utc(now),
                    reader_online=",".join(s.name for s in self.sources if s.online) or "",
                )
            self.checkpoint(checkpoints.Reason.PERIODIC)
            self.clock.wait(self.config.gate.heartbeat_s, self.stop)

    def handle(self, read) -> None:
        outcome = self._answer(lambda: self.gate.badge(read))
        if outcome is None:
            return
        if outcome.outcome == Result.FOREMAN_HELD:  # it counts as their IN/OUT unless a second read comes
            held = self.gate.held[outcome.worker.badge_uid]
            self._thread_quiet(
                "foreman-held",
                lambda: (
                    self.clock.wait(self.config.gate.foreman_print_s, self.stop)
                    or self._answer(lambda: self.gate.release(held))
                ),
            )
        elif outcome.outcome == Result.PRINT_REQUESTED:
            name = f"{outcome.worker.first_name} {outcome.worker.last_name}"
            self._thread_quiet("print", lambda: self.print_listing(by=name))

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
        if outcome.outcome == Result.REGISTERED and self.forwarder is not None:
            self.forwarder.wake.set()
        if self.site_bus is not None:
            self.site_bus.wake.set()
        return outcome

    @staticmethod
    def _thread_quiet(name: str, target: Callable) -> None:
        """A short-lived helper thread (a print, a held foreman read), not one of the daemon's lasting threads."""
        threading.Thread(target=target, name=name, daemon=True).start()

    def run(self, handle_signals: bool = True) -> int:
        # A badge must not wait 5 ms (CPython's default) for the GIL while the forwarder encodes a batch.
        sys.setswitchinterval(0.001)
        if handle_signals:  # only the main thread may; a benchmark runs the daemon in a thread
            signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
            signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        self.watch.check()
        OutageJournal(self.log, self.config.outage.grace_s).power_gap(self.clock.now(), self.config.gate.heartbeat_s)
        self.checkpoint(checkpoints.Reason.START)
        for source in self.sources:
            source.prepare()
        self._button()
        for source in self.sources:
            self._thread(f"reader-{source.name}", lambda s=source: self._read_source(s))
        self._thread("forwarder", self._forward)
        self._thread("clock", self._watch_clock)
        self._thread("heartbeat", self._heartbeat)
        self._thread("outage-probes", self._probe)
        if self.site_bus is not None:
            self._thread("site-bus", self._site)
        if self.config.metrics.textfile is not None:
            self._thread("metrics", self._metrics)
        actions = None
        if self.config.web.enabled:  # the foreman's page asks the daemon to sign what a foreman does there
            from sitegate.page_actions import ActionServer

            actions = ActionServer(self.config, self.clock)
            actions.start()
        watchdog_usec = int(os.environ.get("WATCHDOG_USEC", "0") or 0)
        ping_every = watchdog_usec / 2e6 if watchdog_usec else 10.0
        self.notifier.notify("READY=1")
        startfailure.clear(self.config)
        event(
            logger,
            "ready",
            version=__version__,
            device_id=self.config.device_id,
            readers=[s.name for s in self.sources],
            key=self.key.fingerprint,
        )
        while not self.stop.is_set():
            self.notifier.notify(f"WATCHDOG=1\nSTATUS=backlog {self.backlog}, clock {self.watch.current().state}")
            self.clock.wait(ping_every, self.stop)
        self.notifier.notify("STOPPING=1")
        self.watch.wake.set()
        if actions is not None:
            actions.stop()
        self.probe_now.set()
        with self.gate_lock:  # SIGTERM only set the flag: the append in progress completes first
            for held in list(self.gate.held.values()):  # a foreman badged once: their IN/OUT, not lost to a stop
                self.gate.release(held)
            with database.immediate(self.log.db):
                delivery.set_meta(self.log.db, stopped_utc=format_utc(self.clock.now()))
            self.checkpoint(checkpoints.Reason.STOP)  # inside the gate lock: the head is the last one
        event(logger, "stopped")
        return 0
