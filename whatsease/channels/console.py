"""What the agent console learns about a channel conversation beyond its messages.

A support conversation with a WhatsApp or Telegram contact has two things a
widget conversation has not: how far each reply got on the platform (``Sent``
when the platform took it, then ``Delivered`` and ``Read`` from its receipts,
or ``Failed`` with the platform's error code and title) and attachments the
contact sent (kept by the platform, fetched when an agent opens one).

`ConsoleNotes` answers the console's questions about both (`info`, `media`),
authorising every one through support (an agent sees what their org's
conversations hold; anything else is `NotFound`), and pushes a ``channel``
frame to the agents following the conversation when something changes::

    {"type": "channel", "conversation_id": "...",
     "media": [{"message_id", "type", "mime_type", "caption", "filename", "error"}],
     "deliveries": [{"message_id", "status", "error_code", "error"}]}

Downloads are coalesced per attachment, bounded in number, size and type
(media.py), and a copy is kept in MongoDB so the platform is asked once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from whatsease.channels.base import ChannelProvider, Media, MediaFile, MediaUnavailable
from whatsease.delivery import frames
from whatsease.errors import NotFound
from whatsease.services import Services
from whatsease.storage.channels import ChannelStore
from whatsease.storage.models import User

logger = logging.getLogger(__name__)

# Downloads under way at once (over all conversations); more wait their turn.
MAX_CONCURRENT_DOWNLOADS = 4
# Attachments and failed deliveries one `info` answer lists (the newest).
MAX_LISTED = 200


def delivery_json(record: Mapping[str, Any]) -> dict[str, Any]:
    """A delivery record as the console reads it."""
    return {"message_id": str(record.get("_id", record.get("message_id", ""))),
            "status": record.get("status", ""), "error_code": record.get("error_code"),
            "error": record.get("error") or ""}


def media_json(record: Mapping[str, Any]) -> dict[str, Any]:
    """An attachment record (never its bytes) as the console reads it."""
    media = record.get("media") or {}
    return {"message_id": str(record["_id"]), "type": media.get("type", ""),
            "mime_type": media.get("mime_type", ""), "caption": media.get("caption", ""),
            "filename": media.get("filename", ""), "error": record.get("error") or ""}


class ConsoleNotes:
    """Deliveries and attachments of channel conversations, for the agents who may see them.

    ``provider_for(slug)`` names the provider that can fetch a channel's files
    (None when that channel is no longer configured).
    """

    def __init__(self, services: Services, store: ChannelStore,
                 provider_for: Callable[[str], ChannelProvider | None],
                 clock: Callable[[], datetime]) -> None:
        self.services = services
        self.store = store
        self.provider_for = provider_for
        self.clock = clock
        self.max_bytes = services.config.channel_media_max_bytes
        self._downloads: dict[str, asyncio.Future[MediaFile]] = {}
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_DOWNLOADS)

    # ------------------------------------------------------------ live pushes

    async def push(self, conversation_id: str | None, *,
                   media: list[dict[str, Any]] | None = None,
                   deliveries: list[dict[str, Any]] | None = None) -> None:
        """Tell the agents following the conversation; never raises (a push is a courtesy)."""
        support = self.services.support
        if not conversation_id or support is None:
            return
        try:
            conversation = await support.store.conversations.get(conversation_id)
            if conversation is None:
                return
            support.to_followers(conversation, frames.channel_update(
                conversation_id, media or [], deliveries or []))
        except Exception:
            logger.exception("telling the console of a channel change failed")

    # ------------------------------------------------------------ questions

    async def info(self, user: User, conversation_id: str) -> dict[str, Any]:
        """The conversation's attachments and its replies' delivery states; `NotFound` if not the
        user's."""
        await self._authorise(user, conversation_id)
        media = await self.store.media_for(conversation_id, MAX_LISTED)
        deliveries = await self.store.deliveries_for(conversation_id, MAX_LISTED)
        return {"conversation_id": conversation_id,
                "media": [media_json(r) for r in media],
                "deliveries": [delivery_json(r) for r in deliveries]}

    async def media(self, user: User, message_id: str) -> MediaFile:
        """The attachment of support message ``message_id``.

        `NotFound` when there is none or its conversation is not the user's;
        `MediaUnavailable` (with a reason to show) when it cannot be had.
        """
        record = await self.store.media_of(message_id)
        if record is None:
            raise NotFound("No such attachment.")
        await self._authorise(user, str(record["conversation_id"]))
        if record.get("error"):
            raise MediaUnavailable(str(record["error"]), final=True)
        stored = await self.store.media_file(message_id)
        if stored is not None:
            return MediaFile(stored["file"], stored["content_type"], stored["filename"])
        running = self._downloads.get(message_id)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[MediaFile] = asyncio.get_running_loop().create_future()
        self._downloads[message_id] = future
        try:
            file = await self._download(message_id, record)
            future.set_result(file)
            return file
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so a future nobody else awaits logs nothing
            raise
        finally:
            self._downloads.pop(message_id, None)

    async def _download(self, message_id: str, record: Mapping[str, Any]) -> MediaFile:
        provider = self.provider_for(str(record.get("slug", "")))
        if provider is None:
            raise MediaUnavailable("the channel it came through is no longer configured")
        raw = record.get("media") or {}
        media = Media(str(raw.get("media_id", "")), str(raw.get("type", "")),
                      str(raw.get("mime_type", "")), str(raw.get("caption", "")),
                      str(raw.get("filename", "")))
        try:
            async with self._slots:
                file = await provider.fetch_media(media, self.max_bytes)
        except MediaUnavailable as exc:
            logger.warning("%s: an attachment cannot be had: %s", provider.name, exc.reason,
                           extra={"message_id": message_id})
            if exc.final:
                await self.store.set_media_error(message_id, exc.reason, self.clock())
            raise
        await self.store.set_media_file(message_id, file.content, file.content_type,
                                        file.filename, self.clock())
        return file

    async def _authorise(self, user: User, conversation_id: str) -> None:
        support = self.services.support
        if support is None:
            raise NotFound("No such conversation.")
        await support.conversation_for(user, conversation_id)  # NotFound if not the user's
