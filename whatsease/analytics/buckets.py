"""Time buckets: the edges of hours, days and weeks in a time zone, and the range limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from whatsease.errors import invalid

UNITS = ("hour", "day", "week")
# A year and a day: a whole leap year fits, two years do not.
MAX_RANGE_DAYS = 366
# About what a chart can show and a browser can draw without lag.
MAX_POINTS = 2000


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; 422 naming ``tz`` if there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise invalid("tz", f"{name!r} is not an IANA time zone such as Europe/Paris") from None


def truncate(moment: datetime, unit: str, tz: ZoneInfo) -> datetime:
    """The start (UTC) of the ``unit`` in ``tz`` that holds ``moment``; weeks start on Monday."""
    local = moment.astimezone(tz)
    if unit == "hour":
        start = local.replace(minute=0, second=0, microsecond=0)
    else:
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if unit == "week":
            start -= timedelta(days=start.weekday())
        # Re-attach the zone so a day that starts after a DST change gets its own offset.
        start = start.replace(tzinfo=None).replace(tzinfo=tz)
    return start.astimezone(UTC)


def _next(start: datetime, unit: str, tz: ZoneInfo) -> datetime:
    if unit == "hour":
        return start + timedelta(hours=1)
    local = start.astimezone(tz).replace(tzinfo=None)
    local += timedelta(days=7 if unit == "week" else 1)
    return local.replace(tzinfo=tz).astimezone(UTC)


def check_range(start: datetime, end: datetime) -> None:
    """Raise a 422 unless ``start < end`` and the range is at most `MAX_RANGE_DAYS` long."""
    if end <= start:
        raise invalid("to", "must be later than from")
    if end - start > timedelta(days=MAX_RANGE_DAYS):
        raise invalid("to", f"the range is over the limit of {MAX_RANGE_DAYS} days")


def edges(start: datetime, end: datetime, unit: str, tz: ZoneInfo) -> list[datetime]:
    """The bucket starts covering ``[start, end)``, plus the end of the last bucket.

    The first bucket starts at or before ``start`` (only ``[start, end)`` is
    counted in it). Raises a 422 naming `MAX_POINTS` if there would be more.
    """
    if unit not in UNITS:
        raise invalid("bucket", f"must be one of {', '.join(UNITS)}")
    check_range(start, end)
    result = [truncate(start, unit, tz)]
    while result[-1] < end:
        result.append(_next(result[-1], unit, tz))
        if len(result) > MAX_POINTS + 1:
            raise invalid("bucket", f"a {unit} bucket gives over {MAX_POINTS} points for this "
                                    f"range, the limit; choose a longer bucket or shorter range")
    return result
