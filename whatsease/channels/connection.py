"""A contact's place in the process hub: forwards what WhatsEase says to it to its platform."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import orjson

from whatsease.channels.core import FORWARDED_MEMORY, Channel
from whatsease.cluster.routing import org_route, user_route

if TYPE_CHECKING:
    from whatsease.channels.replies import ChannelReplies


class ChannelConnection:
    """A contact's (or its support conversation's) place in the hub: forwards the
    frames meant for the contact to its platform.

    Frames are JSON with ``type`` first; only ``message`` frames of a bot,
    agent or system note for this contact are forwarded, each message once.
    """

    def __init__(self, service: ChannelReplies, channel: Channel, key: str, contact: str,
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
            self._service.queue_reply(self.channel, self.contact, message_id, text,
                                      conversation_id=self.conversation_id)

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

