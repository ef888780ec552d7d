"""Webhook events in: queued at once, then processed in order per contact.

`ChannelIntake.accept` only queues a verified webhook's events (bounded: when
full it raises `Overloaded`, the handler answers 503 and the platform delivers
again later), so the platform gets its 200 before any bot runs. Each contact's
events are processed one at a time, in order; different contacts concurrently
(at most `MAX_CONCURRENT_EVENTS` at once):

- an `InboundMessage` is de-duplicated by its platform id (a unique key in
  MongoDB), its contact's last-message time is recorded (for WhatsApp's 24-hour
  window), it is marked read, and it enters WhatsEase as a message from the
  contact: to the bound bot through the messenger (``bot:<name>``) or to an
  organisation's support routing (``org:<id>``), exactly like a widget customer;
  an attachment it carries is remembered for the agents (console.py);
- a `StatusUpdate` goes to receipts.py; a `PlatformError` is logged and counted.
"""

from __future__ import annotations

import asyncio
import logging

from whatsease.channels import metrics
from whatsease.channels.base import Event, InboundMessage, Media, StatusUpdate
from whatsease.channels.console import media_json
from whatsease.channels.core import (
    CONTACT_WRITE_SECS,
    MAX_ATTACHED,
    SUPPORT_RATE_RETRIES,
    Channel,
    Overloaded,
)
from whatsease.channels.receipts import ChannelReceipts
from whatsease.delivery import frames
from whatsease.errors import NotFound, TooManyRequests
from whatsease.storage.support_models import SupportMessage
from whatsease.support.core import SessionEnded, customer_key

logger = logging.getLogger("whatsease.channels.service")


class ChannelIntake(ChannelReceipts):
    """Webhook events queued and processed; see the module docstring."""

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
            self._unread.pop(key, None)   # left only by an event that failed

    async def _process(self, channel: Channel, event: Event) -> None:
        if isinstance(event, InboundMessage):
            await self._inbound(channel, event)
        elif isinstance(event, StatusUpdate):
            await self._status(channel, event)
        else:
            self._platform_error(channel, event)

    # ------------------------------------------------------------------ inbound

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

    def _read_later(self, channel: Channel, m: InboundMessage, *, fresh: bool) -> None:
        """Mark the contact's newest new message read once no other message of theirs waits.

        Marking a message read marks the earlier ones read too, so with more of
        the contact's messages queued behind this one, the last one does it. A
        receipt or a redelivery queued behind does not count: neither marks
        anything itself. Where marking covers only the message itself (a
        provider's ``read_covers_earlier``), each new message is marked.
        """
        contact = m.reply_address
        if fresh and not channel.provider.read_covers_earlier:
            self._spawn(self._mark_read(channel, m), f"channel-read:{contact}")
            return
        if fresh:
            self._unread[contact] = (channel, m)
        lane = self._lanes.get(contact, [])
        if any(isinstance(e, InboundMessage) and e.message_id != m.message_id
               for _, e in lane[1:]):
            return
        newest = self._unread.pop(contact, None)
        if newest is not None:
            self._spawn(self._mark_read(*newest), f"channel-read:{contact}")

    async def _inbound(self, channel: Channel, m: InboundMessage) -> None:
        fresh = await self._dedup.submit((channel.name, m.message_id))
        self._read_later(channel, m, fresh=fresh)
        if not fresh:
            metrics.WEBHOOK_DUPLICATES.labels(channel.name).inc()
            return
        metrics.count_in(channel.name, m.kind)
        contact = m.reply_address
        await self._touch(channel, contact, m)
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
            extra["media"] = self._media_fields(m.media)
        if m.sender_name:
            extra["sender_name"] = m.sender_name
        return extra

    @staticmethod
    def _media_fields(media: Media) -> dict[str, str]:
        return {"media_id": media.media_id, "type": media.media_type,
                "mime_type": media.mime_type, "filename": media.filename,
                "caption": media.caption}

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
                stored = await self._customer_send(conversation_id, m.text, client_id)
            except (SessionEnded, NotFound):
                pass      # ended (timeout or closed): a new conversation starts below
            else:
                await self._keep_media(channel, contact, conversation_id, stored, m)
                return
        org = await support.orgs.get(channel.org_id)
        conversation, _token, opening = await support.start_session(
            org, m.sender_name or contact, contact)
        conversation_id = conversation.conversation_id
        await self.store.set_conversation(contact, conversation_id)
        self._conversations[contact] = conversation_id
        connection = self.attach(channel, customer_key(conversation_id), contact,
                                 conversation_id=conversation_id)
        for note in opening:     # the greeting was posted before the connection existed
            connection.send_frame(frames.message(note.to_json(for_customer=True)))
        stored = await self._customer_send(conversation_id, m.text, client_id)
        await self._keep_media(channel, contact, conversation_id, stored, m)

    async def _keep_media(self, channel: Channel, contact: str, conversation_id: str,
                          stored: SupportMessage | None, m: InboundMessage) -> None:
        """Remember the attachment ``m`` came with, for the agents (console.py)."""
        if m.media is None or stored is None:
            return
        media = self._media_fields(m.media)
        await self.store.add_media(stored.message_id, conversation_id=conversation_id,
                                   slug=channel.slug, contact=contact, media=media,
                                   at=self.clock())
        await self.console.push(conversation_id,
                                media=[media_json({"_id": stored.message_id, "media": media})])

    async def _customer_send(self, conversation_id: str, text: str,
                             client_id: str) -> SupportMessage | None:
        support = self.services.support
        assert support is not None
        for _ in range(SUPPORT_RATE_RETRIES):
            try:
                return await support.customer_send(conversation_id, text, client_id=client_id)
            except TooManyRequests as exc:
                # A person typing fast on their phone: wait for the conversation's
                # rate limit instead of losing the message.
                await asyncio.sleep(exc.retry_after)
        logger.warning("a channel message was given up: its sender kept above the rate limit",
                       extra={"conversation_id": conversation_id})
        return None

    async def _mark_read(self, channel: Channel, m: InboundMessage) -> None:
        result = await channel.provider.mark_read(m)
        if not result.ok:
            logger.warning("%s: marking a message read failed: %s", channel.name, result.error)
