"""Honest time: chrony parsing, a real chronyd serving a shifted time, clock events and re-dating."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from chrony_pair import free_port, write_configs
from conftest import registration, run_sitegate

from sitegate import config as configuration
from sitegate.clock import Capture, ClockReading
from sitegate.clock.timefmt import format_utc
from sitegate.clock.timesource import TimeReading, best_reading, chrony, ntp, parse_chrony, run_command
from sitegate.clock.watch import CONFIGURED, Anchor, ClockWatch, discount_applied, read_together
from sitegate.device import Device
from sitegate.domain.registration import append_registration
from sitegate.metrics import Metrics
from sitegate.queue import delivery
from sitegate.queue.verify import verify

# `chronyc -c -m tracking sources`, chrony 4.3 (Debian 12). The tracking line of SYNCED is captured from a machine
# tracking time.cloudflare.com; its sources line is written from chronyc's documentation (adjusted offset, field 8,
# positive: the local clock ahead).
SYNCED = (
    "A29FC87B,time.cloudflare.com,3,1795331181.537578606,0.000012735,-0.000031259,0.000207629,-7.673,"
    "-0.000,0.047,0.010944884,0.000779642,64.3,Normal\n"
    "^,*,time.cloudflare.com,3,6,377,23,-0.000031259,-0.000031259,0.010944884"
)
# Captured from a real chronyd on loopback before its first update (tests/test_clock_step.py's pair).
UNSYNCED = (
    "00000000,,0,0.000000000,0.000000000,0.000000000,0.000000000,0.000,0.000,0.000,1.000000000,"
    "1.000000000,0.0,Not synchronised\n^,?,127.0.0.1,1,4,3,2,-10800.000000000,-10800.000000000,0.000032021"
)
# Captured: chronyd -x (the system clock is left alone) tracking a server 120 s ahead: the system time says it.
LARGE = (
    "7F000001,127.0.0.1,2,1796301850.541993866,120.000007629,0.000000054,0.000000887,-0.117,0.003,0.285,"
    "0.000033763,0.000002000,0.8,Normal\n^,*,127.0.0.1,1,-2,377,0,-0.000006367,-0.000006313,0.000024217"
)
# Written from the documentation: a step that failed. The clock is still 120 s behind; only the selected source's
# last sample, adjusted for what was applied since (nothing), says so.
FAILED_STEP = (
    "7F000001,127.0.0.1,2,1796301850.541993866,0.000000000,-120.000000000,120.000000000,0.000,0.000,0.000,"
    "0.000033763,0.000002000,0.0,Normal\n^,*,127.0.0.1,1,4,7,1,-120.000000000,-120.000000000,0.000024217"
)
# Captured: a real chronyd just after it stepped a clock booted 3 hours behind (makestep), until its next update: the
# tracking's last offset still says the 3 hours it has just applied; the source's sample, adjusted, says the truth.
STALE_AFTER_STEP = (
    "7F000001,127.0.0.1,2,1796301762.822108931,0.000000000,-10800.000000000,10800.000000000,0.000,0.442,"
    "1000000.000,0.000092646,1.369690657,0.0,Normal\n^,*,127.0.0.1,1,4,7,1,0.000010007,-10800.000000000,0.000047249"
)


def test_parse_synced_line():
    reading = parse_chrony(SYNCED)
    assert reading.synced and reading.source == "chrony"
    assert reading.offset_s == pytest.approx(0.000031, abs=1e-6)
    assert reading.max_error_s == pytest.approx(0.000779642 + 0.010944884 / 2 + 0.000031, abs=1e-6)


def test_parse_unsynced_line():
    reading = parse_chrony(UNSYNCED)
    assert not reading.synced and "Not synchronised" in reading.detail


def test_parse_large_offset_line():
    reading = parse_chrony(LARGE)
    assert reading.synced and reading.offset_s == pytest.approx(120.0, abs=1e-3)


def test_parse_after_a_step_reports_the_clock_as_it_is_now_not_the_offset_just_applied():
    reading = parse_chrony(STALE_AFTER_STEP)
    assert reading.synced and abs(reading.offset_s) < 0.001, reading
    assert reading.max_error_s < 2  # root dispersion 1.37 s after the step, not 3 hours


def test_parse_a_failed_step_reports_the_error_the_source_measured():
    reading = parse_chrony(FAILED_STEP)
    assert reading.synced and reading.offset_s == pytest.approx(120.0)
    assert parse_chrony(FAILED_STEP.split("\n")[0]).offset_s == 0.0  # no selected source: the system time alone


def test_garbage_is_a_clear_error_and_sources_fall_through():
    with pytest.raises(ValueError, match="expected 14 fields"):
        parse_chrony("506 Cannot talk to daemon")

    def broken():
        raise OSError("chronyc: not found")

    reading = best_reading([broken, lambda: parse_chrony(SYNCED)])
    assert reading.source == "chrony"
    assert "not found" in best_reading([broken]).detail


@pytest.fixture
def shifted_chronyd(tmp_path):
    """A chronyd (with -x: the system clock is left alone) serving a time 120 s ahead, and a second chronyd
    (also -x) tracking it, whose `chronyc tracking` we read over its command port."""
    for tool in ("chronyd", "chronyc", "faketime"):
        assert shutil.which(tool), f"{tool} missing: `make test` installs Debian's chrony and faketime"
    server_port, command_port = write_configs(tmp_path)
    processes = [
        subprocess.Popen(
            ["faketime", "-f", "+120s", "chronyd", "-x", "-d", "-f", str(tmp_path / "server.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # faketime keeps chronyd as a child and passes no signal on: kill the group
        ),
    ]
    time.sleep(0.5)
    processes.append(
        subprocess.Popen(
            ["chronyd", "-x", "-d", "-f", str(tmp_path / "client.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    )
    yield server_port, command_port
    for process in processes:
        stop_wrapped(process)
    left = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout.split()
    assert not left, f"processes of this test still running: {left}"
    shared = [name for p in processes for name in (f"faketime_shm_{p.pid}", f"sem.faketime_sem_{p.pid}")]
    assert not [name for name in shared if (Path("/dev/shm") / name).exists()], "faketime left its shared memory"


def stop_wrapped(process: subprocess.Popen) -> None:
    """Stop a process started in a group of its own, wrapper and child: the child first, so a wrapper such as
    faketime (which passes no signal on, and removes its /dev/shm files only when its child has ended) exits by
    itself; then whatever is left of the group."""
    try:
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    except OSError:
        children = []
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(child), signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


@pytest.mark.slow
def test_real_chronyd_serving_a_shifted_time(shifted_chronyd):
    server_port, command_port = shifted_chronyd
    direct = ntp("127.0.0.1", port=server_port)
    assert direct.offset_s == pytest.approx(120, abs=1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            reading = chrony(host="127.0.0.1", port=command_port)
            if reading.synced and reading.offset_s and abs(reading.offset_s) > 100:
                break
        except (OSError, subprocess.SubprocessError, ValueError):
            pass
        time.sleep(0.5)
    assert reading.synced and reading.offset_s == pytest.approx(120, abs=1), reading


class Readings:
    """A scripted time source."""

    def __init__(self) -> None:
        self.next = TimeReading("chrony", False, None, None, "not yet")

    def __call__(self) -> TimeReading:
        return self.next


def watch_for(device, clock, readings) -> ClockWatch:
    return ClockWatch(
        device.log,
        device.ledger,
        readings,
        90.0,
        clock=clock,
        boot_id=clock.boot_id,
    )


def clock_events(device) -> list[str]:
    return [r.data["event"] for r in device.log.records(kind="clock")]


def booted_behind(device, clock, readings, hours: float) -> tuple[ClockWatch, datetime, list[int]]:
    """A device booted with its clock `hours` behind, and 3 registrations 10 s apart before any sync: the watch, the
    true time at the start, their seqs."""
    true_start = clock.wall
    clock.wall -= timedelta(hours=hours)
    watch = watch_for(device, clock, readings)
    assert watch.check().state == "unsynced"
    clock.reading = watch.current()
    seqs = []
    for index in range(3):
        clock.advance(10)
        seqs.append(append_registration(device.log, registration(index)).seq)
    return watch, true_start, seqs


def test_unsynced_registrations_are_redated_after_sync(device, clock):
    readings = Readings()
    watch, true_start, seqs = booted_behind(device, clock, readings, hours=1)
    clock.advance(40)
    readings.next = TimeReading("chrony", True, 3600.0, 0.01, "synced")
    assert watch.check().state == "synced"
    corrected = dict(device.db.execute("SELECT seq, corrected_utc FROM delivery WHERE corrected_utc IS NOT NULL"))
    expected = [true_start + timedelta(seconds=10 * (i + 1)) for i in range(3)]
    assert [corrected[s] for s in seqs] == [e.strftime("%Y-%m-%dT%H:%M:%S.%fZ") for e in expected]
    correction = list(device.log.records(kind="clock_correction"))
    assert len(correction) == 1 and [c["seq"] for c in correction[0].data["corrections"]] == seqs
    assert clock_events(device) == ["unsynced", "synced", "offset_warning"]
    # the originals are untouched and the whole log verifies
    assert [r.clock_state for r in device.log.records(kind="registration")] == ["unsynced"] * 3
    verify(device.log.records(), device.key.public_key_hex)
    # what the service will receive is the corrected time
    batch = delivery.take_batch(
        device.ledger, 10, "2026-11-22T08:00:00.000000Z", "gate-01", delivery.ClockHold.at(clock, 0)
    )
    assert [p.send_utc for p in batch] == [corrected[s] for s in seqs]
    assert (
        watch.check().state == "synced" and watch.redate(Anchor(clock.wall, clock.mono_ns), clock.mono_ns) == 0
    )  # never twice


def test_step_and_offset_warning_are_recorded_once(device, clock):
    readings = Readings()
    readings.next = TimeReading("chrony", True, 0.002, 0.01, "ok")
    watch = watch_for(device, clock, readings)
    watch.check()
    clock.advance(5)
    clock.wall += timedelta(seconds=30)  # wall time jumps without monotonic time
    status = watch.check()
    assert status.state == "stepped" and watch.current() == ClockReading("stepped", 2000)
    readings.next = TimeReading("chrony", True, 120.0, 0.01, "drifting")
    for _ in range(3):
        clock.advance(5)
        status = watch.check()
    assert status.warning and "remark 32" in status.warning
    assert clock_events(device) == ["synced", "stepped", "offset_warning"]
    stepped = [r for r in device.log.records(kind="clock") if r.data["event"] == "stepped"][0]
    assert stepped.data["jump_s"] == pytest.approx(30)


def test_clock_command_reads_chronyc(tmp_path, config_file):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "chronyc"
    fake.write_text(f"#!/bin/sh\necho '{LARGE}'\n")
    fake.chmod(0o755)
    env_path = f"{bin_dir}:{os.environ['PATH']}"
    result = run_sitegate(
        "clock", "--json", config=config_file, env={**os.environ, "PATH": env_path, "SITEGATE_CONFIG": str(config_file)}
    )
    data = json.loads(result.stdout)
    assert result.returncode == 1 and data["synced"] is True and data["source"] == "chrony"
    assert data["offset_s"] == pytest.approx(120, abs=0.01) and "remark 32" in data["warning"]
    assert {"max_error_s", "service_offset_s", "unsynced_records", "reception_delay_s"} <= set(data)
    fake.write_text(f"#!/bin/sh\necho '{UNSYNCED}'\n")
    assert (
        run_sitegate(
            "clock", config=config_file, env={**os.environ, "PATH": env_path, "SITEGATE_CONFIG": str(config_file)}
        ).returncode
        == 2
    )


def test_a_step_under_a_trusted_clock_is_seen_at_the_next_capture_and_redated_by_the_carried_time(device, clock):
    readings = Readings()
    readings.next = TimeReading(CONFIGURED, True, 0.0, None, "clock.trust_system_clock = true")
    watch = watch_for(device, clock, readings)
    clock.reading = None
    device.log.clock.capture = lambda: Capture(clock.wall, clock.mono_ns, clock.boot_id, watch.current())
    assert watch.check().state == "synced"
    clock.advance(10)
    before = append_registration(device.log, registration(0))
    clock.advance(5)
    clock.wall -= timedelta(hours=1)  # the wall clock steps back; monotonic time does not
    true_times = []
    seqs = []
    for index in range(1, 4):
        seqs.append(append_registration(device.log, registration(index)).seq)
        true_times.append(clock.wall + timedelta(hours=1))
        clock.advance(2)
    assert watch.wake.is_set() and watch.current().state == "stepped"  # seen at the first capture after it
    assert [r.clock_state for r in device.log.records(kind="registration")] == ["synced"] + ["stepped"] * 3
    batch = delivery.take_batch(
        device.ledger, 10, "2026-11-22T08:00:00.000000Z", "gate-01", delivery.ClockHold.at(clock, 0)
    )
    assert [p.seq for p in batch] == [before.seq]  # what is not re-dated yet waits
    status = watch.check()
    assert status.state == "stepped" and not status.synced  # the configuration alone cannot vouch after a step
    corrected = dict(device.db.execute("SELECT seq, corrected_utc FROM delivery WHERE corrected_utc IS NOT NULL"))
    assert [corrected[s] for s in seqs] == [format_utc(t) for t in true_times]
    assert clock_events(device) == ["synced", "stepped"]
    watch = watch_for(device, clock, readings)  # the daemon restarted in the same boot: the step is not forgotten
    assert watch.current().state == "stepped"
    device.log.clock.capture = lambda: Capture(clock.wall, clock.mono_ns, clock.boot_id, watch.current())
    late = append_registration(device.log, registration(9)).seq
    assert watch.check().state == "stepped"
    corrected = dict(device.db.execute("SELECT seq, corrected_utc FROM delivery WHERE corrected_utc IS NOT NULL"))
    assert corrected[late] == format_utc(clock.wall + timedelta(hours=1))
    clock.wall += timedelta(hours=1)  # stepped back onto the carried time: trusted again
    watch.current()
    assert watch.check().state == "synced" and clock_events(device) == ["synced", "stepped", "stepped", "synced"]


def synced_watch(device, clock, readings) -> ClockWatch:
    """A watch trusting the clock (chrony synced, no offset), whose readings every capture stores."""
    readings.next = TimeReading("chrony", True, 0.0, 0.001, "synced")
    watch = watch_for(device, clock, readings)
    device.log.clock.capture = lambda: Capture(clock.wall, clock.mono_ns, clock.boot_id, watch.current())
    assert watch.check().state == "synced"
    return watch


def test_after_a_step_a_source_that_knows_the_true_time_is_not_trusted_while_the_clock_is_still_off(device, clock):
    """The VM's check 5: the clock set an hour ahead by hand; chrony measured the hour (its `makestep 1 3` steps only
    at its first updates) and reports synced with a -3600 s offset. Trusting the clock then stored the next badges
    as `synced` with the wrong time: 2 of 30 reached the service an hour ahead, until `chronyc makestep`."""
    readings = Readings()
    watch = synced_watch(device, clock, readings)
    clock.advance(10)
    clock.wall += timedelta(hours=1)  # `date -s`: an hour ahead
    append_registration(device.log, registration(0))
    readings.next = TimeReading("chrony", True, -3600.0, 0.001, "synced")  # chrony measured it, has not stepped
    assert watch.check().state == "stepped"
    clock.advance(2)
    meanwhile = append_registration(device.log, registration(1))
    assert meanwhile.clock_state == "stepped" and watch.check().state == "stepped"
    sent = delivery.take_batch(device.ledger, 10, format_utc(clock.wall), "gate-01", delivery.ClockHold.at(clock, 0))
    assert [(p.seq, p.send_utc) for p in sent][-1] == (meanwhile.seq, format_utc(clock.wall - timedelta(hours=1)))
    clock.wall -= timedelta(hours=1)  # `chronyc makestep`
    readings.next = TimeReading("chrony", True, 0.0, 0.001, "synced")
    watch.current()
    assert watch.check().state == "synced"


def test_a_service_date_asked_before_the_step_and_stored_after_it_never_vouches_for_the_clock(device, clock):
    """tests/test_clock_step.py failed twice under load (registrations after a step stored `synced`): the answer to a
    call made just before the step was stored just after the watch recorded it, and its Date, measured on the clock
    before the step, was taken as the service agreeing with the stepped clock. Only a call sent after the step was
    seen counts."""
    readings = Readings()
    readings.next = TimeReading(CONFIGURED, True, 0.0, None, "clock.trust_system_clock = true")
    watch = watch_for(device, clock, readings)
    device.log.clock.capture = lambda: Capture(clock.wall, clock.mono_ns, clock.boot_id, watch.current())
    assert watch.check().state == "synced"
    clock.advance(10)
    asked_before = clock.mono_ns  # a delivery goes out
    clock.advance(0.2)
    clock.wall -= timedelta(hours=1)  # the step, while the call is on its way
    append_registration(device.log, registration(0))  # the next badge sees it
    assert watch.check().state == "stepped"
    delivery.settle(device.ledger, [], format_utc(clock.wall), server_offset_s=0.3, asked_ns=asked_before)
    clock.advance(1)
    assert watch.check().state == "stepped"  # the Date of a call sent before the step says nothing of it
    asked_after = clock.mono_ns
    clock.advance(0.2)
    delivery.settle(device.ledger, [], format_utc(clock.wall), server_offset_s=0.3, asked_ns=asked_after)
    assert watch.check().state == "synced"  # one sent after it agrees with the clock: the service's time wins


# A reading that predates a step of the clock: chronyc's tracking line reported, until chronyd's next update, the
# offset it had just applied by stepping the clock (seconds here, longer on the arm64 VM); an NTP answer can come
# just before a step. Here chronyd measured 0.1 s more than the 3 hours it stepped.
PREDATING_STEP = TimeReading("chrony", True, 10800.1, 10800.2, "reference 127.0.0.1 stratum 2")


def test_an_offset_is_taken_out_only_when_the_clock_was_moved_by_it():
    now = discount_applied(PREDATING_STEP, [10800.1])
    assert abs(now.offset_s) < 1e-6 and "measured before the clock was stepped by +10800.100 s" in now.detail
    assert now.max_error_s == pytest.approx(0.1)
    # the clock set 2 minutes behind by hand, and chronyd -x measuring it: the move explains nothing
    assert discount_applied(parse_chrony(LARGE), [-120.0]).offset_s == pytest.approx(120)
    assert discount_applied(PREDATING_STEP, [3600.0, -10800.0]) == PREDATING_STEP
    assert discount_applied(parse_chrony(SYNCED), [0.9]) == parse_chrony(SYNCED)


@pytest.mark.parametrize("seen", ["with the offset", "a check before the offset"])
def test_a_clock_stepped_at_its_first_sync_is_not_moved_again_by_a_reading_that_predates_the_step(device, clock, seen):
    """The arm64 VM's check 5: booted 3 hours behind (no RTC); chronyd stepped the clock and chronyc still reported
    the 3 hours it had applied. The watch added them to the corrected clock: 10 registrations reached the service
    10,800 s ahead of true time, and the next step's carried time was 3 hours ahead too. Whatever the source, a
    figure equal to a step the watch saw was measured before it."""
    readings = Readings()
    watch, true_start, seqs = booted_behind(device, clock, readings, hours=3)
    clock.advance(20)
    clock.wall += timedelta(hours=3, seconds=0.1)  # chronyd's makestep
    if seen == "a check before the offset":
        assert watch.check().state == "unsynced"  # the source was asked just before chronyd's update
        clock.advance(5)
    readings.next = PREDATING_STEP
    status = watch.check()
    assert status.state == "synced" and abs(status.offset_s) < 0.001 and not status.warning, status
    corrected = dict(device.db.execute("SELECT seq, corrected_utc FROM delivery WHERE corrected_utc IS NOT NULL"))
    expected = [true_start + timedelta(seconds=10 * (i + 1) + 0.1) for i in range(3)]
    assert [corrected[s] for s in seqs] == [format_utc(e) for e in expected]
    assert "offset_warning" not in clock_events(device)
    assert abs((watch._anchor.at(clock.mono_ns) - clock.wall).total_seconds()) < 0.001


def test_a_clock_set_wrong_and_stepped_back_by_chrony_is_trusted_at_once_despite_the_stale_offset(device, clock):
    """The clock set an hour ahead by hand, chrony measures it and `chronyc makestep` steps it back; the reading
    that follows still says -3600 s (as chronyc's tracking line did until chronyd's next update). The clock is right
    again (it agrees with the time carried over the step): it is trusted, and a badge then is `synced` with the true
    time."""
    readings = Readings()
    watch = synced_watch(device, clock, readings)
    clock.advance(10)
    clock.wall += timedelta(hours=1)
    readings.next = TimeReading("chrony", True, -3600.0, 3600.001, "measured, not stepped")
    assert watch.check().state == "stepped"
    clock.advance(2)
    clock.wall -= timedelta(hours=1)  # `chronyc makestep`; chrony's last offset still says -3600 s
    assert watch.check().state == "synced"
    after = append_registration(device.log, registration(1))
    assert after.clock_state == "synced" and after.wall_utc == format_utc(clock.wall)


def test_a_step_a_badge_sees_while_the_watch_is_deciding_is_not_covered_by_its_verdict(device, clock):
    """The watch reads the clock under its lock, then decides outside it (records written, each an fsync). A badge in
    between that saw a step was stored `stepped`; the verdict then set `synced` over it, and the badges after it were
    stored `synced` with the stepped time."""
    readings = Readings()
    watch = synced_watch(device, clock, readings)
    clock.advance(10)
    deciding = watch._measured_since

    def badge_meanwhile(reading, jumps):
        clock.wall -= timedelta(hours=1)  # the clock steps back, and a badge sees it before the verdict
        append_registration(device.log, registration(0))
        return deciding(reading, jumps)

    watch._measured_since = badge_meanwhile
    assert watch.check().state == "stepped" and watch.wake.is_set()
    watch._measured_since = deciding
    clock.advance(2)
    later = append_registration(device.log, registration(1))
    assert later.clock_state == "stepped"
    assert watch.check().state == "stepped" and clock_events(device) == ["synced", "stepped"]
    corrected = dict(device.db.execute("SELECT seq, corrected_utc FROM delivery WHERE corrected_utc IS NOT NULL"))
    assert corrected[later.seq] == format_utc(clock.wall + timedelta(hours=1))


class PausedAtFirstRead:
    """The real machine's clocks as a loaded 2-core machine showed them in CI: the thread paused 108 ms right after
    its first wall-clock read (time goes on: monotonic and wall advance together)."""

    def __init__(self, clock, pause_s: float = 0.108) -> None:
        self.clock, self.reads, self.pause_s = clock, 0, pause_s

    def wall(self):
        self.reads += 1
        now = self.clock.wall
        self.clock.advance(self.pause_s if self.reads == 1 else 0.00001)
        return now


def test_the_anchor_is_read_at_one_instant_even_when_the_thread_is_paused_between_reads(device, clock):
    paused = PausedAtFirstRead(clock)
    wall, mono = read_together(paused.wall, lambda: clock.mono_ns)
    true_at_mono = clock.wall - timedelta(microseconds=(clock.mono_ns - mono) / 1000)
    assert abs((wall - true_at_mono).total_seconds()) <= 0.001, (wall, true_at_mono)
    readings = Readings()
    readings.next = TimeReading(CONFIGURED, True, 0.0, None, "clock.trust_system_clock = true")
    watch = watch_for(device, clock, readings)
    paused.reads = 0
    watch.wall = paused.wall
    watch.check()
    carried = watch._anchor.at(clock.mono_ns)
    assert abs((carried - clock.wall).total_seconds()) <= 0.001, (carried, clock.wall)


def test_a_badge_thread_paused_between_its_two_clock_reads_sees_no_step(device, clock):
    """A starved badge thread (2 cores, a VM beside it) paused over a second between reading the wall clock and
    monotonic time: read one after the other, that was a step, and the badges after it were stored `stepped`."""
    readings = Readings()
    readings.next = TimeReading(CONFIGURED, True, 0.0, None, "clock.trust_system_clock = true")
    watch = watch_for(device, clock, readings)
    assert watch.check().state == "synced"
    clock.advance(10)
    paused = PausedAtFirstRead(clock, pause_s=1.5)
    watch.wall = paused.wall
    assert watch.current().state == "synced" and not watch.wake.is_set()
    clock.advance(3)
    assert watch.current().state == "synced" and watch.check().state == "synced"
    assert clock_events(device) == ["synced"]


def test_status_and_clock_never_say_synced_while_the_service_date_disagrees(config_file, clock):
    config_file.write_text(config_file.read_text() + "\n[clock]\ntrust_system_clock = true\n")
    device = Device.open(configuration.load(config_file), clock)
    readings = Readings()
    readings.next = TimeReading(CONFIGURED, True, 0.0, None, "clock.trust_system_clock = true")
    watch = watch_for(device, clock, readings)
    assert watch.check().state == "synced"  # the clock an hour slow since boot

    def service_said(offset_s: float, minutes_later: float) -> None:
        seen = format_utc(clock.wall + timedelta(minutes=minutes_later))
        delivery.settle(device.ledger, [], seen, server_offset_s=offset_s)  # an answer with its Date, nothing in it

    service_said(3600.3, 5)
    status = run_sitegate("status", "--json", config=config_file)
    data = json.loads(status.stdout)
    assert data["clock_state"] == "disputed" and status.returncode >= 1
    assert "only the configuration vouches for the clock" in data["clock_dispute"]
    assert any("believe the service" in w for w in data["warnings"])
    clock_said = run_sitegate("clock", "--json", config=config_file)
    assert json.loads(clock_said.stdout)["synced"] is False and clock_said.returncode == 2
    assert "disputed" in run_sitegate("status", config=config_file).stdout  # the table never says synced
    metrics = Metrics()
    metrics.refresh(device, clock.wall, ClockReading("synced", 0), None)  # the watch itself calls it synced
    assert metrics.registry.get_sample_value("sitegate_clock_synced") == 0
    service_said(3600.3, -5)  # measured before the clock was last found synced: the next delivery will tell
    assert (
        "believe the clock until the next delivery"
        in json.loads(run_sitegate("status", "--json", config=config_file).stdout)["clock_dispute"]
    )
    service_said(0.4, 5)  # within the tolerance
    data = json.loads(run_sitegate("status", "--json", config=config_file).stdout)
    assert data["clock_state"] == "synced" and data["clock_dispute"] is None
    assert json.loads(run_sitegate("clock", "--json", config=config_file).stdout)["synced"] is True
    watch.current()
    clock.wall += timedelta(seconds=30)  # a step the daemon has seen and not yet resolved
    assert watch.check().state == "stepped"
    said = json.loads(run_sitegate("clock", "--json", config=config_file).stdout)
    assert said["synced"] is False and said["daemon_clock_state"] == "stepped"
    device.close()


def test_a_time_source_that_fails_is_said_readably_with_the_fix():
    """`sitegate clock` showed "Command '['chronyc', '-c', 'tracking']' returned non-zero exit status 1." and no fix:
    a real chronyc asked on a port where no chronyd listens, and a program that is not installed."""
    port = free_port()
    silent = best_reading([lambda: chrony(host="127.0.0.1", port=port)])
    assert "chronyc failed (exit 1)" in silent.detail and "Command '[" not in silent.detail
    assert "fix: `systemctl status chrony`" in silent.detail
    missing = best_reading([lambda: chrony(runner=lambda command: run_command(["no-such-chronyc", *command[1:]]))])
    assert "no-such-chronyc is not installed" in missing.detail
