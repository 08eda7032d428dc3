"""The forwarder's recent calls, counted. A service that fails most calls but answers one every few minutes never
opens an outage (registration works, late): the count lets `sitegate status` say so instead of staying silent."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

WINDOW_S = 3600.0  # the last hour


@dataclass
class SendWindow:
    """Each call's outcome by monotonic time; only the last `window_s` seconds are kept."""

    window_s: float = WINDOW_S
    calls: deque[tuple[float, bool]] = field(default_factory=deque)

    def record(self, at_s: float, failures: int, succeeded: bool) -> None:
        self.calls.extend([(at_s, False)] * failures + ([(at_s, True)] if succeeded else []))
        self._forget(at_s)

    def counts(self, now_s: float) -> tuple[int, int]:
        """Calls in the window, and how many of them failed."""
        self._forget(now_s)
        return len(self.calls), sum(1 for _, ok in self.calls if not ok)

    def _forget(self, now_s: float) -> None:
        while self.calls and self.calls[0][0] < now_s - self.window_s:
            self.calls.popleft()
