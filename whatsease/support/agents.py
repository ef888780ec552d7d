"""Agents' actions: lists, replies, typing, read, take over, hand back, transfer, close."""

from __future__ import annotations

import asyncio
import logging

from whatsease.delivery import frames
from whatsease.delivery.hub import Connection
from whatsease.errors import Conflict, Forbidden, NotFound
from whatsease.metrics import (
    SUPPORT_FIRST_RESPONSE,
    SUPPORT_HANDOFFS,
    SUPPORT_TRANSFERS,
)
from whatsease.storage.models import User, new_id
from whatsease.storage.support_models import AGENT_ROLES, SupportConversation, SupportMessage
from whatsease.support.core import (
    HANDBACK_TEXT,
    LIST_MAX_LIMIT,
    SessionEnded,
    customer_key,
)
from whatsease.support.orgs import is_member, is_org_admin
from whatsease.support.sessions import SupportSessions

logger = logging.getLogger(__name__)


class SupportAgents(SupportSessions):
    """Agents' actions: lists, replies, typing, read, take over, hand back, transfer, close."""

    # ------------------------------------------------------------------ agents

    async def member_org(self, user: User) -> str:
        """The org whose console ``user`` may use; 403 for anyone who is not an agent."""
        if user.role not in AGENT_ROLES or not user.org:
            raise Forbidden("Only an organisation's agents and admins can use the console.")
        return user.org

    async def conversation_for(self, user: User, conversation_id: str) -> SupportConversation:
        """A conversation of the user's org, refreshed; `NotFound` for any other."""
        conversation = await self.store.conversations.get(conversation_id)
        if conversation is None or not is_member(user, conversation.org):
            raise NotFound("No such conversation.")
        return await self.refresh(conversation)

    async def list_conversations(self, user: User, *, scope: str, customer: str | None = None,
                                 before: str | None = None,
                                 limit: int = 50) -> list[SupportConversation]:
        """The console's lists: mine, queued, bot, active (admins), ended, or one customer's."""
        org_id = await self.member_org(user)
        limit = min(limit, LIST_MAX_LIMIT)
        repo = self.store.conversations
        if customer is not None:
            return await repo.find(org_id, customer=customer, before=before, limit=limit)
        if scope == "mine":
            return await repo.find(org_id, status="active", handler="agent", agent=user.email,
                                   before=before, limit=limit)
        if scope in ("queued", "bot"):
            return await repo.find(org_id, status="active", handler=scope, before=before,
                                   limit=limit)
        admin = is_org_admin(user, org_id)
        if scope == "active":
            if not admin:
                raise Forbidden("Only the organisation's admins see every conversation.")
            return await repo.find(org_id, status="active", before=before, limit=limit)
        if scope == "ended":
            return await repo.find(org_id, status="ended", before=before, limit=limit,
                                   handled_by=None if admin else user.email)
        raise NotFound("No such list.")

    async def agent_send(self, user: User, conversation_id: str, content: str, *,
                         client_id: str | None = None,
                         origin: Connection | None = None) -> SupportMessage:
        """An agent's reply; only the assigned agent may reply (409 otherwise)."""
        conversation = await self.conversation_for(user, conversation_id)
        if not conversation.active:
            raise SessionEnded("This conversation has ended.")
        if conversation.handler != "agent" or conversation.agent != user.email:
            raise Conflict("Take the conversation over before replying to it.",
                           code="not_assigned")
        if client_id is not None:
            earlier = await self.store.messages.by_client_id(conversation_id, client_id)
            if earlier is not None:
                return earlier
        org = await self.orgs.current(conversation.org)
        now = self.clock()
        message = SupportMessage(
            message_id=new_id(), conversation_id=conversation_id, org=org.org_id,
            kind="agent", sender=user.email, sender_name=user.name,
            recipient=conversation.customer_email, content=content, timestamp=now,
            client_id=client_id)
        fields: dict[str, object] = {"unread": 0}
        first_secs: float | None = None
        first = conversation.first_response_at is None and conversation.agent_requested_at
        if first and conversation.agent_requested_at is not None:
            first_secs = max(0.0, (now - conversation.agent_requested_at).total_seconds())
            fields.update({"first_response_at": now, "first_response_secs": first_secs,
                           "first_responder": user.email})
        updated = await self._count_message(conversation, message, org, unread=0,
                                            fields=fields)
        stored = await self._inserts.submit(message)
        if stored is not message:
            return stored
        if first_secs is not None:
            SUPPORT_FIRST_RESPONSE.observe(first_secs)
            self._schedule_agents_push(org.org_id)
        self._deliver(updated, stored, origin=origin)
        self._emit_conversation(updated)
        return stored

    async def agent_typing(self, user: User, conversation_id: str, state: bool) -> None:
        conversation = await self.store.conversations.get(conversation_id)
        if (conversation is None or not is_member(user, conversation.org)
                or conversation.agent != user.email or not conversation.active):
            return
        self.hub.send(customer_key(conversation_id),
                            frames.widget_typing("agent", user.name, state))

    async def mark_read(self, user: User, conversation_id: str) -> SupportConversation:
        conversation = await self.conversation_for(user, conversation_id)
        if conversation.unread == 0 or conversation.agent not in (user.email, None):
            return conversation
        updated = await self.store.conversations.update(conversation_id, {"unread": 0},
                                                        active_only=False)
        if updated is not None:
            self._emit_conversation(updated)
            return updated
        return conversation

    async def take_over(self, user: User, conversation_id: str) -> SupportConversation:
        """The agent answers from now on, whatever the routing (the bot stops)."""
        conversation = await self._for_action(user, conversation_id)
        org_id = conversation.org
        if conversation.handler == "agent" and conversation.agent == user.email:
            if conversation.mode != "agent":
                pinned = await self.store.conversations.update(conversation_id,
                                                               {"mode": "agent"})
                return pinned or conversation
            return conversation
        if (conversation.handler == "agent" and conversation.agent
                and self.presence.available(org_id, conversation.agent)
                and not is_org_admin(user, org_id)):
            raise Conflict("Another agent is answering this conversation; ask them to "
                           "transfer it to you.", code="assigned_elsewhere")
        previous = conversation.agent
        now = self.clock()
        async with self._org_locks.setdefault(org_id, asyncio.Lock()):
            updated = await self.store.conversations.update(
                conversation_id, {"mode": "agent", "handler": "agent", "agent": user.email,
                                  "assigned_at": now,
                                  "agent_requested_at": conversation.agent_requested_at or now},
                push_agent=user.email)
        if updated is None:
            raise SessionEnded("This conversation has ended.")
        SUPPORT_HANDOFFS.labels("takeover").inc()
        await self._record(org_id, "support.takeover", user.email,
                           f"{user.name} took over {updated.customer_name}'s conversation",
                           conversation_id, also=[user.email])
        await self._post(updated, "system", f"org:{org_id}", "",
                         f"{user.name} joined the conversation.", keep_alive=False)
        self._announce_agent(updated, user.name)
        self._emit_conversation(updated, also=[previous] if previous else [])
        self._schedule_agents_push(org_id)
        return updated

    async def hand_back(self, user: User, conversation_id: str) -> SupportConversation:
        """Give the conversation back to the bot (pinned, whatever the routing)."""
        conversation = await self._for_action(user, conversation_id, assigned=True)
        previous = conversation.agent
        updated = await self.store.conversations.update(
            conversation_id, {"mode": "bot", "handler": "bot", "agent": None})
        if updated is None:
            raise SessionEnded("This conversation has ended.")
        SUPPORT_HANDOFFS.labels("handback").inc()
        await self._record(updated.org, "support.handback", user.email,
                           f"{user.name} handed {updated.customer_name}'s conversation back "
                           "to the bot", conversation_id, also=[user.email])
        await self._post(updated, "system", f"org:{updated.org}", "", HANDBACK_TEXT,
                         keep_alive=False)
        self._emit_conversation(updated, also=[previous] if previous else [])
        self._schedule_agents_push(updated.org)
        return updated

    async def transfer(self, user: User, conversation_id: str,
                       target_email: str) -> SupportConversation:
        """Hand the conversation to another online agent of the org."""
        conversation = await self._for_action(user, conversation_id, assigned=True)
        org_id = conversation.org
        target = await self.services.store.users.get(target_email)
        if target is None or not is_member(target, org_id):
            raise NotFound("No such agent in this organisation.",
                           errors=[{"field": "agent", "message": "is not an agent here"}])
        if target.email == conversation.agent:
            raise Conflict("The conversation is already with this agent.", code="same_agent")
        if not self.presence.is_online(org_id, target.email):
            raise Conflict(f"{target.name} is offline; transfer to an online agent.",
                           errors=[{"field": "agent", "message": "is offline"}],
                           code="agent_offline")
        previous = conversation.agent
        async with self._org_locks.setdefault(org_id, asyncio.Lock()):
            updated = await self.store.conversations.update(
                conversation_id, {"mode": "agent", "handler": "agent", "agent": target.email,
                                  "assigned_at": self.clock()},
                push_agent=target.email)
        if updated is None:
            raise SessionEnded("This conversation has ended.")
        SUPPORT_TRANSFERS.inc()
        await self._record(org_id, "support.transferred", user.email,
                           f"{user.name} transferred {updated.customer_name}'s conversation to "
                           f"{target.name}", conversation_id,
                           also=[user.email, target.email])
        await self._post(updated, "system", f"org:{org_id}", "",
                         f"{target.name} joined the conversation.", keep_alive=False)
        self._announce_agent(updated, target.name)
        self._emit_conversation(updated, also=[previous] if previous else [])
        self._schedule_agents_push(org_id)
        return updated

    async def close(self, user: User, conversation_id: str) -> SupportConversation:
        """End the conversation; the customer's widget offers a new one."""
        conversation = await self._for_action(user, conversation_id, assigned=True,
                                              unassigned_ok=True)
        await self._post(conversation, "system", f"org:{conversation.org}", "",
                         f"{user.name} closed the conversation.", keep_alive=False)
        ended = await self.store.conversations.end(conversation_id, now=self.clock(),
                                                   reason="closed")
        if ended is None:
            raise SessionEnded("This conversation has ended.")
        await self._after_end(ended, actor=user.email)
        return ended

    async def _for_action(self, user: User, conversation_id: str, *, assigned: bool = False,
                          unassigned_ok: bool = False) -> SupportConversation:
        conversation = await self.conversation_for(user, conversation_id)
        if not conversation.active:
            raise SessionEnded("This conversation has ended.")
        if assigned and not is_org_admin(user, conversation.org):
            mine = conversation.handler == "agent" and conversation.agent == user.email
            free = unassigned_ok and conversation.handler in ("bot", "queued")
            if not (mine or free):
                raise Conflict("Only the agent answering this conversation (or an admin) may "
                               "do that.", code="not_assigned")
        return conversation
