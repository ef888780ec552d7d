"""In-memory rate limits: failure counting for logins and token buckets for senders."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

# Keys tracked at most; the least recently used are dropped beyond this so an
# attacker cycling keys cannot grow memory without bound.
MAX_KEYS = 100_000


class FailureLimiter:
    """Counts failures per key in a sliding window and says how long to wait."""

    def __init__(self, limit: int, window_secs: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window_secs
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        # Clustering: told of every failure and reset counted here, so that every
        # instance counts it too (``echo=False`` when it came from another instance).
        self.on_change: Callable[[str, bool], None] | None = None

    def retry_after(self, key: str) -> int:
        """Seconds until ``key`` may try again; 0 if it may now."""
        times = self._prune(key)
        if times is None or len(times) < self.limit:
            return 0
        return max(1, int(times[0] + self.window - self.clock()) + 1)

    def fail(self, key: str, *, echo: bool = True) -> None:
        if echo and self.on_change is not None:
            self.on_change(key, True)
        times = self._prune(key)
        if times is None:
            times = self._failures[key] = deque()
        times.append(self.clock())
        self._failures.move_to_end(key)
        while len(self._failures) > MAX_KEYS:
            self._failures.popitem(last=False)

    def reset(self, key: str, *, echo: bool = True) -> None:
        if echo and self.on_change is not None and key in self._failures:
            self.on_change(key, False)
        self._failures.pop(key, None)

    def _prune(self, key: str) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        cutoff = self.clock() - self.window
        while times and times[0] <= cutoff:
            times.popleft()
        return times


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; `take` says whether one was available."""

    __slots__ = ("burst", "clock", "rate", "tokens", "updated")

    def __init__(self, rate: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.clock = clock
        self.updated = clock()

    def take(self, cost: float = 1.0) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False
