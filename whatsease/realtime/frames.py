"""Encoding of server → client frames (JSON text, one ``type`` per frame)."""

from __future__ import annotations

from typing import Any

import orjson

# Close codes (RFC 6455 §7.4.2 leaves 4000–4999 to applications).
WS_1000_NORMAL = 1000
WS_1008_POLICY_VIOLATION = 1008
WS_1012_SERVICE_RESTART = 1012
WS_4001_UNAUTHENTICATED = 4001
WS_4003_FORBIDDEN_ORIGIN = 4003
WS_4008_TOO_SLOW = 4008
WS_4029_RATE_LIMITED = 4029


def encode(frame_type: str, **fields: Any) -> bytes:
    """One frame as UTF-8 JSON bytes, ready to send to any number of sockets.

    ``type`` comes first, so a frame's type can be read off its bytes (metrics).
    """
    return orjson.dumps({"type": frame_type, **fields})
