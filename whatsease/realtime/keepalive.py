"""Keep-alive pings for every socket of a process from one timer wheel.

Tornado pings each socket from its own task (``websocket_ping_interval``): at
10,000 sockets that is 10,000 tasks, coroutine frames and sleeping timers
(about 1.5 KiB of memory each) and two wake-ups per socket per interval. Here
the sockets sit in one of `SLOTS` buckets; one timer visits a bucket every
``interval / SLOTS`` seconds, pings the sockets in it, and closes those in the
bucket pinged ``timeout`` earlier whose pong has not come back. Each socket is
thus pinged once per interval and closed within ``timeout`` (plus one tick)
of a ping it never answered, as with Tornado's own pings.

New sockets are dealt to the buckets in turn, not put in the bucket of the
moment they came: a ramp of 10,000 sockets in 10 s otherwise filled ten
buckets of twenty-five with a thousand each, and every visit to one of them
sent a thousand pings and read a thousand pongs in one go (a stall of the
event loop of tens of milliseconds, once a second for ten seconds of every
interval). A socket's first ping thus comes within one interval of joining.

A socket that sent a frame since its bucket's last visit is not pinged on
this one: the frame shows that the peer is there, and the traffic keeps idle
proxies from dropping the connection as a ping's would. A busy client is
never pinged (at 1,000 sockets each sending every few seconds: no pings at
all; at 10,000 sending once a minute, about a third fewer), and a socket that
goes silent is pinged at the next visit but one, so it is closed within two
intervals plus ``timeout`` of its last frame instead of one.
"""

from __future__ import annotations

import asyncio
import math
from typing import Protocol

# Buckets of the wheel: the timer fires SLOTS times per ping interval (every
# 0.25 s at the default 25 s), each time touching 1/SLOTS of the sockets: at
# 10,000 sockets a hundred pings and pongs per visit (a few milliseconds of the
# event loop) rather than four hundred; the timer's own cost is negligible.
SLOTS = 100
# A socket's `Pingable.keepalive_state`: nothing heard since its bucket's last
# visit (ping it next time), a ping out and not answered yet, or a frame came
# since the last visit (no ping needed this time).
QUIET, PINGED, HEARD = 0, 1, 2


class Pingable(Protocol):
    """What the wheel needs of a socket."""

    keepalive_slot: int
    # QUIET, PINGED or HEARD: the socket sets QUIET on a pong, HEARD on a frame.
    keepalive_state: int

    def send_ping(self) -> None:
        """Write a ping frame."""

    def ping_timed_out(self) -> None:
        """No pong came back in time: close the socket."""


class Keepalive:
    """Pings the sockets given to `add` every ``interval`` seconds; drops those that go silent.

    ``timeout`` (at most ``interval``; 0 or None means ``interval``) is how
    long a pong may take. The timer runs only while a socket is registered.
    """

    def __init__(self, interval: float, timeout: float | None) -> None:
        if interval <= 0:
            raise ValueError(f"the ping interval must be positive, not {interval!r}")
        self.interval = interval
        self.timeout = min(timeout or interval, interval)
        self.tick = interval / SLOTS
        # How many ticks after its ping a bucket's pongs are checked.
        self._lag = min(SLOTS, max(1, math.ceil(self.timeout / self.tick - 1e-9)))
        self._slots: list[set[Pingable]] = [set() for _ in range(SLOTS)]
        self._current = 0  # the bucket pinged last
        self._deal = 0  # the bucket the next new socket goes to
        self._count = 0
        self._timer: asyncio.TimerHandle | None = None
        self._next_at = 0.0

    def __len__(self) -> int:
        return self._count

    def add(self, sock: Pingable) -> None:
        """Register ``sock``: its first ping goes out within one interval from now."""
        sock.keepalive_state = QUIET
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
        # Pongs first: with timeout == interval this is the bucket pinged
        # now, and its check must see the previous ping, not the new one.
        for sock in [s for s in self._slots[(self._current - self._lag) % SLOTS]
                     if s.keepalive_state == PINGED]:
            sock.ping_timed_out()  # closes it: `discard` follows
        for sock in list(self._slots[self._current]):
            if sock.keepalive_state == HEARD:
                sock.keepalive_state = QUIET  # heard from lately: no ping this time
            else:
                sock.keepalive_state = PINGED
                sock.send_ping()
        if self._count:
            loop = asyncio.get_running_loop()
            # Fixed steps from the first tick, not from now: a busy loop does
            # not make the interval creep.
            self._next_at = max(self._next_at + self.tick, loop.time())
            self._timer = loop.call_at(self._next_at, self._on_tick)
