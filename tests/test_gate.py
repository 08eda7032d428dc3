"""Gate decisions and the worker's signal, with gpiozero's MockFactory standing in for the GPIO pins."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from conftest import REPO
from gpiozero.pins.mock import MockFactory

from sitegate.clock import ClockReading
from sitegate.domain.gate import UNCERTAIN, Gate
from sitegate.domain.identifiers import WorkerId
from sitegate.domain.roster import Worker, read_csv
from sitegate.queue import delivery
from sitegate.reader.feedback import PATTERNS, Feedback, Signal
from sitegate.reader.sources import BadgeRead, BadRead, parse_line


@pytest.fixture
def roster(device):
    device.roster.replace(read_csv(REPO / "firmware" / "data" / "demo_roster.csv").workers)
    return device.roster


def make_gate(device, direction="toggle", clock_state="synced", backlog=0, **reader_changes):
    reader = dataclasses.replace(device.config.readers[0], direction=direction, **reader_changes)
    config = dataclasses.replace(device.config, readers=(reader,))
    return Gate(device.log, device.roster, config, lambda: ClockReading(clock_state, 0), lambda: backlog)


class Reads:
    def __init__(self, clock):
        self.clock = clock

    def __call__(self, uid="04A1B2C3", after_s=0.0, reader="gate"):
        self.clock.advance(after_s)
        return BadgeRead(uid, reader, self.clock.monotonic_ns())


def test_toggle_in_then_out_and_double_tap_suppressed(device, clock, roster):
    gate, read = make_gate(device), Reads(clock)
    first = gate.badge(read())
    assert (first.outcome, first.direction, first.signal) == ("registered", "IN", "registered_in")
    again = gate.badge(read(after_s=3))
    assert again.outcome == "duplicate_suppressed" and again.signal == "already_registered"
    out = gate.badge(read(after_s=4 * 3600))
    assert (out.outcome, out.direction, out.signal) == ("registered", "OUT", "registered_out")
    assert device.log.count() == 2


def test_toggle_after_a_forgotten_out_starts_with_in(device, clock, roster):
    gate, read = make_gate(device), Reads(clock)
    gate.badge(read())
    assert gate.badge(read(after_s=20 * 3600)).direction == "IN"


def test_history_survives_a_restart(device, clock, roster):
    read = Reads(clock)
    make_gate(device).badge(read())
    assert make_gate(device).badge(read(after_s=3600)).direction == "OUT"


def test_a_toggle_direction_decided_with_the_site_bus_down_counts_with_the_warning_signal(device, clock, roster):
    """Issue 23 §4: the gate cannot see an OUT made at another gate; it registers (never loses one), warns the
    worker and says so in the signed record. An entry or exit reader's direction is never in doubt."""
    connected = [False]
    for direction, signal, uncertain in (("toggle", Signal.WARNING, True), ("entry", Signal.REGISTERED_IN, False)):
        gate, read = make_gate(device, direction), Reads(clock)
        gate.site_connected = lambda: connected[0]
        outcome = gate.badge(read(after_s=25 * 3600))
        assert (outcome.outcome, outcome.direction, outcome.signal) == ("registered", "IN", signal)
        assert (UNCERTAIN in outcome.warnings) is uncertain
        assert device.log.last().data.get("direction_uncertain", False) is uncertain
    connected[0] = True
    gate = make_gate(device)
    gate.site_connected = lambda: connected[0]
    outcome = gate.badge(read(after_s=25 * 3600))
    assert outcome.signal == Signal.REGISTERED_IN and "direction_uncertain" not in device.log.last().data


def test_entry_and_exit_readers_anticipate_21_22_24(device, clock, roster):
    read = Reads(clock)
    exit_only = make_gate(device, "exit").badge(read())
    assert exit_only.expected_remarks == (24,) and exit_only.signal == "warning"
    entry = make_gate(device, "entry")
    assert entry.badge(read(after_s=600)).expected_remarks == ()
    second = entry.badge(read(after_s=600))
    assert second.expected_remarks == (21,) and "remark 21 expected" in second.warnings
    exit_gate = make_gate(device, "exit")
    assert exit_gate.badge(read(after_s=600)).expected_remarks == ()
    assert exit_gate.badge(read(after_s=600)).expected_remarks == (22,)
    stored = [r.data["expected_remarks"] for r in device.log.records(kind="registration")]
    assert stored == [[24], [], [21], [], [22]]  # signed with the registration


def test_presence_mode_once_a_day_in_brussels_time(device, clock, roster):
    gate, read = make_gate(device, "presence"), Reads(clock)
    clock.wall = clock.wall.replace(hour=22, minute=30)  # 23:30 in Brussels (CET)
    assert gate.badge(read()).direction == "PRESENCE"
    assert gate.badge(read(after_s=1200)).reason == "already registered today"  # 23:50
    assert gate.badge(read(after_s=1200)).outcome == "registered"  # 00:10 the next day


def test_unknown_badge_red_and_recorded_never_sent(device, clock, roster):
    outcome = make_gate(device).badge(Reads(clock)("DEADBEEF"))
    assert (outcome.outcome, outcome.signal) == ("unknown_badge", "unknown_badge")
    record = device.log.get(outcome.seq)
    assert record.kind == "unknown_badge" and record.data["uid"] == "DEADBEEF"
    assert delivery.summary(device.db, clock.wall).pending == 0


def test_corrupt_read_is_a_fault_not_a_registration(device, clock, roster):
    read = parse_line("04A1B2Z?", "gate", 0)
    assert isinstance(read, BadRead)
    outcome = make_gate(device).badge(read)
    assert outcome.outcome == "bad_read" and "card UID" in outcome.reason and device.log.count() == 0


def test_warnings_validity_employer_clock_backlog(device, clock, roster):
    worker = Worker(
        "04A1B2D0", WorkerId("ssin", "88051212342"), "Janssens", "Els", "0202239951", valid_until=date(2026, 11, 1)
    )
    device.roster.replace([worker])
    outcome = make_gate(device, clock_state="unsynced", backlog=900).badge(Reads(clock)("04A1B2D0"))
    assert outcome.outcome == "registered" and outcome.signal == "warning"
    assert set(outcome.expected_remarks) == {1, 2}
    text = " ".join(outcome.warnings)
    assert "validity" in text and "remark 1" in text and "clock unsynced" in text and "900 registrations" in text


def test_full_disk_refuses_with_fault_and_keeps_old_records(device, clock, roster):
    gate, read = make_gate(device), Reads(clock)
    gate.badge(read())
    pages = device.db.execute("PRAGMA page_count").fetchone()[0]
    device.db.execute(f"PRAGMA max_page_count={pages}")
    outcomes = [gate.badge(read(f"DEAD{n:04X}", after_s=1)) for n in range(400)]
    refused = [o for o in outcomes if o.outcome == "refused"]
    assert refused and all(o.signal == "fault" and "disk full" in o.reason for o in refused)
    assert device.log.get(1).kind == "registration"


@pytest.mark.slow  # plays two patterns in real time: over 3 s
def test_feedback_patterns_on_mock_pins(config):
    factory = MockFactory()
    feedback = Feedback(config.gpio, background=False, pin_factory=factory)
    green, red, buzzer = (factory.pin(n) for n in (17, 27, 22))
    for pin in (green, red, buzzer):
        pin.clear_states()
    feedback.show("registered_out")
    assert [s.state for s in green.states][1:] == [True, False, True, False]
    assert [s.state for s in buzzer.states][1:] == [True, False, True, False]
    assert [s.state for s in red.states][1:] == []
    for pin in (green, red, buzzer):
        pin.clear_states()
    feedback.show("unknown_badge")
    assert [s.state for s in red.states][1:] == [True, False]
    assert [s.state for s in green.states][1:] == []
    # every outcome has a pattern of its own
    signatures = {tuple((b.device, b.times) for b in pattern) for pattern in PATTERNS.values()}
    assert len(signatures) == len(PATTERNS)
    feedback.close()


def test_green_only_after_the_append_returned(device, clock, roster):
    """The signal is chosen from the outcome of the append: a failing append can never show green."""
    gate = make_gate(device)
    calls = []
    original = device.log.append

    def failing(*args, **kwargs):
        calls.append("append")
        from sitegate.errors import StorageError

        raise StorageError("simulated I/O error", "check the disk")

    device.log.append = failing
    outcome = gate.badge(Reads(clock)())
    device.log.append = original
    assert calls == ["append"] and outcome.signal == "fault"


def test_low_disk_says_badges_still_register_until_it_is_full():
    """23 MiB free still holds thousands of badges: status must not say they are refused before they are."""
    from sitegate import health

    [low] = health.disk(23 * 2**20)
    assert "23 MiB free" in low.text and "badges still register" in low.text and not low.registration_impossible
    [full] = health.disk(512 * 1024)
    assert "full (512 KiB free): new badges are refused" in full.text and full.registration_impossible
    assert health.disk(300 * 2**20) == []
