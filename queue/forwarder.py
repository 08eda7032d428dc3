"""The forwarder: oldest registrations first, in bulk, to the service; retried forever, never dropped.

Backoff is a tenacity policy (exponential with jitter, capped at minutes, Retry-After honoured) with an
injected sleep, so tests and the soak run never really sleep. A registration is marked delivered only on the
service's confirmation of that very item; a per-item refusal is final for that item and kept for the technician.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import sqlite_utils
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_never, wait_exponential_jitter
from tenacity.wait import wait_base

from sitegate.clock import Clock
from sitegate.clock.timefmt import format_utc, parse_utc
from sitegate.config import Config
from sitegate.jsonlog import event
from sitegate.queue import delivery
from sitegate.queue.database import immediate
from sitegate.queue.sendwindow import SendWindow
from sitegate.service import presence_rest_v1 as contract
from sitegate.service.client import BatchRejected, DeliveryFailure, ServiceClient

logger = logging.getLogger("sitegate.forwarder")
MAX_BACKOFF_S = 300.0
GATHER_S = 0.5  # after a wake-up, let a rush gather into one batch: fewer commits competing with the gate


class wait_retry_after_or(wait_base):  # noqa: N801 - named like tenacity's own wait strategies
    """Wait what the service asked for (Retry-After, capped), else fall back to another wait strategy."""

    def __init__(self, fallback: wait_base, cap: float = MAX_BACKOFF_S) -> None:
        self.fallback = fallback
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        asked = getattr(error, "retry_after", None)
        if asked is not None:
            return min(float(asked), self.cap)
        return self.fallback(retry_state)


def default_wait() -> wait_base:
    return wait_retry_after_or(wait_exponential_jitter(initial=1, max=MAX_BACKOFF_S, exp_base=2, jitter=1))


@dataclass
class ForwardReport:
    sent: int = 0
    delivered: int = 0
    rejected: int = 0
    calls: int = 0
    failures: list[str] = field(default_factory=list)


class Forwarder:
    def __init__(
        self,
        db: sqlite_utils.Database,
        config: Config,
        client: ServiceClient,
        clock: Clock,
        sleep: Callable[[float], None] | None = None,
        wait: wait_base | None = None,
        on_failure: Callable[[DeliveryFailure], None] = lambda failure: None,
        on_recovery: Callable[[], None] = lambda: None,
        idle: Callable[[float], None] | None = None,
        gather: Callable[[float], None] | None = None,
        stopping: threading.Event | None = None,
        yield_to_gate: Callable[[], None] = lambda: None,
    ) -> None:
        """Every collaborator is given here: the clock, the sleeps (sleep, idle, gather), the stop flag.

        yield_to_gate: called before a batch is taken; the daemon makes it wait for a lull between badges, so a
        worker's append rarely queues behind a delivery commit. Never between the service's answer and settling
        it: a kill in that wait would send the answered batch again (a rush lasts longer than the wait)."""
        self.db = db
        self.config = config
        self.client = client
        self.clock = clock
        self.now = clock.now
        self.stopping = stopping or threading.Event()
        self.wake = threading.Event()
        self.retry_now = threading.Event()  # the probes see the service's way open again: end the backoff
        self.asked_to_wait = False  # the service itself named the wait (Retry-After): never cut that one short
        self.sends = SendWindow()
        self.sleep = sleep or self._backoff
        self.wait = wait or default_wait()
        self.on_failure = on_failure
        self.on_recovery = on_recovery
        self.idle = idle or self._idle_until_woken
        self.gather = gather or self._interruptible_sleep
        self.yield_to_gate = yield_to_gate
        self.resent_after_crash = delivery.recover_in_flight(db)
        if self.resent_after_crash:
            event(logger, "resend_after_crash", logging.WARNING, count=self.resent_after_crash)

    def _interruptible_sleep(self, seconds: float) -> None:
        self.clock.wait(seconds, self.stopping)

    def _backoff(self, seconds: float) -> None:
        """The wait between failed attempts (up to MAX_BACKOFF_S), cut short by retry_soon() or stop()."""
        self.clock.wait(seconds, self.retry_now)
        self.retry_now.clear()

    def retry_soon(self) -> None:
        """Try again now rather than at the end of the backoff: a service back for minutes must not leave the
        foreman reading "unavailable, workers exempt" while every registration waits. A wait the service asked
        for (Retry-After) is kept."""
        if not self.asked_to_wait:
            self.retry_now.set()

    def _before_backoff(self, retry_state: RetryCallState) -> None:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        self.asked_to_wait = getattr(error, "retry_after", None) is not None

    def _idle_until_woken(self, seconds: float) -> None:
        """Nothing pending: wait for the daemon to signal a new registration, or for the next look."""
        if self.clock.wait(seconds, self.wake):
            self.gather(GATHER_S)
        self.wake.clear()

    def _flag_late(self, batch: list[delivery.Pending], now: datetime) -> None:
        """A registration whose age at sending reaches the reception delay will draw remark 32: say so."""
        delay = self.config.site.reception_delay_s
        late = [p.seq for p in batch if (now - parse_utc(p.send_utc)).total_seconds() >= delay]
        if late:
            delivery.expect_remark(self.db, late, 32)
            event(logger, "expect_remark_32", logging.WARNING, seqs=late[:20], count=len(late), delay_s=delay)

    def send(self, batch: list[delivery.Pending], report: ForwardReport) -> None:
        """Send one taken batch and store the outcome at once, waiting for nothing between the answer and the
        ledger; on failure the batch is released and the error raised."""
        now = self.now()
        self._flag_late(batch, now)
        report.calls += 1
        report.sent += len(batch)
        asked_ns = self.clock.monotonic_ns()
        try:
            answer = self.client.deliver(batch, self.config, self.db)  # REST, SOAP or both (service/channels.py)
        except DeliveryFailure as failure:
            seqs = [p.seq for p in batch]
            # Kept with its fix (str of a SitegateError): `status` and `queue` show the error and what to do.
            delivery.release(
                self.db, seqs, str(failure), failure.symptom, format_utc(now), failure.answer_lost, failure.channels
            )
            report.failures.append(failure.problem)
            event(
                logger,
                "delivery_failed",
                logging.WARNING,
                symptom=failure.symptom,
                problem=failure.problem,
                batch=len(batch),
                answer_lost=failure.answer_lost,
            )
            self.on_failure(failure)
            raise
        except BatchRejected as refusal:
            if len(batch) == 1:
                result = contract.ItemResult(False, reason=refusal.problem)
                delivery.settle(self.db, [(batch[0].seq, result)], format_utc(self.now()))
                report.rejected += 1
                event(logger, "registration_rejected", logging.ERROR, seq=batch[0].seq, reason=refusal.problem)
                return
            # Find the guilty item: send each one alone; the others go through.
            for single in batch:
                self.send([single], report)
            return
        outcomes = list(zip((p.seq for p in batch), answer.results, strict=True))
        delivery.settle(self.db, outcomes, format_utc(self.now()), answer.server_offset_s, asked_ns)
        for seq, result in outcomes:
            if result.created:
                report.delivered += 1
            else:
                report.rejected += 1
                event(logger, "registration_rejected", logging.ERROR, seq=seq, reason=result.reason)
        event(
            logger,
            "delivered",
            delivered=sum(r.created for _, r in outcomes),
            rejected=sum(not r.created for _, r in outcomes),
            server_offset_s=answer.server_offset_s,
        )

    def deliver_batch(self, report: ForwardReport) -> int:
        """Take and send one batch of the oldest pending registrations; the number taken (0: nothing to do)."""
        self.yield_to_gate()
        hold = delivery.ClockHold.at(self.clock, self.config.clock.first_sync_wait_s)
        batch = delivery.take_batch(
            self.db, self.config.service.batch_size, format_utc(self.now()), self.config.device_id, hold
        )
        if batch:
            self.send(batch, report)
        return len(batch)

    def drain(self) -> ForwardReport:
        """Send batches until nothing is pending; stop at the first failure (for `sitegate forward --once`)."""
        report = ForwardReport()
        try:
            while self.deliver_batch(report):
                pass
        except DeliveryFailure:
            pass
        return report

    def run(self, idle_s: float = 2.0) -> None:
        """The daemon's thread: drain, retrying failures with backoff, forever; idle when nothing is pending."""
        retrying = Retrying(
            wait=self.wait,
            retry=retry_if_exception_type(DeliveryFailure),
            stop=stop_never,
            sleep=self.sleep,
            before_sleep=self._before_backoff,
            reraise=True,
        )
        while not self.stopping.is_set():
            taken = retrying(self._deliver_unless_stopping, ForwardReport())  # a report per round: nothing grows
            if self.stopping.is_set():
                break
            failures = retrying.statistics.get("attempt_number", 1) - 1
            self._count(failures, succeeded=taken > 0)
            if failures:
                self.on_recovery()  # delivered after failures: the outage journal can look again at once
            if not taken:
                self.idle(idle_s)
            elif taken < self.config.service.batch_size:
                self.gather(GATHER_S)  # a partial batch: let the next one gather instead of committing per badge

    def _count(self, failures: int, succeeded: bool) -> None:
        """Counts the round's calls; writes the last hour's counts (one small write) only while some failed, and
        once more when the failures have aged out."""
        if not failures and not succeeded:
            return
        now_s = self.clock.monotonic_ns() / 1e9
        had_failures = self.sends.counts(now_s)[1] > 0
        self.sends.record(now_s, failures, succeeded)
        calls, failed = self.sends.counts(now_s)
        if failed or had_failures:
            self.yield_to_gate()
            with immediate(self.db):
                delivery.note_sends(self.db, calls, failed, format_utc(self.now()))

    def _deliver_unless_stopping(self, report: ForwardReport) -> int:
        return 0 if self.stopping.is_set() else self.deliver_batch(report)

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        self.retry_now.set()
