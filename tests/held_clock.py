"""A fake clock for a whole daemon: time stands still until the test moves it (`advance`), and a wait returns when
the clock has been moved past its end or its event is set. The daemon's loops then run in the test's time: a
heartbeat or a probe round comes when the test says so, and nothing waits out a real interval."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sitegate.clock import Capture, ClockReading, ClockState, read_boot_id

LOOK_AGAIN_S = 0.01  # an Event cannot wake a Condition: a waiter with an event looks at it this often


class HeldClock:
    def __init__(self, start: datetime, uptime_s: float = 1000.0) -> None:
        self.wall = start
        self.mono_ns = int(uptime_s * 1e9)  # a machine up for a while: "no badge yet" is long ago
        self.boot_id = read_boot_id()
        self.moved = threading.Condition()
        self._state = lambda: ClockReading(ClockState.SYNCED, 0)

    def use_state(self, state) -> None:
        self._state = state

    def advance(self, seconds: float) -> None:
        with self.moved:
            self.wall += timedelta(seconds=seconds)
            self.mono_ns += int(seconds * 1e9)
            self.moved.notify_all()

    def now(self) -> datetime:
        return self.wall

    def monotonic_ns(self) -> int:
        return self.mono_ns

    def capture(self) -> Capture:
        return Capture(self.wall, self.mono_ns, self.boot_id, self._state())

    def wait(self, seconds: float, stop: threading.Event | None = None) -> bool:
        end = self.mono_ns + int(seconds * 1e9)
        with self.moved:
            while self.mono_ns < end and not (stop is not None and stop.is_set()):
                self.moved.wait(LOOK_AGAIN_S if stop is not None else None)
        return stop is not None and stop.is_set()
