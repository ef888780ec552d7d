"""Keep-alive pings for every socket of a process from one timer wheel.

Tornado pings each socket from its own task (``websocket_ping_interval``): at
10,000 sockets that is 10,000 tasks, coroutine frames and sleeping timers
(about 1.5 KiB of memory each) and two wake-ups per socket per interval. Here
the sockets sit in one of `SLOTS` buckets; one timer visits a bucket every
``interval / (VISITS_PER_INTERVAL * SLOTS)`` seconds, so each socket is visited
`VISITS_PER_INTERVAL` times per interval.

A socket counts the visits that found it silent; any frame and any pong set
the count back to zero. The visit that finds it silent for
`PING_AFTER_VISITS` visits in a row pings it, and the one ``timeout`` later
(rounded up to whole visits) closes it if its pong has not come. So a socket
is pinged once it has sent nothing for 1.6 to 1.8 intervals (40-45 s at the
default 25 s) and a dead one is closed within 1.8 intervals plus ``timeout`` of
its last frame (65 s by default).

Why that late, and why it is safe: a ping and its pong cost the server 50-65
us of CPU (writing the ping, waking for the pong, Tornado reading its frame;
bench/README.md, "10,000 sockets, sixth pass"), and the previous rule (a ping
at every visit of the socket's bucket, once per interval, unless a frame had
come since the last one) pinged an idle socket every 25 s and one that sends
twice a minute about once a minute. A proxy in front closes a connection after 60 s without
traffic (Fly.io's, and the common defaults): 45 s of silence at most keeps
under that, as the previous bound (two intervals, 50 s) did, and a dead peer is
still dropped sooner than before (within 65 s of its last frame against 70).

New sockets are dealt to the buckets in turn, not put in the bucket of the
moment they came: a ramp of 10,000 sockets in 10 s otherwise filled a few
buckets with a thousand each, and every visit to one of them sent a thousand
pings and read a thousand pongs in one go (at ~50 us each, a stall of the
event loop of some 50 ms).
"""

from __future__ import annotations

import asyncio
import math
from typing import Protocol

# Buckets of the wheel: the timer fires SLOTS times per visit period (every
# 0.1 s at the default 25 s interval), each time touching 1/SLOTS of the
# sockets: at 10,000 sockets 200, of which those silent for long are pinged.
SLOTS = 50
# Each socket is visited this many times per interval (every 5 s at 25 s).
VISITS_PER_INTERVAL = 5
# The visit that finds a socket silent for this many visits in a row pings it:
# silent for more than 8 and at most 9 visit periods, under two intervals.
PING_AFTER_VISITS = 2 * VISITS_PER_INTERVAL - 1
# A socket's `Pingable.keepalive_state` is the number of visits in a row that
# found it silent: HEARD (0) after any frame or pong.
HEARD = 0


class Pingable(Protocol):
    """What the wheel needs of a socket."""

    keepalive_slot: int
    # Visits in a row that found it silent: the socket sets HEARD on a frame or a pong.
    keepalive_state: int

    def send_ping(self) -> None:
        """Write a ping frame."""

    def ping_timed_out(self) -> None:
        """No pong came back in time: close the socket."""


class Keepalive:
    """Pings the sockets given to `add` when they go silent; drops those that stay silent.

    ``timeout`` (at most ``interval``; 0 or None means ``interval``) is how
    long a pong may take. The timer runs only while a socket is registered.
    """

    def __init__(self, interval: float, timeout: float | None) -> None:
        if interval <= 0:
            raise ValueError(f"the ping interval must be positive, not {interval!r}")
        self.interval = interval
        self.timeout = min(timeout or interval, interval)
        self.visit = interval / VISITS_PER_INTERVAL  # seconds between two visits of a socket
        self.tick = self.visit / SLOTS
        # The visit count at which a pinged socket is closed: the ping's, plus
        # the timeout in whole visits (rounded up).
        self._close_at = PING_AFTER_VISITS + max(1, math.ceil(self.timeout / self.visit - 1e-9))
        self._slots: list[set[Pingable]] = [set() for _ in range(SLOTS)]
        self._current = 0  # the bucket visited last
        self._deal = 0  # the bucket the next new socket goes to
        self._count = 0
        self._timer: asyncio.TimerHandle | None = None
        self._next_at = 0.0

    def __len__(self) -> int:
        return self._count

    def add(self, sock: Pingable) -> None:
        """Register ``sock`` (it was just heard from: its handshake)."""
        sock.keepalive_state = HEARD
        sock.keepalive_slot = self._deal
        self._slots[self._deal].add(sock)
        self._deal = (self._deal + 1) % SLOTS
        self._count += 1
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._next_at = loop.time() + self.tick
            self._timer = loop.call_at(self._next_at, self._on_tick)

    def discard(self, sock: Pingable) -> None:
        """Forget ``sock`` (it closed); safe to call twice."""
        slot = self._slots[sock.keepalive_slot]
        if sock in slot:
            slot.remove(sock)
            self._count -= 1
            if not self._count and self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _on_tick(self) -> None:
        self._timer = None
        self._current = (self._current + 1) % SLOTS
        close_at = self._close_at
        # A copy: closing a socket takes it out of the bucket (`discard`).
        for sock in list(self._slots[self._current]):
            silent = sock.keepalive_state + 1
            sock.keepalive_state = silent
            if silent == PING_AFTER_VISITS:
                sock.send_ping()
            elif silent >= close_at:
                sock.ping_timed_out()  # closes it: `discard` follows
        if self._count:
            loop = asyncio.get_running_loop()
            # Fixed steps from the first tick, not from now: a busy loop does
            # not make the interval creep.
            self._next_at = max(self._next_at + self.tick, loop.time())
            self._timer = loop.call_at(self._next_at, self._on_tick)
