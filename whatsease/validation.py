"""Input checks shared by REST and WebSocket: each failure is a 422 naming the field."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from whatsease.errors import Unprocessable, invalid
from whatsease.storage.models import STATUSES, is_object_id

MAX_CONTENT_CHARS = 4096
MAX_NAME_CHARS = 80
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 256
MAX_EMAIL_CHARS = 254
MAX_CLIENT_ID_CHARS = 64
MAX_QUERY_CHARS = 100

# Deliberately plain: one @, no spaces or control characters, a dot in the
# domain. Deliverability is not ours to judge; obvious typos are.
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f-\x9f]+@[^@\s\x00-\x1f\x7f-\x9f]+"
                    r"\.[^@\s\x00-\x1f\x7f-\x9f.]{2,}$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]+$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_fields(body: Mapping[str, Any], *, required: Iterable[str] = (),
                 optional: Iterable[str] = ()) -> None:
    """Refuse unknown and missing fields, naming each."""
    required = tuple(required)
    allowed = set(required) | set(optional)
    errors = [{"field": k, "message": "unknown field"} for k in body if k not in allowed]
    errors += [{"field": k, "message": "is required"} for k in required if k not in body]
    if errors:
        raise Unprocessable("; ".join(f"{e['field']}: {e['message']}" for e in errors),
                            errors=errors)


def _string(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise invalid(field, f"must be a string, got {type(value).__name__}")
    return value


def email(value: Any, field: str = "email") -> str:
    text = _string(field, value).strip().lower()
    if len(text) > MAX_EMAIL_CHARS or not _EMAIL.fullmatch(text):
        raise invalid(field, "must be a valid email address")
    return text


def name(value: Any, field: str = "name") -> str:
    """Runs of whitespace become one space; what was sent counts towards the limit."""
    raw = _string(field, value)
    text = " ".join(raw.split())
    if not text:
        raise invalid(field, "must not be empty")
    if len(raw) > MAX_NAME_CHARS:
        raise invalid(field, f"must be at most {MAX_NAME_CHARS} characters")
    if _CONTROL.search(text):
        raise invalid(field, "must not contain control characters")
    return text


def password(value: Any, field: str = "password") -> str:
    text = _string(field, value)
    if len(text) < MIN_PASSWORD_CHARS:
        raise invalid(field, f"must be at least {MIN_PASSWORD_CHARS} characters")
    if len(text) > MAX_PASSWORD_CHARS:
        raise invalid(field, f"must be at most {MAX_PASSWORD_CHARS} characters")
    return text


def content(value: Any, field: str = "content") -> str:
    text = _string(field, value).strip()
    if not text:
        raise invalid(field, "must not be empty or only whitespace")
    if len(text) > MAX_CONTENT_CHARS:
        raise invalid(field, f"must be at most {MAX_CONTENT_CHARS} characters, got {len(text)}")
    return text


def recipient(value: Any, field: str = "recipient") -> str:
    text = _string(field, value).strip()
    if text.startswith("bot:"):
        if not re.fullmatch(r"bot:[a-z0-9_-]{1,40}", text):
            raise invalid(field, "must be an email or a bot id such as bot:whatsease")
        return text
    return email(text, field)


def client_id(value: Any, field: str = "client_id") -> str | None:
    if value is None:
        return None
    text = _string(field, value)
    if not 1 <= len(text) <= MAX_CLIENT_ID_CHARS or not _CLIENT_ID.fullmatch(text):
        raise invalid(field, f"must be 1-{MAX_CLIENT_ID_CHARS} letters, digits or _.:-")
    return text


def status(value: Any, field: str = "status") -> str:
    text = _string(field, value)
    if text not in STATUSES:
        raise invalid(field, f"must be one of {', '.join(STATUSES)}")
    return text


def object_id(value: Any, field: str) -> str:
    text = _string(field, value)
    if not is_object_id(text):
        raise invalid(field, "must be a message id (24 hexadecimal characters)")
    return text.lower()


def limit(value: str | None, *, default: int, maximum: int, field: str = "limit") -> int:
    """A page size: ``default`` when absent, else a whole number from 1 to ``maximum``."""
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise invalid(field, "must be a whole number") from None
    if not 1 <= number <= maximum:
        raise invalid(field, f"must be between 1 and {maximum}")
    return number


def query(value: str | None, field: str = "q") -> str:
    text = (value or "").strip()
    if len(text) > MAX_QUERY_CHARS:
        raise invalid(field, f"must be at most {MAX_QUERY_CHARS} characters")
    return text


def message_ids(value: Any, field: str = "message_ids", maximum: int = 500) -> list[str]:
    if not isinstance(value, list) or not value:
        raise invalid(field, "must be a non-empty list of message ids")
    if len(value) > maximum:
        raise invalid(field, f"must hold at most {maximum} ids")
    return [object_id(v, field) for v in value]
