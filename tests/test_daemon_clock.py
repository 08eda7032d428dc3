"""The daemon on one fake clock (issue 21 §1-2): it builds every part from the clock it is given, so a badge, a
heartbeat and a probe round happen in the test's time, stamped with it, and nothing sleeps out a real interval."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from gate_site import ROSTER_HEADER
from gpiozero.pins.mock import MockFactory
from held_clock import HeldClock
from waiting import wait_until

from sitegate.clock.timefmt import format_utc
from sitegate.clock.timesource import TimeReading
from sitegate.daemon import wire
from sitegate.device import Device
from sitegate.domain.roster import parse_csv
from sitegate.queue import delivery
from sitegate.queue.records import Kind, Record, canonical_json
from sitegate.reader.feedback import Feedback, Signal

START = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)  # ten days before the real date of writing: never mistaken for it
WORKER = "04A1B2C3,17073003384,,Dvořák,Antonín,0403170701,,\n"
FOREMAN = "0F0F0F0F,85073003328,,Peeters,Jan,0403170701,,,foreman\n"


@pytest.fixture
def gate(config, thread_errors):
    """A daemon running on a HeldClock, its reader the configuration's named pipe; stopped and joined after."""
    clock = HeldClock(START)
    device = Device.open(config, clock)
    device.roster.replace(parse_csv(ROSTER_HEADER.strip() + ",role\n" + WORKER.strip() + ",\n" + FOREMAN).workers)
    device.close()
    feedback = Feedback(config.gpio, background=True, pin_factory=MockFactory())
    synced = lambda: TimeReading("test", True, 0.0, 0.001)  # noqa: E731 - the one time source: synchronised
    daemon = wire(config, clock, feedback=feedback, time_sources=[synced])
    runner = threading.Thread(target=daemon.run, kwargs={"handle_signals": False}, name="daemon", daemon=True)
    runner.start()
    check = Device.open(config, clock, signing=False)
    try:
        wait_until(lambda: daemon.sources[0].online, "the reader's pipe open")
        with open(config.readers[0].fifo_path, "w") as fifo:
            yield daemon, clock, check, fifo
    finally:
        daemon.stop.set()
        clock.advance(86400)  # every wait in progress ends, and each loop sees the stop
        runner.join(10)
        for thread in daemon.supervisor.threads:
            thread.join(10)
        feedback.close()
        check.close()
    assert not runner.is_alive() and not [t.name for t in daemon.supervisor.threads if t.is_alive()]
    assert daemon.supervisor.crashed == []
    assert thread_errors == []


def badge(fifo, uid: str) -> None:
    fifo.write(uid + "\n")
    fifo.flush()


def newest(check: Device, kind: Kind):
    return next(check.log.newest(kind), None)


def test_a_badge_a_heartbeat_and_a_probe_round_on_the_fake_clock(gate, config):
    daemon, clock, check, fifo = gate
    heartbeat = lambda: delivery.liveness(check.db).heartbeat_utc  # noqa: E731
    wait_until(
        lambda: heartbeat() == format_utc(START), "the first heartbeat, at the fake clock's time", said=heartbeat
    )

    badge(fifo, "04A1B2C3")
    registered = wait_until(lambda: newest(check, Kind.REGISTRATION), "the worker's registration")
    # The reader stamped the read, the log the record: both from the one clock (the wall time is ten days ago).
    assert (registered.wall_utc, registered.monotonic_ns) == (format_utc(START), clock.mono_ns)

    every = config.gate.heartbeat_s
    clock.advance(every)
    wait_until(
        lambda: heartbeat() == format_utc(START + timedelta(seconds=every)), "the next heartbeat", said=heartbeat
    )

    # The delivery fails (no service on the configured port): the forwarder asks for a probe round, and the
    # periodic round follows once the probe interval has passed on the fake clock.
    clock.advance(config.outage.probe_interval_s)
    suspected = wait_until(lambda: newest(check, Kind.OUTAGE), "the probe round's evidence in the log")
    assert suspected.data["event"] == "suspected" and suspected.wall_utc.startswith("2026-11-22T07:")
    assert {probe["at_utc"][:13] for probe in suspected.data["probes"]} == {"2026-11-22T07"}
    assert delivery.summary(check.db, clock.now()).first_failure_utc.startswith("2026-11-22T07:")


def test_a_foremans_single_read_counts_when_the_fake_clock_passes_the_gesture(gate, config):
    daemon, clock, check, fifo = gate
    badge(fifo, "0F0F0F0F")
    wait_until(lambda: daemon.badges.gate.gesture.held, "the foreman's read held")
    clock.advance(config.gate.foreman_print_s / 2)
    assert newest(check, Kind.REGISTRATION) is None and daemon.badges.gate.gesture.held  # within the gesture: held
    clock.advance(config.gate.foreman_print_s / 2)
    counted = wait_until(lambda: newest(check, Kind.REGISTRATION), "the foreman's own IN")
    assert (counted.data["badge_uid"], counted.data["direction"]) == ("0F0F0F0F", "IN")
    assert daemon.badges.gate.gesture.held == {}


def test_a_peers_registration_holds_the_same_badge_window_on_the_one_clock(gate):
    """The gate dates a peer's registration on its own clock and compares it with the reader's stamp of the next
    read: with the reader on another clock (the system's, before issue 21) the badge registered a second time."""
    daemon, clock, check, fifo = gate
    worker = {"kind": "ssin", "number": "17073003384", "last_name": "Dvořák", "first_name": "Antonín"}
    data = {"worker": worker, "employer": "0403170701", "direction": "IN", "badge_uid": "04A1B2C3", "reader": "entry"}
    at = format_utc(clock.now())
    daemon.badges.gate.observe(
        Record(7, Kind.REGISTRATION, canonical_json(data), at, 0, "gate-02-boot", "synced", 0, "", "", "")
    )
    clock.advance(1)  # well within the same-badge window
    badge(fifo, "04A1B2C3")
    wait_until(lambda: Signal.ALREADY_REGISTERED in daemon.feedback.shown, "the second read suppressed",
               said=lambda: daemon.feedback.shown)  # fmt: skip
    assert newest(check, Kind.REGISTRATION) is None
