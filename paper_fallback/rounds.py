"""The outage probes' rounds while the daemon runs: every `outage.probe_interval_s`, and at once when a delivery
fails or recovers. Each round's evidence goes to the outage journal (outage.py); a change of state is checkpointed;
a way to the service seen open again ends the forwarder's backoff."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable

from sitegate import health
from sitegate.clock import Clock
from sitegate.config import Config
from sitegate.paper_fallback.guidance import OutageState
from sitegate.paper_fallback.outage import OutageJournal
from sitegate.paper_fallback.probes import Prober, service_reachable
from sitegate.queue import delivery
from sitegate.queue.log import RegistrationLog
from sitegate.reader.sources import BadgeSource


class ProbeRounds:
    def __init__(
        self,
        config: Config,
        log: RegistrationLog,
        clock: Clock,
        sources: list[BadgeSource],
        retry_soon: Callable[[], None],
        changed: Callable[[], None],
        stop: threading.Event,
    ) -> None:
        """log: on a connection of its own (the journal's); sources: whether a reader is offline (our own fault, as a
        full disk is); retry_soon: ends the forwarder's backoff; changed: the outage state changed (a checkpoint)."""
        outage = config.outage
        self.journal = OutageJournal(log, outage.grace_s, outage.summary_every_s)
        self.prober = Prober(config, clock.now)
        self.clock = clock
        self.interval_s = outage.probe_interval_s
        self.data_dir = config.data_dir
        self.sources = sources
        self.retry_soon = retry_soon
        self.changed = changed
        self.stop = stop
        self.asked = threading.Event()  # a failed delivery asks for a round at once
        self.state: OutageState | None = None

    def ask(self) -> None:
        """A round now (a delivery failed or recovered), not at the interval's end."""
        self.asked.set()

    def round(self, asked: bool) -> OutageState:
        """One round: probes, our own faults, the journal's verdict."""
        db = self.journal.log.db
        summary = delivery.summary(db, self.clock.now())
        offline = [source.name for source in self.sources if not source.online]
        faults = health.own_faults(offline, shutil.disk_usage(self.data_dir).free)
        probes = self.prober.round(summary, faults)
        previous, self.state = self.state, self.journal.observe(probes, summary, self.clock.now())
        if not asked and self.state != OutageState.OK and service_reachable(probes):
            # The way to the service is open: try it now rather than at the backoff's end. Only from the
            # periodic rounds: one extra call per probe interval at most, never a loop of failure, probe, retry.
            self.retry_soon()
        if previous is not None and self.state != previous:
            self.changed()
        return self.state

    def run(self) -> None:
        while not self.stop.is_set():
            asked = self.clock.wait(self.interval_s, self.asked)
            self.asked.clear()
            if self.stop.is_set():
                return
            self.round(asked)
