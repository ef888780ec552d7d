"""The channel service: what happens to a verified webhook's events, and how replies leave.

A webhook handler verifies the request, parses it into events and hands them
to `ChannelService.accept`, which only queues them (bounded: when full it
raises `Overloaded`, the handler answers 503 and the platform delivers again
later), so the platform gets its 200 before any bot runs. Events are then
processed in order per contact, different contacts concurrently:

- an `InboundMessage` is de-duplicated by its platform id (a unique key in
  MongoDB), its contact (``wa:+4915112345678``) is recorded with the time of
  its last message (for WhatsApp's 24-hour window), it is marked read, and it
  enters WhatsEase as a message from the contact: to the bound bot through the
  messenger (``bot:<name>``, stored in ``messages``) or to an organisation's
  support routing (``org:<id>``: bot, agents, handoff, transfer, stored in
  ``support_messages``), exactly like a widget customer;
- a `StatusUpdate` moves the delivery state of the message it is about forward
  (and the messenger's status, for bot bindings); a failure is logged with the
  platform's error code;
- a `PlatformError` is logged and counted.

Replies leave through the hub: the contact (or its support conversation) has a
`ChannelConnection` in the process hub, so whatever WhatsEase sends to a web
user's sockets (a bot reply, an agent's message, a system note) reaches it
through the same ``Hub.send`` seam, and it forwards the replies meant for the
contact to the platform, with retries, outside the event loop's way.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from whatsease.batching import Batcher
from whatsease.channels import metrics
from whatsease.channels.base import (
    ChannelProvider,
    Event,
    InboundMessage,
    MessageStatus,
    OutboundMessage,
    PlatformError,
    ProviderContext,
    SendResult,
    StatusUpdate,
    build_provider,
    deliver,
)
from whatsease.cluster.routing import org_route, user_route
from whatsease.errors import AppError, NotFound, TooManyRequests
from whatsease.net.outbound import OutboundPolicy
from whatsease.services import Services
from whatsease.storage.channels import ChannelStore, within
from whatsease.support.core import SessionEnded, customer_key
from whatsease.timeutil import utcnow

logger = logging.getLogger(__name__)

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

# Which channel states a status may move forward from.
_FORWARD_FROM: dict[MessageStatus, tuple[str, ...]] = {
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


class ChannelConnection:
    """A contact's (or its support conversation's) place in the hub: forwards the
    frames meant for the contact to its platform.

    Frames are JSON with ``type`` first; only ``message`` frames of a bot,
    agent or system note for this contact are forwarded, each message once.
    """

    def __init__(self, service: ChannelService, channel: Channel, key: str, contact: str,
                 *, conversation_id: str | None = None) -> None:
        self.user = key
        self.session_id = f"channel:{channel.name}:{contact}"
        self.channel = channel
        self.contact = contact
        self.conversation_id = conversation_id
        # Clustering: the ring key this connection is homed by, so that frames for it
        # made on other members are relayed here (cluster/router.py): a support
        # conversation's org, or the contact itself for a bot binding.
        if conversation_id is None:
            self.home_route = user_route(contact)
        else:
            self.home_route = org_route(channel.org_id) if channel.bound_to_org else ""
        self._service = service
        self._forwarded: OrderedDict[str, None] = OrderedDict()

    def send_frame(self, data: bytes) -> None:
        if not data.startswith(b'{"type":"message"'):
            return      # typing, status, presence...: nothing a platform shows
        try:
            message = orjson.loads(data).get("message") or {}
        except orjson.JSONDecodeError:
            return
        if not self._meant_for_contact(message):
            return
        message_id = str(message.get("message_id", ""))
        if not message_id or message_id in self._forwarded:
            return
        self._forwarded[message_id] = None
        while len(self._forwarded) > FORWARDED_MEMORY:
            self._forwarded.popitem(last=False)
        text = str(message.get("content") or "").strip()
        if text:
            self._service.queue_reply(self.channel, self.contact, message_id, text)

    def _meant_for_contact(self, message: dict[str, Any]) -> bool:
        if message.get("deleted") or message.get("edited_at"):
            return False
        if self.conversation_id is not None:
            # A support conversation: what the bot, an agent or the org says in it.
            return (message.get("conversation_id") == self.conversation_id
                    and message.get("kind") in ("bot", "agent", "system"))
        # A bot binding: only the bound bot's replies to this contact. Anyone else
        # messaging the contact's address through the messenger is not relayed.
        return (message.get("sender") == self.channel.binding
                and message.get("recipient") == self.contact
                and message.get("is_bot_response") is True)

    def close(self, code: int, reason: str) -> None:
        self._service.detach(self)


class ChannelService:
    """Every configured channel of the process; see the module docstring."""

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
        self._outbound: dict[str, list[tuple[Channel, str, str]]] = {}
        self._attached: OrderedDict[str, tuple[ChannelConnection, float]] = OrderedDict()
        # Per contact: the last inbound message's time, when it was last written,
        # and its open support conversation (bounded like the connections).
        self._last_inbound: OrderedDict[str, datetime] = OrderedDict()
        self._contact_written: dict[str, float] = {}
        self._conversations: dict[str, str] = {}
        # De-duplication keys of many webhooks share one insert.
        self._dedup: Batcher[tuple[str, str], bool] = Batcher(self._dedup_batch,
                                                              name="channel-dedup")
        # Contacts' last-message times and replies' outcomes are written in batches too.
        self._contact_writes: Batcher[tuple[str, str, str, datetime], None] = Batcher(
            self._write_contacts, name="channel-contacts")
        self._out_writes: Batcher[dict[str, Any], None] = Batcher(self._write_outs,
                                                                  name="channel-outbox")
        self._tasks: set[asyncio.Task[None]] = set()
        self._working = asyncio.Semaphore(MAX_CONCURRENT_EVENTS)
        self._janitor: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ intake

    def channel(self, slug: str) -> Channel:
        """The channel whose webhook is ``/channels/<slug>/webhook``; NotFound if not on."""
        channel = self.channels.get(slug)
        if channel is None:
            raise NotFound(f"The {slug} channel is not configured on this server.")
        return channel

    def accept(self, channel: Channel, events: list[Event]) -> None:
        """Queue a webhook's events for processing; `Overloaded` (nothing queued) if full."""
        if self._pending + len(events) > self.max_pending:
            metrics.WEBHOOK_DROPPED.labels(channel.name).inc(len(events))
            raise Overloaded("Too many events are waiting; deliver this one again later.",
                             headers={"Retry-After": "5"})
        for event in events:
            key = self._lane_key(event)
            lane = self._lanes.get(key)
            self._pending += 1
            if lane is not None:
                lane.append((channel, event))
                continue
            self._lanes[key] = [(channel, event)]
            self._spawn(self._drain(key), f"channel-in:{key}")

    @staticmethod
    def _lane_key(event: Event) -> str:
        if isinstance(event, InboundMessage):
            return event.reply_address
        if isinstance(event, StatusUpdate):
            return event.recipient
        return f"errors:{event.channel}"

    async def _drain(self, key: str) -> None:
        lane = self._lanes[key]
        try:
            while lane:
                channel, event = lane[0]
                try:
                    async with self._working:
                        await self._process(channel, event)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("a %s webhook event could not be processed", channel.name)
                finally:
                    lane.pop(0)
                    self._pending -= 1
        finally:
            self._lanes.pop(key, None)

    async def _process(self, channel: Channel, event: Event) -> None:
        if isinstance(event, InboundMessage):
            await self._inbound(channel, event)
        elif isinstance(event, StatusUpdate):
            await self._status(channel, event)
        else:
            self._platform_error(channel, event)

    # ------------------------------------------------------------------ inbound

    async def _dedup_batch(self, keys: list[tuple[str, str]]) -> list[bool]:
        return await self.store.first_times(keys, self.clock())

    async def _write_contacts(self, touches: list[tuple[str, str, str, datetime]]) -> list[None]:
        await self.store.touch_contacts(touches)
        return [None] * len(touches)

    async def _write_outs(self, records: list[dict[str, Any]]) -> list[None]:
        await self.store.record_outs(records)
        return [None] * len(records)

    async def _record_out(self, message_id: str, *, channel: str, contact: str, status: str,
                          at: datetime, platform_id: str | None = None,
                          error_code: int | None = None, error: str = "") -> None:
        await self._out_writes.submit({
            "message_id": message_id, "channel": channel, "contact": contact, "status": status,
            "at": at, "platform_id": platform_id, "error_code": error_code, "error": error})

    async def _touch(self, channel: Channel, contact: str, m: InboundMessage) -> None:
        """Remember the contact's last message (memory now, the database now and then)."""
        last = self._last_inbound.get(contact)
        self._last_inbound[contact] = m.timestamp if last is None else max(last, m.timestamp)
        self._last_inbound.move_to_end(contact)
        while len(self._last_inbound) > MAX_ATTACHED:
            gone, _ = self._last_inbound.popitem(last=False)
            self._contact_written.pop(gone, None)
            self._conversations.pop(gone, None)
        loop_time = asyncio.get_running_loop().time()
        written = self._contact_written.get(contact)
        if written is None or loop_time - written > CONTACT_WRITE_SECS:
            self._contact_written[contact] = loop_time
            await self._contact_writes.submit((contact, channel.name, m.sender_name,
                                               self._last_inbound[contact]))

    async def _inbound(self, channel: Channel, m: InboundMessage) -> None:
        if not await self._dedup.submit((channel.name, m.message_id)):
            metrics.WEBHOOK_DUPLICATES.labels(channel.name).inc()
            return
        metrics.count_in(channel.name, m.kind)
        contact = m.reply_address
        await self._touch(channel, contact, m)
        if len(self._lanes.get(contact, ())) <= 1:
            # Marking a message read marks the earlier ones read too: with more of
            # the contact's messages queued behind this one, the last one does it.
            self._spawn(self._mark_read(channel, m), f"channel-read:{contact}")
        try:
            if channel.bound_to_org:
                await self._to_support(channel, contact, m)
            else:
                await self._to_bot(channel, contact, m)
        except BaseException:
            # Not taken in: let a redelivery of the same event try again.
            await self.store.forget_event(channel.name, m.message_id)
            raise

    def _typed_fields(self, m: InboundMessage) -> dict[str, object]:
        """What the message is beyond its text, kept on the stored message."""
        extra: dict[str, object] = {"channel": m.channel, "channel_kind": m.kind,
                                    "platform_id": m.message_id}
        if m.reply_to:
            extra["reply_to"] = m.reply_to
        if m.choice_id:
            extra["choice_id"] = m.choice_id
        if m.reaction_to:
            extra["reaction_to"] = m.reaction_to
            extra["emoji"] = m.emoji
        if m.location is not None:
            extra["location"] = {"latitude": m.location.latitude,
                                 "longitude": m.location.longitude,
                                 "name": m.location.name, "address": m.location.address}
        if m.media is not None:
            extra["media"] = {"media_id": m.media.media_id, "type": m.media.media_type,
                              "mime_type": m.media.mime_type, "filename": m.media.filename}
        if m.sender_name:
            extra["sender_name"] = m.sender_name
        return extra

    async def _to_bot(self, channel: Channel, contact: str, m: InboundMessage) -> None:
        self.attach(channel, contact, contact)
        await self.services.messaging.send(
            contact, channel.binding, m.text, client_id=f"{channel.name}:{m.message_id}"[:128],
            extra=self._typed_fields(m))

    async def _to_support(self, channel: Channel, contact: str, m: InboundMessage) -> None:
        support = self.services.support
        if support is None:
            raise RuntimeError("the channel is bound to an organisation but support is not set up")
        client_id = f"{channel.name}:{m.message_id}"[:128]
        conversation_id = self._conversations.get(contact)
        if conversation_id is None:
            doc = await self.store.contact(contact)
            conversation_id = (doc or {}).get("conversation_id")
        if conversation_id:
            self.attach(channel, customer_key(conversation_id), contact,
                        conversation_id=conversation_id)
            try:
                await self._customer_send(conversation_id, m.text, client_id)
                return
            except (SessionEnded, NotFound):
                pass      # ended (timeout or closed): a new conversation starts below
        org = await support.orgs.get(channel.org_id)
        conversation, _token, opening = await support.start_session(
            org, m.sender_name or contact, contact)
        conversation_id = conversation.conversation_id
        await self.store.set_conversation(contact, conversation_id)
        self._conversations[contact] = conversation_id
        connection = self.attach(channel, customer_key(conversation_id), contact,
                                 conversation_id=conversation_id)
        for note in opening:     # the greeting was posted before the connection existed
            connection.send_frame(orjson.dumps({"type": "message",
                                                "message": note.to_json(for_customer=True)}))
        await self._customer_send(conversation_id, m.text, client_id)

    async def _customer_send(self, conversation_id: str, text: str, client_id: str) -> None:
        support = self.services.support
        assert support is not None
        for _ in range(SUPPORT_RATE_RETRIES):
            try:
                await support.customer_send(conversation_id, text, client_id=client_id)
                return
            except TooManyRequests as exc:
                # A person typing fast on their phone: wait for the conversation's
                # rate limit instead of losing the message.
                await asyncio.sleep(exc.retry_after)
        logger.warning("a channel message was given up: its sender kept above the rate limit",
                       extra={"conversation_id": conversation_id})

    async def _mark_read(self, channel: Channel, m: InboundMessage) -> None:
        result = await channel.provider.mark_read(m)
        if not result.ok:
            logger.warning("%s: marking a message read failed: %s", channel.name, result.error)

    # ------------------------------------------------------------------ outbound

    def attach(self, channel: Channel, key: str, contact: str, *,
               conversation_id: str | None = None) -> ChannelConnection:
        """The contact's connection in the hub under ``key`` (created if needed)."""
        loop_time = asyncio.get_running_loop().time()
        found = self._attached.get(key)
        if found is not None:
            self._attached[key] = (found[0], loop_time)
            self._attached.move_to_end(key)
            return found[0]
        connection = ChannelConnection(self, channel, key, contact,
                                       conversation_id=conversation_id)
        self._attached[key] = (connection, loop_time)
        self.services.hub.add(connection)
        while len(self._attached) > MAX_ATTACHED:
            _, (oldest, _at) = self._attached.popitem(last=False)
            self.services.hub.remove(oldest)
        return connection

    def detach(self, connection: ChannelConnection) -> None:
        found = self._attached.get(connection.user)
        if found is not None and found[0] is connection:
            del self._attached[connection.user]
        self.services.hub.remove(connection)

    def detach_idle(self, idle_secs: float = ATTACH_IDLE_SECS) -> int:
        """Detach connections without an inbound message for ``idle_secs``; returns how many."""
        limit = asyncio.get_running_loop().time() - idle_secs
        stale = [c for c, at in self._attached.values() if at < limit]
        for connection in stale:
            self.detach(connection)
        return len(stale)

    def queue_reply(self, channel: Channel, contact: str, message_id: str, text: str) -> None:
        """Send ``text`` (our message ``message_id``) to ``contact``, in order per contact."""
        lane = self._outbound.get(contact)
        if lane is not None:
            if len(lane) >= MAX_OUTBOUND_PER_CONTACT:
                dropped = lane.pop(1)   # [0] is being sent
                logger.warning("%s: a reply was dropped, too many waiting for one contact",
                               channel.name, extra={"message_id": dropped[1]})
                metrics.count_out(channel.name, "dropped")
            lane.append((channel, message_id, text))
            return
        self._outbound[contact] = [(channel, message_id, text)]
        self._spawn(self._drain_outbound(contact), f"channel-out:{contact}")

    async def _drain_outbound(self, contact: str) -> None:
        lane = self._outbound[contact]
        try:
            while lane:
                channel, message_id, text = lane[0]
                try:
                    await self._send_reply(channel, contact, message_id, text)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("%s: a reply could not be sent", channel.name,
                                     extra={"message_id": message_id})
                finally:
                    lane.pop(0)
        finally:
            self._outbound.pop(contact, None)

    async def _last_inbound_at(self, contact: str) -> datetime | None:
        last = self._last_inbound.get(contact)
        if last is None:
            doc = await self.store.contact(contact)
            last = (doc or {}).get("last_inbound_at")
        return last

    async def _send_reply(self, channel: Channel, contact: str, message_id: str,
                          text: str) -> SendResult:
        provider = channel.provider
        now = self.clock()
        if not within(await self._last_inbound_at(contact), provider.service_window, now):
            # Meta refuses free-form messages outside the window (error 131047):
            # record why instead of calling it.
            await self._record_out(message_id, channel=channel.name, contact=contact,
                                        status="Failed", at=now, error=OUTSIDE_WINDOW)
            metrics.count_out(channel.name, "outside_window")
            logger.warning("%s: reply not sent: %s", channel.name, OUTSIDE_WINDOW,
                           extra={"message_id": message_id})
            self.services.activity.record(
                "channel.not_sent", channel.binding, target=contact, message_id=message_id,
                audience=await self._admins(channel),
                text=f"A reply to {contact} was not sent on {channel.name}: {OUTSIDE_WINDOW}")
            return SendResult(ok=False, error=OUTSIDE_WINDOW)
        result = await deliver(provider, OutboundMessage(to=contact, text=text[:4096]),
                               backoff=self.retry_backoff)
        if result.ok:
            await self._record_out(message_id, channel=channel.name, contact=contact,
                                        status="Sent", at=self.clock(),
                                        platform_id=result.message_id or None)
            return result
        await self._record_out(message_id, channel=channel.name, contact=contact,
                                    status="Failed", at=self.clock(),
                                    error_code=result.error_code, error=result.error)
        logger.warning("%s: reply to %s failed%s: %s", channel.name, contact,
                       "" if result.retryable else " (final)", result.error,
                       extra={"message_id": message_id, "status": result.status_code,
                              "error_code": result.error_code})
        return result

    # ------------------------------------------------------------------ statuses

    async def _status(self, channel: Channel, s: StatusUpdate) -> None:
        metrics.CHANNEL_STATUSES.labels(channel.name, s.status).inc()
        status = channel.provider.map_status(s.status)
        if status is None:
            return
        doc = await self.store.out_by_platform_id(channel.name, s.message_id)
        if doc is None:
            return      # not one of ours (sent from another tool on the same number)
        message_id = str(doc["_id"])
        moved = await self.store.set_out_status(
            message_id, status, self.clock(), allowed_from=_FORWARD_FROM[status],
            error_code=s.error_code, error=s.error_title)
        if not moved:
            return
        if status == "Failed":
            logger.warning("%s: the platform could not deliver a reply: %s (code %s)",
                           channel.name, s.error_title or "no reason given", s.error_code,
                           extra={"message_id": message_id})
            self.services.activity.record(
                "channel.failed", channel.binding, target=doc["contact"], message_id=message_id,
                audience=await self._admins(channel),
                text=f"{channel.name} could not deliver a reply to {doc['contact']}: "
                     f"{s.error_title or 'no reason given'}")
        elif not channel.bound_to_org:
            # The messenger's own status (ticks, activity) follows the platform's receipts.
            await self.services.messaging.mark(doc["contact"], [message_id], status)

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

    def _platform_error(self, channel: Channel, error: PlatformError) -> None:
        metrics.API_ERRORS.labels(channel.name, "webhook", str(error.code or "unknown")).inc()
        logger.warning("%s reports an error: %s (code %s) %s", channel.name, error.title,
                       error.code, error.detail)

    # ------------------------------------------------------------------ lifecycle

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

    async def run_janitor(self, interval: float = 600.0) -> None:
        """Detach idle connections every ``interval`` seconds, until cancelled."""
        while True:
            await asyncio.sleep(interval)
            self.detach_idle()

    def start(self) -> None:
        """Start the janitor that detaches idle contacts."""
        if self._janitor is None:
            self._janitor = asyncio.get_running_loop().create_task(self.run_janitor(),
                                                                   name="channel-janitor")

    async def close(self) -> None:
        janitor, self._janitor = self._janitor, None
        if janitor is not None:
            janitor.cancel()
            await asyncio.gather(janitor, return_exceptions=True)
        await self.wait_idle()
        await self._dedup.drain()
        await self._contact_writes.drain()
        await self._out_writes.drain()
        for connection, _at in list(self._attached.values()):
            self.detach(connection)
        for channel in self.channels.values():
            await channel.provider.close()


def configured_channels(services: Services) -> list[Channel]:
    """The built-in channels the settings turn on (WHATSEASE_WHATSAPP_*, _TELEGRAM_*,
    _LOOPBACK_*). Raises `ConfigError` (whatsease.channels.base) naming a bad setting."""
    config = services.config
    context = ProviderContext(OutboundPolicy(allow_private=config.outbound_allow_private))
    channels: list[Channel] = []
    whatsapp = {"app_secret": config.whatsapp_app_secret,
                "verify_token": config.whatsapp_verify_token, "token": config.whatsapp_token,
                "phone_number_id": config.whatsapp_phone_number_id}
    if all(whatsapp.values()):
        channels.append(Channel(build_provider("whatsapp_cloud", {
            **whatsapp, "graph_url": config.whatsapp_graph_url,
            "display_number": config.whatsapp_number}, context), "whatsapp",
            config.whatsapp_binding))
    elif any(whatsapp.values()):
        missing = [k for k, v in whatsapp.items() if not v]
        logger.warning("the WhatsApp channel is off: WHATSEASE_WHATSAPP_%s not set",
                       "/".join(m.upper() for m in missing))
    if config.telegram_token and config.telegram_secret_token:
        channels.append(Channel(build_provider("telegram", {
            "token": config.telegram_token, "secret_token": config.telegram_secret_token,
            "api_url": config.telegram_api_url}, context), "telegram", config.telegram_binding))
    if config.loopback_peer_url and config.loopback_secret:
        channels.append(Channel(build_provider("loopback", {
            "peer_url": config.loopback_peer_url, "secret": config.loopback_secret}, context),
            "loopback", config.loopback_binding))
    return channels


async def setup(services: Services) -> None:
    from whatsease.channels.base import ConfigError as ProviderConfigError
    from whatsease.errors import ConfigError

    try:
        channels = configured_channels(services)
    except ProviderConfigError as exc:
        # Name the environment variable, never its value (they hold secrets).
        raise ConfigError(f"a channel setting is invalid: {exc.field}: {exc.message}") from None
    service = ChannelService(services, channels)
    await service.store.ensure_indexes()
    services.channels = service
    service.start()
    for channel in channels:
        logger.info("channel %s is on, answered by %s", channel.name, channel.binding)


async def shutdown(services: Services) -> None:
    if services.channels is not None:
        await services.channels.close()
