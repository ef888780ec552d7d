"""UTC times at millisecond precision (what MongoDB stores) and their JSON form."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, in UTC, truncated to milliseconds so stored and returned values agree."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def isoformat(value: datetime) -> str:
    """ISO-8601 with milliseconds and ``Z``: ``2026-11-22T10:15:30.123Z``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
