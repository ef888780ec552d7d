"""Replies leaving for a platform: contacts' hub connections, and one ordered lane per contact.

Whatever WhatsEase says to a contact (a bot's reply, an agent's message, a
system note) reaches its `ChannelConnection` in the hub, which queues it here.
Each contact's replies leave one at a time, in order, with the seam's retries
(`deliver`); a reply outside the platform's customer-service window is not
sent (recorded as Failed, with the reason). A reply that fails is recorded
with the platform's error, and the agents following its support conversation
see it at once (console.py).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from whatsease.channels import metrics
from whatsease.channels.base import OutboundMessage, SendResult, deliver
from whatsease.channels.connection import ChannelConnection
from whatsease.channels.console import delivery_json
from whatsease.channels.core import (
    ATTACH_IDLE_SECS,
    MAX_ATTACHED,
    MAX_OUTBOUND_PER_CONTACT,
    OUTSIDE_WINDOW,
    Channel,
    ChannelCore,
    OutboundReply,
)
from whatsease.storage.channels import within

logger = logging.getLogger("whatsease.channels.service")


class ChannelReplies(ChannelCore):
    """Connections in the hub and the replies they queue; see the module docstring."""

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

    def queue_reply(self, channel: Channel, contact: str, message_id: str, text: str, *,
                    conversation_id: str | None = None) -> None:
        """Send ``text`` (our message ``message_id``) to ``contact``, in order per contact."""
        reply = OutboundReply(channel, message_id, text, conversation_id)
        lane = self._outbound.get(contact)
        if lane is not None:
            if len(lane) >= MAX_OUTBOUND_PER_CONTACT:
                dropped = lane.pop(1)   # [0] is being sent
                logger.warning("%s: a reply was dropped, too many waiting for one contact",
                               channel.name, extra={"message_id": dropped.message_id})
                metrics.count_out(channel.name, "dropped")
            lane.append(reply)
            return
        self._outbound[contact] = [reply]
        self._spawn(self._drain_outbound(contact), f"channel-out:{contact}")

    async def _drain_outbound(self, contact: str) -> None:
        lane = self._outbound[contact]
        try:
            while lane:
                reply = lane[0]
                try:
                    await self._send_reply(contact, reply)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("%s: a reply could not be sent", reply.channel.name,
                                     extra={"message_id": reply.message_id})
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

    async def _send_reply(self, contact: str, reply: OutboundReply) -> SendResult:
        channel, message_id = reply.channel, reply.message_id
        provider = channel.provider
        now = self.clock()
        if not within(await self._last_inbound_at(contact), provider.service_window, now):
            # Meta refuses free-form messages outside the window (error 131047):
            # record why instead of calling it.
            await self._failed(reply, contact, now, None, OUTSIDE_WINDOW)
            metrics.count_out(channel.name, "outside_window")
            logger.warning("%s: reply not sent: %s", channel.name, OUTSIDE_WINDOW,
                           extra={"message_id": message_id})
            self.services.activity.record(
                "channel.not_sent", channel.binding, target=contact, message_id=message_id,
                audience=await self._admins(channel),
                text=f"A reply to {contact} was not sent on {channel.name}: {OUTSIDE_WINDOW}")
            return SendResult(ok=False, error=OUTSIDE_WINDOW)
        result = await deliver(provider, OutboundMessage(to=contact, text=reply.text[:4096]),
                               backoff=self.retry_backoff)
        if result.ok:
            kept = await self._record_out(message_id, channel=channel.name, contact=contact,
                                          status="Sent", at=self.clock(),
                                          platform_id=result.message_id or None,
                                          conversation_id=reply.conversation_id)
            await self.console.push(reply.conversation_id, deliveries=[delivery_json({
                "message_id": message_id, "status": "Sent"})])
            await self._apply_kept(kept)
            return result
        await self._failed(reply, contact, self.clock(), result.error_code, result.error)
        logger.warning("%s: reply to %s failed%s: %s", channel.name, contact,
                       "" if result.retryable else " (final)", result.error,
                       extra={"message_id": message_id, "status": result.status_code,
                              "error_code": result.error_code})
        return result

    async def _failed(self, reply: OutboundReply, contact: str, at: datetime,
                      error_code: int | None, error: str) -> None:
        """Record a reply that did not leave, and tell the agents of its conversation."""
        await self._record_out(reply.message_id, channel=reply.channel.name, contact=contact,
                               status="Failed", at=at, error_code=error_code, error=error,
                               conversation_id=reply.conversation_id)
        await self.console.push(reply.conversation_id, deliveries=[delivery_json({
            "message_id": reply.message_id, "status": "Failed", "error_code": error_code,
            "error": error})])

    async def _apply_kept(self, kept: list[dict[str, Any]]) -> None:
        """A reply was recorded: receipts.py applies the receipts that came first."""
