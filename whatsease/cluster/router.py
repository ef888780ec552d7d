"""The router behind the hub's `send`: frames for users homed elsewhere cross the internal link.

Every hub key has a home: a user (an email) is homed by `user_route`, a
support key (``support-console:...``, ``support-conversation:...``) by its
org's `org_route`, learned when one of its sockets joins anywhere. The
owner of the route holds the key's sockets; a socket that landed elsewhere
(a client without a routing key, or a moment of ring disagreement) is
*relayed*: its instance registers it with the owner, which sends the key's
frames back to it.

Records on the link (`whatsease.cluster.link.Record`, ``kind key aux data``):

====  ===========================  =====================================================
kind  key / aux / data             the receiver
====  ===========================  =====================================================
F     user / exclude / frame       is the owner: delivers here and to the relays
D     user / exclude / frame       delivers to its own sockets only (relay, broadcast)
O, X  user                         notes the user online / offline on the sender
Z     -                            forgets what the sender said was online (it restarts)
R, r  user / route                 adds / removes the sender as a relay of the user
K     session / reason / code      closes that session's sockets, forgets its cache
k     user / reason / code         closes the user's sockets, forgets its cached profile
S     user or * / reason           closes those sockets with 4012: reconnect and sync
L, l  key / limiter                counts a failed login / resets (cluster-wide limits)
C     - / - / socket count         notes how many sockets the sender holds (operations)
G     -                            the sender is shutting down: out of the ring at once
====  ===========================  =====================================================

``exclude`` names one socket (``member:id``) that must not get the frame: the
sender's own socket (multi-tab echo excludes it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from prometheus_client import Counter

from whatsease.cluster.link import LinkServer, PeerLink, Record
from whatsease.cluster.ring import Ring
from whatsease.cluster.routing import REASON_MOVED, WS_4012_MOVED, user_route
from whatsease.delivery.hub import Connection, Hub
from whatsease.messaging.catchup import Arrivals
from whatsease.metrics import (
    CLUSTER_FORWARDS_IN,
    CLUSTER_FORWARDS_OUT,
    CLUSTER_MOVED,
)

if TYPE_CHECKING:
    from whatsease.cluster.service import Cluster

logger = logging.getLogger("whatsease.cluster")

SUPPORT_PREFIX = "support-"
# Support keys whose org route we remember (least recently used dropped).
MAX_LEARNED_ROUTES = 100_000
# How long a leaving instance waits for its goodbye to reach its peers.
LEAVE_SECS = 1.0
REASON_SYNC = "frames may have been missed: reconnect now"


class Limiter(Protocol):
    def fail(self, key: str, *, echo: bool = True) -> None: ...

    def reset(self, key: str, *, echo: bool = True) -> None: ...


def _token(me: str, conn: Connection) -> str:
    return f"{me}:{id(conn):x}"


class ClusterRouter:
    """The hub's `Router` for one instance; also handles the records peers send."""

    def __init__(self, cluster: Cluster, hub: Hub, secret: str) -> None:
        self.cluster = cluster
        self.me = cluster.me.id
        self.hub = hub
        self.secret = secret
        self.links: dict[str, PeerLink] = {}
        # Per peer: the keys that have sockets there (what it told us).
        self.remote_online: dict[str, set[str]] = {}
        # Owner side: key -> (its route, the peers holding relayed sockets of it).
        self.relays: dict[str, tuple[str, set[str]]] = {}
        # Relay side: key -> the owner we registered our sockets of it with.
        self.relayed: dict[str, str] = {}
        self.routes: OrderedDict[str, str] = OrderedDict()
        self.limiters: dict[str, Limiter] = {}
        self.on_session_closed: Callable[[str], None] | None = None
        self.on_user_closed: Callable[[str], None] | None = None
        self._out: dict[str, Counter] = {}
        # Per peer: how many sockets it said it holds (GET /api/v1/cluster).
        self.remote_sockets: dict[str, int] = {}
        self._status_task: asyncio.Task[None] | None = None
        # Message frames that arrived over the link (the catch-up after a lost
        # member asks only about the others; messaging/catchup.py).
        self.arrivals: Arrivals | None = None
        self.server = LinkServer(self.me, secret, self.receive, self._seen, self._hello)
        cluster.on_change(self.ring_changed)

    # ---- routes -------------------------------------------------------------------------------

    def route_of(self, key: str) -> str | None:
        """The routing key that homes hub key ``key``; None for a support key not seen yet."""
        if key.startswith(SUPPORT_PREFIX):
            route = self.routes.get(key)
            if route is not None:
                self.routes.move_to_end(key)
            return route
        return user_route(key)

    def _learn(self, key: str, route: str) -> None:
        if not route or not key.startswith(SUPPORT_PREFIX):
            return
        self.routes[key] = route
        self.routes.move_to_end(key)
        while len(self.routes) > MAX_LEARNED_ROUTES:
            self.routes.popitem(last=False)

    # ---- the hub's Router ---------------------------------------------------------------------

    def forward(self, user: str, data: bytes, exclude: Connection | None) -> bool:
        route = self.route_of(user)
        excluded = _token(self.me, exclude) if exclude is not None else ""
        if route is None:
            # Nobody here knows its home: every instance delivers to its own sockets.
            for peer in list(self.links):
                self._put(peer, Record("D", user, excluded, data))
            return False
        owner = self.cluster.owner(route)
        if owner != self.me:
            self._put(owner, Record("F", user, excluded, data))
            return True
        self._relay(user, excluded, data)
        return False

    def _relay(self, user: str, excluded: str, data: bytes) -> None:
        relay = self.relays.get(user)
        if relay is not None:
            for peer in relay[1]:
                self._put(peer, Record("D", user, excluded, data))

    def _put(self, peer: str, record: Record) -> None:
        link = self.links.get(peer)
        if link is None:
            return
        link.put(record)
        if record.kind in ("D", "F"):
            counter = self._out.get(peer)
            if counter is None:
                counter = self._out[peer] = CLUSTER_FORWARDS_OUT.labels(peer)
            counter.inc()

    def _broadcast(self, record: Record) -> None:
        for peer in list(self.links):
            self._put(peer, record)

    def joined(self, conn: Connection, first: bool) -> None:
        home = conn.home_route
        self._learn(conn.user, home)
        if first:
            self._broadcast(Record("O", conn.user))
            if home:
                owner = self.cluster.owner(home)
                if owner != self.me:
                    self.relayed[conn.user] = owner
                    self._put(owner, Record("R", conn.user, home))

    def left(self, conn: Connection, last: bool) -> None:
        if last:
            self._broadcast(Record("X", conn.user))
            owner = self.relayed.pop(conn.user, None)
            if owner is not None:
                self._put(owner, Record("r", conn.user))

    def online_elsewhere(self, user: str) -> bool:
        return any(user in keys for keys in self.remote_online.values())

    def closing(self, kind: str, key: str, code: int, reason: str) -> None:
        self._broadcast(Record("K" if kind == "session" else "k", key, reason[:120],
                               str(code).encode()))

    def limiter_changed(self, name: str, key: str, failed: bool) -> None:
        """A login-failure limiter counted a failure (or reset) here: tell every peer."""
        self._broadcast(Record("L" if failed else "l", key, name))

    # ---- records from peers -------------------------------------------------------------------

    def _seen(self, peer: str) -> None:
        self.cluster.membership.seen(peer, time.monotonic())

    def _hello(self, peer: str) -> None:
        self.cluster.membership.reconnected(peer)

    def receive(self, peer: str, records: list[Record]) -> None:
        counter = CLUSTER_FORWARDS_IN.labels(peer)
        for record in records:
            try:
                self._apply(peer, record, counter)
            except Exception:
                logger.exception("cluster: a %s record from %s failed", record.kind, peer)

    def _apply(self, peer: str, record: Record, counter: Counter) -> None:
        kind, key = record.kind, record.key
        if kind in ("F", "D"):
            counter.inc()
            if self.arrivals is not None:
                self.arrivals.note(record.data)
            self.deliver_here(key, record.data, record.aux)
            if kind == "F":
                self._relay(key, record.aux, record.data)
        elif kind == "O":
            self.remote_online.setdefault(peer, set()).add(key)
        elif kind == "X":
            self.remote_online.get(peer, set()).discard(key)
        elif kind == "Z":
            self.remote_online[peer] = set()
            for user, (_, peers) in list(self.relays.items()):
                peers.discard(peer)
                if not peers:
                    del self.relays[user]
        elif kind == "R":
            self._learn(key, record.aux)
            self.relays.setdefault(key, (record.aux, set()))[1].add(peer)
        elif kind == "r":
            relay = self.relays.get(key)
            if relay is not None:
                relay[1].discard(peer)
                if not relay[1]:
                    del self.relays[key]
        elif kind in ("K", "k"):
            code = int(record.data or b"4001")
            if kind == "K":
                if self.on_session_closed is not None:
                    self.on_session_closed(key)
                self.hub.close_session(key, code, record.aux, everywhere=False)
            else:
                if self.on_user_closed is not None:
                    self.on_user_closed(key)
                self.hub.close_user(key, code, record.aux, everywhere=False)
        elif kind == "S":
            self.close_for_sync([key] if key != "*" else self.hub.users(), record.aux)
        elif kind == "G":
            self.cluster.membership.leaving(peer)
        elif kind == "C":
            self.remote_sockets[peer] = int(record.data or b"0")
        elif kind in ("L", "l"):
            limiter = self.limiters.get(record.aux)
            if limiter is not None:
                if kind == "L":
                    limiter.fail(key, echo=False)
                else:
                    limiter.reset(key, echo=False)

    def deliver_here(self, key: str, data: bytes, excluded: str = "") -> int:
        """Queue ``data`` on this instance's sockets of ``key`` (never forwarded again)."""
        sent = 0
        for conn in self.hub.connections(key):
            if not excluded or _token(self.me, conn) != excluded:
                conn.send_frame(data)
                sent += 1
        return sent

    def close_for_sync(self, keys: list[str], reason: str = REASON_SYNC) -> int:
        """Close these keys' sockets with 4012: their clients reconnect at once and sync."""
        closed = 0
        for key in keys:
            for conn in self.hub.connections(key):
                conn.close(WS_4012_MOVED, (reason or REASON_SYNC)[:120])
                closed += 1
        CLUSTER_MOVED.inc(closed)
        return closed

    # ---- links and ring changes ---------------------------------------------------------------

    def _link_up(self, link: PeerLink) -> None:
        # The peer may have restarted: it learns again what is online here and what we
        # relay; older such records still queued are stale.
        link.drop_state_records()
        link.put(Record("Z", ""))
        for user in self.hub.users():
            link.put(Record("O", user))
        for user, owner in self.relayed.items():
            if owner == link.peer:
                route = self.route_of(user) or ""
                link.put(Record("R", user, route))

    def _link_lost(self, link: PeerLink, keys: set[str]) -> None:
        for key in ["*"] if "*" in keys else sorted(keys):
            link.put(Record("S", key, REASON_SYNC))

    def _link_refused(self, link: PeerLink) -> None:
        self.cluster.membership.unreachable(link.peer)

    def sync_links(self) -> None:
        """Dial every listed member we have no link to; drop links to members no longer listed."""
        listed = self.cluster.membership.listed
        for peer, member in listed.items():
            if peer != self.me and peer not in self.links:
                link = PeerLink(self.me, peer, member.url, self.secret,
                                heartbeat_every=self.cluster.membership.heartbeat_timeout / 4,
                                connected=self._link_up, lost=self._link_lost,
                                refused=self._link_refused, alive=self._seen)
                self.links[peer] = link
                link.start()
        for peer in [p for p in self.links if p not in listed]:
            link = self.links.pop(peer)
            self._rehome(link)
            link.cancel()

    def ring_changed(self, ring: Ring, why: str) -> None:
        self.sync_links()
        for peer in [p for p in self.remote_online if p not in ring.members]:
            del self.remote_online[peer]
            self.remote_sockets.pop(peer, None)
        for peer, link in self.links.items():
            if peer not in ring.members:
                self._rehome(link)
        # Relays we hold for keys that are no longer ours: their instances re-register.
        for user, (route, peers) in list(self.relays.items()):
            owner = ring.owner(route)
            if owner != self.me:
                del self.relays[user]
            else:
                peers.intersection_update(ring.members)
        moved = 0
        for user in self.hub.users():
            for conn in self.hub.connections(user):
                home = conn.home_route
                if not home:
                    continue
                owner = ring.owner(home)
                if owner == self.me:
                    # Ours now: the old owner drops our registration itself.
                    self.relayed.pop(user, None)
                    continue
                if getattr(conn, "route", ""):
                    conn.close(WS_4012_MOVED, REASON_MOVED)
                    moved += 1
                elif self.relayed.get(user) != owner:
                    self.relayed[user] = owner
                    self._put(owner, Record("R", user, home))
        CLUSTER_MOVED.inc(moved)
        logger.info("cluster: ring generation %d (%s): %d sockets moved", ring.generation, why,
                    moved)

    def _rehome(self, link: PeerLink) -> None:
        """``link``'s peer left the ring: what waited for it goes to the keys' new homes."""
        queued, missed = link.take_back()
        for record in queued:
            if record.kind == "F":
                self.hub.send(record.key, record.data)
                missed.discard(record.key)
        syncs: dict[str, list[str]] = {}
        for key in missed - {"*"}:
            route = self.route_of(key)
            if route is None:
                continue
            syncs.setdefault(self.cluster.owner(route), []).append(key)
        for owner, keys in syncs.items():
            if owner == self.me:
                self.close_for_sync(keys)
            else:
                for key in keys:
                    self._put(owner, Record("S", key, REASON_SYNC))

    async def start(self, host: str, port: int) -> None:
        await self.server.start(host, port)
        self.sync_links()
        self._status_task = asyncio.get_running_loop().create_task(
            self._tell_status(), name="cluster-status")

    async def _tell_status(self) -> None:
        while True:
            self._broadcast(Record("C", "", "", str(self.hub.socket_count).encode()))
            await asyncio.sleep(self.cluster.membership.heartbeat_timeout / 4)

    async def leave(self) -> None:
        """Tell every peer this instance is going (so they re-home its users now) and wait,
        a moment at most, for that to be sent."""
        self._broadcast(Record("G", ""))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LEAVE_SECS):
                await asyncio.gather(*(link.flush() for link in self.links.values()))

    def status(self) -> dict[str, dict[str, object]]:
        """Per peer: its link, the sockets and users it last said it holds."""
        return {peer: {"link": "up" if link.up else "down", "queued": len(link.queue),
                       "sockets": self.remote_sockets.get(peer, 0),
                       "users": len(self.remote_online.get(peer, ()))}
                for peer, link in self.links.items()}

    async def stop(self) -> None:
        if self._status_task is not None:
            self._status_task.cancel()
            await asyncio.gather(self._status_task, return_exceptions=True)
        for link in list(self.links.values()):
            await link.stop()
        self.links.clear()
        await self.server.stop()
