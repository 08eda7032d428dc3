"""What the device knows about time at the instant a record is made.

Every record stores wall time (UTC), monotonic time, the boot id and the clock state, so a reader can tell an
honest time from a guess and re-date records made before the clock was synchronised.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Protocol

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")


class ClockState(StrEnum):
    """What each record stores about the clock at capture. The values are signed: never rename them."""

    SYNCED = "synced"
    UNSYNCED = "unsynced"
    STEPPED = "stepped"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ClockReading:
    """The clock's state as last seen by a time source; offset positive when the local clock is behind."""

    state: str
    offset_us: int | None = None


@dataclass(frozen=True)
class Capture:
    wall_utc: datetime
    monotonic_ns: int
    boot_id: str
    clock: ClockReading


class Clock(Protocol):
    """The one source of time, injected everywhere as gpiozero injects its pin factory: the daemon, the forwarder,
    the journal and the readers ask it, so a test or a soak run can drive them all in simulated time."""

    boot_id: str  # monotonic time counts within one boot

    def now(self) -> datetime: ...

    def monotonic_ns(self) -> int: ...

    def wait(self, seconds: float, stop: threading.Event | None = None) -> bool:
        """Sleep up to `seconds`; True when `stop` was set meanwhile."""

    def capture(self) -> Capture: ...


def read_boot_id(path: Path = BOOT_ID_PATH) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return "unknown"


class SystemClock:
    """The real clock. The state comes from an injected reader (chrony, timesyncd, NTP) and is cached by it."""

    def __init__(self, state: Callable[[], ClockReading] = lambda: ClockReading(ClockState.UNKNOWN)) -> None:
        self._state = state
        self.boot_id = read_boot_id()

    def use_state(self, state: Callable[[], ClockReading]) -> None:
        """The clock state each capture stores, once a clock watch reports it."""
        self._state = state

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def wait(self, seconds: float, stop: threading.Event | None = None) -> bool:
        if stop is None:
            time.sleep(seconds)
            return False
        return stop.wait(seconds)

    def capture(self) -> Capture:
        return Capture(self.now(), self.monotonic_ns(), self.boot_id, self._state())


class ManualClock:
    """A clock tests and benchmarks move by hand; waiting on it moves it."""

    def __init__(self, start: datetime, boot_id: str = "test-boot", state: str = ClockState.SYNCED) -> None:
        self.wall = start
        self.mono_ns = 0
        self.boot_id = boot_id
        self.reading = ClockReading(state, 0)

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono_ns += int(seconds * 1e9)

    def now(self) -> datetime:
        return self.wall

    def monotonic_ns(self) -> int:
        return self.mono_ns

    def wait(self, seconds: float, stop: threading.Event | None = None) -> bool:
        self.advance(seconds)
        return stop is not None and stop.is_set()

    def capture(self) -> Capture:
        return Capture(self.wall, self.mono_ns, self.boot_id, self.reading)


SYSTEM = SystemClock()  # for the command line: one process, one clock, no time source needed
