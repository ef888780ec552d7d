"""A running chatbot instance, the rules every part of the runtime shares, and its state.

`Instance` is one configured instance at run time (providers, per-sender
queues, workers); `ChatbotCore` holds the process's instances and what
answering and queueing both use (the repository, the clock, tasks, errors).
The layers on it: answers.py (one message answered and sent) and runtime.py
(messages queued per sender, workers, lifecycle).
"""


import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from whatsease.channels.base import (
    ChannelProvider,
)
from whatsease.channels.base import ProviderContext as ChannelContext
from whatsease.chatbots import metrics
from whatsease.chatbots.configs import HandoffConfig
from whatsease.chatbots.handoff import Handoffs
from whatsease.chatbots.llm import (
    LLMProvider,
    ProviderContext,
)
from whatsease.chatbots.queues import QueueLimits, SenderQueue
from whatsease.chatbots.sealing import Sealer
from whatsease.net.outbound import OutboundPolicy
from whatsease.services import Services
from whatsease.storage.chatbots import (
    ChatbotRepo,
    StoredInstance,
)
from whatsease.timeutil import isoformat, utcnow

logger = logging.getLogger("whatsease.chatbots.runtime")

OUTSIDE_WINDOW = ("outside the customer-service window "
                  "(no message from the sender for 24 h)")
POLITE_ERROR = ("Sorry, I can't answer right now. Please try again in a little while.")
POLITE_DROPPED = ("You sent more messages than I can keep up with, so I skipped some of "
                  "your earlier ones. I'll answer your latest.")
# Instances a process runs; start-up loads at most this many.
MAX_INSTANCES = 10_000
# Senders whose queue an instance keeps in memory; idle ones beyond this are
# forgotten (their queue stays in MongoDB and is read back when they write).
MAX_SENDERS_IN_MEMORY = 5_000
# Answers an instance works on at once; more senders wait their turn.
MAX_CONCURRENT_ANSWERS = 16
# Unanswered (instance, sender) pairs a restart resumes.
MAX_RESUMED_SENDERS = 50_000
MAX_ERROR_CHARS = 300
MAX_INBOUND_CHARS = 4096


@dataclass
class Instance:
    """One running instance: its stored config, providers, queues and the tasks answering."""

    stored: StoredInstance
    limits: QueueLimits
    llm: LLMProvider | None
    chat: ChannelProvider | None
    problem: str = ""
    handoff: HandoffConfig | None = None
    queues: OrderedDict[str, SenderQueue] = field(default_factory=OrderedDict)
    workers: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    slots: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(MAX_CONCURRENT_ANSWERS))
    llm_health: str = "unknown"
    chat_health: str = "unknown"
    # Loads of a sender's queue under way, so two messages do not read it twice.
    loading: dict[str, asyncio.Future[SenderQueue]] = field(default_factory=dict)

    @property
    def instance_id(self) -> str:
        return self.stored.instance_id

    @property
    def state(self) -> str:
        return "error" if self.problem else "running"

    def count(self, name: str, by: int = 1) -> None:
        self.stored.counts[name] = self.stored.counts.get(name, 0) + by


def bounded_error(text: str) -> str:
    return text.replace("\n", " ")[:MAX_ERROR_CHARS]


def whitelisted(whitelist: list[str], sender: str) -> bool:
    """True when ``sender`` (a contact such as ``wa:+4915…``) is on the list, or the list is empty.

    An entry matches the whole contact or its platform id, with or without a
    leading ``+`` (the seed's lists hold bare phone numbers).
    """
    if not whitelist:
        return True
    bare = sender.partition(":")[2] or sender
    candidates = {sender, bare, bare.lstrip("+")}
    return any(entry in candidates or entry.lstrip("+") in candidates for entry in whitelist)


class ChatbotCore:
    """The process's running instances and the helpers the runtime's layers share."""

    def __init__(self, services: Services, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.services = services
        self.repo = ChatbotRepo(services.store.db)
        self.sealer = Sealer(services.config.jwt_secret)
        self.clock = clock
        outbound = OutboundPolicy(allow_private=services.config.outbound_allow_private)
        self.llm_context = ProviderContext(outbound)
        self.chat_context = ChannelContext(policy=outbound)
        self.instances: dict[str, Instance] = {}
        self.handoffs = Handoffs(services)
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ tasks

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def wait_idle(self) -> None:
        """Until no instance is answering; callers bound the wait (``asyncio.timeout``)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ------------------------------------------------------------ errors, gauges

    async def _record_error(self, instance: Instance, message: str) -> None:
        error = {"at": isoformat(self.clock()), "message": bounded_error(message)}
        instance.stored.last_error = error
        try:
            await self.repo.add_totals(instance.instance_id, last_error=error)
        except Exception:
            logger.exception("recording chatbot instance %s's last error failed",
                             instance.instance_id)

    def _update_depth(self) -> None:
        metrics.QUEUE_DEPTH.set(sum(q.pending for i in self.instances.values()
                                    for q in i.queues.values()))

