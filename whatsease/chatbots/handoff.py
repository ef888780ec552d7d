"""Handing a chatbot instance's sender to an organisation's agents, through support.

When an instance's answers to one sender score below the org's
``auto_handoff_threshold`` for ``low_confidence_turns`` answers in a row, the
sender becomes a support customer of that org: a support conversation is
opened for their contact address, pinned to an agent (support's own handoff:
assignment, queueing, the console), and their message is posted in it. From
then on their messages go to that conversation instead of the model; what the
agent (or the org) writes in it reaches them through the instance's chat
provider, by the channel service's hub connection. When the conversation ends
(an agent closes it, or its timeout passes), the bot answers again.
"""

from __future__ import annotations

from whatsease.channels.base import ChannelProvider, InboundMessage
from whatsease.channels.service import Channel
from whatsease.chatbots.configs import HandoffConfig
from whatsease.errors import NotFound
from whatsease.services import Services
from whatsease.support.core import SessionEnded, customer_key
from whatsease.timeutil import utcnow

HANDOFF_TEXT = ("I'm not sure I can help with that, so I'm passing you to a person from our "
                "team. They will answer here.")


class Handoffs:
    """Opens support conversations for senders and forwards their messages to them."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def _channel(self, instance_id: str, chat: ChannelProvider, org_id: str) -> Channel:
        return Channel(provider=chat, slug=f"chatbot-{instance_id}", binding=f"org:{org_id}")

    async def start(self, instance_id: str, chat: ChannelProvider, config: HandoffConfig,
                    sender: str, reply_to: str, texts: list[str]) -> str:
        """Open the conversation, pin it to an agent, post ``texts``; its id.

        Raises `NotFound` when the org no longer exists and `RuntimeError` when
        support or the channels are not set up.
        """
        support, channels = self.services.support, self.services.channels
        if support is None or channels is None:
            raise RuntimeError("support and channels must be set up for handoffs")
        org = await support.orgs.get(config.org_id)  # NotFound when it no longer exists
        conversation, _token, _opening = await support.start_session(org, sender, sender)
        conversation_id = conversation.conversation_id
        self._attach(instance_id, chat, config.org_id, reply_to, conversation_id)
        await self._touch(chat, reply_to)
        await support.hand_to_agent(
            conversation_id, f"The chatbot of {sender} was unsure; {sender} was handed to an "
                             "agent")
        for text in texts:
            await support.customer_send(conversation_id, text)
        return conversation_id

    async def forward(self, instance_id: str, chat: ChannelProvider, config: HandoffConfig,
                      conversation_id: str, message: InboundMessage) -> bool:
        """Post the sender's message in their conversation; False when it has ended."""
        support = self.services.support
        if support is None:
            return False
        self._attach(instance_id, chat, config.org_id, message.reply_address, conversation_id)
        await self._touch(chat, message.reply_address)
        try:
            await support.customer_send(conversation_id, message.text,
                                        client_id=f"{chat.name}:{message.message_id}"[:128])
        except (SessionEnded, NotFound):
            return False
        return True

    def _attach(self, instance_id: str, chat: ChannelProvider, org_id: str, contact: str,
                conversation_id: str) -> None:
        channels = self.services.channels
        if channels is not None:
            channels.attach(self._channel(instance_id, chat, org_id),
                            customer_key(conversation_id), contact,
                            conversation_id=conversation_id)

    async def _touch(self, chat: ChannelProvider, contact: str) -> None:
        # The agent's replies leave through the channel service, which checks the
        # platform's customer-service window against the contact's last message.
        channels = self.services.channels
        if channels is not None:
            await channels.store.touch_contacts([(contact, chat.name, "", utcnow())])
