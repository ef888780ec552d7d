"""Quarter hours grouped for a report: whole ones by day, and runs of consecutive ones."""

from __future__ import annotations

import functools
from datetime import datetime

from whatsease.analytics import slots
from whatsease.storage.analytics import SLOT


@functools.lru_cache(maxsize=64)
def whole_by_day(start: datetime, split: datetime, end: datetime, closed_before: datetime
                  ) -> dict[str, list[tuple[datetime, str]]]:
    """`slots.whole_slots` by UTC day, in order, with their names: the sources of one
    report mostly ask for the same (a year is 70,000 quarter hours). Not to be changed."""
    by_day: dict[str, list[tuple[datetime, str]]] = {}
    for slot in slots.whole_slots(start, split, end, closed_before):
        day, slot_name = slots.day_and_name(slot)
        by_day.setdefault(day, []).append((slot, slot_name))
    return by_day


def exact_runs(ordered: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Ordered quarter hours as ranges of consecutive ones."""
    result: list[tuple[datetime, datetime]] = []
    for slot in ordered:
        if result and result[-1][1] == slot:
            result[-1] = (result[-1][0], slot + SLOT)
        else:
            result.append((slot, slot + SLOT))
    return result


def runs(todo: list[datetime]) -> list[tuple[datetime, datetime]]:
    """`exact_runs`, or one covering range past `slots.MAX_RANGES` (what is not wanted
    in it is computed and dropped)."""
    result = exact_runs(todo)
    if len(result) > slots.MAX_RANGES:
        return [(result[0][0], result[-1][1])]
    return result
