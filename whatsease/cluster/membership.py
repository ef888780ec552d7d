"""Cluster membership: which instances are in the ring, from a member list and heartbeats.

Two inputs make the ring. A *discovery* lists the instances that should be
there: Fly's private DNS (TXT ``vms.<app>.internal``, polled every few
seconds) or a fixed list (``WHATSEASE_CLUSTER=static``). *Heartbeats* say
which of them answer: a member not seen for ``heartbeat_timeout`` seconds is
taken out of the ring, and put back when it is seen again. `Membership` keeps
both and hands out a new `Ring` generation, with a log line saying what
changed and why, whenever the set of live members changes.

`Membership` has no clock and no I/O: callers pass the time (`update`,
`seen`, `check`), so it is tested without waiting. `watch_members` is the
polling loop around it; `whatsease.cluster.service` runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from whatsease.cluster.ring import Ring
from whatsease.config import Config
from whatsease.errors import ConfigError

logger = logging.getLogger("whatsease.cluster")

# Bounds on what DNS may hand us: more members than this is a bad answer, not a cluster.
MAX_MEMBERS = 256
# The internal link's port on Fly when WHATSEASE_CLUSTER_PORT is 0.
DEFAULT_LINK_PORT = 7946
# Fly's DNS answers from the machine itself (fdaa::3): a slow answer is a failed poll.
DNS_TIMEOUT_SECS = 2.0


@dataclass(frozen=True)
class Member:
    """One instance: its id (the ring's member id, Fly's machine id) and where peers reach it."""

    id: str
    url: str
    region: str = ""


class DiscoveryError(Exception):
    """The member list could not be read this time; the last one known stays in force."""


class Discovery(Protocol):
    """Lists the instances that should be in the cluster."""

    async def members(self) -> list[Member]:
        """The members now; raises `DiscoveryError` when the source cannot say."""
        ...


class StaticDiscovery:
    """A fixed member list (``WHATSEASE_CLUSTER=static``): self-hosting and local clusters."""

    def __init__(self, members: Iterable[Member]) -> None:
        self._members = list(members)

    async def members(self) -> list[Member]:
        return list(self._members)


class FileDiscovery:
    """A member list in a file (``WHATSEASE_CLUSTER_MEMBERS_FILE``), read at every poll.

    The file holds ``id=url`` entries, one a line or separated by commas; a
    local cluster rewrites it (atomically) as members join and leave.
    """

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    async def members(self) -> list[Member]:
        try:
            text = await asyncio.to_thread(self.path.read_text, encoding="utf-8")
        except OSError as exc:
            raise DiscoveryError(f"{self.path}: {exc.strerror or exc}") from None
        members: dict[str, Member] = {}
        for entry in text.replace("\n", ",").split(","):
            member, sep, url = (part.strip() for part in entry.partition("="))
            if not entry.strip():
                continue
            if not sep or not _plain_id(member) or not _URL.fullmatch(url):
                raise DiscoveryError(f"{self.path}: bad entry {entry.strip()[:80]!r}")
            members[member] = Member(member, url.rstrip("/"))
            if len(members) > MAX_MEMBERS:
                raise DiscoveryError(f"{self.path} lists more than {MAX_MEMBERS} members")
        return list(members.values())


_URL = re.compile(r"https?://[^/\s]+/?")


TxtResolver = Callable[[str], Awaitable[list[str]]]
"""Looks up a name's TXT records: one string per record, its character-strings joined."""


def dns_txt_resolver(
    nameserver: str | None = None, port: int = 53, timeout: float = DNS_TIMEOUT_SECS
) -> TxtResolver:
    """A `TxtResolver` over dnspython: the system's resolver, or ``nameserver:port`` if given.

    On Fly the system resolver is Fly's (``fdaa::3``), which answers ``.internal`` names.
    The returned function raises `DiscoveryError` when the lookup fails or times out.
    """
    # Imported here: only a clustered server looks members up (~2.5 MiB of modules).
    import dns.asyncresolver
    import dns.exception

    resolver = dns.asyncresolver.Resolver(configure=nameserver is None)
    if nameserver is not None:
        resolver.nameservers = [nameserver]
        resolver.port = port
    resolver.lifetime = timeout

    async def resolve(name: str) -> list[str]:
        try:
            answer = await resolver.resolve(name, "TXT")
        except (dns.exception.DNSException, OSError) as exc:
            raise DiscoveryError(f"TXT {name}: {exc.__class__.__name__}: {exc}") from None
        # A TXT record longer than 255 bytes arrives as several character-strings.
        return [
            b"".join(record.strings).decode("utf-8", "replace")
            for record in answer
        ]

    return resolve


class FlyDiscovery:
    """Members from Fly's private DNS: TXT ``vms.<app>.internal``.

    Fly documents the answer as a comma-separated list of ``<machine_id> <region>``
    entries (started machines only); a peer is reached at
    ``<machine_id>.vm.<app>.internal`` on ``port`` over the private network.
    """

    def __init__(self, app: str, port: int, resolver: TxtResolver | None = None) -> None:
        self.app = app
        self.port = port
        self.name = f"vms.{app}.internal"
        self._resolve = resolver or dns_txt_resolver()

    async def members(self) -> list[Member]:
        found = parse_fly_vms(",".join(await self._resolve(self.name)), self.app, self.port)
        if not found:
            # Fly lists every started machine, this one included: an empty answer
            # is a DNS hiccup, not a cluster of nobody.
            raise DiscoveryError(f"TXT {self.name} listed no machines")
        return found


def fly_member(machine_id: str, region: str, app: str, port: int) -> Member:
    """The `Member` for one Fly machine: reached at ``<machine_id>.vm.<app>.internal:<port>``."""
    return Member(machine_id, f"http://{machine_id}.vm.{app}.internal:{port}", region)


def parse_fly_vms(text: str, app: str, port: int) -> list[Member]:
    """Parse Fly's ``vms.<app>.internal`` TXT text; entries not ``<id> <region>`` are skipped.

    Raises `DiscoveryError` when the answer lists more than `MAX_MEMBERS` machines.
    """
    members: dict[str, Member] = {}
    for entry in text.split(","):
        parts = entry.split()
        if not parts:
            continue
        machine_id, region = parts[0], (parts[1] if len(parts) > 1 else "")
        if len(parts) > 2 or not _plain_id(machine_id):
            logger.warning(
                "cluster: skipped a bad entry in TXT vms.%s.internal: %r", app, entry[:80]
            )
            continue
        members[machine_id] = fly_member(machine_id, region, app, port)
        if len(members) > MAX_MEMBERS:
            raise DiscoveryError(f"TXT vms.{app}.internal lists more than {MAX_MEMBERS} machines")
    return list(members.values())


def _plain_id(member_id: str) -> bool:
    try:
        Ring([member_id], vnodes=1)
    except ValueError:
        return False
    return True


class Membership:
    """The live members of the cluster and the current `Ring` generation.

    ``me`` is always in the ring. Other members enter when a discovery lists
    them (counted as seen then, so a new member has ``heartbeat_timeout`` to
    send its first heartbeat), leave when it stops listing them, drop out
    after ``heartbeat_timeout`` seconds without a heartbeat and come back on
    the next one. Each change of the live set makes a new ring generation,
    logs one line saying what changed and why, and calls ``on_change``.

    Every time passed in (``now``, ``when``) is in seconds on one monotonic
    clock (`time.monotonic` in the server): wall-clock jumps must not take
    members out.
    """

    def __init__(
        self,
        me: Member,
        *,
        heartbeat_timeout: float,
        now: float,
        on_change: Callable[[Ring, str], None] | None = None,
        join_on_heartbeat: bool = False,
    ) -> None:
        self.me = me
        # With join_on_heartbeat, a member listed after the first list enters the ring on
        # its first heartbeat, not when listed: a machine that is still starting is not
        # handed users it cannot serve yet. The first list is trusted as it is, so a
        # cluster forms at once.
        self.join_on_heartbeat = join_on_heartbeat
        self._updates = 0
        self._pending: set[str] = set()
        self.heartbeat_timeout = heartbeat_timeout
        self._on_change = on_change
        self._listed: dict[str, Member] = {me.id: me}
        self._last_seen: dict[str, float] = {me.id: now}
        self._down: set[str] = set()
        # Members that said goodbye (draining): their last heartbeats do not count until
        # they connect anew (a restarted process).
        self._left: set[str] = set()
        self.ring = Ring([me.id])

    @property
    def members(self) -> dict[str, Member]:
        """The members in the ring now (live ones), by id."""
        return {mid: m for mid, m in self._listed.items() if mid not in self._down}

    @property
    def listed(self) -> dict[str, Member]:
        """Every member a discovery lists (live or down), by id."""
        return dict(self._listed)

    @property
    def down(self) -> frozenset[str]:
        """Listed members taken out for want of a heartbeat."""
        return frozenset(self._down)

    def update(self, listed: Iterable[Member], now: float, reason: str) -> Ring | None:
        """Take a discovery's list (``reason``: where from); return the new ring if it changed."""
        members = {m.id: m for m in listed}
        members[self.me.id] = self.me
        if len(members) > MAX_MEMBERS + 1:
            raise DiscoveryError(f"{reason} lists more than {MAX_MEMBERS} members")
        added = sorted(set(members) - set(self._listed))
        removed = sorted(set(self._listed) - set(members))
        for mid in added:
            self._last_seen[mid] = now
            if self.join_on_heartbeat and self._updates and mid != self.me.id:
                self._down.add(mid)
                self._pending.add(mid)
                logger.info("cluster: %s listed by %s; it joins on its first heartbeat",
                            mid, reason)
        self._updates += 1
        for mid in removed:
            self._last_seen.pop(mid, None)
            self._down.discard(mid)
            self._pending.discard(mid)
        self._listed = members
        changes = [f"+{mid} (listed by {reason})" for mid in added]
        changes += [f"-{mid} (no longer listed by {reason})" for mid in removed]
        return self._next(changes)

    def seen(self, member_id: str, when: float) -> Ring | None:
        """Record a heartbeat from ``member_id`` at ``when``; return the new ring if it came back.

        A heartbeat from an instance no discovery lists is ignored: heartbeats
        prove a listed member alive, they do not make one.
        """
        if member_id not in self._listed or member_id in self._left:
            return None
        silent = when - self._last_seen.get(member_id, when)
        self._last_seen[member_id] = max(when, self._last_seen.get(member_id, when))
        if member_id not in self._down:
            return None
        self._down.discard(member_id)
        if member_id in self._pending:
            self._pending.discard(member_id)
            return self._next([f"+{member_id} (first heartbeat)"])
        return self._next([f"+{member_id} (heartbeat again after {silent:.1f} s)"])

    def leaving(self, member_id: str) -> Ring | None:
        """``member_id`` is shutting down: take it out now; return the new ring if it changed."""
        if member_id == self.me.id or member_id not in self._listed:
            return None
        self._left.add(member_id)
        self._down.add(member_id)
        return self._next([f"-{member_id} (leaving)"])

    def unreachable(self, member_id: str) -> Ring | None:
        """``member_id`` refused a connection on its cluster port (its process is gone): take
        it out now rather than after ``heartbeat_timeout``; its next heartbeat puts it back.
        Returns the new ring if it changed."""
        if member_id == self.me.id or member_id not in self._listed or member_id in self._down:
            return None
        self._down.add(member_id)
        return self._next([f"-{member_id} (refused the link)"])

    def reconnected(self, member_id: str) -> None:
        """``member_id`` opened a new link (a new process): its heartbeats count again."""
        self._left.discard(member_id)

    def check(self, now: float) -> Ring | None:
        """Take out members silent for over ``heartbeat_timeout``; return the new ring if any."""
        changes = []
        for mid in sorted(self._listed):
            if mid == self.me.id or mid in self._down:
                continue
            silent = now - self._last_seen[mid]
            if silent > self.heartbeat_timeout:
                self._down.add(mid)
                changes.append(f"-{mid} (no heartbeat for {silent:.1f} s)")
        return self._next(changes)

    def _next(self, changes: list[str]) -> Ring | None:
        live = set(self.members)
        if not changes or live == self.ring.members:
            return None
        self.ring = self.ring.next(live)
        why = ", ".join(changes)
        logger.info(
            "cluster ring generation %d: %s; members %s",
            self.ring.generation, why, ",".join(sorted(live)),
        )
        if self._on_change is not None:
            self._on_change(self.ring, why)
        return self.ring


async def watch_members(
    membership: Membership,
    discovery: Discovery,
    *,
    reason: str,
    interval: float,
    stop: asyncio.Event,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Poll ``discovery`` every ``interval`` seconds, apply it and check heartbeats, until ``stop``.

    A failed poll keeps the last list and logs a warning; an unexpected error
    is logged with its stack and the loop goes on.
    """
    while not stop.is_set():
        try:
            listed = await asyncio.wait_for(discovery.members(), timeout=max(interval, 1.0))
            membership.update(listed, clock(), reason)
        except (DiscoveryError, TimeoutError) as exc:
            logger.warning(
                "cluster: %s: keeping the last member list: %s", reason, exc or "timed out"
            )
        except Exception:
            logger.exception("cluster: %s: member poll failed", reason)
        membership.check(clock())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


def membership_from_config(
    config: Config,
    environ: Mapping[str, str],
    *,
    now: float,
    resolver: TxtResolver | None = None,
    on_change: Callable[[Ring, str], None] | None = None,
    join_on_heartbeat: bool = False,
) -> tuple[Membership, Discovery, str] | None:
    """The membership, its discovery and that one's name for ``WHATSEASE_CLUSTER``; None if off.

    Raises `ConfigError` when the mode's inputs are missing (``FLY_MACHINE_ID``
    and ``FLY_APP_NAME`` for ``fly``; this instance's id among the members for
    ``static``).
    """
    if config.cluster == "off":
        return None
    if config.cluster == "fly":
        machine_id = environ.get("FLY_MACHINE_ID", "")
        app = environ.get("FLY_APP_NAME", "")
        if not machine_id or not app:
            raise ConfigError(
                "WHATSEASE_CLUSTER=fly needs FLY_MACHINE_ID and FLY_APP_NAME (set by Fly.io)"
            )
        port = config.cluster_port or DEFAULT_LINK_PORT
        me = fly_member(machine_id, environ.get("FLY_REGION", ""), app, port)
        fly = FlyDiscovery(app, port, resolver)
        return (
            Membership(me, heartbeat_timeout=config.cluster_heartbeat_timeout, now=now,
                       on_change=on_change, join_on_heartbeat=join_on_heartbeat),
            fly,
            f"fly dns {fly.name}",
        )
    members = [Member(mid, url) for mid, url in config.cluster_members]
    mine = [m for m in members if m.id == config.cluster_self]
    if not mine:
        raise ConfigError(
            f"WHATSEASE_CLUSTER_SELF={config.cluster_self!r} "
            "is not one of WHATSEASE_CLUSTER_MEMBERS"
        )
    discovery: Discovery = StaticDiscovery(members)
    reason = "static list"
    if config.cluster_members_file:
        discovery, reason = FileDiscovery(config.cluster_members_file), "members file"
    return (
        Membership(mine[0], heartbeat_timeout=config.cluster_heartbeat_timeout, now=now,
                   on_change=on_change, join_on_heartbeat=join_on_heartbeat),
        discovery,
        reason,
    )
