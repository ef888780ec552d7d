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

The parts: instance.py (`Instance`, the shared state), answers.py (one
message answered and sent) and this module (queues, workers, lifecycle).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from whatsease.channels.base import (
    ChannelProvider,
    InboundMessage,
)
from whatsease.chatbots import metrics
from whatsease.chatbots.answers import ChatbotAnswers
from whatsease.chatbots.chat import build_chat_provider
from whatsease.chatbots.configs import HandoffConfig
from whatsease.chatbots.instance import (
    MAX_CONCURRENT_ANSWERS,
    MAX_INBOUND_CHARS,
    MAX_INSTANCES,
    MAX_RESUMED_SENDERS,
    MAX_SENDERS_IN_MEMORY,
    OUTSIDE_WINDOW,
    POLITE_DROPPED,
    POLITE_ERROR,
    Instance,
    bounded_error,
    whitelisted,
)
from whatsease.chatbots.llm import (
    USER_ROLE,
    LLMProvider,
    llm_provider,
)
from whatsease.chatbots.queues import QueueLimits, SenderQueue
from whatsease.chatbots.sealing import SealBroken
from whatsease.errors import NotFound
from whatsease.storage.chatbots import (
    QueueEntry,
    StoredInstance,
    new_entry_id,
)

# Importable from here, as before the split.
__all__ = ["MAX_CONCURRENT_ANSWERS", "OUTSIDE_WINDOW", "POLITE_DROPPED", "POLITE_ERROR",
           "ChatbotRuntime", "Instance", "whitelisted"]

logger = logging.getLogger(__name__)


class ChatbotRuntime(ChatbotAnswers):
    """Runs the process's instances: queues, answers, handoffs; `ChatbotService` adds configs."""

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
            problem = bounded_error(f"a provider cannot be built: {type(exc).__name__}")
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
                           instance.instance_id, bounded_error(result.error))

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

