"""A whole gate on this machine: a config with the fifo source, a large roster, the daemon as a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from conftest import CONFIG_TEXT
from waiting import wait_until  # noqa: F401 - the tests import it from here too

ROSTER_HEADER = "badge_uid,niss,limosa,last_name,first_name,employer,valid_from,valid_until\n"


def uid(index: int) -> str:
    return f"{0x10000000 + index:08X}"


def write_site(directory: Path, workers: int, service: str = "") -> Path:
    """Config (fifo source, trusted clock) and a roster of `workers` generated workers."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "sitegate.toml"
    path.write_text(CONFIG_TEXT + service + "\n[clock]\ntrust_system_clock = true\n")
    rows = [f"{uid(i)},,{10**16 + i:017d},Worker{i},Test,0403170701,," for i in range(workers)]
    (directory / "roster.csv").write_text(ROSTER_HEADER + "\n".join(rows) + "\n")
    return path


class DaemonProcess:
    """`sitegate run` (or another long-running command: `args`) as systemd would run it; its JSON log lines are
    collected as they come, and `ready` is set at the first line whose event is `ready_event`. `prefix` runs it
    through another command that then executes it in its place (`ip netns exec NAME`: same process id)."""

    def __init__(
        self,
        config: Path,
        env: dict | None = None,
        args: tuple[str, ...] = ("run",),
        ready_event: str = "ready",
        prefix: tuple[str, ...] = (),
    ) -> None:
        environment = {**os.environ, "SITEGATE_CONFIG": str(config), "GPIOZERO_PIN_FACTORY": "mock", **(env or {})}
        self.ready_event = ready_event
        self.process = subprocess.Popen(
            [*prefix, str(Path(sys.executable).parent / "sitegate"), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        self.lines: list[dict] = []
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._collect, daemon=True)
        self.reader.start()

    def _collect(self) -> None:
        for line in self.process.stdout:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            self.lines.append(entry)
            if entry.get("event") == self.ready_event:
                self.ready.set()

    def wait_ready(self, timeout: float = 30) -> None:
        if not self.ready.wait(timeout):
            self.process.kill()
            raise AssertionError(f"daemon not ready: {self.process.stderr.read()[-2000:]}")

    def registered(self) -> list[int]:
        return [e["seq"] for e in list(self.lines) if e.get("event") == "badge" and e.get("outcome") == "registered"]

    def kill(self, sig: int) -> None:
        self.process.send_signal(sig)
        self.process.wait(30)
        self.reader.join(10)
