"""The running cluster of one instance: membership, the ring, homing by replay.

Set up only when ``WHATSEASE_CLUSTER`` is not ``off``: then ``services.cluster``
is a `Cluster`; otherwise it stays None and nothing here runs or costs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from whatsease.cluster.membership import (
    Discovery,
    DiscoveryError,
    Member,
    Membership,
    membership_from_config,
    watch_members,
)
from whatsease.cluster.ring import Ring
from whatsease.cluster.router import REASON_SYNC, ClusterRouter
from whatsease.cluster.routing import WS_4012_MOVED, user_route, valid_route
from whatsease.errors import ConfigError
from whatsease.messaging.catchup import CatchUp
from whatsease.metrics import CLUSTER_MEMBERS, CLUSTER_REPLAYS

if TYPE_CHECKING:
    from whatsease.services import Services

logger = logging.getLogger("whatsease.cluster")


class Cluster:
    """This instance's view of the cluster: who is in it and who owns which routing key.

    ``router`` (set by `setup`) is the hub's router and holds the internal links.
    """

    router: ClusterRouter | None = None
    catch_up: CatchUp | None = None

    def __init__(self, membership: Membership, discovery: Discovery, reason: str,
                 poll_interval: float) -> None:
        self.membership = membership
        self.discovery = discovery
        self.reason = reason
        self.poll_interval = poll_interval
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[Ring, str], None]] = []
        CLUSTER_MEMBERS.set(1)

    @property
    def me(self) -> Member:
        return self.membership.me

    @property
    def ring(self) -> Ring:
        return self.membership.ring

    def owner(self, route: str) -> str:
        """The id of the member that owns ``route`` now."""
        return self.membership.ring.owner(route)

    def is_mine(self, route: str) -> bool:
        return self.owner(route) == self.me.id

    def replay_target(self, route: str, *, replayed: bool) -> str | None:
        """The member a socket upgrade for ``route`` must be replayed to, or None to serve it here.

        A request that was already replayed once (``fly-replay-src``) is served
        where it is even if the ring says otherwise (the instances' rings
        disagree for a moment during a change): never a replay loop.
        """
        if replayed or not valid_route(route):
            return None
        owner = self.owner(route)
        if owner == self.me.id:
            return None
        CLUSTER_REPLAYS.inc()
        return owner

    def on_change(self, listener: Callable[[Ring, str], None]) -> None:
        """Call ``listener(ring, why)`` after every new ring generation."""
        self._listeners.append(listener)

    def changed(self, ring: Ring, why: str) -> None:
        """The membership made a new ring generation (``why`` says what changed)."""
        CLUSTER_MEMBERS.set(len(ring.members))
        for listener in list(self._listeners):
            try:
                listener(ring, why)
            except Exception:
                logger.exception("cluster: a ring-change listener failed")

    async def start(self) -> None:
        """Read the member list now (before the first socket arrives) and keep polling it
        (and checking heartbeats)."""
        try:
            listed = await asyncio.wait_for(self.discovery.members(), self.poll_interval + 1)
            self.membership.update(listed, time.monotonic(), self.reason)
        except (DiscoveryError, TimeoutError) as exc:
            logger.warning("cluster: %s: no member list yet: %s", self.reason, exc)
        self._task = asyncio.get_running_loop().create_task(
            watch_members(self.membership, self.discovery, reason=self.reason,
                          interval=self.poll_interval, stop=self._stop),
            name="cluster-membership")

    async def leave(self) -> None:
        """Shutting down: the peers take this instance out of their rings at once, so the
        sockets it is about to close reconnect to their new owners."""
        if self.router is not None:
            await self.router.leave()
            logger.info("cluster: %s told its peers it is leaving", self.me.id)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


def build_cluster(services: Services) -> Cluster | None:
    """The `Cluster` for ``WHATSEASE_CLUSTER``, or None when it is off.

    Raises `ConfigError` when the mode's inputs are missing.
    """
    config = services.config
    made: list[Cluster] = []
    built = membership_from_config(
        config, os.environ, now=time.monotonic(),
        on_change=lambda ring, why: made[0].changed(ring, why) if made else None,
        join_on_heartbeat=True)
    if built is None:
        return None
    membership, discovery, reason = built
    made.append(Cluster(membership, discovery, reason, config.cluster_poll_interval))
    return made[0]


def link_address(cluster: Cluster, public_port: int) -> tuple[str, int]:
    """Where this instance listens for its peers' links: its member URL's host and port.

    A host name (Fly's ``<id>.vm.<app>.internal``) listens on every address.
    Raises `ConfigError` when that port is the public one.
    """
    parts = urlsplit(cluster.me.url)
    port = parts.port or 80
    if port == public_port:
        raise ConfigError(f"the cluster link's port ({port}) must not be WHATSEASE_PORT: "
                          "set WHATSEASE_CLUSTER_PORT (fly) or another port in the member URL")
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        host = ""
    return host, port


def wire(services: Services, router: ClusterRouter) -> None:
    """Put ``router`` behind the hub and let revocation and login limits reach every peer."""
    auth = services.auth
    services.hub.router = router
    router.on_session_closed = auth.forget_session
    router.on_user_closed = auth.forget_user
    for name, limiter in (("account", auth.account_failures), ("ip", auth.ip_failures)):
        router.limiters[name] = limiter
        limiter.on_change = (lambda key, failed, name=name:
                             router.limiter_changed(name, key, failed))


def follow_lost_members(cluster: Cluster, services: Services,
                        router: ClusterRouter | None = None) -> None:
    """When members leave the ring, users here whom they may have owed a message sync
    (messaging/catchup.py); ``router`` notes which message frames did arrive."""
    hub = services.hub
    catch_up = CatchUp(services.store.messages, hub.users,
                       lambda user: hub.close_user(user, WS_4012_MOVED, REASON_SYNC,
                                                   everywhere=False))
    if router is not None:
        router.arrivals = catch_up.arrivals
    cluster.catch_up = catch_up
    last = [cluster.ring]

    def ring_changed(ring: Ring, why: str) -> None:
        previous, last[0] = last[0], ring
        lost = previous.members - ring.members
        if lost:
            # A user homed on a lost member reconnected here and synced: not owed.
            catch_up.members_lost(
                lambda sender: previous.owner(user_route(sender)) in lost,
                lambda user: previous.owner(user_route(user)) not in lost)

    cluster.on_change(ring_changed)


async def setup(services: Services) -> None:
    cluster = build_cluster(services)
    if cluster is None:
        return
    if not services.config.cluster_secret:
        raise ConfigError(f"WHATSEASE_CLUSTER={services.config.cluster} needs "
                          "WHATSEASE_CLUSTER_SECRET (the same on every instance)")
    host, port = link_address(cluster, services.config.port)
    router = ClusterRouter(cluster, services.hub, services.config.cluster_secret)
    await router.start(host, port)
    cluster.router = router
    wire(services, router)
    services.messaging.share_database()  # other instances write the same messages
    follow_lost_members(cluster, services, router)
    services.cluster = cluster
    await cluster.start()
    logger.info("cluster: %s; this is member %s, link on port %d", cluster.reason,
                cluster.me.id, port)


async def shutdown(services: Services) -> None:
    cluster = services.cluster
    if cluster is not None:
        await cluster.stop()
        if cluster.catch_up is not None:
            await cluster.catch_up.stop()
        if cluster.router is not None:
            services.hub.router = None
            await cluster.router.stop()
