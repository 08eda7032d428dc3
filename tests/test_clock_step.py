"""A clock stepped under the running daemon (issue 20 §4): seen at the next badge, the registrations after it
re-dated by the time carried over the step before the service gets them, and no command calling the clock synced
while the service's Date disagrees. The daemon runs as a process under libfaketime (its wall clock read from a
file the test rewrites; monotonic time left real, as a step leaves it)."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import run_sitegate
from gate_site import DaemonProcess, uid, wait_until, write_site
from simulator_process import SimulatorProcess, client_credentials, service_section

from sitegate.queue import database
from sitegate.queue.log import LogView
from sitegate.timefmt import parse_utc

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")
WORKERS = 10


def faketime_env(shift: Path) -> dict:
    """The wall clock of a process: real time plus the offset in `shift`, read at every call."""
    assert LIBFAKETIME.exists(), "libfaketime missing: `make test` installs Debian's faketime"
    return {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME_TIMESTAMP_FILE": str(shift),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


def badge_all(pipe, sent: dict[str, list[datetime]]) -> None:
    for index in range(WORKERS):
        sent.setdefault(uid(index), []).append(datetime.now(UTC))  # the true time (this process is not shifted)
        pipe.write(uid(index) + "\n")
        pipe.flush()
        time.sleep(0.05)


def sitegate_shifted(config: Path, env: dict, *args: str) -> tuple[int, dict]:
    """A technician's command on the gate, seeing the gate's (stepped) clock."""
    import subprocess
    import sys

    command = [str(Path(sys.executable).parent / "sitegate"), *args, "--json"]
    environment = {**os.environ, "SITEGATE_CONFIG": str(config), **env}
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=60)
    return result.returncode, json.loads(result.stdout)


@pytest.mark.slow
def test_a_step_back_is_seen_at_the_next_badge_and_redated_before_sending(tmp_path):
    simulator = SimulatorProcess()
    daemon = None
    try:
        credentials = client_credentials(tmp_path / "credentials")
        config = write_site(tmp_path, WORKERS, service_section(simulator.base_url, simulator.token_url, credentials))
        config.write_text(
            config.read_text().replace(
                'fifo_path = "badges.fifo"\n', 'fifo_path = "badges.fifo"\nsame_badge_window_s = 1\n'
            )
        )
        run_sitegate("roster", "import", str(tmp_path / "roster.csv"), config=config, check=True)
        shift = tmp_path / "faketime.rc"
        shift.write_text("+0\n")
        env = faketime_env(shift)
        daemon = DaemonProcess(config, env=env)
        daemon.wait_ready()
        sent: dict[str, list[datetime]] = {}
        received = lambda: simulator.received()["received"]  # noqa: E731
        with open(tmp_path / "badges.fifo", "w") as pipe:
            badge_all(pipe, sent)
            wait_until(lambda: len(received()) == WORKERS, "the INs delivered", said=lambda: daemon.lines[-4:])
            stepped_ns = time.monotonic_ns()
            shift.write_text("-3600\n")  # the clock steps back one hour while workers badge
            badge_all(pipe, sent)
            wait_until(
                lambda: len(received()) == 2 * WORKERS,
                "the OUTs delivered",
                said=lambda: [(e.get("event"), e.get("warnings"), e.get("count")) for e in daemon.lines][-14:],
            )

        log = LogView(database.connect_readonly(tmp_path / "data" / "sitegate.db"))
        after = [r for r in log.records(kind="registration")][WORKERS:]
        assert [r.clock_state for r in after] == ["stepped"] * WORKERS
        step = next(r for r in log.records(kind="clock") if r.data["event"] == "stepped")
        assert step.data["jump_s"] == pytest.approx(-3600, abs=1)
        # seen at the first badge after the step, not at the next poll of the time source
        assert stepped_ns < step.data["seen_monotonic_ns"] <= after[0].monotonic_ns
        badges = [e for e in daemon.lines if e.get("event") == "badge" and e.get("outcome") == "registered"]
        assert all("clock stepped" in e["warnings"] for e in badges[WORKERS:])  # amber, not plain green
        assert not any(e.get("warnings") for e in badges[:WORKERS])

        by_worker: dict[str, list[dict]] = {}
        for entry in received():
            by_worker.setdefault(entry["item"]["limosaId"], []).append(entry["item"])
        errors_before, errors_after = [], []
        for record in after:
            true = sent[record.data["badge_uid"]][1]
            (item,) = [i for i in by_worker[record.data["worker"]["number"]] if i["type"] == "OUT"]
            errors_before.append((parse_utc(record.wall_utc) - true).total_seconds())
            errors_after.append((parse_utc(item["registrationDate"]) - true).total_seconds())
        for items in by_worker.values():
            dated = {i["type"]: i["registrationDate"] for i in items}
            assert dated["IN"] < dated["OUT"], dated
        assert all(abs(error) < 1.0 for error in errors_after), errors_after
        print(
            f"redated={len(errors_after)} error_before_s={min(errors_before):.3f}..{max(errors_before):.3f} "
            f"error_after_s={min(errors_after):.3f}..{max(errors_after):.3f} "
            f"step_to_record_s={(step.monotonic_ns - stepped_ns) / 1e9:.3f}"
        )

        code, status = sitegate_shifted(config, env, "status")
        assert status["clock_state"] != "synced" and code == 1, status["clock_state"]
        code, clock = sitegate_shifted(config, env, "clock")
        assert clock["synced"] is False and code == 2, clock
        assert clock["service_offset_s"] == pytest.approx(3600, abs=2) and "believe the service" in clock["dispute"]
    finally:
        if daemon is not None and daemon.process.poll() is None:
            daemon.kill(signal.SIGTERM)
        simulator.stop()
