"""The LEDs and buzzer have one owner: badges and the print button signal together, under CPU load, without a race.

Issue 14: the print thread and the badge thread both drove gpiozero's `blink`, which is not safe from two threads;
under load the print thread died ("cannot join thread before it is started") or the badge thread got the fault
signal for a registration already on disk. These tests run with a busy loop on every core.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time

import pytest
from gate_site import uid, write_site
from gpiozero.pins.mock import MockFactory

from sitegate import config as configuration
from sitegate.clock import SYSTEM, SystemClock
from sitegate.daemon import wire
from sitegate.device import Device
from sitegate.domain.roster import read_csv
from sitegate.reader.feedback import PATTERNS, Feedback


@pytest.fixture
def cpu_load():
    """A busy loop on every core for the length of the test; the processes are killed whatever happens."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(max(2, os.cpu_count() or 1))]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
        for burner in burners:
            burner.wait(10)


def test_two_threads_showing_at_once_never_race(config, cpu_load, thread_errors):
    feedback = Feedback(config.gpio, background=True, pin_factory=MockFactory())
    signals = list(PATTERNS)

    def hammer(offset: int) -> None:
        for index in range(40):
            feedback.show(signals[(index + offset) % len(signals)])

    threads = [threading.Thread(target=hammer, args=(offset,), name=f"show-{offset}") for offset in (0, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    feedback.close()
    assert thread_errors == []
    assert sorted(feedback.shown) == sorted(signals[(i + o) % len(signals)] for o in (0, 3) for i in range(40))


def test_show_returns_before_the_pattern_has_played(config):
    """The badge path never waits for a pattern: the next worker is read while the LEDs still blink."""
    factory = MockFactory()
    feedback = Feedback(config.gpio, background=True, pin_factory=factory)
    started = time.monotonic()
    feedback.show("fault")  # 1.6 s of red flashes and 1.2 s of buzzer
    assert time.monotonic() - started < 0.5
    feedback.close()
    assert True in [change.state for change in factory.pin(27).states]  # the pattern had started
    red_changes = len(factory.pin(27).states)
    time.sleep(0.3)
    assert not feedback.player.is_alive() and len(factory.pin(27).states) == red_changes  # closing stops it


class BusyLed:
    """A red LED whose GPIO line is claimed elsewhere: what lgpio answers then (hardware we cannot make fail)."""

    def blink(self, **_) -> None:
        raise OSError("GPIO busy")

    def close(self) -> None:
        pass


def test_a_pin_fault_is_logged_and_later_signals_still_play(config, thread_errors):
    feedback = Feedback(config.gpio, background=True, pin_factory=MockFactory())
    feedback.devices["red"].close()
    feedback.devices["red"] = BusyLed()
    feedback.show("fault")  # red first: refused
    feedback.show("registered_in")
    feedback.close()
    assert thread_errors == ["sitegate.reader.feedback: feedback_fault"]
    assert feedback.shown == ["registered_in"]


def test_button_and_badges_together_under_load(tmp_path, cpu_load, thread_errors):
    config = configuration.load(write_site(tmp_path / "site", workers=60))
    thermal = tmp_path / "thermal.bin"
    config = dataclasses.replace(
        config,
        gpio=dataclasses.replace(config.gpio, print_button=23),
        printer=dataclasses.replace(config.printer, format="escpos", escpos=f"file:{thermal}"),
    )
    device = Device.open(config, SYSTEM)
    device.roster.replace(read_csv(tmp_path / "site" / "roster.csv").workers)
    device.close()
    factory = MockFactory()
    feedback = Feedback(config.gpio, background=True, pin_factory=factory)
    daemon = wire(config, SystemClock(), feedback=feedback)
    runner = threading.Thread(target=daemon.run, kwargs={"handle_signals": False}, name="daemon", daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while not daemon.sources[0].online and time.monotonic() < deadline:
            time.sleep(0.01)
        with open(config.readers[0].fifo_path, "w") as fifo:
            for index in range(60):
                fifo.write(uid(index) + "\n")
                fifo.flush()
                if index % 20 == 5:  # the foreman presses the button three times while workers badge
                    factory.pin(23).drive_low()
                    factory.pin(23).drive_high()
                time.sleep(0.01)
        while time.monotonic() < deadline and (feedback.shown.count("printed") < 3 or len(feedback.shown) < 63):
            time.sleep(0.05)
    finally:
        daemon.stop.set()
        runner.join(10)
        feedback.close()
    check = Device.open(config, SYSTEM)
    kinds = [record.kind for record in check.log.records()]
    check.close()
    assert thread_errors == []
    assert kinds.count("registration") == 60 and kinds.count("paper_listing") == 3
    assert feedback.shown.count("registered_in") == 60 and feedback.shown.count("printed") == 3
    assert "fault" not in feedback.shown and "print_failed" not in feedback.shown
    assert b"Worker0" in thermal.read_bytes()
