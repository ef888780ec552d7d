"""Input checks shared by REST and WebSocket: each failure is a 422 naming the field."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

import idna

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
# C0 and C1 controls and DEL, except tab and newline (carriage returns become newlines).
_CONTENT_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Bidi embeddings, overrides and isolates (LRE RLE PDF LRO RLO, LRI RLI FSI PDI):
# they reorder how the text around them is shown ("Trojan Source" spoofing),
# and nothing a person types needs them (the client sets dir="auto").
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_BIDI = re.compile(f"[{BIDI_CONTROLS}]")
# Characters that show nothing: format characters (zero-width space, joiners,
# word joiner, BOM, soft hyphen, bidi marks) and blank letters (Hangul fillers,
# the braille blank).
BLANK_LETTERS = "\u115f\u1160\u3164\uffa0\u2800"


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


# Categories no address may hold anywhere: controls, format characters (zero-width,
# bidi), separators, private-use, surrogates and unassigned code points.
EMAIL_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Co", "Cs", "Cn"})


def _fold_width(text: str) -> str:
    # Full-width and half-width forms are the same letters (RFC 8265 width mapping).
    return "".join(unicodedata.normalize("NFKC", ch)
                   if unicodedata.decomposition(ch).startswith(("<wide>", "<narrow>")) else ch
                   for ch in text)


def email(value: Any, field: str = "email") -> str:
    """An address in its one canonical form, so that look-alike spellings are one account.

    The local part is width-folded, NFC-normalised and case-folded; the domain
    is converted to its ASCII (IDNA) form. Invisible, control, bidi and space
    characters are refused rather than dropped: what a person sees must be
    what the server stores.
    """
    text = _string(field, value).strip()
    if len(text) > MAX_EMAIL_CHARS * 2:
        raise invalid(field, "must be a valid email address")
    for ch in text:
        if unicodedata.category(ch) in EMAIL_REFUSED_CATEGORIES or ch in BLANK_LETTERS:
            raise invalid(field, f"must not contain invisible, control or space characters "
                                 f"(found U+{ord(ch):04X})")
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise invalid(field, "must be a valid email address")
    if text.isascii():
        # The common case, and the form earlier versions stored: lower case only.
        address = f"{local.lower()}@{domain.lower()}"
    else:
        local = unicodedata.normalize("NFC", _fold_width(local))
        local = unicodedata.normalize("NFC", local.casefold())
        try:
            ascii_domain = idna.encode(_fold_width(domain).rstrip("."),
                                       uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            raise invalid(field, "must have a valid domain name") from None
        address = f"{local}@{ascii_domain.lower()}"
    if len(address) > MAX_EMAIL_CHARS or not _EMAIL.match(address):
        raise invalid(field, "must be a valid email address")
    return address


# Format characters and combining marks show nothing on their own.
INVISIBLE_CATEGORIES = frozenset({"Cf", "Mn", "Me"})


def is_invisible(ch: str) -> bool:
    """True for a character that shows nothing on its own (and is not a space)."""
    return unicodedata.category(ch) in INVISIBLE_CATEGORIES or ch in BLANK_LETTERS


def name(value: Any, field: str = "name") -> str:
    """A display name: spaces collapsed, NFC, no controls or bidi overrides, something visible.

    Joiners stay allowed inside a name (emoji sequences and Persian need them),
    but a name must hold at least one visible character.
    """
    raw = _string(field, value)
    text = " ".join(unicodedata.normalize("NFC", raw).split())
    if not text:
        raise invalid(field, "must not be empty")
    if all(ch.isspace() or is_invisible(ch) for ch in text):
        raise invalid(field, "must contain visible characters")
    if _BIDI.search(text):
        raise invalid(field, "must not contain bidirectional override characters")
    # What was sent counts towards the limit, as the OpenAPI document says.
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
    """Message text: no NUL or other controls (newline and tab are fine), bidi overrides
    removed, trimmed, 1 to `MAX_CONTENT_CHARS` characters."""
    text = _string(field, value).replace("\r\n", "\n").replace("\r", "\n")
    found = _CONTENT_CONTROL.search(text)
    if found:
        raise invalid(field, f"must not contain control characters (found "
                             f"U+{ord(found.group()):04X}); newline and tab are allowed")
    text = _BIDI.sub("", text).strip()
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
