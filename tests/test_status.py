"""`sitegate status` tells a stalled daemon from a running or a stopped one, from the heartbeat's age alone."""

from __future__ import annotations

from datetime import timedelta

from sitegate.clock.timefmt import format_utc
from sitegate.queue import database, delivery
from sitegate.status import STALL_MARGIN_S, collect


def beat(device, at, stopped=None) -> None:
    with database.immediate(device.db):
        delivery.note_heartbeat(device.db, format_utc(at), ["gate"])
        if stopped:
            delivery.note_stopped(device.db, format_utc(stopped))


def test_a_late_heartbeat_is_a_stall_a_clean_stop_is_not(device, clock):
    every = device.config.gate.heartbeat_s
    now = clock.now()
    beat(device, now)
    status, _, critical = collect(device, now + timedelta(seconds=every))
    assert status["daemon_state"] == "running" and status["daemon_running"] and not critical
    # SIGSTOP for one heartbeat and a little more (60 s during a rush said "running" before, exit 0)
    status, _, critical = collect(device, now + timedelta(seconds=every + STALL_MARGIN_S + 1))
    assert status["daemon_state"] == "stalled" and not status["daemon_running"], status
    assert status["heartbeat_age_s"] == round(every + STALL_MARGIN_S + 1)
    assert any("stalled" in text and "no heartbeat for" in text for text in critical), critical
    beat(device, now, stopped=now + timedelta(seconds=1))  # `systemctl stop`: the daemon said it stopped
    status, _, critical = collect(device, now + timedelta(seconds=3 * every))
    assert status["daemon_state"] == "stopped" and any("not running" in text for text in critical), critical
