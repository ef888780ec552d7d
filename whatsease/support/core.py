"""The support service's base layer: its state, lifecycle, sweeper and shared internals.

The layers above (fanout, routing, botbridge, sessions, agents, console) each add
one concern; `service.SupportService` is the top of the stack.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hashlib
import logging
import random
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable
from datetime import datetime, timedelta

from whatsease.auth.ratelimit import FailureLimiter, TokenBucket
from whatsease.batching import Batcher
from whatsease.delivery.hub import Connection
from whatsease.errors import Gone, NotFound
from whatsease.net.outbound import OutboundPolicy
from whatsease.services import Services
from whatsease.storage.models import new_id
from whatsease.storage.support import SupportStore
from whatsease.storage.support_models import Org, SupportConversation, SupportMessage
from whatsease.support.chatbot import SupportChatbot
from whatsease.support.orgs import OrgService
from whatsease.support.presence import AgentPresence
from whatsease.timeutil import utcnow
from whatsease.writelane import URGENT

logger = logging.getLogger(__name__)

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


class SupportCore(abc.ABC):
    """State every layer shares, the lifecycle (sweeper, tasks) and common internals."""

    def __init__(self, services: Services, *, clock: Callable[[], datetime] = utcnow,
                 chatbot: SupportChatbot | None = None, rng: random.Random | None = None,
                 offline_grace: float = AGENT_OFFLINE_GRACE_SECS) -> None:
        self.services = services
        self.store = SupportStore(services.store.db)
        self.clock = clock
        outbound = OutboundPolicy(allow_private=services.config.outbound_allow_private)
        self.orgs = OrgService(services.store, self.store, clock=lambda: self.clock(),
                               outbound_policy=outbound)
        self.chatbot = chatbot or SupportChatbot(timeout=services.config.llm_timeout,
                                                 outbound=outbound)
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

    def spawn(self, coro: Coroutine[object, object, None], name: str) -> None:
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

    # ------------------------------------------------------------------ internals

    async def _active(self, conversation_id: str) -> SupportConversation:
        """The conversation if it is active and within its timeout, in one read.

        Raises `NotFound`, or `SessionEnded` (ending it first if its timeout has passed).
        """
        conversation = await self.store.conversations.get(conversation_id)
        if conversation is None:
            raise NotFound("No such conversation.")
        if conversation.active and conversation.expires_at > self.clock():
            return conversation  # just read: `refresh` would only read it again
        conversation = await self.refresh(conversation)
        if not conversation.active:
            raise SessionEnded(ended_detail(conversation))
        return conversation

    async def _count_message(self, conversation: SupportConversation, message: SupportMessage,
                             org: Org, *, unread: int,
                             fields: dict[str, object] | None = None) -> SupportConversation:
        """Record the message on its conversation (keeping it alive), or refuse if it ended."""
        now = message.timestamp
        updated = await self.store.conversations.record_message(
            conversation.conversation_id, now=now,
            expires_at=now + timedelta(seconds=org.settings.session_timeout),
            summary=message.summary(), unread=unread, fields=fields)
        if updated is None:
            current = await self.refresh(conversation)
            raise SessionEnded(ended_detail(current))
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
            org = await self.orgs.current(conversation.org)
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
        try:
            return (await self.orgs.current(org_id)).name
        except NotFound:
            return org_id

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

    async def refresh(self, conversation: SupportConversation) -> SupportConversation:
        """The conversation as it stands now, ended first if its timeout has passed."""
        if conversation.active and conversation.expires_at <= self.clock():
            ended = await self.store.conversations.end(
                conversation.conversation_id, now=self.clock(), reason="timeout",
                due_by=self.clock())
            if ended is not None:
                await self._after_end(ended)
        return await self.store.conversations.get(conversation.conversation_id) or conversation

    @abc.abstractmethod
    async def agents_view(self, org_id: str) -> list[dict[str, object]]:
        """Every agent of the org with their load (console.py)."""

    @abc.abstractmethod
    def _deliver(self, conversation: SupportConversation, message: SupportMessage,
                 origin: Connection | None = None) -> None:
        """Send a stored message to the customer's and the agents' sockets (fanout.py)."""

    @abc.abstractmethod
    async def _after_end(self, conversation: SupportConversation,
                         actor: str | None = None) -> None:
        """Tell everyone a conversation ended (fanout.py)."""

    @abc.abstractmethod
    async def _ensure_agent(self, conversation_id: str, *,
                            requested_at: datetime | None = None) -> SupportConversation | None:
        """Give the conversation an agent, or queue it (routing.py)."""

    @abc.abstractmethod
    def _schedule_bot(self, conversation_id: str, message: SupportMessage) -> None:
        """Queue a customer message for the bot's answer (botbridge.py)."""


def customer_actor(conversation: SupportConversation) -> str:
    # Customers are not accounts: an activity actor that no user's email can equal.
    return f"customer:{conversation.customer_email}"


def minutes_text(conversation: SupportConversation) -> str:
    seconds = max(0, round((conversation.expires_at - conversation.last_message_at)
                           .total_seconds()))
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} seconds"


def ended_detail(conversation: SupportConversation) -> str:
    if conversation.end_reason == "timeout":
        return (f"This conversation ended after {minutes_text(conversation)} without messages. "
                "Start a new conversation to keep chatting.")
    if conversation.end_reason == "customer":
        return "You ended this conversation. Start a new one to keep chatting."
    return "This conversation was closed. Start a new conversation to keep chatting."

