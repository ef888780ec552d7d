"""An org's chatbot: the built-in intent engine with the org's catalogue, or an external endpoint.

Both kinds recognise a customer asking for a person with the intent engine (the
catalogue's ``action = "handoff"`` intents), so handoff works the same whichever
bot answers. An external chatbot speaks the OpenAI-compatible chat-completions
API; when it fails, the customer gets a canned reply instead of silence.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from whatsease.bot.catalogue import Catalogue, load_catalogue, loads_catalogue
from whatsease.bot.engine import BotState, IntentEngine
from whatsease.net.outbound import OutboundError, OutboundPolicy, OutboundRefused, post_json
from whatsease.storage.support_models import Org, SupportMessage

logger = logging.getLogger(__name__)

DEFAULT_SUPPORT_CATALOGUE = Path(__file__).with_name("catalogue.toml")
HANDOFF_ACTION = "handoff"
# Engines kept built, one per distinct catalogue text; building one costs milliseconds.
ENGINE_CACHE_SIZE = 32
# Messages of the conversation sent to an external chatbot as context.
EXTERNAL_CONTEXT_MESSAGES = 20
MAX_REPLY_CHARS = 4096
EXTERNAL_UNAVAILABLE = ("Sorry, I can't answer right now. Type 'talk to a person' and a member "
                        "of our team will help you.")
SYSTEM_PROMPT = ("You are the customer support assistant of {org}. Answer briefly and "
                 "politely. If you cannot help, offer to connect the customer to a person.")


@dataclass(frozen=True)
class BotAnswer:
    """What the bot says, whether the customer asked for a person, and the bot's new state."""

    text: str
    handoff: bool
    source: str
    state: dict[str, Any] = field(default_factory=dict)
    intent: str | None = None


class SupportChatbot:
    """Answers customers of every org; per-customer state lives on the conversation."""

    def __init__(self, default_catalogue: Catalogue | None = None, *,
                 timeout: float = 4.0, outbound: OutboundPolicy | None = None) -> None:
        self.default_catalogue = default_catalogue or load_catalogue(DEFAULT_SUPPORT_CATALOGUE)
        self.timeout = timeout
        # The org's URL is checked again on every call (it was checked when
        # saved, but DNS may answer differently now).
        base = outbound or OutboundPolicy()
        self.outbound = OutboundPolicy(allow_private=base.allow_private, timeout=timeout,
                                       max_response_bytes=base.max_response_bytes,
                                       resolver=base.resolver)
        self._default_engine = IntentEngine(self.default_catalogue)
        self._engines: OrderedDict[str, IntentEngine] = OrderedDict()

    def engine_for(self, org: Org) -> IntentEngine:
        """The engine for the org's catalogue (the default one when it has none).

        The catalogue was validated when it was saved; should a stored one still
        fail to load, the default engine answers and the error is logged.
        """
        text = org.settings.chatbot.catalogue
        if not text.strip():
            return self._default_engine
        key = hashlib.sha256(text.encode()).hexdigest()
        engine = self._engines.get(key)
        if engine is None:
            try:
                engine = IntentEngine(loads_catalogue(text, source=f"org {org.org_id}"))
            except ValueError:
                logger.exception("stored catalogue of org %s is invalid", org.org_id)
                return self._default_engine
            self._engines[key] = engine
            while len(self._engines) > ENGINE_CACHE_SIZE:
                self._engines.popitem(last=False)
        self._engines.move_to_end(key)
        return engine

    def bot_name(self, org: Org) -> str:
        if org.settings.chatbot.kind == "external":
            return f"{org.name} assistant"
        return self.engine_for(org).catalogue.bot.name

    async def answer(self, org: Org, text: str, *, state: dict[str, Any], customer_name: str,
                     history: Sequence[SupportMessage], now: datetime) -> BotAnswer:
        """Reply to the customer's ``text``; ``history`` is the conversation, oldest first."""
        engine = self.engine_for(org)
        reply = engine.respond(text, BotState.from_dict(state), now=now,
                               user_name=customer_name)
        new_state = reply.state.to_dict()
        if reply.action == HANDOFF_ACTION:
            return BotAnswer(reply.text, True, "intent", new_state, reply.intent)
        settings = org.settings.chatbot
        if settings.kind != "external" or not settings.url:
            return BotAnswer(reply.text, False, "fallback" if reply.is_fallback else "intent",
                             new_state, reply.intent)
        messages = [{"role": "system", "content": SYSTEM_PROMPT.format(org=org.name)}]
        for message in list(history)[-EXTERNAL_CONTEXT_MESSAGES:]:
            if message.kind == "customer":
                messages.append({"role": "user", "content": message.content})
            elif message.kind in ("bot", "agent"):
                messages.append({"role": "assistant", "content": message.content})
        if not history or history[-1].content != text:
            messages.append({"role": "user", "content": text})
        try:
            answer = await self._ask_external(settings.url, settings.token, settings.model,
                                              messages)
        except (OutboundRefused, OutboundError, ValueError) as exc:
            # The error names what failed, never the token.
            logger.warning("external chatbot of org %s failed: %s", org.org_id, exc)
            return BotAnswer(EXTERNAL_UNAVAILABLE, False, "external_error", new_state)
        return BotAnswer(answer, False, "external", new_state)

    async def _ask_external(self, url: str, token: str, model: str,
                            messages: list[dict[str, str]]) -> str:
        """One chat completion from the org's endpoint, through the outbound guard.

        Raises `OutboundRefused` or `OutboundError` from the guard and
        `ValueError` when the answer is not a non-empty chat completion.
        """
        body: dict[str, Any] = {"messages": messages}
        if model:
            body["model"] = model
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await post_json(url, orjson.dumps(body), self.outbound, headers=headers)
        if response.status != 200:
            raise ValueError(f"HTTP {response.status} from the endpoint")
        try:
            text = orjson.loads(response.body)["choices"][0]["message"]["content"]
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            raise ValueError("the answer is not a chat completion") from None
        if not isinstance(text, str) or not text.strip():
            raise ValueError("the completion is empty")
        return text.strip()[:MAX_REPLY_CHARS]
