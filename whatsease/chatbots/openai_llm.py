"""The ``openai_compatible`` LLM provider: any OpenAI-compatible chat-completions endpoint.

The URL is the tenant's, so every call goes through the outbound guard
(net/outbound.py: https only, no private addresses, no redirects, bounded time
and size); the request body and the reading of the answer are the bot's
(bot/llm.py). The key is sent as a bearer token and never appears in a log
line or an error message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from whatsease.bot.llm import LLMError, read_completion, request_body
from whatsease.chatbots.llm import (
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
from whatsease.net.outbound import (
    MAX_URL_CHARS,
    OutboundError,
    OutboundPolicy,
    OutboundRefused,
    check_url,
    post_json,
)

MAX_MODEL_CHARS = 128
MAX_SYSTEM_CHARS = 4000
MAX_KEY_CHARS = 512
DEFAULT_TIMEOUT_SECS = 10.0
MAX_TIMEOUT_SECS = 60.0
# A chat model gives no confidence of its own; its answers count as sure, so
# only the catalogue provider's low scores lead to an automatic handoff.
COMPLETION_CONFIDENCE = 1.0


class OpenAICompatibleLLM:
    """Asks ``url`` (``.../chat/completions``) with ``model``, ``system`` prompt and ``api_key``."""

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("api_key",)
    KEYS = ("url", "model", "system", "api_key", "timeout")

    def __init__(self, config: Mapping[str, Any], context: ProviderContext) -> None:
        self.url = str(config["url"])
        self.model = str(config.get("model", ""))
        self.system = str(config.get("system", ""))
        self.api_key = str(config.get("api_key", ""))
        base = context.outbound
        self.outbound = OutboundPolicy(
            allow_private=base.allow_private,
            timeout=float(config.get("timeout", DEFAULT_TIMEOUT_SECS)),
            max_response_bytes=base.max_response_bytes, resolver=base.resolver)

    @classmethod
    def validate(cls, config: Mapping[str, Any], context: ProviderContext) -> dict[str, Any]:
        check_keys(config, cls.KEYS)
        url = bounded_str(config, "url", maximum=MAX_URL_CHARS, required=True)
        try:
            check_url(url, context.outbound)
        except OutboundRefused as exc:
            raise ConfigInvalid("url", str(exc)) from None
        out: dict[str, Any] = {
            "url": url,
            "model": bounded_str(config, "model", maximum=MAX_MODEL_CHARS),
            "system": bounded_str(config, "system", maximum=MAX_SYSTEM_CHARS),
            "timeout": bounded_number(config, "timeout", minimum=0.5, maximum=MAX_TIMEOUT_SECS,
                                      default=DEFAULT_TIMEOUT_SECS),
        }
        if "api_key" in config:
            key = bounded_str(config, "api_key", maximum=MAX_KEY_CHARS)
            if any(ch.isspace() or ord(ch) < 0x20 for ch in key):
                # It goes into a header: a line break would start another one.
                raise ConfigInvalid("api_key", "must not contain spaces or control characters")
            out["api_key"] = key
        return out

    async def complete(self, conversation: Sequence[Turn], *, conversation_id: str) -> Completion:
        """One chat completion; raises `LLMProviderError` saying what failed (never the key)."""
        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages += [{"role": t.role, "content": t.content} for t in conversation]
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        started = time.perf_counter()
        try:
            response = await post_json(self.url, request_body(messages, self.model),
                                       self.outbound, headers=headers)
        except (OutboundRefused, OutboundError) as exc:
            raise LLMProviderError(str(exc)) from None
        latency = time.perf_counter() - started
        if response.status != 200:
            raise LLMProviderError(f"HTTP {response.status} from the endpoint")
        try:
            text = read_completion(response.body)
        except LLMError as exc:
            raise LLMProviderError(str(exc)) from None
        prompt, completion = _usage(response.body)
        if prompt is None:
            prompt = sum(estimate_tokens(m["content"]) for m in messages)
        if completion is None:
            completion = estimate_tokens(text)
        return Completion(text, COMPLETION_CONFIDENCE, prompt, completion, latency)

    async def close(self) -> None:
        return None


def _usage(raw: bytes) -> tuple[int | None, int | None]:
    """The endpoint's own token counts (``usage``), when it reports them."""
    try:
        usage = json.loads(raw).get("usage")
    except (ValueError, AttributeError):
        return None, None
    if not isinstance(usage, dict):
        return None, None

    def count(key: str) -> int | None:
        value = usage.get(key)
        return value if isinstance(value, int) and 0 <= value < 10**9 else None

    return count("prompt_tokens"), count("completion_tokens")
