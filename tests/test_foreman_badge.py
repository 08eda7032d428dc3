"""Issue 11: the foreman's badge. Badged twice within a few seconds it prints the day's listing (the print button's
action) and registers nobody; badged once, it is the foreman's own IN/OUT, counted once the gesture time is over."""

from __future__ import annotations

import dataclasses
import signal
import threading
import time

import pytest
from conftest import run_sitegate
from gate_site import ROSTER_HEADER, DaemonProcess, uid, wait_until, write_site
from gpiozero.pins.mock import MockFactory
from test_daemon import feed
from test_gate import Reads, make_gate

from sitegate import config as configuration
from sitegate.clock import SYSTEM, SystemClock
from sitegate.daemon import wire
from sitegate.device import Device
from sitegate.domain.gate import Result
from sitegate.domain.roster import FOREMAN, WORKER, parse_csv, read_csv
from sitegate.queue.records import Kind
from sitegate.reader.feedback import PATTERNS, Feedback, Signal

FOREMAN_ROW = "0F0F0F0F,85073003328,,Peeters,Jan,0403170701,,,foreman"


@pytest.fixture
def crew(device):
    parsed = parse_csv(
        ROSTER_HEADER.strip() + ",role\n" + FOREMAN_ROW + "\n04A1B2C3,17073003384,,Dvořák,Antonín,0403170701,,,\n"
    )
    assert not parsed.bad_rows
    device.roster.replace(parsed.workers)
    return device.roster


def registrations(device) -> int:
    return device.log.count_kind(Kind.REGISTRATION)


def test_the_roster_role_column_is_optional_and_checked():
    old = parse_csv(ROSTER_HEADER + "04A1B2C3,85073003328,,Dvořák,Antonín,0403170701,,\n")
    assert not old.bad_rows and old.workers[0].role == WORKER  # a roster without the column imports as before
    new = parse_csv(ROSTER_HEADER.strip() + ",role\n" + FOREMAN_ROW.replace("foreman", "Foreman") + "\n")
    assert new.workers[0].role == FOREMAN
    bad = parse_csv(ROSTER_HEADER.strip() + ",role\n" + FOREMAN_ROW.replace("foreman", "boss") + "\n")
    assert [str(b) for b in bad.bad_rows] == [
        "line 2: role: 'boss' is not one of worker, foreman — fix: leave it empty or write foreman"
    ]


def test_twice_within_the_gesture_asks_for_the_listing_and_registers_nobody(device, clock, crew):
    gate, read = make_gate(device), Reads(clock)
    first = gate.badge(read("0F0F0F0F"))
    assert (first.outcome, first.signal) == (Result.FOREMAN_HELD, Signal.FOREMAN_NOTED)
    second = gate.badge(read("0F0F0F0F", after_s=1.5))
    assert (second.outcome, second.signal) == (Result.PRINT_REQUESTED, Signal.PRINT_REQUESTED)
    assert gate.release(dataclasses.replace(read("0F0F0F0F"), monotonic_ns=0)) is None
    assert gate.gesture.held == {} and registrations(device) == 0
    worker = gate.badge(read("04A1B2C3"))  # a worker is never held
    assert worker.outcome == Result.REGISTERED and registrations(device) == 1


def test_tapping_on_after_the_print_request_is_the_same_request(device, clock, crew):
    """Three quick taps ask for one listing; they do not start a new gesture that would register the foreman."""
    gate, read = make_gate(device), Reads(clock)
    gate.badge(read("0F0F0F0F"))
    assert gate.badge(read("0F0F0F0F", after_s=1)).outcome == Result.PRINT_REQUESTED
    for _ in range(2):
        again = gate.badge(read("0F0F0F0F", after_s=2))
        assert (again.outcome, again.signal) == (Result.DUPLICATE_SUPPRESSED, Signal.PRINT_REQUESTED)
    assert gate.gesture.held == {} and registrations(device) == 0
    later = read("0F0F0F0F", after_s=3.5)  # the gesture time after the last tap: a new gesture
    assert gate.badge(later).outcome == Result.FOREMAN_HELD
    clock.advance(3)
    assert gate.release(later).outcome == Result.REGISTERED and registrations(device) == 1


def test_once_is_the_foremans_own_in_then_out(device, clock, crew):
    gate, read = make_gate(device), Reads(clock)
    held = read("0F0F0F0F")
    assert gate.badge(held).outcome == Result.FOREMAN_HELD
    clock.advance(3)
    counted = gate.release(held)
    assert (counted.outcome, counted.direction) == (Result.REGISTERED, "IN")
    later = read("0F0F0F0F", after_s=4 * 3600)
    gate.badge(later)
    assert gate.release(later).direction == "OUT"
    assert registrations(device) == 2


def test_a_late_release_still_counts_the_first_read_once(device, clock, crew):
    gate, read = make_gate(device), Reads(clock)
    first = read("0F0F0F0F")
    gate.badge(first)
    counted = gate.badge(read("0F0F0F0F", after_s=4))  # the gesture is over; the first read's release is late
    assert (counted.outcome, counted.direction) == (Result.REGISTERED, "IN")
    assert gate.release(first) is None and registrations(device) == 1


def test_the_print_pattern_is_its_own():
    assert PATTERNS[Signal.PRINT_REQUESTED] not in [p for s, p in PATTERNS.items() if s != Signal.PRINT_REQUESTED]
    assert PATTERNS[Signal.FOREMAN_NOTED] not in [p for s, p in PATTERNS.items() if s != Signal.FOREMAN_NOTED]


@pytest.mark.slow
def test_the_foreman_badge_prints_through_the_daemon_and_is_never_registered_by_it(tmp_path, thread_errors):
    config = configuration.load(write_site(tmp_path / "site", workers=5))
    thermal = tmp_path / "thermal.bin"
    config = dataclasses.replace(
        config, printer=dataclasses.replace(config.printer, format="escpos", escpos=f"file:{thermal}")
    )
    device = Device.open(config, SYSTEM)
    workers = read_csv(tmp_path / "site" / "roster.csv").workers
    foreman = dataclasses.replace(workers[0], badge_uid="0F0F0F0F", role=FOREMAN, last_name="Peeters")
    device.roster.replace([*workers[1:], foreman])
    device.close()
    feedback = Feedback(config.gpio, background=True, pin_factory=MockFactory())
    daemon = wire(config, SystemClock(), feedback=feedback)
    runner = threading.Thread(target=daemon.run, kwargs={"handle_signals": False}, name="daemon", daemon=True)
    runner.start()

    def wait(condition, what: str) -> None:
        wait_until(condition, what, 30, lambda: feedback.shown)

    try:
        wait(lambda: daemon.sources[0].online, "reader online")
        with open(config.readers[0].fifo_path, "w") as fifo:
            for line in (uid(1), uid(2), "0F0F0F0F", "0F0F0F0F"):  # two workers, then the foreman twice
                fifo.write(line + "\n")
                fifo.flush()
                time.sleep(0.3)
            wait(lambda: "printed" in feedback.shown, "the listing printed")
            time.sleep(config.gate.foreman_print_s + 0.5)  # nothing is released after the gesture
            fifo.write("0F0F0F0F\n")  # later: one badge, the foreman's own IN
            fifo.flush()
            wait(lambda: feedback.shown.count("registered_in") == 3, "the foreman's own IN")
    finally:
        daemon.stop.set()
        runner.join(10)
        feedback.close()
    check = Device.open(config, SYSTEM)
    records = list(check.log.records())
    check.close()
    assert thread_errors == []
    assert feedback.shown[:2] == ["registered_in", "registered_in"]
    assert feedback.shown[2:5] == ["foreman_noted", "print_requested", "printed"]
    assert feedback.shown[5:] == ["foreman_noted", "registered_in"]
    kinds = [r.kind for r in records]
    listing = next(r.data for r in records if r.kind == Kind.PAPER_LISTING)
    foreman_regs = [r for r in records if r.kind == Kind.REGISTRATION and r.data["badge_uid"] == "0F0F0F0F"]
    assert listing["by"] == f"{foreman.first_name} Peeters" and listing["destination"] == f"escpos file:{thermal}"
    assert kinds.index(Kind.PAPER_LISTING) < records.index(foreman_regs[0])  # printed before the foreman's own IN
    assert [r.data["direction"] for r in foreman_regs] == ["IN"] and kinds.count(Kind.REGISTRATION) == 3
    printed = thermal.read_bytes()
    assert b"Worker1" in printed and b"Worker2" in printed and b"Peeters" not in printed


def test_a_foreman_badged_once_still_counts_when_the_daemon_stops_during_the_gesture(tmp_path):
    """systemctl stop (an update, a reboot) within the gesture time: the held read is the foreman's IN, not lost."""
    config = write_site(tmp_path, workers=1)
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER_HEADER.strip() + ",role\n" + FOREMAN_ROW + "\n")
    run_sitegate("roster", "import", str(roster), config=config, check=True)
    daemon = DaemonProcess(config)
    daemon.wait_ready()
    feed(tmp_path / "badges.fifo", ["0F0F0F0F"], threading.Event())
    wait_until(
        lambda: [e for e in daemon.lines if e.get("outcome") == Result.FOREMAN_HELD],
        "the foreman's badge held",
        10,
        lambda: daemon.lines,
    )
    daemon.kill(signal.SIGTERM)  # well within the gesture's 3 s
    assert daemon.process.returncode == 0
    assert [e["outcome"] for e in daemon.lines if e.get("event") == "badge"] == ["foreman_held", "registered"]
    check = Device.open(configuration.load(config), SYSTEM)
    foreman = [r.data for r in check.log.records(kind=Kind.REGISTRATION)]
    check.close()
    assert [(r["badge_uid"], r["direction"]) for r in foreman] == [("0F0F0F0F", "IN")]
