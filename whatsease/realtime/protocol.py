"""Parsing and validation of client → server WebSocket frames; each refusal names the problem."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from whatsease import validation
from whatsease.errors import AppError, invalid
from whatsease.storage.models import is_object_id

# The protocol's own limit on one client frame. The transport accepts a little
# more (TRANSPORT_MAX_FRAME_BYTES) so that a frame between the two gets an
# ``error`` frame naming the limit instead of Tornado's bare close 1009.
MAX_FRAME_BYTES = 64 * 1024
TRANSPORT_MAX_FRAME_BYTES = 80 * 1024
MAX_REF_CHARS = 64
MAX_TOKEN_CHARS = 4096
# Receipts per frame: a client catching up after a sync acknowledges a page
# (SYNC_PAGE_LIMIT = 200) in one frame.
MAX_RECEIPT_IDS = 500

FRAME_TYPES = ("auth", "send", "delivered", "read", "typing", "sync", "ping")


class ProtocolError(AppError):
    """A client frame was refused; ``code`` and ``detail`` go back in an ``error`` frame."""

    status, code, title = 400, "bad_frame", "Bad frame"


@dataclass(frozen=True, slots=True)
class Frame:
    """One validated client frame. Only the fields of its ``type`` are set."""

    type: str
    ref: str | None = None
    token: str = ""
    client_id: str | None = None
    recipient: str = ""
    content: str = ""
    message_ids: tuple[str, ...] = ()
    state: bool = False
    after: str | None = None


_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # type: (required, optional); "type" and "ref" are allowed everywhere.
    "auth": (("token",), ()),
    "send": (("client_id", "recipient", "content"), ()),
    "delivered": (("message_ids",), ()),
    "read": (("message_ids",), ()),
    "typing": (("recipient", "state"), ()),
    "sync": ((), ("after",)),
    "ping": ((), ()),
}
# Every field a frame of each type may carry: a frame within it skips the
# field-by-field check, which only runs to name what is wrong.
_ALLOWED = {kind: frozenset((*required, *optional, "type", "ref"))
            for kind, (required, optional) in _FIELDS.items()}


def peek_ref(raw: str | bytes) -> str | None:
    """The ``ref`` (or ``client_id``) of a frame that could not be parsed further, if any."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict):
        return None
    return _ref(body)


def _ref(body: dict[str, object]) -> str | None:
    for key in ("ref", "client_id"):
        value = body.get(key)
        if isinstance(value, str) and 0 < len(value) <= MAX_REF_CHARS:
            return value
    return None


def parse(raw: str | bytes) -> Frame:
    """Decode and validate one client frame; raise `ProtocolError` or `AppError` naming the fault.

    The ``ref`` of the returned frame is the client's own ``ref`` field if it
    sent one, else its ``client_id``: the server echoes it in an ``error`` so
    the client can tell which frame was refused.
    """
    # A character is at most 4 bytes in UTF-8: only a long text needs encoding to be measured.
    size = len(raw.encode() if isinstance(raw, str) and len(raw) * 4 > MAX_FRAME_BYTES
               else raw)
    if size > MAX_FRAME_BYTES:
        raise ProtocolError(f"The frame is {size} bytes; the limit is {MAX_FRAME_BYTES}.",
                            code="frame_too_large")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"The frame is not valid JSON: {exc}", code="malformed_json") from None
    if not isinstance(body, dict):
        raise ProtocolError(f"A frame must be a JSON object, got {_json_kind(body)}.",
                            code="malformed_json")
    kind = body.get("type")
    if kind is None:
        raise ProtocolError("The frame has no \"type\"; expected one of "
                            f"{', '.join(FRAME_TYPES)}.", code="missing_type")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise ProtocolError(f"Unknown frame type {kind!r}; expected one of "
                            f"{', '.join(FRAME_TYPES)}.", code="unknown_type")
    ref = body.get("ref")
    if ref is not None and (not isinstance(ref, str) or not 0 < len(ref) <= MAX_REF_CHARS):
        raise invalid("ref", f"must be a string of 1-{MAX_REF_CHARS} characters")
    required, optional = _FIELDS[kind]
    if not (body.keys() <= _ALLOWED[kind] and all(k in body for k in required)):
        fields = {k: v for k, v in body.items() if k not in ("type", "ref")}
        validation.check_fields(fields, required=required, optional=optional)
    ref = _ref(body)
    if kind == "auth":
        token = body["token"]
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
            raise invalid("token", "must be an access token string")
        return Frame(kind, ref, token=token)
    if kind == "send":
        client_id = validation.client_id(body["client_id"])
        if client_id is None:
            raise invalid("client_id", "is required so that retries are idempotent")
        return Frame(kind, ref, client_id=client_id,
                     recipient=validation.recipient(body["recipient"]),
                     content=validation.content(body["content"]))
    if kind in ("delivered", "read"):
        ids = validation.message_ids(body["message_ids"], maximum=MAX_RECEIPT_IDS)
        return Frame(kind, ref, message_ids=tuple(dict.fromkeys(ids)))
    if kind == "typing":
        state = body["state"]
        if not isinstance(state, bool):
            raise invalid("state", "must be true or false")
        return Frame(kind, ref, recipient=validation.recipient(body["recipient"]), state=state)
    if kind == "sync":
        return Frame(kind, ref, after=_sync_position(body.get("after")))
    return Frame(kind, ref)


def parse_fields(raw: str | bytes, fields: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """A support frame: a JSON object with a known ``type`` and only that type's ``fields``
    (plus ``ref``); raise `ProtocolError` naming the fault. The values are checked by the caller.
    """
    if len(raw) > MAX_FRAME_BYTES:
        raise ProtocolError(f"Frames are limited to {MAX_FRAME_BYTES} bytes.",
                            code="frame_too_large")
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProtocolError("A frame must be a JSON object.") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise ProtocolError("A frame must be a JSON object with a type.")
    allowed = fields.get(frame["type"])
    if allowed is None:
        raise ProtocolError(f"Unknown frame type {frame['type'][:20]!r}; expected one of "
                            f"{', '.join(fields)}.")
    unknown = [k for k in frame if k not in allowed and k not in ("type", "ref")]
    if unknown:
        raise ProtocolError(f"{frame['type']}: unknown field {unknown[0][:40]!r}.")
    return frame


def auth_token(raw: str | bytes) -> str:
    """The token of an ``auth`` frame (the first frame of every socket); `ProtocolError` if not."""
    token = parse_fields(raw, {"auth": ("token",)}).get("token")
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
        raise ProtocolError("auth: token must be a non-empty string.")
    return token


def _sync_position(value: object) -> str | None:
    """``after``: null, a message id, or a cursor from ``synced`` (``REV.ID``, two ids,
    optionally followed by ``~REV.ID`` where paging resumes; the part before ``~``
    may be empty)."""
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= 2 * 49 + 1:
        settled, mark, resume = value.partition("~")
        if (_position(settled) or (mark and not settled)) and (not mark or _position(resume)):
            return value.lower()
    raise invalid("after", "must be null, a message id or a cursor from synced")


def _position(value: str) -> bool:
    """A message id, or ``REV.ID``."""
    rev, dot, message_id = value.partition(".")
    return is_object_id(rev) and (not dot or is_object_id(message_id))


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
