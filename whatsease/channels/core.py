"""The channel service's state and the helpers every part of it shares.

The service is built in layers, each a module: `ChannelCore` (here: the
state, the batched writes, the task set), replies.py (connections in the hub
and replies leaving, in order per contact, inside the platform's window),
receipts.py (delivery statuses and platform errors), intake.py (webhook events
queued and processed, per contact in order) and service.py (the whole, its
lifecycle and its set-up from the settings).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from whatsease.batching import Batcher
from whatsease.channels.base import ChannelProvider, Event, InboundMessage, MessageStatus
from whatsease.channels.console import ConsoleNotes
from whatsease.errors import AppError, NotFound
from whatsease.services import Services
from whatsease.storage.channels import ChannelStore
from whatsease.timeutil import utcnow

if TYPE_CHECKING:
    from whatsease.channels.connection import ChannelConnection

# Contacts (and support conversations) with a live connection in the hub; the
# least recently active beyond this are detached (they re-attach on their
# next message).
MAX_ATTACHED = 50_000
# A connection with no inbound message for this long is detached, in seconds:
# the longest any platform lets a business answer freely (WhatsApp: 24 h).
ATTACH_IDLE_SECS = 24 * 3600
# Message ids each connection remembers having forwarded, so an edit or a
# re-publication of the same message is not sent twice.
FORWARDED_MEMORY = 256
# Replies waiting to leave per contact; beyond it the oldest is dropped (logged).
MAX_OUTBOUND_PER_CONTACT = 100
# A contact sending faster than the support rate limit waits this often for
# its turn before the message is given up (logged).
SUPPORT_RATE_RETRIES = 5
OUTSIDE_WINDOW = "outside the customer-service window (no message from the contact for 24 h)"

# Events processed at once (over all contacts): enough for the database writes
# to batch, few enough that the event loop stays free to answer webhooks fast.
MAX_CONCURRENT_EVENTS = 32
# A contact's last-message time is written at most this often, in seconds (it
# is kept in memory meanwhile): the 24-hour window does not need it finer.
CONTACT_WRITE_SECS = 60.0

# Receipts kept (in MongoDB, for every member of a cluster) for replies whose
# platform id is not stored yet, for `EARLY_RECEIPT_SECS`; beyond this many,
# new ones are not kept (logged).
MAX_EARLY_RECEIPTS = 10_000

# Which channel states a status may move forward from.
FORWARD_FROM: dict[MessageStatus, tuple[str, ...]] = {
    "Sent": (), "Delivered": ("Sent",), "Read": ("Sent", "Delivered"),
    "Failed": ("Sent", "Delivered")}


class Overloaded(AppError):
    """Too many webhook events wait to be processed; the platform should retry."""

    status = 503
    code = "overloaded"
    title = "Service busy"


@dataclass
class Channel:
    """One configured provider, where its webhook lives, and who answers it."""

    provider: ChannelProvider
    slug: str         # the webhook path segment: /channels/<slug>/webhook
    binding: str      # "bot:<name>" or "org:<id>"

    @property
    def name(self) -> str:
        return self.provider.name

    @property
    def bound_to_org(self) -> bool:
        return self.binding.startswith("org:")

    @property
    def org_id(self) -> str:
        return self.binding.partition(":")[2]


@dataclass(frozen=True)
class OutboundReply:
    """A reply waiting to leave: our message's id, its text, and (for support) its
    conversation, whose agents hear if it fails."""

    channel: Channel
    message_id: str
    text: str
    conversation_id: str | None = None


class ChannelCore:
    """The service's state; see the module docstring for the layers built on it."""

    def __init__(self, services: Services, channels: Iterable[Channel], *,
                 max_pending: int | None = None) -> None:
        self.services = services
        self.store = ChannelStore(services.store.db)
        self.channels = {c.slug: c for c in channels}
        self.max_pending = max_pending or services.config.channel_max_pending
        self.clock = utcnow
        self.retry_backoff = 0.5
        self._pending = 0
        self._lanes: dict[str, list[tuple[Channel, Event]]] = {}
        self._outbound: dict[str, list[OutboundReply]] = {}
        self._attached: OrderedDict[str, tuple[ChannelConnection, float]] = OrderedDict()
        # Per contact: the last inbound message's time, when it was last written,
        # and its open support conversation (bounded like the connections).
        self._last_inbound: OrderedDict[str, datetime] = OrderedDict()
        self._contact_written: dict[str, float] = {}
        self._conversations: dict[str, str] = {}
        # Per contact with messages queued: the newest new one, to be marked read
        # once no other of theirs waits (intake.py; emptied as each lane drains).
        self._unread: dict[str, tuple[Channel, InboundMessage]] = {}
        # Until when (loop time) receipts this process kept may wait in MongoDB; a
        # process alone on its database looks for kept receipts only until then.
        self._kept_until = 0.0
        # De-duplication keys of many webhooks share one insert.
        self._dedup: Batcher[tuple[str, str], bool] = Batcher(self._dedup_batch,
                                                              name="channel-dedup")
        # Contacts' last-message times and replies' outcomes are written in batches too.
        self._contact_writes: Batcher[tuple[str, str, str, datetime], None] = Batcher(
            self._write_contacts, name="channel-contacts")
        # ...each answered with the receipts kept for it (receipts.py).
        self._out_writes: Batcher[dict[str, Any], list[dict[str, Any]]] = Batcher(
            self._write_outs, name="channel-outbox")
        self._tasks: set[asyncio.Task[None]] = set()
        self._working = asyncio.Semaphore(MAX_CONCURRENT_EVENTS)
        self._janitor: asyncio.Task[None] | None = None
        self.console = ConsoleNotes(services, self.store, self._provider_for, lambda: self.clock())

    def channel(self, slug: str) -> Channel:
        """The channel whose webhook is ``/channels/<slug>/webhook``; NotFound if not on."""
        channel = self.channels.get(slug)
        if channel is None:
            raise NotFound(f"The {slug} channel is not configured on this server.")
        return channel

    def _provider_for(self, slug: str) -> ChannelProvider | None:
        channel = self.channels.get(slug)
        return channel.provider if channel is not None else None

    async def _dedup_batch(self, keys: list[tuple[str, str]]) -> list[bool]:
        return await self.store.first_times(keys, self.clock())

    async def _write_contacts(self, touches: list[tuple[str, str, str, datetime]]) -> list[None]:
        await self.store.touch_contacts(touches)
        return [None] * len(touches)

    async def _write_outs(self, records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        await self.store.record_outs(records)
        # Written first, then looked for: a member keeping a receipt looks for the
        # record after keeping it, so one of the two sides sees the other.
        keys = [(r["channel"], r["platform_id"]) for r in records if r.get("platform_id")]
        if self.services.cluster is None and \
                asyncio.get_running_loop().time() >= self._kept_until:
            keys = []    # alone on its database, and none kept lately: nothing to look for
        kept: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for doc in await self.store.take_early(keys, self.clock()) if keys else []:
            kept.setdefault((doc["channel"], doc["platform_id"]), []).append(doc)
        return [kept.get((r["channel"], r.get("platform_id") or ""), []) for r in records]

    async def _record_out(self, message_id: str, *, channel: str, contact: str, status: str,
                          at: datetime, platform_id: str | None = None,
                          error_code: int | None = None, error: str = "",
                          conversation_id: str | None = None) -> list[dict[str, Any]]:
        """Record a reply's outcome; returns the receipts kept for its platform id."""
        return await self._out_writes.submit({
            "message_id": message_id, "channel": channel, "contact": contact, "status": status,
            "at": at, "platform_id": platform_id, "error_code": error_code, "error": error,
            "conversation_id": conversation_id})

    async def _admins(self, channel: Channel) -> list[str]:
        """Who hears of a reply that could not be delivered: the bound org's admins."""
        support = self.services.support
        if not channel.bound_to_org or support is None:
            return []
        try:
            members = await support.orgs.members(channel.org_id)
        except NotFound:
            return []
        return [u.email for u in members if u.role == "admin"]

    def _spawn(self, coro: Coroutine[object, object, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def pending(self) -> int:
        return self._pending

    async def wait_idle(self, limit_secs: float = 10.0) -> None:
        """Wait until queued events and replies are processed (tests, shutdown)."""
        deadline = asyncio.get_running_loop().time() + limit_secs
        while self._tasks:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            await asyncio.wait(set(self._tasks), timeout=left)

