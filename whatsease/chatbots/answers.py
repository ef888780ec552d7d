"""One queued message answered: the model asked, the answer stored, then sent.

The answer is stored (and its question marked answered) before it is sent,
so a restart never answers twice; the send runs as its own task, so
replacing or deleting the instance meanwhile never loses it. A provider
failure gives the sender a polite answer; answers below the handoff
threshold for long enough hand the sender to an agent (handoff.py); an answer
the platform's customer-service window no longer allows (WhatsApp: 24 h) is
not sent, and the instance's status says so.
"""


import asyncio
import logging

from whatsease.channels.base import (
    OutboundMessage,
    deliver,
)
from whatsease.chatbots import metrics
from whatsease.chatbots.handoff import HANDOFF_TEXT
from whatsease.chatbots.instance import (
    OUTSIDE_WINDOW,
    POLITE_ERROR,
    ChatbotCore,
    Instance,
    bounded_error,
)
from whatsease.chatbots.llm import (
    ASSISTANT_ROLE,
    Completion,
    LLMProviderError,
)
from whatsease.chatbots.queues import SenderQueue
from whatsease.storage.channels import within
from whatsease.storage.chatbots import (
    QueueEntry,
    new_entry_id,
)

logger = logging.getLogger("whatsease.chatbots.runtime")


class ChatbotAnswers(ChatbotCore):
    """Answering one message at a time; see the module docstring."""

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
                           instance.instance_id, bounded_error(failure))
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
        (a slow model, a restart). Meta would refuse it (error 131047); say so instead.

        The error is recorded before it is counted, so a status that shows the
        count shows why."""
        logger.warning("chatbot instance %s: an answer was not sent: %s", instance.instance_id,
                       OUTSIDE_WINDOW)
        await self._record_error(instance, f"not sent: {OUTSIDE_WINDOW}")
        instance.count("outside_window")
        await self.repo.add_totals(instance.instance_id, counts={"outside_window": 1})
        metrics.MESSAGES.labels("outside_window").inc()

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

