"""The badge path at run time: each reader's reads → the gate's decision under one lock → the worker's signal → the
forwarder (and the site bus) woken. Beside it the timer of a foreman's held reads and the lull the forwarder waits
for. The gate decides (gate.py); this only serialises the decisions and says who to tell."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sitegate.clock import Clock
from sitegate.domain.gate import Gate, Outcome, Result
from sitegate.jsonlog import event
from sitegate.queue.records import Record
from sitegate.reader.feedback import Feedback, Signal
from sitegate.reader.sources import BadgeRead, BadgeSource, BadRead, LineSource

logger = logging.getLogger("sitegate.daemon")
HOUR_S = 3600.0
READER_FAULT_PAUSE_S = 2.0


class BadgePath:
    def __init__(
        self,
        gate: Gate,
        feedback: Feedback,
        clock: Clock,
        stop: threading.Event,
        registered: Callable[[], None],
        decided: Callable[[], None],
        print_listing: Callable[[str], None],
    ) -> None:
        """registered: after a registration is on disk (wakes the forwarder); decided: after any decision (wakes the
        site bus); print_listing: a foreman's badge read twice, with the foreman's name (it must not block)."""
        self.gate = gate
        self.feedback = feedback
        self.clock = clock
        self.stop = stop
        self.registered = registered
        self.decided = decided
        self.print_listing = print_listing
        self.lock = threading.Lock()  # reader threads run the gate themselves, one badge at a time
        self.held_changed = threading.Event()  # a foreman's read is held: the gesture loop looks at its due time
        self.last_badge_ns = 0

    def keep_reading(self, source: BadgeSource) -> None:
        """One reader's loop: a reader fault shows and is retried, never stops the daemon (a line source ends)."""
        while not self.stop.is_set():
            try:
                for read in source.reads(self.stop):
                    self.handle(read)
            except Exception as error:  # noqa: BLE001 - a reader fault must never stop the daemon
                event(logger, "reader_fault", logging.ERROR, reader=source.name, problem=str(error))
                self.feedback.show(Signal.FAULT)
                self.clock.wait(READER_FAULT_PAUSE_S, self.stop)
            if isinstance(source, LineSource):
                return

    def handle(self, read: BadgeRead | BadRead) -> None:
        outcome = self._answer(lambda: self.gate.badge(read))
        if outcome is None:
            return
        if outcome.outcome == Result.FOREMAN_HELD:  # it counts as their IN/OUT unless a second read comes
            self.held_changed.set()
        elif outcome.outcome == Result.PRINT_REQUESTED:
            self.print_listing(f"{outcome.worker.first_name} {outcome.worker.last_name}")

    def _answer(self, decide: Callable[[], Outcome | None]) -> Outcome | None:
        """One decision of the gate under its lock, its signal shown, the forwarder woken for a registration."""
        with self.lock:
            if self.stop.is_set():
                return None  # stopping: the source will see it again after the restart (fifo) or not at all
            outcome = decide()
            if outcome is None:
                return None
            self.feedback.show(outcome.signal)
            self.last_badge_ns = self.clock.monotonic_ns()
        if outcome.outcome == Result.REGISTERED:
            self.registered()
        self.decided()
        return outcome

    def keep_releasing_held(self) -> None:
        """A foreman's held read counts once its gesture time has passed without a second read (gate.py)."""
        gesture = self.gate.gesture
        while not self.stop.is_set():
            for read in gesture.due(self.clock.monotonic_ns()):
                self._answer(lambda read=read: self.gate.release(read))
            due = gesture.next_due_ns()
            wait_s = HOUR_S if due is None else max(0.0, (due - self.clock.monotonic_ns()) / 1e9)
            self.clock.wait(wait_s, self.held_changed)
            self.held_changed.clear()

    def lull(self, quiet_s: float = 0.05, at_most_s: float = 5.0) -> None:
        """Let the gate go first: wait until no badge for `quiet_s`, never longer than `at_most_s` (delivery a few
        seconds later costs nothing against a reception delay of minutes; a worker waiting at the gate does)."""
        now = self.clock.monotonic_ns
        deadline = now() + at_most_s * 1e9
        while now() - self.last_badge_ns < quiet_s * 1e9 and now() < deadline:
            self.clock.wait(quiet_s, self.stop)

    def observe_peer(self, device: str, record: Record) -> None:
        """A peer gate's registration from the site bus."""
        with self.lock:  # a dictionary update between two badges
            self.gate.observe(record, device)

    def finish(self, last: Callable[[], None]) -> None:
        """At the stop, under the gate's lock (SIGTERM only set the flag: the append in progress completes first): a
        foreman who badged once gets their IN/OUT, not lost to a stop; then `last` (the stop's note and checkpoint:
        the head it takes is the last one)."""
        self.held_changed.set()
        with self.lock:
            for held in self.gate.gesture.held_reads():
                self.gate.release(held)
            last()
