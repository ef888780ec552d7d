"""Support conversations: widget sessions, routing to the bot or an agent, handoffs and expiry.

A customer's widget session *is* a conversation. It is active until nobody has
written for the org's session timeout (default 300 s): the periodic sweeper
ends it on its own, and every read or write checks the time too, so a message
at or after the timeout is refused (410 ``session_ended``) and never dropped
silently. The clock is an attribute (``service.clock``) so tests can move it.

Routing happens for each customer message: the conversation follows the org's
``routing`` setting unless it was pinned (``mode``) by the customer asking for a
person, an agent taking over or transferring (pinned to ``agent``) or an agent
handing back (pinned to ``bot``). With ``agent``, a conversation keeps its agent
while they are available; otherwise the assignment policy (assignment.py) picks
among online agents, and with none online it is queued until one comes online.

Sockets of customers (per conversation, `customer_key`) and agents' consoles
(per agent, `console_key`) live in the process's one hub beside the messenger's,
so every frame to every socket passes ``Hub.send``; frames are encoded once per
audience.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from whatsease.auth.ratelimit import FailureLimiter, TokenBucket
from whatsease.batching import Batcher
from whatsease.errors import Conflict, Forbidden, Gone, NotFound, TooManyRequests, Unauthorized
from whatsease.metrics import (
    SUPPORT_ASSIGNMENTS,
    SUPPORT_BOT_REPLIES,
    SUPPORT_FIRST_RESPONSE,
    SUPPORT_HANDOFFS,
    SUPPORT_QUEUED,
    SUPPORT_SESSIONS,
    SUPPORT_TRANSFERS,
)
from whatsease.realtime.frames import WS_4003_FORBIDDEN_ORIGIN, encode
from whatsease.realtime.hub import Connection
from whatsease.services import Services
from whatsease.storage.models import User, new_id
from whatsease.storage.support import SUPPORT_INDEXES, SupportStore
from whatsease.support.assignment import choose_agent
from whatsease.support.chatbot import SupportChatbot
from whatsease.support.models import AGENT_ROLES, Org, SupportConversation, SupportMessage
from whatsease.support.orgs import OrgService, is_member, is_org_admin
from whatsease.support.presence import AgentPresence
from whatsease.timeutil import utcnow
from whatsease.writelane import URGENT

logger = logging.getLogger(__name__)

SERVICE_KEY = "support"
# How often the sweeper looks for conversations past their timeout, in seconds:
# a session ends at most this long after its timeout if nobody touches it.
SWEEP_INTERVAL_SECS = 1.0
SWEEP_BATCH = 200
# How long an agent whose last console closed keeps their conversations, in
# seconds: enough for a reload or a flaky network, short enough for customers.
AGENT_OFFLINE_GRACE_SECS = 30.0
# Admins' live per-agent load is recomputed at most this often per org, in seconds.
AGENTS_PUSH_DELAY_SECS = 0.25
# First-response times on the dashboard cover this many days.
FIRST_RESPONSE_WINDOW_DAYS = 7
HISTORY_MAX_LIMIT = 100
RESUME_MESSAGES = 50
LIST_MAX_LIMIT = 200
BOT_CONTEXT_MESSAGES = 20
# Customer messages waiting for the bot per conversation; beyond this they are
# stored and shown to agents but not answered by the bot.
MAX_BOT_PENDING = 10
# Per conversation: messages a customer may send per second (sustained) and in a burst.
CUSTOMER_SEND_RATE = 2.0
CUSTOMER_SEND_BURST = 10
# New sessions one IP may start per org in the window below, in seconds.
SESSION_STARTS_PER_IP = 30
SESSION_STARTS_WINDOW_SECS = 600
MAX_TRACKED_BUCKETS = 50_000
ADMIN_CACHE_SECS = 30.0

QUEUED_TEXT = ("All of our team are busy or away right now. You're in the queue, and an "
               "agent will join as soon as one is available.")
HANDBACK_TEXT = ("You're chatting with our assistant again. Type 'talk to a person' any "
                 "time to reach our team.")


class SessionEnded(Gone):
    """The conversation has ended (timed out or closed); start a new one."""

    code = "session_ended"
    title = "Conversation ended"


def customer_key(conversation_id: str) -> str:
    """The hub key of a conversation's customer sockets."""
    return f"support-conversation:{conversation_id}"


def console_key(email: str) -> str:
    """The hub key of an agent's console sockets (apart from their messenger sockets)."""
    return f"support-console:{email}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SupportService:
    """Everything the widget, the console and the support REST API call."""

    def __init__(self, services: Services, *, clock: Callable[[], datetime] = utcnow,
                 chatbot: SupportChatbot | None = None, rng: random.Random | None = None,
                 offline_grace: float = AGENT_OFFLINE_GRACE_SECS) -> None:
        self.services = services
        self.store = SupportStore(services.store.db)
        self.clock = clock
        self.orgs = OrgService(services.store, self.store, clock=lambda: self.clock())
        self.chatbot = chatbot or SupportChatbot(timeout=services.config.llm_timeout)
        self.rng = rng or random.Random()
        # The process's one hub: widget and console frames pass the same
        # ``send`` seam as chat frames (customer_key / console_key tell them apart).
        self.hub = services.hub
        # Support messages are group-committed like chat messages: one
        # insert_many per flush, in the write lane's urgent turn.
        self._inserts: Batcher[SupportMessage, SupportMessage] = Batcher(
            self._insert_batch, name="support-messages")
        self.presence = AgentPresence(offline_grace)
        self.sweep_interval = SWEEP_INTERVAL_SECS
        self._org_locks: dict[str, asyncio.Lock] = {}
        self._bot_queues: dict[str, list[SupportMessage]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._offline_timers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._agents_push: set[str] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._wake_sweeper = asyncio.Event()
        self._send_buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._session_starts = FailureLimiter(SESSION_STARTS_PER_IP, SESSION_STARTS_WINDOW_SECS)
        self._admins: dict[str, tuple[float, list[str]]] = {}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the expiry sweeper on the running loop."""
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(
                self.run_sweeper(), name="support-sweeper")

    async def stop_sweeper(self) -> None:
        """Stop the expiry sweeper (sessions still end when they are next touched)."""
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)

    async def _insert_batch(self, messages: list[SupportMessage]) -> list[SupportMessage]:
        async with self.services.messaging.lane.hold(URGENT):
            return await self.store.messages.insert_many(messages)

    async def stop(self) -> None:
        await self.stop_sweeper()
        timers = list(self._offline_timers.values())
        for task in timers:
            task.cancel()
        await asyncio.gather(*timers, return_exceptions=True)
        self._offline_timers.clear()
        await self.wait_idle()
        await self._inserts.drain()

    async def wait_idle(self, limit_secs: float = 10.0) -> None:
        """Wait for pending bot replies and pushes (tests; shutdown), at most ``limit_secs``."""
        deadline = asyncio.get_running_loop().time() + limit_secs
        while self._tasks:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            await asyncio.wait(set(self._tasks), timeout=left)

    def spawn(self, coro: Any, name: str) -> None:
        """Run ``coro`` in the background; `wait_idle` and `stop` wait for it."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run_sweeper(self) -> None:
        """End conversations past their timeout every ``sweep_interval`` s, until cancelled."""
        while True:
            try:
                await self.expire_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("support sweeper failed; retrying")
            self._wake_sweeper.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_sweeper.wait(), self.sweep_interval)

    def wake_sweeper(self) -> None:
        """Run the sweeper now instead of at its next tick (after the interval changed)."""
        self._wake_sweeper.set()

    async def expire_due(self) -> int:
        """End every active conversation whose timeout has passed; returns how many."""
        now = self.clock()
        ended = 0
        for conversation_id in await self.store.conversations.due(now, limit=SWEEP_BATCH):
            conversation = await self.store.conversations.end(
                conversation_id, now=now, reason="timeout", due_by=now)
            if conversation is not None:
                ended += 1
                await self._after_end(conversation)
        return ended

    # ------------------------------------------------------------------ customers

    async def start_session(self, org: Org, name: str, email: str, *, ip: str = "",
                            ) -> tuple[SupportConversation, str, list[SupportMessage]]:
        """Open a conversation for a customer; returns it, its secret token and its messages.

        The token is shown once; only its hash is stored. Raises `TooManyRequests`
        when one IP starts too many sessions for the org.
        """
        if ip:
            key = f"{org.org_id} {ip}"
            wait = self._session_starts.retry_after(key)
            if wait:
                raise TooManyRequests("Too many new conversations from here; try again later.",
                                      retry_after=wait)
            self._session_starts.fail(key)
        now = self.clock()
        conversation_id = new_id()
        token = f"{conversation_id}.{secrets.token_urlsafe(32)}"
        conversation = SupportConversation(
            conversation_id=conversation_id, org=org.org_id, customer_name=name,
            customer_email=email, token_hash=hash_token(token), created_at=now,
            last_message_at=now,
            expires_at=now + timedelta(seconds=org.settings.session_timeout),
            handler="bot" if org.settings.routing == "bot" else "queued")
        await self.store.conversations.insert(conversation)
        SUPPORT_SESSIONS.labels("started").inc()
        await self._record(org.org_id, "support.session_started", _customer(conversation),
                           f"{name} ({email}) started a support conversation with {org.name}",
                           conversation_id)
        if org.settings.greeting:
            await self._post(conversation, "system", f"org:{org.org_id}", org.name,
                             org.settings.greeting, keep_alive=False)
        self._emit_conversation(conversation)
        if org.settings.routing == "agent":
            await self._ensure_agent(conversation_id, requested_at=now)
        current = await self.store.conversations.get(conversation_id) or conversation
        messages = await self.store.messages.history(conversation_id, before=None,
                                                     limit=RESUME_MESSAGES)
        return current, token, list(reversed(messages))

    async def authenticate_customer(self, token: str, org_id: str | None = None,
                                    ) -> SupportConversation:
        """The conversation a widget token opens (active or ended); 401 otherwise.

        With ``org_id``, a token of another org's conversation is refused the same way.
        """
        conversation_id, _, secret = (token or "").partition(".")
        if not secret or len(token) > 200:
            raise Unauthorized("The session token is invalid.", code="invalid_token")
        conversation = await self.store.conversations.get(conversation_id)
        if conversation is None or not hmac.compare_digest(conversation.token_hash,
                                                           hash_token(token)):
            raise Unauthorized("The session token is invalid.", code="invalid_token")
        if org_id is not None and conversation.org != org_id:
            raise Unauthorized("The session token is invalid.", code="invalid_token")
        return conversation

    async def refresh(self, conversation: SupportConversation) -> SupportConversation:
        """The conversation as it stands now, ended first if its timeout has passed."""
        if conversation.active and conversation.expires_at <= self.clock():
            ended = await self.store.conversations.end(
                conversation.conversation_id, now=self.clock(), reason="timeout",
                due_by=self.clock())
            if ended is not None:
                await self._after_end(ended)
        return await self.store.conversations.get(conversation.conversation_id) or conversation

    async def customer_view(self, conversation: SupportConversation,
                            ) -> tuple[SupportConversation, list[SupportMessage]]:
        """What a returning widget shows: the conversation (maybe ended) and its latest messages."""
        current = await self.refresh(conversation)
        messages = await self.store.messages.history(current.conversation_id, before=None,
                                                     limit=RESUME_MESSAGES)
        return current, list(reversed(messages))

    async def history(self, conversation_id: str, *, before: str | None,
                      limit: int) -> list[SupportMessage]:
        """A page of the conversation, newest first, older than ``before``."""
        if before is not None:
            anchor = await self.store.messages.get(before)
            if anchor is None or anchor.conversation_id != conversation_id:
                raise NotFound("No such message to page from.",
                               errors=[{"field": "before", "message": "not in this chat"}])
        return await self.store.messages.history(conversation_id, before=before,
                                                 limit=min(limit, HISTORY_MAX_LIMIT))

    async def customer_send(self, conversation_id: str, content: str, *,
                            client_id: str | None = None,
                            origin: Connection | None = None) -> SupportMessage:
        """Store a customer's message, deliver it, and route it to the bot or an agent.

        Raises `SessionEnded` (410) if the conversation has ended or its timeout
        has passed, and `TooManyRequests` if the customer sends too fast.
        """
        conversation = await self._active(conversation_id)
        if client_id is not None:
            earlier = await self.store.messages.by_client_id(conversation_id, client_id)
            if earlier is not None:
                return earlier
        if not self._bucket(conversation_id).take():
            raise TooManyRequests("You're sending messages too fast; wait a moment.",
                                  retry_after=1)
        org = await self.orgs.get(conversation.org)
        message = SupportMessage(
            message_id=new_id(), conversation_id=conversation_id, org=org.org_id,
            kind="customer", sender=conversation.customer_email,
            sender_name=conversation.customer_name, recipient=f"org:{org.org_id}",
            content=content, timestamp=self.clock(), client_id=client_id)
        updated = await self._count_message(conversation, message, org, unread=1)
        stored = await self._inserts.submit(message)
        if stored is not message:
            return stored
        self._deliver(updated, stored, origin=origin)
        await self._route(updated, org, stored)
        return stored

    async def customer_typing(self, conversation: SupportConversation, state: bool) -> None:
        frame = encode("typing", conversation_id=conversation.conversation_id,
                       who="customer", name=conversation.customer_name, state=state)
        self._to_consoles(self._message_audience(conversation), frame)

    async def customer_end(self, conversation: SupportConversation) -> SupportConversation:
        """The customer closes the conversation from the widget."""
        ended = await self.store.conversations.end(conversation.conversation_id,
                                                   now=self.clock(), reason="customer")
        if ended is None:
            return await self.refresh(conversation)
        await self._after_end(ended)
        return ended

    def customer_connected(self, conn: Connection) -> None:
        self.hub.add(conn)

    def customer_disconnected(self, conn: Connection) -> None:
        self.hub.remove(conn)

    # ------------------------------------------------------------------ routing

    async def _route(self, conversation: SupportConversation, org: Org,
                     message: SupportMessage) -> None:
        mode = conversation.mode if conversation.mode != "auto" else org.settings.routing
        if mode == "bot":
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
            if (conversation.handler == "agent" and conversation.agent
                    and self.presence.available(org_id, conversation.agent)):
                return conversation
            requested = conversation.agent_requested_at or requested_at or self.clock()
            online = self.presence.online(org_id)
            previous = conversation.agent
            if not online:
                if conversation.handler == "queued" and conversation.agent_requested_at:
                    return conversation
                queued = await self.store.conversations.update(
                    conversation_id, {"handler": "queued", "agent": None,
                                      "agent_requested_at": requested})
                if queued is None:
                    return None
                SUPPORT_QUEUED.inc()
                await self._record(org_id, "support.queued", _customer(queued),
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
        org = await self.orgs.get(conversation.org)
        bot_name = self.chatbot.bot_name(org)
        key = customer_key(conversation_id)
        self.hub.send(key, encode("typing", who="bot", name=bot_name, state=True))
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
            self.hub.send(key, encode("typing", who="bot", name=bot_name, state=False))
        if answer.handoff:
            pinned = await self.store.conversations.update(
                conversation_id, {"mode": "agent", "agent_requested_at": self.clock()})
            if pinned is None:
                return
            SUPPORT_HANDOFFS.labels("customer_request").inc()
            await self._record(org.org_id, "support.handoff", _customer(pinned),
                               f"{pinned.customer_name} asked the bot for a person",
                               conversation_id)
            await self._ensure_agent(conversation_id)

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
        org = await self.orgs.get(conversation.org)
        now = self.clock()
        message = SupportMessage(
            message_id=new_id(), conversation_id=conversation_id, org=org.org_id,
            kind="agent", sender=user.email, sender_name=user.name,
            recipient=conversation.customer_email, content=content, timestamp=now,
            client_id=client_id)
        fields: dict[str, Any] = {"unread": 0}
        first = conversation.first_response_at is None and conversation.agent_requested_at
        if first and conversation.agent_requested_at is not None:
            seconds = max(0.0, (now - conversation.agent_requested_at).total_seconds())
            fields.update({"first_response_at": now, "first_response_secs": seconds,
                           "first_responder": user.email})
        updated = await self._count_message(conversation, message, org, unread=0,
                                            fields=fields)
        stored = await self._inserts.submit(message)
        if stored is not message:
            return stored
        if "first_response_secs" in fields:
            SUPPORT_FIRST_RESPONSE.observe(fields["first_response_secs"])
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
                            encode("typing", who="agent", name=user.name, state=state))

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

    async def console_snapshot(self, user: User) -> dict[str, Any]:
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

    async def agents_view(self, org_id: str) -> list[dict[str, Any]]:
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

    # ------------------------------------------------------------------ internals

    async def _active(self, conversation_id: str) -> SupportConversation:
        conversation = await self.store.conversations.get(conversation_id)
        if conversation is None:
            raise NotFound("No such conversation.")
        conversation = await self.refresh(conversation)
        if not conversation.active:
            raise SessionEnded(_ended_detail(conversation))
        return conversation

    async def _count_message(self, conversation: SupportConversation, message: SupportMessage,
                             org: Org, *, unread: int,
                             fields: dict[str, Any] | None = None) -> SupportConversation:
        """Record the message on its conversation (keeping it alive), or refuse if it ended."""
        now = message.timestamp
        updated = await self.store.conversations.record_message(
            conversation.conversation_id, now=now,
            expires_at=now + timedelta(seconds=org.settings.session_timeout),
            summary=message.summary(), unread=unread, fields=fields)
        if updated is None:
            current = await self.refresh(conversation)
            raise SessionEnded(_ended_detail(current))
        return updated

    async def _post(self, conversation: SupportConversation, kind: str, sender: str,
                    sender_name: str, content: str, *, keep_alive: bool) -> SupportMessage | None:
        """Store and deliver a bot or system message. None if the conversation has ended.

        Bot replies keep the session alive (a message in either direction);
        system notes (queued, joined, handed back) do not.
        """
        now = self.clock()
        message = SupportMessage(
            message_id=new_id(), conversation_id=conversation.conversation_id,
            org=conversation.org, kind=kind, sender=sender,
            sender_name=sender_name or await self._org_name(conversation.org),
            recipient=conversation.customer_email, content=content, timestamp=now)
        expires = None
        if keep_alive:
            org = await self.orgs.get(conversation.org)
            expires = now + timedelta(seconds=org.settings.session_timeout)
        updated = await self.store.conversations.record_message(
            conversation.conversation_id, now=now, expires_at=expires,
            summary=message.summary(), unread=0)
        if updated is None:
            return None
        await self._inserts.submit(message)
        self._deliver(updated, message)
        return message

    async def _org_name(self, org_id: str) -> str:
        org = await self.store.orgs.get(org_id)
        return org.name if org else org_id

    def _deliver(self, conversation: SupportConversation, message: SupportMessage,
                 origin: Connection | None = None) -> None:
        """A new message: to the customer's sockets and to the agents who follow it."""
        self.hub.send(customer_key(conversation.conversation_id),
                            encode("message", message=message.to_json(for_customer=True)),
                            exclude=origin)
        frame = encode("message", conversation_id=conversation.conversation_id,
                       message=message.to_json())
        self._to_consoles(self._message_audience(conversation), frame, exclude=origin)
        if message.kind == "customer":
            self._emit_conversation(conversation)

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

    def _to_consoles(self, emails: Iterable[str], frame: bytes,
                     exclude: Connection | None = None) -> None:
        """Send ``frame`` to the console sockets of these agents."""
        self.hub.send_many([console_key(e) for e in emails], frame, exclude)

    def _emit_conversation(self, conversation: SupportConversation,
                           also: Iterable[str] = ()) -> None:
        """A conversation changed: every online agent of the org updates its lists."""
        online = set(self.presence.online(conversation.org)) | set(also)
        self._to_consoles(online, encode("conversation",
                                               conversation=conversation.to_agent_json()))

    async def _after_end(self, conversation: SupportConversation,
                         actor: str | None = None) -> None:
        reason = conversation.end_reason or "closed"
        event = {"timeout": "expired", "closed": "closed", "customer": "ended_by_customer"}
        SUPPORT_SESSIONS.labels(event.get(reason, reason)).inc()
        kind = "support.session_expired" if reason == "timeout" else "support.session_closed"
        text = (f"{conversation.customer_name}'s conversation ended after "
                f"{_minutes(conversation)} without messages" if reason == "timeout"
                else f"{conversation.customer_name}'s conversation was closed")
        await self._record(conversation.org, kind, actor or _customer(conversation), text,
                           conversation.conversation_id,
                           also=[conversation.agent] if conversation.agent else [])
        self.hub.send(customer_key(conversation.conversation_id),
                            encode("session", session=conversation.to_customer_json(),
                                   detail=_ended_detail(conversation)))
        self._emit_conversation(conversation)
        self._schedule_agents_push(conversation.org)

    def _bucket(self, conversation_id: str) -> TokenBucket:
        bucket = self._send_buckets.get(conversation_id)
        if bucket is None:
            bucket = self._send_buckets[conversation_id] = TokenBucket(CUSTOMER_SEND_RATE,
                                                                       CUSTOMER_SEND_BURST)
            while len(self._send_buckets) > MAX_TRACKED_BUCKETS:
                self._send_buckets.popitem(last=False)
        self._send_buckets.move_to_end(conversation_id)
        return bucket

    async def _record(self, org_id: str, kind: str, actor: str, text: str,
                      conversation_id: str, also: Iterable[str] = ()) -> None:
        """An activity entry for the org's admins (and the agents involved)."""
        audience = set(await self._admin_emails(org_id)) | {a for a in also if a}
        self.services.activity.record(kind, actor, audience=sorted(audience), text=text,
                                      data={"org": org_id, "conversation_id": conversation_id})

    async def _admin_emails(self, org_id: str) -> list[str]:
        loop_time = asyncio.get_running_loop().time()
        cached = self._admins.get(org_id)
        if cached is not None and cached[0] > loop_time:
            return cached[1]
        admins = [u.email for u in await self.orgs.members(org_id) if u.role == "admin"]
        self._admins[org_id] = (loop_time + ADMIN_CACHE_SECS, admins)
        return admins

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
        self._to_consoles(set(online), encode("agents", agents=agents))


def _customer(conversation: SupportConversation) -> str:
    # Customers are not accounts: an activity actor that no user's email can equal.
    return f"customer:{conversation.customer_email}"


def _minutes(conversation: SupportConversation) -> str:
    seconds = max(0, round((conversation.expires_at - conversation.last_message_at)
                           .total_seconds()))
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} seconds"


def _ended_detail(conversation: SupportConversation) -> str:
    if conversation.end_reason == "timeout":
        return (f"This conversation ended after {_minutes(conversation)} without messages. "
                "Start a new conversation to keep chatting.")
    if conversation.end_reason == "customer":
        return "You ended this conversation. Start a new one to keep chatting."
    return "This conversation was closed. Start a new conversation to keep chatting."


async def setup(services: Services) -> None:
    await services.store.ensure_indexes(extra=SUPPORT_INDEXES)
    support = SupportService(services)
    services.extras[SERVICE_KEY] = support
    support.start()


async def shutdown(services: Services) -> None:
    support = services.extras.get(SERVICE_KEY)
    if isinstance(support, SupportService):
        # Widgets and consoles were closed with the hub (1012) and reconnect
        # (with backoff) to the next instance.
        await support.stop()


def get_support(services: Services) -> SupportService:
    support = services.extras.get(SERVICE_KEY)
    if not isinstance(support, SupportService):
        raise RuntimeError("the support service is not set up (whatsease.support.service is "
                           "missing from SERVICE_MODULES)")
    return support
