"""Typed errors raised by services; handlers turn them into problem+json or error frames."""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://whatsease.dev/problems/"


class ConfigError(Exception):
    """A setting is missing or invalid; the message names the variable and value."""


class AppError(Exception):
    """An error a client caused or must know about.

    ``code`` is a short stable identifier (used as the problem ``type`` suffix
    and as the WebSocket ``error`` frame's code); ``errors`` lists field-level
    problems as ``{"field": ..., "message": ...}``.
    """

    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        return body


class BadRequest(AppError):
    status, code, title = 400, "bad_request", "Bad request"


class Unauthorized(AppError):
    status, code, title = 401, "unauthorized", "Unauthorized"


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(AppError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict"


class Gone(AppError):
    status, code, title = 410, "gone", "Gone"


class PayloadTooLarge(AppError):
    status, code, title = 413, "payload_too_large", "Payload too large"


class UnsupportedMediaType(AppError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class Unprocessable(AppError):
    status, code, title = 422, "invalid", "Invalid request"


class TooManyRequests(AppError):
    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.retry_after = max(1, int(retry_after))
        self.headers["Retry-After"] = str(self.retry_after)


class ServiceUnavailable(AppError):
    """The server cannot answer now (shutting down, the database unreachable).

    ``retry_after`` seconds, when given, are sent as ``Retry-After``; WebSocket
    sockets that hit this error are closed with 1013 "try again later".
    """

    status, code, title = 503, "unavailable", "Service unavailable"

    def __init__(self, detail: str, *, retry_after: int | None = None, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.retry_after = None if retry_after is None else max(1, int(retry_after))
        if self.retry_after is not None:
            self.headers["Retry-After"] = str(self.retry_after)


def invalid(field: str, message: str) -> Unprocessable:
    """A 422 for one field, with the field named in the detail and in ``errors``."""
    return Unprocessable(f"{field}: {message}", errors=[{"field": field, "message": message}])
