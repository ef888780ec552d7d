"""Routing: each customer message goes to the bot or an agent; queueing and assignment."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Literal

from whatsease.metrics import (
    SUPPORT_ASSIGNMENTS,
    SUPPORT_QUEUED,
)
from whatsease.storage.support_models import Org, SupportConversation, SupportMessage
from whatsease.support.assignment import choose_agent
from whatsease.support.core import (
    LIST_MAX_LIMIT,
    QUEUED_TEXT,
    customer_actor,
)
from whatsease.support.fanout import SupportFanout

logger = logging.getLogger(__name__)

# What to do with a conversation when a customer writes (or an agent is needed).
Route = Literal["bot", "keep", "queued", "queue", "assign"]


def decide_route(conversation: SupportConversation, org_routing: str, *,
                 agent_needed: bool, agent_available: bool, anyone_online: bool) -> Route:
    """The routing decision, from facts alone (no I/O, no clock).

    ``bot``: the bot answers (the conversation's pinned mode, else the org's
    ``routing``); ``keep``: its agent is available and keeps it; ``queued``:
    already waiting for an agent, nobody online; ``queue``: nobody online, put
    it in the queue; ``assign``: pick one of the online agents. ``agent_needed``
    skips the bot question (an agent was asked for, or a queue is drained).
    """
    if not agent_needed:
        mode = conversation.mode if conversation.mode != "auto" else org_routing
        if mode == "bot":
            return "bot"
    if conversation.handler == "agent" and conversation.agent and agent_available:
        return "keep"
    if not anyone_online:
        if conversation.handler == "queued" and conversation.agent_requested_at:
            return "queued"
        return "queue"
    return "assign"


class SupportRouting(SupportFanout):
    """Routing: each customer message goes to the bot or an agent; queueing and assignment."""

    # ------------------------------------------------------------------ routing

    async def _route(self, conversation: SupportConversation, org: Org,
                     message: SupportMessage) -> None:
        route = decide_route(conversation, org.settings.routing, agent_needed=False,
                             agent_available=False, anyone_online=False)
        if route == "bot":
            if conversation.handler != "bot":
                previous = conversation.agent
                moved = await self.store.conversations.update(
                    conversation.conversation_id, {"handler": "bot", "agent": None})
                if moved is None:
                    return
                conversation = moved
                self._emit_conversation(conversation, also=[previous] if previous else [])
                self._schedule_agents_push(org.org_id)
            self._schedule_bot(conversation.conversation_id, message)
            return
        # ``conversation`` was just written (the message's count), so its agent is
        # current: an available agent keeps it without the locked re-read below.
        keep = decide_route(conversation, org.settings.routing, agent_needed=True,
                            anyone_online=True,
                            agent_available=bool(conversation.agent) and self.presence.available(
                                conversation.org, conversation.agent or ""))
        if keep == "keep":
            return
        await self._ensure_agent(conversation.conversation_id,
                                 requested_at=message.timestamp)

    async def _ensure_agent(self, conversation_id: str, *,
                            requested_at: datetime | None = None) -> SupportConversation | None:
        """Make sure an agent answers: keep an available one, assign one, or queue.

        Serialised per org so that concurrent assignments see each other's loads.
        """
        conversation = await self.store.conversations.get(conversation_id)
        if conversation is None:
            return None
        lock = self._org_locks.setdefault(conversation.org, asyncio.Lock())
        async with lock:
            conversation = await self.store.conversations.get(conversation_id)
            if conversation is None or not conversation.active:
                return conversation
            org_id = conversation.org
            online = self.presence.online(org_id)
            route = decide_route(
                conversation, "agent", agent_needed=True, anyone_online=bool(online),
                agent_available=bool(conversation.agent)
                and self.presence.available(org_id, conversation.agent or ""))
            if route in ("keep", "queued"):
                return conversation
            requested = conversation.agent_requested_at or requested_at or self.clock()
            previous = conversation.agent
            if route == "queue":
                queued = await self.store.conversations.update(
                    conversation_id, {"handler": "queued", "agent": None,
                                      "agent_requested_at": requested})
                if queued is None:
                    return None
                SUPPORT_QUEUED.inc()
                await self._record(org_id, "support.queued", customer_actor(queued),
                                   f"{queued.customer_name} is waiting in the queue",
                                   conversation_id)
                await self._post(queued, "system", f"org:{org_id}", "", QUEUED_TEXT,
                                 keep_alive=False)
                self._emit_conversation(queued, also=[previous] if previous else [])
                self._schedule_agents_push(org_id)
                return queued
            org = await self.orgs.get(org_id)
            loads = await self.store.conversations.loads(org_id, sorted(online))
            agent = choose_agent(org.settings.assignment, loads, org.last_assigned, self.rng)
            now = self.clock()
            assigned = await self.store.conversations.update(
                conversation_id, {"handler": "agent", "agent": agent, "assigned_at": now,
                                  "agent_requested_at": requested},
                push_agent=agent)
            if assigned is None:
                return None
            await self.orgs.set_last_assigned(org_id, agent)
            SUPPORT_ASSIGNMENTS.labels(org.settings.assignment).inc()
            name = online[agent].name
            await self._record(org_id, "support.assigned", agent,
                               f"{assigned.customer_name}'s conversation was assigned to "
                               f"{name}", conversation_id, also=[agent])
            await self._post(assigned, "system", f"org:{org_id}", "",
                             f"{name} joined the conversation.", keep_alive=False)
            self._announce_agent(assigned, name)
            self._emit_conversation(assigned, also=[previous] if previous else [])
            self._schedule_agents_push(org_id)
            return assigned

    async def assign_queued(self, org_id: str) -> int:
        """Assign the org's queued conversations, oldest first; returns how many were assigned."""
        queued = await self.store.conversations.find(org_id, status="active", handler="queued",
                                                     limit=LIST_MAX_LIMIT, oldest_first=True)
        assigned = 0
        for conversation in queued:
            result = await self._ensure_agent(conversation.conversation_id)
            if result is not None and result.handler == "agent":
                assigned += 1
        return assigned
