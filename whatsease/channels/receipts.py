"""Platforms' receipts for our replies (sent, delivered, read, failed) and their errors.

A receipt moves the delivery state of the reply it names (by the platform's
id) forward only. A receipt can arrive before the reply's platform id is
stored: Meta's ``sent`` webhook often races the Graph API's own answer. Such a
receipt is kept (bounded: `MAX_EARLY_RECEIPTS`, for `EARLY_RECEIPT_SECS`) and
applied as soon as the reply is recorded; one for a message that never shows
up (sent from another tool on the same number) simply expires.
"""

from __future__ import annotations

import asyncio
import logging

from whatsease.channels import metrics
from whatsease.channels.base import PlatformError, StatusUpdate
from whatsease.channels.console import delivery_json
from whatsease.channels.core import (
    EARLY_RECEIPT_SECS,
    FORWARD_FROM,
    MAX_EARLY_RECEIPTS,
    RECENT_SENT_MEMORY,
    Channel,
)
from whatsease.channels.replies import ChannelReplies

logger = logging.getLogger("whatsease.channels.service")


class ChannelReceipts(ChannelReplies):
    """Receipts and platform errors; see the module docstring."""

    async def _status(self, channel: Channel, s: StatusUpdate, *, again: bool = False) -> None:
        if not again:
            metrics.CHANNEL_STATUSES.labels(channel.name, s.status).inc()
        status = channel.provider.map_status(s.status)
        if status is None:
            return
        doc = await self.store.out_by_platform_id(channel.name, s.message_id)
        if doc is None:
            if not again:
                await self._keep_early(channel, s)
            return
        message_id = str(doc["_id"])
        moved = await self.store.set_out_status(
            message_id, status, self.clock(), allowed_from=FORWARD_FROM[status],
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
        if channel.bound_to_org:
            # Agents see a reply's ticks move (and why it failed) as the platform reports.
            await self.console.push(doc.get("conversation_id"), deliveries=[delivery_json({
                "message_id": message_id, "status": status, "error_code": s.error_code,
                "error": s.error_title})])
        else:
            # The messenger's own status (ticks, activity) follows the platform's receipts.
            await self.services.messaging.mark(doc["contact"], [message_id], status)

    async def _keep_early(self, channel: Channel, s: StatusUpdate) -> None:
        """Keep a receipt whose reply is not recorded (yet); apply it if it just was."""
        early, recent = self._early, self._recent_sent
        key = (channel.name, s.message_id)
        if key in recent:
            # Recorded while we looked: the reply is there now.
            await self._status(channel, s, again=True)
            return
        now = asyncio.get_running_loop().time()
        while early:
            oldest_key, (at, _) = next(iter(early.items()))
            if now - at < EARLY_RECEIPT_SECS and len(early) < MAX_EARLY_RECEIPTS:
                break
            del early[oldest_key]
        found = early.get(key)
        if found is None:
            early[key] = (now, [(channel, s)])
        elif len(found[1]) < 4:          # sent, delivered, read, failed: at most one each
            found[1].append((channel, s))

    async def _sent(self, channel: Channel, contact: str, platform_id: str) -> None:
        """A reply was recorded with ``platform_id``: apply the receipts that came first."""
        if not platform_id:
            return
        early, recent = self._early, self._recent_sent
        key = (channel.name, platform_id)
        recent[key] = None
        while len(recent) > RECENT_SENT_MEMORY:
            recent.popitem(last=False)
        waiting = early.pop(key, None)
        if waiting is None:
            return
        for kept_channel, receipt in waiting[1]:
            await self._status(kept_channel, receipt, again=True)

    def _platform_error(self, channel: Channel, error: PlatformError) -> None:
        metrics.API_ERRORS.labels(channel.name, "webhook", str(error.code or "unknown")).inc()
        logger.warning("%s reports an error: %s (code %s) %s", channel.name, error.title,
                       error.code, error.detail)
