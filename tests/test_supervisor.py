"""The daemon's supervision (issue 21 §1): named loops started together and stopped by one flag; a loop that
crashes is named in the journal, shows the fault, and stops the daemon with exit code 1 (systemd restarts it)."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

import pytest
from held_clock import HeldClock
from waiting import wait_until

from sitegate.supervisor import Supervisor


def supervised(loops: dict) -> tuple[Supervisor, list[str], HeldClock]:
    clock, faults = HeldClock(datetime(2026, 11, 22, 7, 0, tzinfo=UTC)), []
    supervisor = Supervisor(clock, lambda: faults.append("fault"))
    for name, loop in loops.items():
        supervisor.add(name, loop)
    return supervisor, faults, clock


def test_a_crashed_loop_shows_the_fault_and_stops_the_daemon_with_exit_code_1(caplog):
    went_on = threading.Event()

    def steady() -> None:
        while not supervisor.stop.is_set():
            supervisor.clock.wait(60, supervisor.stop)
        went_on.set()

    def broken() -> None:
        raise RuntimeError("a database gone away")

    supervisor, faults, _ = supervised({"heartbeat": steady, "forwarder": broken})
    beats: list[int] = []
    supervisor.start()
    with caplog.at_level(logging.ERROR, "sitegate.daemon"):
        code = supervisor.supervise(lambda: beats.append(1), 10.0)
    for thread in supervisor.threads:
        thread.join(10)
    assert code == 1 and supervisor.crashed == ["forwarder"] and faults == ["fault"]
    assert went_on.is_set()  # the other loops saw the stop
    died = [r for r in caplog.records if getattr(r, "fields", {}).get("event") == "thread_died"]
    assert [r.fields["thread"] for r in died] == ["forwarder"] and "a database gone away" in caplog.text


def test_a_clean_stop_is_exit_code_0_and_the_watchdog_beats_on_the_clock():
    supervisor, faults, clock = supervised({})
    beats: list[str] = []
    codes: list[int] = []
    runner = threading.Thread(target=lambda: codes.append(supervisor.supervise(lambda: beats.append("ping"), 10.0)))
    runner.start()
    wait_until(lambda: beats == ["ping"], "the first ping", said=lambda: beats)
    clock.advance(9)
    assert beats == ["ping"]  # the clock has not reached the next ping
    clock.advance(1)
    wait_until(lambda: beats == ["ping", "ping"], "the second ping, 10 s later on the clock", said=lambda: beats)
    supervisor.stop.set()
    runner.join(10)
    assert not runner.is_alive() and codes == [0] and faults == []


def test_two_loops_never_share_a_name():
    supervisor, _, _ = supervised({"metrics": lambda: None})
    with pytest.raises(ValueError, match="metrics"):
        supervisor.add("metrics", lambda: None)
