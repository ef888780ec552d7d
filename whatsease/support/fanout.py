"""Fan-out: which sockets see a support frame, sent through the process hub."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from whatsease.delivery import frames
from whatsease.delivery.events import MessageEvent
from whatsease.delivery.hub import Connection
from whatsease.metrics import (
    SUPPORT_SESSIONS,
)
from whatsease.storage.support_models import SupportConversation, SupportMessage
from whatsease.support.core import (
    AGENTS_PUSH_DELAY_SECS,
    SupportCore,
    console_key,
    customer_actor,
    customer_key,
    ended_detail,
    minutes_text,
)

logger = logging.getLogger(__name__)


class SupportFanout(SupportCore):
    """Fan-out: which sockets see a support frame, sent through the process hub."""

    def _deliver(self, conversation: SupportConversation, message: SupportMessage,
                 origin: Connection | None = None) -> None:
        """A new message: to the customer's sockets and to the agents who follow it."""
        self.hub.publish(MessageEvent(message.to_json(for_customer=True)),
                         (customer_key(conversation.conversation_id), origin))
        # Agents' copy names the conversation and keeps the fields customers do not see.
        event = MessageEvent(message.to_json(), conversation_id=conversation.conversation_id)
        self.hub.publish(event, *((console_key(email), origin)
                                  for email in self._message_audience(conversation)))
        if message.kind == "customer":
            self._emit_conversation(conversation)

    def _announce_agent(self, conversation: SupportConversation, name: str) -> None:
        """Tell the customer's widget who answers now, so its header names them at once."""
        self.hub.send(customer_key(conversation.conversation_id),
                      frames.agent_joined({**conversation.to_customer_json(), "agent_name": name}))

    def _message_audience(self, conversation: SupportConversation) -> set[str]:
        """Agents who see this conversation's messages live: its agent and the org's admins;
        everyone in the org while it is with the bot or queued (so anyone can take it)."""
        online = self.presence.online(conversation.org)
        if conversation.handler in ("bot", "queued") or not conversation.active:
            return set(online)
        audience = {email for email, state in online.items() if state.role == "admin"}
        if conversation.agent:
            audience.add(conversation.agent)
        return audience

    def to_followers(self, conversation: SupportConversation, frame: bytes) -> None:
        """Send ``frame`` to the consoles that see this conversation's messages live."""
        self._to_consoles(self._message_audience(conversation), frame)

    def _to_consoles(self, emails: Iterable[str], frame: bytes,
                     exclude: Connection | None = None) -> None:
        """Send ``frame`` to the console sockets of these agents."""
        self.hub.send_many([console_key(e) for e in emails], frame, exclude)

    def _emit_conversation(self, conversation: SupportConversation,
                           also: Iterable[str] = ()) -> None:
        """A conversation changed: every online agent of the org updates its lists."""
        online = set(self.presence.online(conversation.org)) | set(also)
        self._to_consoles(online, frames.conversation(conversation.to_agent_json()))

    async def _after_end(self, conversation: SupportConversation,
                         actor: str | None = None) -> None:
        reason = conversation.end_reason or "closed"
        event = {"timeout": "expired", "closed": "closed", "customer": "ended_by_customer"}
        SUPPORT_SESSIONS.labels(event.get(reason, reason)).inc()
        kind = "support.session_expired" if reason == "timeout" else "support.session_closed"
        text = (f"{conversation.customer_name}'s conversation ended after "
                f"{minutes_text(conversation)} without messages" if reason == "timeout"
                else f"{conversation.customer_name}'s conversation was closed")
        await self._record(conversation.org, kind, actor or customer_actor(conversation), text,
                           conversation.conversation_id,
                           also=[conversation.agent] if conversation.agent else [])
        self.hub.send(customer_key(conversation.conversation_id),
                            frames.session(conversation.to_customer_json(),
                                           ended_detail(conversation)))
        self._emit_conversation(conversation)
        self._schedule_agents_push(conversation.org)

    def _schedule_agents_push(self, org_id: str) -> None:
        if org_id in self._agents_push:
            return
        self._agents_push.add(org_id)
        self.spawn(self._push_agents(org_id), f"support-agents:{org_id}")

    async def _push_agents(self, org_id: str) -> None:
        try:
            await asyncio.sleep(AGENTS_PUSH_DELAY_SECS)
        finally:
            self._agents_push.discard(org_id)
        online = self.presence.online(org_id)
        if not online:
            return
        try:
            agents = await self.agents_view(org_id)
        except Exception:
            logger.exception("computing agent loads failed")
            return
        self._to_consoles(set(online), frames.agents(agents))


    def customer_connected(self, conn: Connection) -> None:
        self.hub.add(conn)

    def customer_disconnected(self, conn: Connection) -> None:
        self.hub.remove(conn)
