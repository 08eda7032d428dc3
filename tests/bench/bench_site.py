"""The site bus's benchmarks, on a real mosquitto (TLS, the shipped ACL) on loopback, two gates in this process:
append at gate A to verified in gate B's mirror, and badge to feedback at A with the bus running."""

from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_gate import TimedFeedback, badge_to_feedback_ms, percentile, raw_floor  # noqa: E402
from gate_site import uid  # noqa: E402
from simulator_process import SimulatorProcess  # noqa: E402
from site_bus import SiteGate, simulator_service  # noqa: E402

from sitegate import config as configuration  # noqa: E402
from sitegate.clock import SYSTEM, SystemClock  # noqa: E402
from sitegate.daemon import Daemon, wire  # noqa: E402
from sitegate.device import Device  # noqa: E402
from sitegate.domain.roster import read_csv  # noqa: E402
from sitegate.site.broker import LocalBroker  # noqa: E402

PACED = 500  # badges one at a time, each waited for in B's mirror
RUSH = 1000  # badges back to back, the bus busy meanwhile


def _start(gate: SiteGate, feedback: TimedFeedback | None = None) -> tuple[Daemon, threading.Thread]:
    config = configuration.load(gate.config)
    device = Device.open(config, SYSTEM)
    device.roster.replace(read_csv(gate.directory / "roster.csv").workers)
    device.close()
    daemon = wire(config, SystemClock(), feedback=feedback or TimedFeedback(config.gpio))
    thread = threading.Thread(target=daemon.run, kwargs={"handle_signals": False}, daemon=True)
    thread.start()
    while not daemon.sources[0].online or not daemon.site_bus.counters.connected:
        time.sleep(0.01)
    return daemon, thread


def site_latencies(directory: Path) -> tuple[list[float], list[float], list[float]]:
    broker = LocalBroker(directory / "broker", SYSTEM).start()
    simulator = SimulatorProcess()
    try:
        service = simulator_service(simulator, directory)
        gates = {name: SiteGate(directory / name, name, service) for name in ("gate-a", "gate-b")}
        rows = [f"{uid(i)},,{10**16 + i:017d},Worker{i},Test,0403170701,," for i in range(PACED + RUSH)]
        for name, gate in gates.items():
            other = next(g for g in gates.values() if g is not gate)
            gate.configure(broker.bus_section(gate.directory, name, {other.device: other.public_key}))
            (gate.directory / "roster.csv").write_text(
                "badge_uid,niss,limosa,last_name,first_name,employer,valid_from,valid_until\n" + "\n".join(rows) + "\n"
            )
        feedback = TimedFeedback(configuration.load(gates["gate-a"].config).gpio)
        a, a_thread = _start(gates["gate-a"], feedback)
        b, b_thread = _start(gates["gate-b"])
        mirrored, mirrored_at = threading.Event(), [0]

        def seen(device: str, record, original=b.site_bus.on_peer_registration) -> None:
            original(device, record)
            mirrored_at[0] = time.perf_counter_ns()
            mirrored.set()

        b.site_bus.on_peer_registration = seen
        mirror_ms, feedback_ms, floor = [], [], []
        floor_insert = raw_floor(directory)
        with open(gates["gate-a"].directory / "badges.fifo", "w") as fifo:
            for index in range(PACED):
                feedback.shown_at.clear()
                mirrored.clear()
                fifo.write(uid(index) + "\n")
                fifo.flush()
                feedback.shown_at.wait(10)
                if not mirrored.wait(10):
                    raise RuntimeError(f"badge {index} never reached gate-b's mirror")
                mirror_ms.append((mirrored_at[0] - feedback.when) / 1e6)
            for index in range(PACED, PACED + RUSH):
                floor.append(floor_insert())
                feedback_ms.append(badge_to_feedback_ms(fifo, feedback, uid(index)))
        for daemon, thread in ((a, a_thread), (b, b_thread)):
            daemon.stop.set()
            thread.join(15)
        return mirror_ms, feedback_ms, floor
    finally:
        broker.stop()
        simulator.stop()


def bench_site(scratch: Path, result) -> list[dict]:
    mirror_ms, feedback_ms, floor = site_latencies(scratch / "site")
    return [
        result("site_mirror_p50_ms", statistics.median(mirror_ms), "ms", 50.0, "reference: the p99 target"),
        result("site_mirror_p99_ms", percentile(mirror_ms, 0.99), "ms", 50.0, "<= 50 ms (reference: the target)"),
        result(
            "badge_to_feedback_p99_ms_with_bus",
            percentile(feedback_ms, 0.99),
            "ms",
            percentile(floor, 0.99),
            "ratio <= 2 (reference: raw durable insert p99)",
        ),
    ]


if __name__ == "__main__":
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        print(json.dumps(bench_site(Path(directory), lambda *a: a), indent=1))
