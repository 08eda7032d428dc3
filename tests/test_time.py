"""Stored in UTC, shown in Brussels time, right across the March and October clock changes."""

from datetime import UTC, datetime, timedelta

import pytest
from conftest import registration

from sitegate.clock.timefmt import format_utc, parse_utc, show
from sitegate.domain.registration import append_registration


@pytest.mark.parametrize(
    "utc, expected",
    [
        # 29 March 2026: 02:00 CET becomes 03:00 CEST (01:00 UTC)
        (datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC), "2026-03-29 01:59:59 CET"),
        (datetime(2026, 3, 29, 1, 0, 0, tzinfo=UTC), "2026-03-29 03:00:00 CEST"),
        # 25 October 2026: 03:00 CEST becomes 02:00 CET (01:00 UTC); 02:30 happens twice
        (datetime(2026, 10, 25, 0, 30, 0, tzinfo=UTC), "2026-10-25 02:30:00 CEST"),
        (datetime(2026, 10, 25, 1, 30, 0, tzinfo=UTC), "2026-10-25 02:30:00 CET"),
    ],
)
def test_shown_in_brussels_time(utc, expected):
    assert show(utc) == expected
    assert show(format_utc(utc)) == expected


@pytest.mark.parametrize("start", [datetime(2026, 3, 29, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)])
def test_records_across_a_clock_change_stay_ordered_in_utc(device, clock, start):
    clock.wall = start
    stored = []
    for index in range(4):
        stored.append(append_registration(device.log, registration(index)))
        clock.advance(20 * 60)
    utc = [parse_utc(r.wall_utc) for r in stored]
    assert utc == sorted(utc) and all(b - a == timedelta(minutes=20) for a, b in zip(utc, utc[1:], strict=False))
    shown = [show(r.wall_utc) for r in stored]
    assert {s.split()[-1] for s in shown} == {"CET", "CEST"}
