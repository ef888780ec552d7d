"""The ``fake`` LLM provider: deterministic answers for tests and for trying instances out.

It echoes the last user turn through a template, with a fixed confidence, an
optional delay (awaited, so it never holds the event loop) and an optional
failure, so every path of an instance can be exercised without a model.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from whatsease.chatbots.llm import (
    USER_ROLE,
    Completion,
    ConfigInvalid,
    LLMProviderError,
    ProviderContext,
    Turn,
    bounded_number,
    bounded_str,
    check_keys,
    estimate_tokens,
)

DEFAULT_TEMPLATE = "You said: {text}"
MAX_TEMPLATE_CHARS = 1000
MAX_DELAY_MS = 30_000
MAX_REPLY_CHARS = 4096


class FakeLLM:
    """Replies ``reply`` with ``{text}`` replaced by the last user turn."""

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("api_key",)
    KEYS = ("reply", "confidence", "delay_ms", "fail", "api_key")

    def __init__(self, config: Mapping[str, Any], context: ProviderContext) -> None:
        self.template = str(config.get("reply", DEFAULT_TEMPLATE))
        self.confidence = float(config.get("confidence", 1.0))
        self.delay = float(config.get("delay_ms", 0)) / 1000
        self.fail = bool(config.get("fail", False))

    @classmethod
    def validate(cls, config: Mapping[str, Any], context: ProviderContext) -> dict[str, Any]:
        check_keys(config, cls.KEYS)
        out: dict[str, Any] = {
            "reply": bounded_str(config, "reply", maximum=MAX_TEMPLATE_CHARS,
                                 default=DEFAULT_TEMPLATE),
            "confidence": bounded_number(config, "confidence", minimum=0, maximum=1, default=1),
            "delay_ms": int(bounded_number(config, "delay_ms", minimum=0, maximum=MAX_DELAY_MS,
                                           default=0)),
        }
        fail = config.get("fail", False)
        if not isinstance(fail, bool):
            raise ConfigInvalid("fail", "must be true or false")
        out["fail"] = fail
        if "api_key" in config:
            # Accepted (and sealed like any key) so tests can prove keys are never echoed.
            out["api_key"] = bounded_str(config, "api_key", maximum=512)
        return out

    async def complete(self, conversation: Sequence[Turn], *, conversation_id: str) -> Completion:
        started = time.perf_counter()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise LLMProviderError("the fake provider is configured to fail")
        text = next((t.content for t in reversed(conversation) if t.role == USER_ROLE), "")
        reply = self.template.replace("{text}", text)[:MAX_REPLY_CHARS]
        prompt = sum(estimate_tokens(t.content) for t in conversation)
        return Completion(reply, self.confidence, prompt, estimate_tokens(reply),
                          time.perf_counter() - started)

    async def close(self) -> None:
        return None
