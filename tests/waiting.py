"""Polling for a condition with a deadline: the suite's one way to wait for something another process does."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    ready: Callable[[], object], what: str, timeout: float = 30, said: Callable[[], object] = list, every_s: float = 0.1
) -> object:
    """Poll `ready` until it returns something true (returned), or fail naming what was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = ready()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"not within {timeout} s: {what}; {said()}")
