"""The daemon's loops, each beside what it serves (issue 21 §1), run on a fake clock without the daemon and without
sleeping: the badge path, the heartbeat, a probe round; and the whole daemon wired on a fake clock, one of its loops
crashing: the fault shows and `run` returns 1."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

import pytest
from gate_site import ROSTER_HEADER
from gpiozero.pins.mock import MockFactory
from held_clock import HeldClock
from waiting import wait_until

from sitegate.clock import ClockReading, ClockState
from sitegate.clock.timefmt import format_utc
from sitegate.clock.timesource import TimeReading
from sitegate.daemon import wire
from sitegate.device import Device
from sitegate.domain.badge_path import BadgePath
from sitegate.domain.gate import Gate
from sitegate.domain.roster import parse_csv
from sitegate.paper_fallback.guidance import OutageState
from sitegate.paper_fallback.rounds import ProbeRounds
from sitegate.queue import database, delivery
from sitegate.queue.checkpoints import Checkpointer, latest_in_ledger
from sitegate.queue.heartbeat import Heartbeat
from sitegate.queue.records import Kind
from sitegate.reader.feedback import Feedback, Signal
from sitegate.reader.sources import BadgeRead

START = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
WORKER = "04A1B2C3,17073003384,,Dvořák,Antonín,0403170701,,,\n"
FOREMAN = "0F0F0F0F,85073003328,,Peeters,Jan,0403170701,,,foreman\n"


class Online:
    """A badge source as the heartbeat and the probes see it: a name, online or not."""

    def __init__(self, name: str, online: bool) -> None:
        self.name, self.online = name, online


@pytest.fixture
def feedback(config):
    shown = Feedback(config.gpio, background=True, pin_factory=MockFactory())
    yield shown
    shown.close()


@pytest.fixture
def gate_device(config, clock):
    device = Device.open(config, clock)
    device.roster.replace(parse_csv(ROSTER_HEADER.strip() + ",role\n" + WORKER + FOREMAN).workers)
    yield device
    device.close()


def witnesses_of(config, device: Device, faults: list[str]) -> Checkpointer:
    ledger = database.connect_ledger(config.database_path)
    return Checkpointer(device.log, ledger, database.head_path(config.database_path), lambda: faults.append("fault"))


def test_a_badge_is_registered_signalled_and_wakes_the_forwarder_and_the_bus(config, clock, gate_device, feedback):
    told: list[str] = []
    synced = lambda: ClockReading(ClockState.SYNCED, 0)  # noqa: E731
    gate = Gate(gate_device.log, gate_device.roster, config, synced, lambda: 0)
    stop = threading.Event()
    badges = BadgePath(gate, feedback, clock, stop, lambda: told.append("forwarder"), lambda: told.append("bus"),
                       lambda by: told.append(f"print for {by}"))  # fmt: skip
    reader = config.readers[0].name

    badges.handle(BadgeRead("04A1B2C3", reader, clock.monotonic_ns()))
    registered = next(gate_device.log.newest(Kind.REGISTRATION))
    assert (registered.data["badge_uid"], registered.wall_utc) == ("04A1B2C3", format_utc(START))
    assert told == ["forwarder", "bus"] and badges.last_badge_ns == clock.monotonic_ns()
    wait_until(lambda: feedback.shown == [Signal.REGISTERED_IN], "the green signal", said=lambda: feedback.shown)

    told.clear()
    badges.handle(BadgeRead("0F0F0F0F", reader, clock.monotonic_ns()))  # the foreman, twice: the listing
    assert told == ["bus"] and badges.held_changed.is_set()
    clock.advance(1)
    badges.handle(BadgeRead("0F0F0F0F", reader, clock.monotonic_ns()))
    assert told == ["bus", "bus", "print for Jan Peeters"]
    assert [r.data["badge_uid"] for r in gate_device.log.newest(Kind.REGISTRATION)] == ["04A1B2C3"]

    stop.set()  # stopping: a read is left for the next start, never half decided
    badges.handle(BadgeRead("04A1B2C3", reader, clock.monotonic_ns()))
    assert told == ["bus", "bus", "print for Jan Peeters"]


def test_a_foremans_held_read_counts_at_the_stop(config, clock, gate_device, feedback):
    gate = Gate(gate_device.log, gate_device.roster, config, lambda: ClockReading(ClockState.SYNCED, 0), lambda: 0)
    badges = BadgePath(gate, feedback, clock, threading.Event(), lambda: None, lambda: None, lambda by: None)
    badges.handle(BadgeRead("0F0F0F0F", config.readers[0].name, clock.monotonic_ns()))
    assert next(gate_device.log.newest(Kind.REGISTRATION), None) is None
    last: list[int] = []
    badges.finish(last=lambda: last.append(len(list(gate_device.log.newest(Kind.REGISTRATION)))))
    assert last == [1]  # the foreman's IN was appended before the stop's last words


def test_the_heartbeat_notes_the_time_the_readers_and_the_backlog_on_the_clock(config, clock, gate_device):
    faults: list[str] = []
    stop = threading.Event()
    beats: list[str] = []

    def readers_online() -> list[str]:
        beats.append(format_utc(clock.now()))
        if len(beats) == 3:
            stop.set()
        return ["entry"]

    witnesses = witnesses_of(config, gate_device, faults)
    heartbeat = Heartbeat(database.connect(config.database_path), clock, 30.0, readers_online, witnesses, stop)
    assert heartbeat.backlog == 0
    gate = Gate(gate_device.log, gate_device.roster, config, lambda: ClockReading(ClockState.SYNCED, 0), lambda: 0)
    gate.badge(BadgeRead("04A1B2C3", config.readers[0].name, clock.monotonic_ns()))

    heartbeat.run()  # a ManualClock: each wait moves it; the third beat sets the stop

    assert beats == ["2026-11-22T07:00:00.000000Z", "2026-11-22T07:00:30.000000Z", "2026-11-22T07:01:00.000000Z"]
    said = delivery.liveness(gate_device.db)
    assert (said.heartbeat_utc, said.readers_online) == (beats[-1], ("entry",))
    assert heartbeat.backlog == 1 and faults == []
    head = latest_in_ledger(gate_device.ledger)  # the head moved: checkpointed
    assert head is not None and head.seq == next(gate_device.log.newest(Kind.REGISTRATION)).seq


def test_a_probe_round_records_the_outage_and_its_change_is_checkpointed(config, clock, gate_device):
    changes: list[str] = []
    retried: list[str] = []
    sources = [Online("entry", False)]
    retry, changed = lambda: retried.append("retry"), lambda: changes.append("changed")  # noqa: E731
    rounds = ProbeRounds(config, gate_device.log, clock, sources, retry, changed, threading.Event())

    assert rounds.round(asked=True) == OutageState.SUSPECTED  # the service's port on loopback has no one
    suspected = next(gate_device.log.newest(Kind.OUTAGE))
    assert suspected.data["event"] == "suspected" and suspected.wall_utc == format_utc(START)
    assert any("entry" in probe["detail"] for probe in suspected.data["probes"])  # our own fault: a reader offline
    assert changes == [] and retried == []  # the first round changes nothing; the way is not open

    clock.advance(config.outage.grace_s)
    assert rounds.round(asked=False) == OutageState.NEVER_CONNECTED  # the grace is over, never delivered
    assert changes == ["changed"] and retried == []


def test_a_crashed_loop_shows_the_fault_and_the_daemon_exits_1(config, caplog):
    clock = HeldClock(START)
    feedback = Feedback(config.gpio, background=True, pin_factory=MockFactory())
    synced = lambda: TimeReading("test", True, 0.0, 0.001)  # noqa: E731
    daemon = wire(config, clock, feedback=feedback, time_sources=[synced])

    def broken() -> None:
        raise RuntimeError("the ledger's disk went away")

    daemon.heartbeat.run = broken
    try:
        with caplog.at_level(logging.ERROR, "sitegate.daemon"):
            code = daemon.run(handle_signals=False)
        wait_until(lambda: Signal.FAULT in feedback.shown, "the fault shown", said=lambda: feedback.shown)
    finally:
        clock.advance(86400)  # every wait in progress ends, and each loop sees the stop
        for thread in daemon.supervisor.threads:
            thread.join(10)
        feedback.close()
    assert code == 1 and daemon.supervisor.crashed == ["heartbeat"]
    assert not [thread.name for thread in daemon.supervisor.threads if thread.is_alive()]
    died = [r.fields for r in caplog.records if getattr(r, "fields", {}).get("event") == "thread_died"]
    assert died == [{"event": "thread_died", "thread": "heartbeat"}] and "the ledger's disk went away" in caplog.text
    check = Device.open(config, clock, signing=False)
    assert delivery.liveness(check.db).stopped_utc == format_utc(START)  # it still stopped in order
    check.close()
