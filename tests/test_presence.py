"""Who is on site: each worker's newest registration across gates decides (the evacuation headcount)."""

from __future__ import annotations

from datetime import timedelta

from conftest import registration

from sitegate.domain.presence import on_site, recent_registrations
from sitegate.domain.registration import append_registration

RESET = timedelta(hours=16)


def _site(device, clock, gate="gate-a"):
    return on_site(recent_registrations(device.log, gate, clock.now(), timedelta(hours=24)), clock.now(), RESET)


def test_in_is_on_site_and_out_is_gone(device, clock):
    append_registration(device.log, registration(0, "IN"))
    clock.advance(60)
    append_registration(device.log, registration(1, "IN"))
    clock.advance(3600)
    append_registration(device.log, registration(0, "OUT"))
    present = _site(device, clock)
    assert [p.last_name for p in present] == ["Worker1"]
    assert present[0].gate == "gate-a" and present[0].employer == "0403170701"


def test_a_forgotten_out_does_not_keep_a_worker_on_site_for_ever(device, clock):
    append_registration(device.log, registration(0, "IN"))
    clock.advance(15 * 3600)
    assert len(_site(device, clock)) == 1
    clock.advance(2 * 3600)
    assert _site(device, clock) == []


def test_the_newest_registration_across_gates_decides(device, clock):
    """IN at gate A, OUT at gate B: gone; each worker is shown at the gate of their newest registration."""
    first = append_registration(device.log, registration(0, "IN"))
    clock.advance(600)
    out_elsewhere = append_registration(device.log, registration(0, "OUT"))
    in_again = append_registration(device.log, registration(1, "IN"))
    now = clock.now()
    assert on_site([("gate-a", first), ("gate-b", out_elsewhere)], now, RESET) == []
    present = on_site([("gate-b", in_again), ("gate-a", first)], now, RESET)
    assert [(p.last_name, p.gate) for p in present] == [("Worker0", "gate-a"), ("Worker1", "gate-b")]


def test_presence_counts_for_the_brussels_day_only(device, clock):
    append_registration(device.log, registration(0, "PRESENCE"))
    assert [p.last_name for p in _site(device, clock)] == ["Worker0"]
    clock.advance(18 * 3600)  # 07:00 UTC + 18 h = 02:00 the next day in Brussels
    assert _site(device, clock) == []
