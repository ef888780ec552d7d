"""Small statistics: percentiles of durations, and rates that are safe on empty inputs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The ``fraction`` percentile by linear interpolation (numpy's default); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    value = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
    return round(value, 3)


def summary(values: Sequence[float]) -> dict[str, Any]:
    """Count, median and p90 of durations in seconds."""
    return {"count": len(values), "median": percentile(values, 0.5),
            "p90": percentile(values, 0.9)}


def rate(part: int, whole: int) -> float | None:
    """``part / whole`` rounded to four places; None when there is nothing to divide."""
    return round(part / whole, 4) if whole else None
