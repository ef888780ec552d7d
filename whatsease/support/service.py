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

The service is a stack of small layers, each its own module: core (state,
lifecycle, sweeper) → fanout → routing → botbridge → sessions → agents →
console; `SupportService` is the top of that stack.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime

from whatsease.services import Services
from whatsease.storage.support import SUPPORT_INDEXES
from whatsease.support.chatbot import SupportChatbot
from whatsease.support.console import SupportConsole
from whatsease.support.core import (
    AGENT_OFFLINE_GRACE_SECS,
    HANDBACK_TEXT,
    HISTORY_MAX_LIMIT,
    LIST_MAX_LIMIT,
    QUEUED_TEXT,
    RESUME_MESSAGES,
    SessionEnded,
    console_key,
    customer_key,
    hash_token,
)
from whatsease.timeutil import utcnow

__all__ = [
    "HANDBACK_TEXT", "HISTORY_MAX_LIMIT", "LIST_MAX_LIMIT", "QUEUED_TEXT", "RESUME_MESSAGES",
    "SessionEnded", "SupportService", "console_key", "customer_key", "get_support",
    "hash_token", "setup", "shutdown",
]


class SupportService(SupportConsole):
    """Everything the widget, the console and the support REST API call."""

    def __init__(self, services: Services, *, clock: Callable[[], datetime] = utcnow,
                 chatbot: SupportChatbot | None = None, rng: random.Random | None = None,
                 offline_grace: float = AGENT_OFFLINE_GRACE_SECS) -> None:
        super().__init__(services, clock=clock, chatbot=chatbot, rng=rng,
                         offline_grace=offline_grace)


async def setup(services: Services) -> None:
    await services.store.ensure_indexes(extra=SUPPORT_INDEXES)
    support = SupportService(services)
    services.support = support
    support.start()


async def shutdown(services: Services) -> None:
    support = services.support
    if support is not None:
        # Widgets and consoles were closed with the hub (1012) and reconnect
        # (with backoff) to the next instance.
        await support.stop()


def get_support(services: Services) -> SupportService:
    """The process's support service; `RuntimeError` if its module was not set up."""
    if services.support is None:
        raise RuntimeError("the support service is not set up (whatsease.support.service is "
                           "missing from SERVICE_MODULES)")
    return services.support
