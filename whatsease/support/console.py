"""Agents' consoles and dashboard: presence, snapshots, loads, offline grace."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from whatsease.delivery.frames import WS_4003_FORBIDDEN_ORIGIN
from whatsease.delivery.hub import Connection
from whatsease.errors import Forbidden
from whatsease.storage.models import User
from whatsease.storage.support_models import SupportConversation
from whatsease.support.agents import SupportAgents
from whatsease.support.core import (
    FIRST_RESPONSE_WINDOW_DAYS,
    LIST_MAX_LIMIT,
    console_key,
)
from whatsease.support.orgs import is_org_admin

logger = logging.getLogger(__name__)


class SupportConsole(SupportAgents):
    """Agents' consoles and dashboard: presence, snapshots, loads, offline grace."""

    # ------------------------------------------------------------------ console sockets

    async def console_connected(self, conn: Connection, user: User) -> None:
        """An agent opened the console: they are online; queued customers get assigned."""
        org_id = await self.member_org(user)
        self.hub.add(conn)
        timer = self._offline_timers.pop((org_id, user.email), None)
        if timer is not None:
            timer.cancel()
        if self.presence.connect(org_id, user.email, role=user.role, name=user.name):
            self._schedule_agents_push(org_id)
            await self.assign_queued(org_id)

    async def console_disconnected(self, conn: Connection, user: User) -> None:
        self.hub.remove(conn)
        org_id = user.org
        if org_id is None or not self.presence.disconnect(org_id, user.email):
            return
        self._schedule_agents_push(org_id)
        key = (org_id, user.email)
        if self.presence.grace_secs <= 0:
            await self._agent_gone(org_id, user.email)
            return
        self._offline_timers[key] = asyncio.get_running_loop().create_task(
            self._after_grace(org_id, user.email), name=f"support-offline:{user.email}")

    async def _after_grace(self, org_id: str, email: str) -> None:
        try:
            await asyncio.sleep(self.presence.grace_secs)
            self._offline_timers.pop((org_id, email), None)
            await self._agent_gone(org_id, email)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("reassigning an offline agent's conversations failed")

    async def _agent_gone(self, org_id: str, email: str) -> None:
        """The agent stayed away: their active conversations go to others (or the queue)."""
        if self.presence.available(org_id, email):
            return
        self.presence.prune(org_id, email)
        mine = await self.store.conversations.find(org_id, status="active", handler="agent",
                                                   agent=email, limit=LIST_MAX_LIMIT,
                                                   oldest_first=True)
        for conversation in mine:
            await self._ensure_agent(conversation.conversation_id)

    async def member_removed(self, org_id: str, email: str) -> None:
        """An agent left the org: close their consoles and pass their conversations on."""
        self.hub.close_user(console_key(email), WS_4003_FORBIDDEN_ORIGIN, "removed from the org")
        self.presence.forget(org_id, email)
        self.services.auth.forget_user(email)
        self._admins.pop(org_id, None)
        await self._agent_gone(org_id, email)

    def member_changed(self, org_id: str, email: str) -> None:
        self.services.auth.forget_user(email)
        self._admins.pop(org_id, None)

    async def console_snapshot(self, user: User) -> dict[str, object]:
        """What the console shows on connect: the lists and the org's agents."""
        org_id = await self.member_org(user)
        org = await self.orgs.get(org_id)
        admin = is_org_admin(user, org_id)
        scopes = ["mine", "queued", "bot"] + (["active"] if admin else [])
        seen: dict[str, SupportConversation] = {}
        for scope in scopes:
            for conversation in await self.list_conversations(user, scope=scope, limit=100):
                seen[conversation.conversation_id] = conversation
        return {"org": org.to_json(settings=admin), "admin": admin,
                "conversations": [c.to_agent_json() for c in seen.values()],
                "agents": await self.agents_view(org_id)}

    async def agents_view(self, org_id: str) -> list[dict[str, object]]:
        """Every agent of the org: online, active conversations, first-response times."""
        members = await self.orgs.members(org_id)
        emails = [m.email for m in members]
        loads = await self.store.conversations.loads(org_id, emails)
        since = self.clock() - timedelta(days=FIRST_RESPONSE_WINDOW_DAYS)
        firsts = await self.store.conversations.first_responses(org_id, since=since)
        return [{"email": m.email, "name": m.name, "role": m.role,
                 "online": self.presence.is_online(org_id, m.email),
                 "active_conversations": loads.get(m.email, 0),
                 "first_response_avg_secs": (round(firsts[m.email][0], 1)
                                             if m.email in firsts else None),
                 "first_responses": firsts.get(m.email, (0.0, 0))[1]} for m in members]

    async def dashboard(self, user: User) -> dict[str, Any]:
        """The admin's dashboard: active conversations, the queue and per-agent load."""
        org_id = await self.member_org(user)
        if not is_org_admin(user, org_id):
            raise Forbidden("Only the organisation's admins see the dashboard.")
        org = await self.orgs.get(org_id)
        active = await self.store.conversations.find(org_id, status="active",
                                                     limit=LIST_MAX_LIMIT)
        return {"org": org.to_json(settings=False), "routing": org.settings.routing,
                "assignment": org.settings.assignment,
                "queue": sum(1 for c in active if c.handler == "queued"),
                "with_bot": sum(1 for c in active if c.handler == "bot"),
                "with_agents": sum(1 for c in active if c.handler == "agent"),
                "active": [c.to_agent_json() for c in active],
                "agents": await self.agents_view(org_id)}
