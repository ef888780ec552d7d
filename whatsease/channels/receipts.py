"""Platforms' receipts for our replies (sent, delivered, read, failed) and their errors.

A receipt moves the delivery state of the reply it names (by the platform's
id) forward only. A receipt can arrive before the reply's platform id is
stored: Meta's ``sent`` webhook often races the Graph API's own answer, and
in a cluster it may land on another member than the one sending the reply.
Such a receipt is kept in MongoDB (``channel_early_receipts``: at most
`MAX_EARLY_RECEIPTS`, for `EARLY_RECEIPT_SECS`), and whichever member records
the reply takes and applies it. Each side writes first and looks for the
other's record after, so however the two pass each other, one of them sees
both (applying twice is harmless: states only move forward). A receipt for a
message that never shows up (sent by another tool on the same number) expires.
A process alone on its database (no cluster) looks for kept receipts only for
a minute after it kept one, so a reply costs no extra read otherwise.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from whatsease.channels import metrics
from whatsease.channels.base import PlatformError, StatusUpdate
from whatsease.channels.console import delivery_json
from whatsease.channels.core import FORWARD_FROM, MAX_EARLY_RECEIPTS, Channel
from whatsease.channels.replies import ChannelReplies
from whatsease.storage.channels import EARLY_RECEIPT_SECS

__all__ = ["EARLY_RECEIPT_SECS", "MAX_EARLY_RECEIPTS", "ChannelReceipts"]

logger = logging.getLogger("whatsease.channels.service")

# The order kept receipts are applied in (a later one refuses an earlier one).
STATUS_ORDER = {"sent": 0, "delivered": 1, "read": 2, "failed": 3}


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
        receipt: dict[str, Any] = {
            "channel": channel.name, "slug": channel.slug, "platform_id": s.message_id,
            "recipient": s.recipient, "status": s.status, "timestamp": s.timestamp,
            "error_code": s.error_code, "error_title": s.error_title}
        if not await self.store.keep_early(receipt, self.clock(), limit=MAX_EARLY_RECEIPTS):
            logger.warning("%s: a receipt for an unknown message was not kept: %d are kept "
                           "already", channel.name, MAX_EARLY_RECEIPTS)
            return
        self._kept_until = asyncio.get_running_loop().time() + EARLY_RECEIPT_SECS
        # The member recording the reply may have looked for kept receipts before
        # this one was written: look for the reply again.
        if await self.store.out_by_platform_id(channel.name, s.message_id) is not None:
            await self._status(channel, s, again=True)
            await self.store.drop_early(channel.name, s.message_id, s.status)

    async def _apply_kept(self, kept: list[dict[str, Any]]) -> None:
        """A reply was recorded: apply the receipts kept for it, in the order they happen."""
        for doc in sorted(kept, key=lambda d: STATUS_ORDER.get(d.get("status", ""), 9)):
            channel = self.channels.get(doc.get("slug", ""))
            if channel is None:
                continue    # a channel this member does not have (a configuration change)
            receipt = StatusUpdate(doc["channel"], doc["platform_id"], doc["recipient"],
                                   doc["status"], doc["timestamp"], doc.get("error_code"),
                                   doc.get("error_title", ""))
            await self._status(channel, receipt, again=True)

    def _platform_error(self, channel: Channel, error: PlatformError) -> None:
        metrics.API_ERRORS.labels(channel.name, "webhook", str(error.code or "unknown")).inc()
        logger.warning("%s reports an error: %s (code %s) %s", channel.name, error.title,
                       error.code, error.detail)
