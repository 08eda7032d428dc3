"""The running daemon's heartbeat: a note that it is alive (a power cut shows as a gap, a hang as a stale note), the
backlog the gate and the watchdog's status line read, and the log's head checked against its witnesses."""

from __future__ import annotations

import threading
from collections.abc import Callable

import sqlite_utils

from sitegate.clock import Clock
from sitegate.clock.timefmt import format_utc
from sitegate.queue import database, delivery
from sitegate.queue.checkpoints import Checkpointer, Reason


class Heartbeat:
    def __init__(
        self,
        db: sqlite_utils.Database,
        clock: Clock,
        every_s: float,
        readers_online: Callable[[], list[str]],
        witnesses: Checkpointer,
        stop: threading.Event,
    ) -> None:
        """db: a connection of its own, the ledger attached (the backlog is counted there)."""
        self.db = db
        self.clock = clock
        self.every_s = every_s
        self.readers_online = readers_online
        self.witnesses = witnesses
        self.stop = stop
        self.backlog = delivery.summary(db, clock.now()).undelivered  # cached: the badge path never counts

    def beat(self) -> None:
        """Notes the daemon is alive, refreshes the cached backlog, and checkpoints the log's head when it moved."""
        now = self.clock.now()
        self.backlog = delivery.summary(self.db, now).undelivered
        with database.immediate(self.db):
            delivery.note_heartbeat(self.db, format_utc(now), self.readers_online())
        self.witnesses.checkpoint(Reason.PERIODIC)

    def run(self) -> None:
        while not self.stop.is_set():
            self.beat()
            self.clock.wait(self.every_s, self.stop)
