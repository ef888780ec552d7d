"""Rate limits: failed-login counting in a sliding window, and token buckets."""

from __future__ import annotations

from whatsease.auth import ratelimit
from whatsease.auth.ratelimit import FailureLimiter, TokenBucket


class Clock:
    """A hand-turned monotonic clock: the limiters take the time as a parameter."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_block_after_the_limit_until_the_window_passes() -> None:
    clock = Clock()
    limiter = FailureLimiter(3, 60, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("acct:a") == 0
        limiter.fail("acct:a")
    wait = limiter.retry_after("acct:a")
    assert 1 <= wait <= 61
    assert limiter.retry_after("acct:b") == 0  # keys are independent
    clock.now += 30
    assert 0 < limiter.retry_after("acct:a") <= 31
    clock.now += 30.5
    assert limiter.retry_after("acct:a") == 0  # the oldest failures left the window


def test_the_window_slides_one_failure_at_a_time() -> None:
    clock = Clock()
    limiter = FailureLimiter(2, 10, clock=clock)
    limiter.fail("k")
    clock.now += 6
    limiter.fail("k")
    assert limiter.retry_after("k") > 0
    clock.now += 4.5  # the first failure expires, the second does not
    assert limiter.retry_after("k") == 0
    limiter.fail("k")
    assert limiter.retry_after("k") > 0


def test_reset_forgets_a_key() -> None:
    limiter = FailureLimiter(1, 60, clock=Clock())
    limiter.fail("k")
    assert limiter.retry_after("k") > 0
    limiter.reset("k")
    assert limiter.retry_after("k") == 0
    limiter.reset("never seen")


def test_memory_is_bounded_whatever_keys_arrive() -> None:
    limiter = FailureLimiter(1, 60, clock=Clock())
    for i in range(ratelimit.MAX_KEYS + 50):
        limiter.fail(f"ip:{i}")
    assert len(limiter._failures) == ratelimit.MAX_KEYS
    assert limiter.retry_after("ip:0") == 0  # the least recent were dropped
    assert limiter.retry_after(f"ip:{ratelimit.MAX_KEYS + 49}") > 0


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.5  # one token back at 2 per second
    assert bucket.take() is True
    assert bucket.take() is False
    clock.now += 100  # never more than the burst
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 1
    assert bucket.take(cost=2) is True
    assert bucket.take() is False
