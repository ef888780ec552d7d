"""The running cluster of one instance: membership, the ring, homing by replay.

Set up only when ``WHATSEASE_CLUSTER`` is not ``off``: then ``services.cluster``
is a `Cluster`; otherwise it stays None and nothing here runs or costs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from whatsease.cluster.membership import (
    Discovery,
    Member,
    Membership,
    membership_from_config,
    watch_members,
)
from whatsease.cluster.ring import Ring
from whatsease.cluster.routing import valid_route
from whatsease.metrics import CLUSTER_MEMBERS, CLUSTER_REPLAYS

if TYPE_CHECKING:
    from whatsease.services import Services

logger = logging.getLogger("whatsease.cluster")


class Cluster:
    """This instance's view of the cluster: who is in it and who owns which routing key."""

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

    def start(self) -> None:
        """Read the member list now and keep polling it (and checking heartbeats)."""
        self._task = asyncio.get_running_loop().create_task(
            watch_members(self.membership, self.discovery, reason=self.reason,
                          interval=self.poll_interval, stop=self._stop),
            name="cluster-membership")

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
        on_change=lambda ring, why: made[0].changed(ring, why) if made else None)
    if built is None:
        return None
    membership, discovery, reason = built
    made.append(Cluster(membership, discovery, reason, config.cluster_poll_interval))
    return made[0]


async def setup(services: Services) -> None:
    cluster = build_cluster(services)
    if cluster is None:
        return
    services.cluster = cluster
    cluster.start()
    logger.info("cluster: %s is member %s (%s)", cluster.reason, cluster.me.id, cluster.me.url)


async def shutdown(services: Services) -> None:
    if services.cluster is not None:
        await services.cluster.stop()
