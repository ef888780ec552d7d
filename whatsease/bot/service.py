"""The assistant in the conversation: reads the user's message, thinks, and replies as a message.

Replies run in background tasks, one user at a time in order, so the sender's
ack never waits for the bot. Per-user state (context, memory, bounded history)
lives in MongoDB and survives restarts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from whatsease.bot.catalogue import Catalogue, load_catalogue
from whatsease.bot.engine import BotState, IntentEngine, Reply, bound_history, open_reader
from whatsease.bot.language import detector_ready, needs_detector, prepare_detector
from whatsease.bot.llm import ChatEndpoint, LLMError, complete
from whatsease.delivery import frames
from whatsease.errors import ConfigError, Unprocessable
from whatsease.metrics import BOT_REPLIES
from whatsease.services import Services
from whatsease.storage.bot import BotNote, BotTurn
from whatsease.storage.models import Message
from whatsease.timeutil import isoformat, utcnow

if TYPE_CHECKING:
    from whatsease.bot.semantic import SemanticIndex
    from whatsease.config import Config

logger = logging.getLogger(__name__)

BOT_ADDRESS = "bot:whatsease"
HISTORY_MAX_LIMIT = 100
# Messages waiting for the bot per user; beyond this the oldest waiting ones
# are answered with a busy note rather than queued without bound.
MAX_PENDING_PER_USER = 20
SHUTDOWN_GRACE_SECS = 5.0
LLM_SYSTEM_PROMPT = (
    "You are the WhatsEase assistant inside a web messenger. Answer briefly and "
    "helpfully. If you do not know, say so.")


class Assistant:
    """``bot:whatsease``: the intent engine, the user's stored state and an optional LLM."""

    def __init__(self, services: Services, engine: IntentEngine, *,
                 address: str = BOT_ADDRESS, llm: ChatEndpoint | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.services = services
        self.engine = engine
        self.address = address
        self.llm = llm if llm is not None and llm.configured else None
        self.clock = clock
        self._queues: dict[str, list[Message]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # The sentence encoder takes milliseconds of CPU a message: with it, replies are
        # worked out on one thread of their own, never on the event loop.
        self._thinker = (ThreadPoolExecutor(1, thread_name_prefix="bot")
                         if engine.semantic is not None else None)

    @property
    def catalogue(self) -> Catalogue:
        return self.engine.catalogue

    async def on_message(self, message: Message) -> None:
        """Called after a user's message to the bot is stored; answers it in the background."""
        queue = self._queues.get(message.sender)
        if queue is not None:
            if len(queue) >= MAX_PENDING_PER_USER:
                BOT_REPLIES.labels("dropped_busy").inc()
                logger.warning("bot queue full; message left unanswered",
                               extra={"message_id": message.message_id})
                return
            queue.append(message)
            return
        self._queues[message.sender] = [message]
        task = asyncio.get_running_loop().create_task(self._drain(message.sender),
                                                      name=f"bot:{message.sender}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, user: str) -> None:
        queue = self._queues[user]
        try:
            while queue:
                message = queue[0]
                try:
                    await self.answer(message)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    BOT_REPLIES.labels("error").inc()
                    logger.exception("bot failed to answer", extra={
                        "message_id": message.message_id})
                    await self._send(user, self.catalogue.bot.fallback[0])
                queue.pop(0)
                self._load_reader_if_needed()
        finally:
            self._queues.pop(user, None)

    def _load_reader_if_needed(self) -> None:
        """Once an answer is sent: start loading the sentence reader if that answer
        needed it (the words answered alone meanwhile). Not before: the loading
        takes ~2 s of CPU, which the answer would otherwise share."""
        semantic = self.engine.semantic
        if semantic is not None and semantic.train_if_needed():
            logger.info("the sentence reader is loading (first needed by a message)")

    async def answer(self, message: Message) -> Reply:
        """Read ``message``, show typing, reply, and record the turn."""
        user = message.sender
        hub = self.services.hub
        # The language detector's first build (~0.4 s) runs while the database is
        # asked for the receipt, the state and the profile, not after them.
        languages = asyncio.ensure_future(self._prepare_languages())
        try:
            await self.services.messaging.mark(self.address, [message.message_id], "Read")
        except BaseException:
            await asyncio.gather(languages, return_exceptions=True)
            raise
        hub.send(user, frames.chat_typing(self.address, True))
        try:
            try:
                state = await self.load_state(user)
                profile = await self.services.store.users.get(user)
            finally:
                await asyncio.gather(languages, return_exceptions=True)  # never left behind
            languages.result()  # what building the detector raised, if anything
            now = self.clock()
            name = profile.name if profile else ""
            if self._thinker is None:
                reply = self.engine.respond(message.content, state, now=now, user_name=name)
            else:
                reply = await asyncio.get_running_loop().run_in_executor(
                    self._thinker, lambda: self.engine.respond(
                        message.content, state, now=now, user_name=name))
            text, outcome = reply.text, "intent" if reply.intent else "fallback"
            if reply.is_fallback and self.llm is not None:
                text, outcome = await self._ask_llm(reply.state, message.content, text)
            if reply.store is not None:
                await self._store_note(user, *reply.store, at=now)
            await self.save_state(user, reply.state)
            sent = await self._send(user, text)
            await self.services.store.bot.add_turn(BotTurn(
                user=user, bot=self.address, message_id=message.message_id,
                message=message.content, intent=reply.intent,
                confidence=round(reply.confidence, 4), reply=text,
                reply_message_id=sent.message_id, source=outcome, at=now,
                lang=reply.language or None))
            BOT_REPLIES.labels(outcome).inc()
            return reply
        finally:
            hub.send(user, frames.chat_typing(self.address, False))

    async def _prepare_languages(self) -> None:
        """Build the language detector on the first message, off the event loop: it
        loads its models (tens of MiB, about a second), which an idle server or a
        one-language catalogue never needs."""
        languages = self.catalogue.languages
        light = self.catalogue.bot.light_detection
        if needs_detector(languages) and not detector_ready(languages, light=light):
            await asyncio.get_running_loop().run_in_executor(
                self._thinker, lambda: prepare_detector(languages, light=light))

    async def _send(self, user: str, text: str) -> Message:
        return await self.services.messaging.send(self.address, user, text,
                                                  is_bot_response=True)

    async def _ask_llm(self, state: BotState, text: str, fallback: str) -> tuple[str, str]:
        assert self.llm is not None
        messages = [{"role": "system", "content": LLM_SYSTEM_PROMPT}]
        for entry in state.history:
            role = "assistant" if entry.role == "bot" else "user"
            messages.append({"role": role, "content": entry.text})
        if not state.history or state.history[-1].text != text:
            messages.append({"role": "user", "content": text})
        try:
            answer = await complete(self.llm, messages)
        except LLMError as exc:
            logger.warning("language model unavailable, using the fallback reply: %s", exc)
            return fallback, "llm_error"
        if state.history and state.history[-1].role == "bot":
            state.history[-1].text = answer
        return answer, "llm"

    async def _store_note(self, user: str, kind: str, text: str, *, at: datetime) -> None:
        await self.services.store.bot.add_note(
            BotNote(user=user, bot=self.address, kind=kind, text=text, at=at))

    async def load_state(self, user: str) -> BotState:
        """`user`'s state with this bot (a new one if none is stored)."""
        return BotState.from_dict(await self.services.store.bot.load_state(user, self.address))

    async def save_state(self, user: str, state: BotState) -> None:
        config = self.services.config
        state.history = bound_history(
            state.history, max_messages=config.bot_history_max_messages,
            max_chars=config.bot_history_max_chars,
            max_age=timedelta(seconds=config.bot_history_max_age), now=self.clock())
        await self.services.store.bot.save_state(user, self.address, state.to_dict(),
                                                 at=self.clock())

    async def forget(self, user: str) -> None:
        """Drop the user's context, memory and remembered turns."""
        await self.services.store.bot.forget(user, self.address)

    async def history(self, user: str, *, before: str | None,
                      limit: int) -> list[dict[str, object]]:
        """`user`'s turns with this bot as the API shows them, newest first."""
        turns = await self.services.store.bot.turns(user, self.address, before=before,
                                                   limit=min(limit, HISTORY_MAX_LIMIT))
        return [{"id": t.id, "message_id": t.message_id, "message": t.message,
                 "intent": t.intent, "confidence": t.confidence, "reply": t.reply,
                 "reply_message_id": t.reply_message_id, "source": t.source,
                 "at": isoformat(t.at), "lang": t.lang} for t in turns]

    async def language(self, user: str) -> dict[str, object]:
        """The language `user` chose for this bot (None: detected from each message), the
        one it last spoke with them, and every language its catalogue speaks."""
        state = await self.load_state(user)
        return {"language": state.chosen_language, "current": state.language,
                "languages": list(self.catalogue.languages)}

    async def set_language(self, user: str, language: str | None) -> dict[str, object]:
        """Make this bot speak `language` with `user` (None: detect it from each message);
        raises `Unprocessable` for a language the catalogue does not speak."""
        if language is not None and language not in self.catalogue.languages:
            raise Unprocessable(
                "The assistant does not speak that language.",
                errors=[{"field": "language", "message": "must be one of "
                         f"{', '.join(self.catalogue.languages)} or null"}])
        state = await self.load_state(user)
        state.chosen_language = language
        if language is not None:
            state.language = language
        await self.save_state(user, state)
        return await self.language(user)

    async def wait_idle(self) -> None:
        """Let replies in progress finish, for at most `SHUTDOWN_GRACE_SECS`."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=SHUTDOWN_GRACE_SECS)

    def close(self) -> None:
        if self._thinker is not None:
            self._thinker.shutdown(wait=False, cancel_futures=True)


async def setup(services: Services) -> None:
    config = services.config
    catalogue = load_catalogue(config.bot_catalogue) if config.bot_catalogue else load_catalogue()
    llm = ChatEndpoint(config.llm_url, config.llm_token, config.llm_model, config.llm_timeout)
    semantic = await load_reader(config, catalogue)
    assistant = Assistant(services, IntentEngine(catalogue, semantic=semantic), llm=llm)
    services.assistant = assistant
    services.messaging.register_bot(BOT_ADDRESS, assistant.on_message)


async def load_reader(config: Config, catalogue: Catalogue) -> SemanticIndex | None:
    """The sentence reader the settings ask for, or None for words only.

    A model folder, or `WHATSEASE_BOT_SEMANTIC=true`, requires it: if it cannot be
    had the server refuses to start (`ConfigError`, saying why). By default (auto)
    it is used when its package is installed, and words alone otherwise."""
    if config.bot_semantic is False and not config.bot_semantic_model:
        logger.info("bot:whatsease reads with its words only (WHATSEASE_BOT_SEMANTIC=false)")
        return None
    try:
        # Loading the model and encoding the examples take seconds: off the event loop.
        semantic, reading = await asyncio.to_thread(
            open_reader, catalogue, required=config.bot_semantic is True,
            model=config.bot_semantic_model)
    except ImportError as e:  # required, and not installed or an unusable model folder
        setting = ("WHATSEASE_BOT_SEMANTIC_MODEL" if config.bot_semantic_model
                   else "WHATSEASE_BOT_SEMANTIC")
        raise ConfigError(f"{setting}: {e}") from e
    logger.info("bot:whatsease reads with its %s", reading)
    return semantic


async def shutdown(services: Services) -> None:
    assistant = services.assistant
    if assistant is not None:
        await assistant.wait_idle()
        assistant.close()
