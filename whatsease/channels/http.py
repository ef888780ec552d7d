"""Calls from a provider to its platform's HTTP API, classified for retries."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from whatsease.channels import metrics
from whatsease.channels.base import SendResult
from whatsease.net.outbound import OutboundError, OutboundPolicy, OutboundRefused, post_json


@dataclass(frozen=True)
class ApiAnswer:
    """One call's result, and the JSON object the platform answered (empty if none)."""

    result: SendResult
    body: dict[str, Any]


def _retry_after(body: Mapping[str, Any]) -> float | None:
    # Telegram says {"parameters": {"retry_after": 3}}; the Graph API sends no hint.
    params = body.get("parameters")
    if isinstance(params, Mapping):
        value = params.get("retry_after")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(min(value, 60))
    return None


def _error_of(body: Mapping[str, Any]) -> tuple[int | None, str]:
    error = body.get("error")
    if isinstance(error, Mapping):          # Graph API: {"error": {"code", "message"}}
        code = error.get("code")
        return (code if isinstance(code, int) else None,
                str(error.get("message") or error.get("type") or "")[:200])
    code = body.get("error_code")           # Telegram: {"ok": false, "error_code", "description"}
    return (code if isinstance(code, int) else None, str(body.get("description") or "")[:200])


async def call_json(channel: str, operation: str, url: str, payload: Mapping[str, Any],
                    policy: OutboundPolicy, headers: Mapping[str, str] | None = None,
                    ) -> ApiAnswer:
    """POST ``payload`` to ``url`` and classify the answer: 2xx ok, 429/5xx and network
    failures retryable, any other status final. Records latency and errors."""
    started = time.perf_counter()
    try:
        response = await post_json(url, orjson.dumps(payload), policy, headers=headers)
    except OutboundRefused as exc:
        result = SendResult(ok=False, error=f"refused: {exc}")
        metrics.observe_api(channel, operation, time.perf_counter() - started, result)
        return ApiAnswer(result, {})
    except OutboundError as exc:
        result = SendResult(ok=False, retryable=True, error=str(exc))
        metrics.observe_api(channel, operation, time.perf_counter() - started, result)
        return ApiAnswer(result, {})
    try:
        parsed = orjson.loads(response.body) if response.body else {}
    except orjson.JSONDecodeError:
        parsed = {}
    body = parsed if isinstance(parsed, dict) else {}
    if 200 <= response.status < 300:
        result = SendResult(ok=True, status_code=response.status)
    else:
        code, message = _error_of(body)
        result = SendResult(ok=False, status_code=response.status, error_code=code,
                            retryable=response.status == 429 or response.status >= 500,
                            retry_after=_retry_after(body),
                            error=f"HTTP {response.status}" + (f": {message}" if message else ""))
    metrics.observe_api(channel, operation, time.perf_counter() - started, result)
    return ApiAnswer(result, body)
