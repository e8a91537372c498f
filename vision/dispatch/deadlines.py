"""Deadlines counted in working hours on the configured working calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vision.dispatch.config import WEEKDAYS, WorkingTime


def add_working_hours(start: datetime, hours: float, cal: WorkingTime) -> datetime:
    """The moment `hours` working hours after `start` (aware UTC in, aware UTC out).

    Walks the calendar period by period in its local zone; a start outside working
    time begins counting at the next period."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if hours <= 0:
        return start
    tz = cal.zone()
    days = {WEEKDAYS.index(d) for d in cal.weekdays}
    ranges = cal.minute_ranges()
    remaining = timedelta(hours=hours)
    local = start.astimezone(tz)
    day = local.date()
    for _ in range(3660):  # ten years of days: a bound, never reached with sane input
        if day.weekday() in days:
            for a, b in ranges:
                p_start = datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(minutes=a)
                p_end = datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(minutes=b)
                begin = max(p_start, local)
                if begin >= p_end:
                    continue
                span = p_end - begin
                if span >= remaining:
                    return (begin + remaining).astimezone(UTC)
                remaining -= span
        day += timedelta(days=1)
    raise ValueError("deadline lies more than ten years ahead")


def working_hours_between(start: datetime, end: datetime, cal: WorkingTime) -> float:
    """The working hours from `start` to `end` (0 when `end` is not later): what a parked
    case's deadline had left, and how long a department took to handle a case."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if end <= start:
        return 0.0
    tz = cal.zone()
    days = {WEEKDAYS.index(d) for d in cal.weekdays}
    ranges = cal.minute_ranges()
    a, b = start.astimezone(tz), end.astimezone(tz)
    total = timedelta(0)
    day = a.date()
    while day <= b.date():
        if day.weekday() in days:
            midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
            for lo, hi in ranges:
                begin = max(midnight + timedelta(minutes=lo), a)
                stop = min(midnight + timedelta(minutes=hi), b)
                if stop > begin:
                    total += stop - begin
        day += timedelta(days=1)
    return total.total_seconds() / 3600
