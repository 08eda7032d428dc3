"""Time as stored (UTC, ISO 8601 with microseconds) and as shown to people (Europe/Brussels)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

BRUSSELS = ZoneInfo("Europe/Brussels")


def format_utc(moment: datetime) -> str:
    """The stored form: 2026-11-22T06:20:19.123456Z (always UTC, always microseconds)."""
    # isoformat, not strftime: this runs twice on every badge and is ten times faster.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_utc(text: str) -> datetime:
    """The stored form back to an aware datetime (fromisoformat: ~30 times faster than strptime)."""
    return datetime.fromisoformat(text)


def local(moment: datetime | str) -> datetime:
    if isinstance(moment, str):
        moment = parse_utc(moment)
    return moment.astimezone(BRUSSELS)


def show(moment: datetime | str) -> str:
    """What people read: Brussels time with its abbreviation, so CET and CEST are never confused."""
    return local(moment).strftime("%Y-%m-%d %H:%M:%S %Z")


def day_bounds(day: date) -> tuple[str, str]:
    """A day in Brussels, as the stored UTC times of its first moment and of the next day's."""
    start = datetime.combine(day, time(0), BRUSSELS).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), BRUSSELS).astimezone(UTC)
    return format_utc(start), format_utc(end)
