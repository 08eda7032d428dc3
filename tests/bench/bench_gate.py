"""The gate's benchmarks: badge to feedback latency, idle CPU, peak memory, start-up to READY."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from floor import raw_insert_floor, timed_ms  # noqa: E402
from gate_site import uid, write_site  # noqa: E402
from gpiozero.pins.mock import MockFactory  # noqa: E402
from simulator_process import SimulatorProcess, client_credentials, service_section  # noqa: E402

from sitegate import config as configuration  # noqa: E402
from sitegate.clock import SYSTEM, SystemClock  # noqa: E402
from sitegate.daemon import wire  # noqa: E402
from sitegate.device import Device  # noqa: E402
from sitegate.domain.roster import read_csv  # noqa: E402
from sitegate.reader.feedback import Feedback  # noqa: E402

BADGES = 1000
WARM_BADGES = 500  # unmeasured, first: the gate's log past its first WAL restart, as the floor (floor.py)
IDLE_SECONDS = 60
HERE = Path(__file__).resolve().parent


class TimedFeedback(Feedback):
    def __init__(self, gpio) -> None:
        super().__init__(gpio, background=True, pin_factory=MockFactory())
        self.shown_at = threading.Event()
        self.when = 0

    def show(self, signal: str) -> None:
        self.when = time.perf_counter_ns()
        super().show(signal)
        self.shown_at.set()


def badge_to_feedback_ms(fifo, feedback: TimedFeedback, badge: str) -> float:
    """One UID written into the reader's fifo, timed to the feedback call."""
    feedback.shown_at.clear()
    start = time.perf_counter_ns()
    fifo.write(badge + "\n")
    fifo.flush()
    feedback.shown_at.wait(10)
    return (feedback.when - start) / 1e6


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def raw_floor(directory: Path) -> Callable[[], float]:
    """One raw durable insert, timed in ms: the floor, measured between badges so drift hits both alike."""
    return timed_ms(raw_insert_floor(directory, "floor.db"))


def badge_latencies(
    directory: Path, extra: str = "", meanwhile=contextlib.nullcontext
) -> tuple[list[float], list[float]]:
    """Time from a UID written into the fifo to the feedback call, and the floor, taken in turn.
    The forwarder delivers to the simulator meanwhile, as on a normal morning.

    extra: more configuration; meanwhile(config_file): a context that runs beside the rush (the page's load)."""
    simulator = SimulatorProcess()
    try:
        service = service_section(simulator.base_url, simulator.token_url, client_credentials(directory / "cred"))
        return _badge_latencies(directory, service + extra, meanwhile)
    finally:
        simulator.stop()


def _badge_latencies(directory: Path, service: str, meanwhile) -> tuple[list[float], list[float]]:
    config_file = write_site(directory, WARM_BADGES + BADGES, service)
    config = configuration.load(config_file)
    device = Device.open(config, SYSTEM)
    device.roster.replace(read_csv(directory / "roster.csv").workers)
    device.close()
    feedback = TimedFeedback(config.gpio)
    daemon = wire(config, SystemClock(), feedback=feedback)
    thread = threading.Thread(target=daemon.run, kwargs={"handle_signals": False}, daemon=True)
    thread.start()
    while not daemon.sources[0].online:
        time.sleep(0.01)
    samples, floor, floor_insert = [], [], raw_floor(directory)
    with meanwhile(config_file), open(config.readers[0].fifo_path, "w") as fifo:
        for index in range(WARM_BADGES):
            badge_to_feedback_ms(fifo, feedback, uid(index))
        for index in range(WARM_BADGES, WARM_BADGES + BADGES):
            floor.append(floor_insert())
            samples.append(badge_to_feedback_ms(fifo, feedback, uid(index)))
    daemon.stop.set()
    thread.join(10)
    return samples, floor


def _ready_time(command: list[str], env: dict) -> tuple[float, subprocess.Popen]:
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    for line in process.stdout:
        if '"ready"' in line:
            return time.perf_counter() - start, process
    raise RuntimeError(process.stderr.read())


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def idle_daemon(directory: Path) -> tuple[float, float, float]:
    """CPU share over IDLE_SECONDS, peak RSS, and start-up to READY, of `sitegate run` polling at 20 Hz."""
    config_file = write_site(directory, 10)
    text = config_file.read_text().replace('source = "fifo"', 'source = "mfrc522"\npoll_interval_s = 0.05')
    config_file.write_text(text)
    env = {**os.environ, "SITEGATE_CONFIG": str(config_file), "GPIOZERO_PIN_FACTORY": "mock"}
    startup, process = _ready_time([sys.executable, str(HERE / "idle_daemon.py")], env)
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
    time.sleep(2)
    cpu_start, wall_start = _cpu_seconds(process.pid), time.monotonic()
    time.sleep(IDLE_SECONDS)
    cpu = (_cpu_seconds(process.pid) - cpu_start) / (time.monotonic() - wall_start) * 100
    rss = _peak_rss_mb(process.pid)
    process.terminate()
    process.wait(20)
    return cpu, rss, startup


def bare_interpreter() -> tuple[float, float]:
    """The floor for memory and start-up: a Python interpreter that does nothing."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; print('ready', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    process.stdout.readline()
    startup = time.perf_counter() - start
    rss = _peak_rss_mb(process.pid)
    process.communicate("")
    return startup, rss


def bench_gate(scratch: Path, result) -> list[dict]:
    latencies, floor = badge_latencies(scratch / "latency")
    cpu, rss, startup = idle_daemon(scratch / "idle")
    bare_startup, bare_rss = bare_interpreter()
    return [
        result(
            "badge_to_feedback_p50_ms",
            statistics.median(latencies),
            "ms",
            statistics.median(floor),
            "reference: raw durable insert p50",
        ),
        result(
            "badge_to_feedback_p99_ms",
            percentile(latencies, 0.99),
            "ms",
            percentile(floor, 0.99),
            "ratio <= 2 (reference: raw durable insert p99)",
        ),
        result("idle_cpu_percent", cpu, "%", 2.0, "<= 2 % of one core (reference: the target)"),
        result("peak_rss_mb", rss, "MB", bare_rss, "<= 60 MB (reference: a bare interpreter)"),
        result("startup_to_ready_s", startup, "s", bare_startup, "<= 2 s (reference: a bare interpreter)"),
    ]


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        print(json.dumps(bench_gate(Path(directory), lambda *a: a), indent=1))
