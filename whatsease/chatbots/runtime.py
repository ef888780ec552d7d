"""Chatbot instances at run time: messages queued per sender, answered, sent back.

Each running `Instance` holds its chat provider (where messages come from and
answers go), its LLM provider (who answers) and one bounded `SenderQueue` per
sender (queues.py). Delivery guarantees:

- a message is stored in its sender's queue (MongoDB) before the webhook is
  answered, so a restart resumes every unanswered message (`start`);
- one sender's messages are answered one at a time, in order, by that
  sender's own task; different senders' tasks run side by side, at most
  `MAX_CONCURRENT_ANSWERS` per instance, so a slow model delays only the
  senders waiting on it and never the event loop (providers await their I/O);
- the answer is stored (and its question marked answered) before it is sent,
  so a restart never answers twice; a send that fails is recorded as the
  instance's last error;
- a provider failure or a full queue gives the sender a polite answer;
- a sender handed to a person (handoff.py) talks to support until that
  conversation ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from whatsease.channels.base import (
    ChannelProvider,
    InboundMessage,
    OutboundMessage,
    deliver,
)
from whatsease.channels.base import ProviderContext as ChannelContext
from whatsease.chatbots import metrics
from whatsease.chatbots.chat import build_chat_provider
from whatsease.chatbots.configs import HandoffConfig
from whatsease.chatbots.handoff import HANDOFF_TEXT, Handoffs
from whatsease.chatbots.llm import (
    ASSISTANT_ROLE,
    USER_ROLE,
    Completion,
    LLMProvider,
    LLMProviderError,
    ProviderContext,
    llm_provider,
)
from whatsease.chatbots.queues import QueueLimits, SenderQueue
from whatsease.chatbots.sealing import SealBroken, Sealer
from whatsease.errors import NotFound
from whatsease.net.outbound import OutboundPolicy
from whatsease.services import Services
from whatsease.storage.channels import within
from whatsease.storage.chatbots import (
    ChatbotRepo,
    QueueEntry,
    StoredInstance,
    new_entry_id,
)
from whatsease.timeutil import isoformat, utcnow

logger = logging.getLogger(__name__)

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


def _bounded_error(text: str) -> str:
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


class ChatbotRuntime:
    """Runs the process's instances: queues, answers, handoffs; `ChatbotService` adds configs."""

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

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Run every stored instance and resume every sender with unanswered messages."""
        for stored in await self.repo.all(limit=MAX_INSTANCES):
            self.instances[stored.instance_id] = self._build(stored)
        for instance_id, sender in await self.repo.senders_waiting(limit=MAX_RESUMED_SENDERS):
            instance = self.instances.get(instance_id)
            if instance is not None:
                await self._queue(instance, sender)
                self._wake(instance, sender)
        self._update_depth()

    async def stop(self) -> None:
        """Stop answering (unanswered messages stay queued in MongoDB) and close providers."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for instance in self.instances.values():
            await self._close(instance)
        self.instances.clear()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def wait_idle(self) -> None:
        """Until no instance is answering; callers bound the wait (``asyncio.timeout``)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ------------------------------------------------------------- building

    def _open_secrets(self, stored: StoredInstance) -> dict[str, Any]:
        if not stored.sealed:
            return {"chat": {}, "llm": {}}
        return self.sealer.open(stored.sealed, stored.instance_id)

    def _build(self, stored: StoredInstance) -> Instance:
        """The running form of ``stored``; a provider that cannot be built leaves it in error."""
        limits = QueueLimits.from_dict(stored.queue)
        llm: LLMProvider | None = None
        chat: ChannelProvider | None = None
        problem = ""
        try:
            secrets = self._open_secrets(stored)
            llm = llm_provider(stored.llm_provider)(
                {**stored.llm_config, **secrets.get("llm", {})}, self.llm_context)
            chat = build_chat_provider(stored.chat_provider,
                                       {**stored.chat_config, **secrets.get("chat", {})},
                                       self.chat_context)
        except SealBroken as exc:
            problem = f"{exc}; send the provider keys again"
        except Exception as exc:  # noqa: BLE001  # a broken provider package must not stop the server
            problem = _bounded_error(f"a provider cannot be built: {type(exc).__name__}")
            logger.warning("chatbot instance %s cannot start: %s", stored.instance_id,
                           type(exc).__name__)
        handoff = HandoffConfig.from_dict(stored.handoff) if stored.handoff else None
        return Instance(stored, limits, llm, chat, problem, handoff)

    async def _close(self, instance: Instance) -> None:
        workers = list(instance.workers.values())
        instance.workers.clear()
        for task in workers:
            task.cancel()
        # Waited for, so none still touches a queue that a replacing instance takes over.
        await asyncio.gather(*workers, return_exceptions=True)
        for provider in (instance.llm, instance.chat):
            if provider is not None:
                try:
                    await provider.close()
                except Exception:
                    logger.exception("closing a provider of chatbot instance %s failed",
                                     instance.instance_id)

    # --------------------------------------------------------------- messages

    async def receive(self, instance_id: str, message: InboundMessage) -> str:
        """Queue an incoming message for an answer; the outcome (for metrics and tests).

        Outcomes: ``queued``, ``duplicate``, ``ignored_whitelist``,
        ``ignored_group``, ``ignored_empty``. `NotFound` for an unknown instance.
        """
        instance = self.instances.get(instance_id)
        if instance is None:
            raise NotFound("No such chatbot instance.")
        outcome = await self._enqueue(instance, message)
        metrics.MESSAGES.labels(outcome).inc()
        if outcome in ("queued", "handed_off") and instance.chat is not None:
            # Read receipts on WhatsApp; on Telegram a pressed button stops spinning.
            self._spawn(self._mark_read(instance, instance.chat, message),
                        f"chatbot-read:{instance.instance_id}")
        return outcome

    async def _mark_read(self, instance: Instance, chat: ChannelProvider,
                         message: InboundMessage) -> None:
        try:
            result = await chat.mark_read(message)
        except Exception as exc:  # noqa: BLE001  # a provider's bug must not stop the queue
            logger.warning("chatbot instance %s could not mark a message read: %s",
                           instance.instance_id, type(exc).__name__)
            return
        if not result.ok:
            logger.warning("chatbot instance %s could not mark a message read: %s",
                           instance.instance_id, _bounded_error(result.error))

    async def _enqueue(self, instance: Instance, message: InboundMessage) -> str:
        stored = instance.stored
        if message.is_group and not stored.allow_groups:
            instance.count("ignored")
            await self.repo.add_totals(instance.instance_id, counts={"ignored": 1})
            return "ignored_group"
        if not whitelisted(stored.whitelist, message.sender):
            instance.count("ignored")
            await self.repo.add_totals(instance.instance_id, counts={"ignored": 1})
            return "ignored_whitelist"
        text = message.text.strip()[:MAX_INBOUND_CHARS]
        if not text:
            return "ignored_empty"
        now = self.clock()
        queue = await self._queue(instance, message.sender)
        if queue.handoff is not None and await self._forward(instance, queue, message):
            return "handed_off"
        entry = QueueEntry(new_entry_id(), USER_ROLE, text, now,
                           target=message.chat_id if message.is_group else "",
                           platform_id=message.message_id[:128])
        if not await self.repo.push(instance.instance_id, message.sender, entry):
            return "duplicate"
        removed = queue.add(entry, now)
        dropped = [e for e in removed if queue.is_drop(e)]
        await self.repo.remove([e.entry_id for e in removed])
        instance.count("received")
        counts = {"received": 1}
        if dropped:
            instance.count("dropped", len(dropped))
            counts["dropped"] = len(dropped)
            metrics.QUEUE_DROPS.inc(len(dropped))
            metrics.MESSAGES.labels("dropped").inc(len(dropped))
            if not queue.told_of_drops:
                queue.told_of_drops = True
                self._spawn(self._deliver(instance, entry.target or message.sender,
                                          POLITE_DROPPED),
                            f"chatbot-notice:{instance.instance_id}")
        await self.repo.add_totals(instance.instance_id, counts=counts)
        self._wake(instance, message.sender)
        self._update_depth()
        return "queued"

    async def _forward(self, instance: Instance, queue: SenderQueue,
                       message: InboundMessage) -> bool:
        """Post a handed-off sender's message to their support conversation.

        False (and the bot answers again) when that conversation has ended or
        handoffs are no longer configured.
        """
        conversation_id = queue.handoff
        if (conversation_id is not None and instance.handoff is not None and instance.chat
                and await self.handoffs.forward(instance.instance_id, instance.chat,
                                                instance.handoff, conversation_id, message)):
            return True
        queue.handoff = None
        queue.unsure_turns = 0
        await self.repo.set_handoff(instance.instance_id, message.sender, None)
        return False

    async def _queue(self, instance: Instance, sender: str) -> SenderQueue:
        """The sender's queue, read from MongoDB the first time (or after it was forgotten)."""
        queue = instance.queues.get(sender)
        if queue is not None:
            instance.queues.move_to_end(sender)
            return queue
        loading = instance.loading.get(sender)
        if loading is not None:
            return await asyncio.shield(loading)
        future: asyncio.Future[SenderQueue] = asyncio.get_running_loop().create_future()
        instance.loading[sender] = future
        try:
            entries = await self.repo.queue_of(instance.instance_id, sender,
                                               limit=instance.limits.max_messages)
            queue = SenderQueue(instance.limits, entries)
            queue.handoff = await self.repo.handoff_of(instance.instance_id, sender)
            removed = queue.trim(self.clock())
            await self.repo.remove([e.entry_id for e in removed])
            instance.queues[sender] = queue
            self._forget_idle(instance)
            future.set_result(queue)
            return queue
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so an unawaited future logs nothing
            raise
        finally:
            instance.loading.pop(sender, None)

    def _forget_idle(self, instance: Instance) -> None:
        """Keep at most `MAX_SENDERS_IN_MEMORY` queues, forgetting idle senders first."""
        if len(instance.queues) <= MAX_SENDERS_IN_MEMORY:
            return
        for sender in list(instance.queues):
            if len(instance.queues) <= MAX_SENDERS_IN_MEMORY:
                break
            if sender not in instance.workers:
                del instance.queues[sender]

    def _wake(self, instance: Instance, sender: str) -> None:
        if sender not in instance.workers and not instance.problem:
            instance.workers[sender] = self._spawn(
                self._drain(instance, sender), f"chatbot:{instance.instance_id}")

    async def _drain(self, instance: Instance, sender: str) -> None:
        """Answer the sender's messages one by one, oldest first, until none is left."""
        try:
            while True:
                queue = instance.queues.get(sender)
                entry = queue.next_pending() if queue is not None else None
                if queue is None or entry is None:
                    if queue is not None:
                        queue.told_of_drops = False
                    return
                async with instance.slots:
                    try:
                        await self._answer(instance, sender, queue, entry)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        # Skipped for now (it stays unanswered in MongoDB for a restart);
                        # never retried in a tight loop.
                        entry.answered = True
                        logger.exception("chatbot instance %s failed to answer",
                                         instance.instance_id)
                        await self._record_error(instance, f"answering failed: "
                                                 f"{type(exc).__name__}")
        finally:
            if instance.workers.get(sender) is asyncio.current_task():
                instance.workers.pop(sender, None)
            self._update_depth()

    async def _answer(self, instance: Instance, sender: str, queue: SenderQueue,
                      entry: QueueEntry) -> None:
        stored = instance.stored
        provider = stored.llm_provider
        queue.in_flight = entry.entry_id
        failure = ""
        completion = None
        try:
            if instance.llm is None:
                raise LLMProviderError(instance.problem or "no LLM provider")
            completion = await instance.llm.complete(
                queue.context_for(entry), conversation_id=f"{instance.instance_id}:{sender}")
            text = completion.text
            instance.llm_health = "ok"
        except LLMProviderError as exc:
            failure = str(exc)
            text = POLITE_ERROR
            instance.llm_health = "error"
            metrics.LLM_ERRORS.labels(provider).inc()
        finally:
            queue.in_flight = None
        hand_off = completion is not None and self._unsure(instance, queue, completion)
        if hand_off:
            text = HANDOFF_TEXT
        now = self.clock()
        answer = QueueEntry(new_entry_id(), ASSISTANT_ROLE, text, now, answered=True)
        kept, removed = queue.add_answer(entry, answer, now)
        dropped = [e for e in removed if queue.is_drop(e)]
        await self.repo.mark_answered(entry.entry_id)
        if kept:
            await self.repo.push(instance.instance_id, sender, answer)
        await self.repo.remove([e.entry_id for e in removed])
        counts = {"answered": 1} if not failure else {"errors": 1}
        if dropped:
            counts["dropped"] = len(dropped)
            metrics.QUEUE_DROPS.inc(len(dropped))
        for name, value in counts.items():
            instance.count(name, value)
        if completion is not None:
            tokens = {"prompt": completion.prompt_tokens,
                      "completion": completion.completion_tokens}
            for key, value in tokens.items():
                stored.tokens[key] = stored.tokens.get(key, 0) + value
                metrics.LLM_TOKENS.labels(provider, key).inc(value)
            stored.latency["calls"] = stored.latency.get("calls", 0) + 1
            stored.latency["total_seconds"] = (stored.latency.get("total_seconds", 0.0)
                                               + completion.latency)
            stored.latency["last_seconds"] = round(completion.latency, 4)
            metrics.LLM_LATENCY.labels(provider).observe(completion.latency)
            await self.repo.add_totals(instance.instance_id, counts=counts, tokens=tokens,
                                       latency={"calls": 1,
                                                "total_seconds": completion.latency})
            await self.repo.record_call(instance.instance_id, sender,
                                        prompt_tokens=completion.prompt_tokens,
                                        completion_tokens=completion.completion_tokens,
                                        latency=completion.latency, at=now)
            metrics.MESSAGES.labels("answered").inc()
        else:
            await self.repo.add_totals(instance.instance_id, counts=counts)
            metrics.MESSAGES.labels("error").inc()
            # The reason names what failed (status, timeout), never a key.
            logger.warning("chatbot instance %s: the LLM provider failed: %s",
                           instance.instance_id, _bounded_error(failure))
            await self._record_error(instance, f"LLM provider: {failure}")
        if not self._within_window(instance, queue):
            await self._outside_window(instance)
            return
        # The answer is stored as answered: from here it must reach the sender even
        # if the instance is replaced or deleted meanwhile (which cancels this task,
        # possibly while `deliver` waits to retry), so the sending runs on its own.
        finishing = self._spawn(self._finish(instance, sender, queue, entry, text, hand_off),
                                f"chatbot-send:{instance.instance_id}")
        await asyncio.shield(finishing)

    async def _finish(self, instance: Instance, sender: str, queue: SenderQueue,
                      entry: QueueEntry, text: str, hand_off: bool) -> None:
        await self._deliver(instance, entry.target or sender, text)
        if hand_off:
            # After the sender was told, so what support says next follows it.
            await self._hand_off(instance, sender, queue, entry)

    def _within_window(self, instance: Instance, queue: SenderQueue) -> bool:
        """Whether the platform still lets the instance write to the sender freely."""
        window = instance.chat.service_window if instance.chat is not None else None
        return within(queue.last_inbound, window, self.clock())

    async def _outside_window(self, instance: Instance) -> None:
        """An answer is not sent: the sender's customer-service window closed meanwhile
        (a slow model, a restart). Meta would refuse it (error 131047); say so instead."""
        instance.count("outside_window")
        await self.repo.add_totals(instance.instance_id, counts={"outside_window": 1})
        metrics.MESSAGES.labels("outside_window").inc()
        logger.warning("chatbot instance %s: an answer was not sent: %s", instance.instance_id,
                       OUTSIDE_WINDOW)
        await self._record_error(instance, f"not sent: {OUTSIDE_WINDOW}")

    def _unsure(self, instance: Instance, queue: SenderQueue, completion: Completion) -> bool:
        """Count an answer below the handoff threshold; True when it is time to hand off
        (or the sender asked for a person)."""
        config = instance.handoff
        if config is None or instance.chat is None:
            return False
        if completion.wants_person:
            return True
        if completion.confidence >= config.threshold:
            queue.unsure_turns = 0
            return False
        queue.unsure_turns += 1
        return queue.unsure_turns >= config.turns

    async def _hand_off(self, instance: Instance, sender: str, queue: SenderQueue,
                        entry: QueueEntry) -> None:
        """Make the sender a support customer of the handoff org, with an agent asked for."""
        config = instance.handoff
        queue.unsure_turns = 0
        if config is None or instance.chat is None:
            return
        try:
            conversation_id = await self.handoffs.start(
                instance.instance_id, instance.chat, config, sender, entry.target or sender,
                [entry.content])
        except Exception as exc:  # noqa: BLE001  # the bot keeps answering instead
            logger.warning("chatbot instance %s could not hand a sender to an agent: %s",
                           instance.instance_id, type(exc).__name__)
            await self._record_error(instance, f"handoff failed: {type(exc).__name__}")
            return
        queue.handoff = conversation_id
        await self.repo.set_handoff(instance.instance_id, sender, conversation_id)
        instance.count("handoffs")
        await self.repo.add_totals(instance.instance_id, counts={"handoffs": 1})
        metrics.HANDOFFS.inc()

    async def _record_error(self, instance: Instance, message: str) -> None:
        error = {"at": isoformat(self.clock()), "message": _bounded_error(message)}
        instance.stored.last_error = error
        try:
            await self.repo.add_totals(instance.instance_id, last_error=error)
        except Exception:
            logger.exception("recording chatbot instance %s's last error failed",
                             instance.instance_id)

    async def _deliver(self, instance: Instance, recipient: str, text: str) -> None:
        try:
            await self._send_through_provider(instance, recipient, text)
        except Exception as exc:  # noqa: BLE001  # a provider's bug must not stop the queue
            logger.warning("chatbot instance %s could not send: %s", instance.instance_id,
                           type(exc).__name__)
            instance.chat_health = "error"
            await self._record_error(instance, f"sending failed: {type(exc).__name__}")

    async def _send_through_provider(self, instance: Instance, recipient: str,
                                     text: str) -> None:
        """Send ``text`` through the instance's chat provider, with the seam's retries."""
        if instance.chat is None:
            raise RuntimeError(instance.problem or "no chat provider")
        result = await deliver(instance.chat, OutboundMessage(to=recipient, text=text[:4096]))
        if result.ok:
            instance.chat_health = "ok"
            return
        instance.chat_health = "error"
        await self._record_error(instance, f"chat provider: {result.error or 'send failed'}")

    def _update_depth(self) -> None:
        metrics.QUEUE_DEPTH.set(sum(q.pending for i in self.instances.values()
                                    for q in i.queues.values()))
