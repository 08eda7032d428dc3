"""Named loops, one thread each, started together and stopped by one flag (the daemon's supervision).

A loop that raises has crashed: the journal names it, the gate shows the fault, and the supervisor stops every
loop so the daemon exits non-zero and systemd starts it again (`Restart=always`). A gate whose forwarder or
heartbeat died would otherwise go on answering badges while nothing delivers and nothing is watched.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sitegate.clock import Clock

logger = logging.getLogger("sitegate.daemon")


class Supervisor:
    def __init__(self, clock: Clock, fault: Callable[[], None]) -> None:
        """fault: shows the fault at the gate when a loop crashes."""
        self.clock = clock
        self.fault = fault
        self.stop = threading.Event()
        self.loops: dict[str, Callable[[], None]] = {}
        self.threads: list[threading.Thread] = []
        self.crashed: list[str] = []

    def add(self, name: str, loop: Callable[[], None]) -> None:
        """A lasting loop, run until `stop` is set; each name once (the journal names a crash by it)."""
        if name in self.loops:
            raise ValueError(f"two loops are named {name!r}")
        self.loops[name] = loop

    def start(self) -> None:
        for name, loop in self.loops.items():
            thread = threading.Thread(target=self._guarded, args=(name, loop), name=name, daemon=True)
            thread.start()
            self.threads.append(thread)

    def _guarded(self, name: str, loop: Callable[[], None]) -> None:
        try:
            loop()
        except Exception:  # a loop that dies must say so, loudly, show a fault and have the daemon restarted
            logger.exception("thread %s died", name, extra={"fields": {"event": "thread_died", "thread": name}})
            self.crashed.append(name)
            self.fault()
            self.stop.set()

    def supervise(self, beat: Callable[[], None], every_s: float) -> int:
        """The main thread until stopped: `beat` (the watchdog's ping) every `every_s`. 1 when a loop crashed."""
        while not self.stop.is_set():
            beat()
            self.clock.wait(every_s, self.stop)
        return 1 if self.crashed else 0
