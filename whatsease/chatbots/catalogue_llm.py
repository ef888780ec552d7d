"""The ``catalogue`` LLM provider: WhatsEase's own intent engine with a TOML catalogue.

No model and no network: the engine matches the sender's message against the
catalogue's intents (docs/bot.md). Its confidence is the match score, so an
instance can hand a conversation to a person when it stays low. Each
conversation's engine state (contexts, remembered slots) is kept in memory,
bounded, per provider.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from whatsease.bot.catalogue import CatalogueError, load_catalogue, loads_catalogue
from whatsease.bot.engine import BotState, IntentEngine
from whatsease.chatbots.llm import (
    USER_ROLE,
    Completion,
    ConfigInvalid,
    ProviderContext,
    Turn,
    bounded_str,
    check_keys,
)
from whatsease.support.chatbot import DEFAULT_SUPPORT_CATALOGUE, HANDOFF_ACTION

MAX_CATALOGUE_CHARS = 48 * 1024
# Engines kept built across instances, one per distinct catalogue text.
ENGINE_CACHE_SIZE = 16
# Conversations whose engine state one provider keeps; the least recent is forgotten.
MAX_STATES = 10_000

_engines: OrderedDict[str, IntentEngine] = OrderedDict()


def _engine(text: str) -> IntentEngine:
    key = hashlib.sha256(text.encode()).hexdigest()
    engine = _engines.get(key)
    if engine is None:
        catalogue = (loads_catalogue(text, source="chatbot catalogue") if text.strip()
                     else load_catalogue(DEFAULT_SUPPORT_CATALOGUE))
        engine = IntentEngine(catalogue)
        _engines[key] = engine
        while len(_engines) > ENGINE_CACHE_SIZE:
            _engines.popitem(last=False)
    _engines.move_to_end(key)
    return engine


class CatalogueLLM:
    """Answers with the intent engine; an empty ``catalogue`` means the default support one."""

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ()
    KEYS = ("catalogue",)

    def __init__(self, config: Mapping[str, Any], context: ProviderContext) -> None:
        self.engine = _engine(str(config.get("catalogue", "")))
        self._states: OrderedDict[str, BotState] = OrderedDict()

    @classmethod
    def validate(cls, config: Mapping[str, Any], context: ProviderContext) -> dict[str, Any]:
        check_keys(config, cls.KEYS)
        text = bounded_str(config, "catalogue", maximum=MAX_CATALOGUE_CHARS)
        if text.strip():
            try:
                loads_catalogue(text, source="catalogue")
            except (CatalogueError, ValueError) as exc:
                raise ConfigInvalid("catalogue", str(exc)[:300]) from None
        return {"catalogue": text}

    async def complete(self, conversation: Sequence[Turn], *, conversation_id: str) -> Completion:
        started = time.perf_counter()
        text = next((t.content for t in reversed(conversation) if t.role == USER_ROLE), "")
        reply = self.engine.respond(text, self._states.get(conversation_id))
        self._states[conversation_id] = reply.state
        self._states.move_to_end(conversation_id)
        while len(self._states) > MAX_STATES:
            self._states.popitem(last=False)
        confidence = 0.0 if reply.intent is None else float(reply.confidence)
        # The engine is no language model: it spends no tokens.
        return Completion(reply.text, confidence, 0, 0, time.perf_counter() - started,
                          wants_person=reply.action == HANDOFF_ACTION)

    async def close(self) -> None:
        self._states.clear()
