"""A client for OpenAI-compatible chat-completions endpoints (LLM fallback, external bots).

It runs the blocking stdlib HTTP client in a small thread pool so services stay
free of any web framework; every failure becomes `LLMError`, so callers fall
back to a canned reply instead of hanging or crashing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

logger = logging.getLogger(__name__)

# Concurrent outbound requests; more wait their turn (and their timeout).
MAX_CONCURRENT_REQUESTS = 8
MAX_RESPONSE_BYTES = 256 * 1024
MAX_REPLY_CHARS = 4096
_EXECUTOR = ThreadPoolExecutor(max_workers=MAX_CONCURRENT_REQUESTS, thread_name_prefix="llm")


class LLMError(Exception):
    """The endpoint timed out, failed, or answered something that is not a completion."""


@dataclass(frozen=True)
class ChatEndpoint:
    """Where and how to ask: URL of ``/chat/completions``, bearer token, model name."""

    url: str
    token: str = ""
    model: str = ""
    timeout: float = 4.0

    @property
    def configured(self) -> bool:
        return bool(self.url)


def request_body(messages: list[dict[str, str]], model: str = "") -> bytes:
    """The JSON body of a chat-completions request (the model only when one is named)."""
    body: dict[str, object] = {"messages": messages}
    if model:
        body["model"] = model
    return json.dumps(body).encode()


def read_completion(raw: bytes) -> str:
    """The reply text of a chat-completions answer, trimmed and bounded.

    Raises `LLMError` when ``raw`` is not a completion or its text is empty.
    """
    try:
        data = json.loads(raw)
        text = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise LLMError("the answer is not a chat completion") from None
    if not isinstance(text, str) or not text.strip():
        raise LLMError("the completion is empty")
    return text.strip()[:MAX_REPLY_CHARS]


def _post(endpoint: ChatEndpoint, payload: bytes) -> bytes:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if endpoint.token:
        headers["Authorization"] = f"Bearer {endpoint.token}"
    request = urllib.request.Request(endpoint.url, data=payload, headers=headers,  # noqa: S310
                                     method="POST")
    with urllib.request.urlopen(request, timeout=endpoint.timeout) as response:  # noqa: S310
        return bytes(response.read(MAX_RESPONSE_BYTES + 1))


async def complete(endpoint: ChatEndpoint, messages: list[dict[str, str]]) -> str:
    """Ask for one reply to ``messages`` (``[{"role": ..., "content": ...}]``).

    Raises `LLMError` on timeout, HTTP or network errors and malformed answers.
    The URL is checked to be http(s) so a bad setting cannot read local files.
    """
    if not endpoint.url.startswith(("http://", "https://")):
        raise LLMError("the endpoint URL must start with http:// or https://")
    payload = request_body(messages, endpoint.model)
    loop = asyncio.get_running_loop()
    try:
        raw = await asyncio.wait_for(loop.run_in_executor(_EXECUTOR, _post, endpoint, payload),
                                     endpoint.timeout + 0.5)
    except TimeoutError:
        raise LLMError(f"no answer within {endpoint.timeout:.1f} s") from None
    except urllib.error.HTTPError as exc:
        raise LLMError(f"HTTP {exc.code} from the endpoint") from None
    except (urllib.error.URLError, OSError) as exc:
        raise LLMError(f"cannot reach the endpoint: {exc}") from None
    if len(raw) > MAX_RESPONSE_BYTES:
        raise LLMError("the answer is too large")
    return read_completion(raw)
