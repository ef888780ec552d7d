"""Encoding of server → client frames (JSON text, one ``type`` per frame)."""

from __future__ import annotations

from typing import Any

import orjson

# Close codes (RFC 6455 §7.4.2 leaves 4000–4999 to applications).
WS_1000_NORMAL = 1000
WS_1008_POLICY_VIOLATION = 1008
WS_1011_INTERNAL_ERROR = 1011
WS_1012_SERVICE_RESTART = 1012
# The database is unreachable: reconnect after a pause, then sync.
WS_1013_TRY_AGAIN_LATER = 1013
WS_4001_UNAUTHENTICATED = 4001
WS_4003_FORBIDDEN_ORIGIN = 4003
WS_4008_TOO_SLOW = 4008
# The user opened more sockets than WHATSEASE_WS_MAX_SOCKETS_PER_USER: the oldest is closed.
WS_4009_TOO_MANY_SOCKETS = 4009
WS_4029_RATE_LIMITED = 4029


def encode(frame_type: str, **fields: Any) -> bytes:
    """One frame as UTF-8 JSON bytes, ready to send to any number of sockets.

    ``type`` comes first, so a frame's type can be read off its bytes (metrics).
    """
    return orjson.dumps({"type": frame_type, **fields})


def error_frame(code: str, detail: str, *, ref: str | None = None, client_id: str | None = None,
                errors: list[dict[str, str]] | None = None) -> bytes:
    """An ``error`` frame: ``code`` and ``detail``, and the refused frame's ``ref`` (always sent,
    null when unknown) and ``client_id`` (only when known)."""
    fields: dict[str, Any] = {"code": code, "detail": detail, "ref": ref}
    if client_id is not None:
        fields["client_id"] = client_id
    if errors:
        fields["errors"] = errors
    return encode("error", **fields)
