"""The bot bridge: the org's chatbot answers customers, one reply at a time per conversation."""

from __future__ import annotations

import asyncio
import logging

from whatsease.delivery import frames
from whatsease.metrics import (
    SUPPORT_BOT_REPLIES,
    SUPPORT_HANDOFFS,
)
from whatsease.storage.support_models import SupportMessage
from whatsease.support.core import (
    BOT_CONTEXT_MESSAGES,
    MAX_BOT_PENDING,
    customer_actor,
    customer_key,
)
from whatsease.support.routing import SupportRouting

logger = logging.getLogger(__name__)


class SupportBotBridge(SupportRouting):
    """The bot bridge: the org's chatbot answers customers, one reply at a time per conversation."""

    # ------------------------------------------------------------------ the bot

    def _schedule_bot(self, conversation_id: str, message: SupportMessage) -> None:
        queue = self._bot_queues.get(conversation_id)
        if queue is not None:
            if len(queue) < MAX_BOT_PENDING:
                queue.append(message)
            else:
                SUPPORT_BOT_REPLIES.labels("dropped_busy").inc()
            return
        self._bot_queues[conversation_id] = [message]
        self.spawn(self._drain_bot(conversation_id), f"support-bot:{conversation_id}")

    async def _drain_bot(self, conversation_id: str) -> None:
        queue = self._bot_queues[conversation_id]
        try:
            while queue:
                try:
                    await self._bot_reply(conversation_id, queue[0])
                except asyncio.CancelledError:
                    raise
                except Exception:
                    SUPPORT_BOT_REPLIES.labels("error").inc()
                    logger.exception("support bot failed to answer",
                                     extra={"conversation_id": conversation_id})
                queue.pop(0)
        finally:
            self._bot_queues.pop(conversation_id, None)

    async def _bot_reply(self, conversation_id: str, message: SupportMessage) -> None:
        conversation = await self.store.conversations.get(conversation_id)
        if conversation is None or not conversation.active or conversation.handler != "bot":
            return  # an agent took over (or the session ended) while this waited
        org = await self.orgs.current(conversation.org)
        bot_name = self.chatbot.bot_name(org)
        key = customer_key(conversation_id)
        self.hub.send(key, frames.widget_typing("bot", bot_name, True))
        try:
            history = list(reversed(await self.store.messages.history(
                conversation_id, before=None, limit=BOT_CONTEXT_MESSAGES)))
            answer = await self.chatbot.answer(
                org, message.content, state=conversation.bot_state,
                customer_name=conversation.customer_name, history=history, now=self.clock())
            current = await self.store.conversations.get(conversation_id)
            if current is None or not current.active or current.handler != "bot":
                return
            saved = await self.store.conversations.update(conversation_id,
                                                          {"bot_state": answer.state})
            if saved is None:
                return
            SUPPORT_BOT_REPLIES.labels(answer.source).inc()
            await self._post(saved, "bot", f"bot:{org.org_id}", bot_name, answer.text,
                             keep_alive=True)
        finally:
            self.hub.send(key, frames.widget_typing("bot", bot_name, False))
        if answer.handoff:
            pinned = await self.store.conversations.update(
                conversation_id, {"mode": "agent", "agent_requested_at": self.clock()})
            if pinned is None:
                return
            SUPPORT_HANDOFFS.labels("customer_request").inc()
            await self._record(org.org_id, "support.handoff", customer_actor(pinned),
                               f"{pinned.customer_name} asked the bot for a person",
                               conversation_id)
            await self._ensure_agent(conversation_id)

    async def hand_to_agent(self, conversation_id: str, reason: str) -> None:
        """Pin a conversation to an agent as when the customer asks for a person.

        For bots outside support (chatbot instances) that stayed unsure;
        ``reason`` is the activity entry's sentence.
        """
        pinned = await self.store.conversations.update(
            conversation_id, {"mode": "agent", "agent_requested_at": self.clock()})
        if pinned is None:
            return
        SUPPORT_HANDOFFS.labels("bot_unsure").inc()
        await self._record(pinned.org, "support.handoff", customer_actor(pinned), reason,
                           conversation_id)
        await self._ensure_agent(conversation_id)
