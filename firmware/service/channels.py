"""The service's channels behind one interface (`deliver(batch, config, db) -> BulkAnswer`), and the failover.

service.channel names the first channel (REST or SOAP), service.fallback the other one, tried by the gate itself
before an outage opens (the procedure's "try another channel"). A batch moves to the fallback only when the first
channel's answer proves it was not received: the connection refused before anything was sent, a 5xx or a fault,
the signature or token refused. Never after a lost answer (no answer in time, a connection reset after sending, an
unreadable success): those registrations stay with the channel that may hold them, so no badge is registered through
both. When both fail, the failure names both channels' answers (the outage's evidence).
"""

from __future__ import annotations

import logging
from typing import Protocol

import sqlite_utils

from sitegate.clock import Clock
from sitegate.config import Config
from sitegate.jsonlog import event
from sitegate.queue import delivery
from sitegate.queue.failures import Symptom
from sitegate.service.client import BulkAnswer, DeliveryFailure, ServiceClient

logger = logging.getLogger("sitegate.service")
# What proves the first channel did not take the batch (and the answer was not lost on the way back).
NOT_RECEIVED = (Symptom.REFUSED, Symptom.SERVICE_ERROR, Symptom.CREDENTIALS)


class Channel(Protocol):
    def deliver(self, batch: list, config: Config, db: sqlite_utils.Database) -> BulkAnswer: ...


def single(name: str, config: Config, clock: Clock) -> Channel:
    """One channel's client. SOAP's stack (zeep, lxml, xmlsec: ~30 MB) is imported only by a gate that uses SOAP: loaded
    by every daemon, it took an idle REST gate to 68 MB against its 60 MB target (`make bench`'s peak_rss_mb)."""
    if name == "soap":
        from sitegate.service.soap_client import SoapClient  # noqa: PLC0415 - SOAP's stack only where SOAP is used

        return SoapClient(config.service, config.device_id, clock=clock)
    return ServiceClient(config.service, clock=clock)


class Failover:
    """The first channel, then the fallback when the first proves it did not take the batch.

    Registrations whose answer a channel lost (or that were in flight through it when the power went) may be
    there, so they go to that channel only: the ledger notes each batch's channel before the call goes out
    (`delivery.going_through`), and clears it when the answer proves the batch did not get there."""

    def __init__(self, first: tuple[str, Channel], fallback: tuple[str, Channel]) -> None:
        self.first, self.fallback = first, fallback

    def deliver(self, batch: list, config: Config, db: sqlite_utils.Database) -> BulkAnswer:
        seqs = [p.seq for p in batch]
        pinned = set(delivery.held_by(db, seqs).values())
        # A batch holding registrations a channel may have: that channel only, no failover. (Held by both, after
        # two losses: the first channel, whose resends are recognised by remark 14 or the client reference.)
        if not pinned:
            order = [self.first, self.fallback]
        elif pinned == {self.fallback[0]}:
            order = [self.fallback]
        else:
            order = [self.first]
        failures: list[tuple[str, DeliveryFailure]] = []
        for name, channel in order:
            delivery.going_through(db, seqs, name)
            try:
                answer = channel.deliver(batch, config, db)
            except DeliveryFailure as failure:
                failures.append((name, failure))
                if not failure.answer_lost and not pinned:
                    delivery.going_through(db, seqs, None)  # it did not get there
                if failure.answer_lost or failure.symptom not in NOT_RECEIVED:
                    break
                continue
            if failures:
                event(logger, "failover", logging.WARNING, to=name, after=failures[0][1].problem, batch=len(batch))
            return answer
        raise self._combined(failures)

    @staticmethod
    def _combined(failures: list[tuple[str, DeliveryFailure]]) -> DeliveryFailure:
        """One failure: the last channel's symptom and whether its answer was lost, every channel's words, and the
        names of the channels tried."""
        last = failures[-1][1]
        channels = tuple(name for name, _ in failures)
        if len(failures) == 1:
            return DeliveryFailure(last.symptom, last.problem, last.fix, last.retry_after, last.answer_lost, channels)
        problem = "; ".join(f"{n}: {f.problem}" for n, f in failures)
        return DeliveryFailure(
            last.symptom,
            f"both channels failed ({problem})",
            last.fix,
            max((f.retry_after for _, f in failures if f.retry_after is not None), default=None),
            last.answer_lost,
            channels,
        )


def channel_for(config: Config, clock: Clock) -> Channel:
    """The channel the configuration names, with its fallback when one is set."""
    first = (config.service.channel, single(config.service.channel, config, clock))
    if not config.service.fallback:
        return first[1]
    return Failover(first, (config.service.fallback, single(config.service.fallback, config, clock)))
