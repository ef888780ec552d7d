"""Attachments external people send, downloaded from their platform when an agent opens one.

A platform keeps the file and gives us an id (WhatsApp's media id, Telegram's
file_id); a provider turns that id into bytes with `ChannelProvider.fetch_media`,
using the helpers here, which bound everything a download may do:

- only ``https`` to a public address, or the platform API's own configured
  host (WhatsApp's Graph API answers with a URL of Meta's choosing: a URL we did
  not configure is treated like any tenant URL, see whatsease/net/outbound.py);
- at most ``max_bytes`` (``WHATSEASE_CHANNEL_MEDIA_MAX_BYTES``), checked against
  the size the platform announces and again while reading;
- only the content types in `ALLOWED_TYPES` (no HTML, no SVG, nothing a browser
  runs), and an image must start with its format's magic bytes.

A failure raises `MediaUnavailable` with a one-line reason that is safe to show
an agent and to log (it never holds a token or a URL).
"""

from __future__ import annotations

import mimetypes
import time
import urllib.parse
from dataclasses import dataclass, replace
from typing import Any

import orjson

from whatsease.channels import metrics
from whatsease.channels.events import SendResult
from whatsease.net.outbound import (
    OutboundError,
    OutboundPolicy,
    OutboundRefused,
    Response,
    get_bytes,
)

# A download may take longer than an API call (files of a few megabytes).
MEDIA_TIMEOUT_SECS = 20.0
# What a platform's metadata answer (a small JSON object) may weigh.
MAX_METADATA_BYTES = 16 * 1024

# What WhatsApp and Telegram deliver, and nothing a browser would run or render as
# a page. Images are shown inline in the console; everything else is a download.
IMAGE_TYPES: dict[str, tuple[bytes, ...]] = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}
ALLOWED_TYPES = frozenset({
    *IMAGE_TYPES,
    "audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg", "audio/opus",
    "video/mp4", "video/3gpp", "video/webm",
    "application/pdf", "text/plain", "text/csv", "application/zip",
    "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
})
# Answers that say nothing about the type: the type the platform announced (or the
# file name's extension) decides then.
_UNTYPED = ("", "application/octet-stream", "binary/octet-stream")


class MediaUnavailable(Exception):
    """A file cannot be had. ``final`` when asking again will not help (refused, too
    large, a type we do not serve), so the outcome may be remembered."""

    def __init__(self, reason: str, *, final: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.final = final


@dataclass(frozen=True)
class MediaFile:
    """A downloaded attachment: its bytes and its checked content type."""

    content: bytes
    content_type: str
    filename: str = ""

    @property
    def is_image(self) -> bool:
        return self.content_type in IMAGE_TYPES


def media_policy(base: OutboundPolicy, max_bytes: int) -> OutboundPolicy:
    """``base`` with the download's own time and size bounds."""
    return replace(base, timeout=max(base.timeout, MEDIA_TIMEOUT_SECS),
                   max_response_bytes=max_bytes)


def strict_policy(base: OutboundPolicy, max_bytes: int) -> OutboundPolicy:
    """The policy for a URL a platform handed us: https and public addresses only."""
    return replace(media_policy(base, max_bytes), allow_private=False)


def same_origin(url: str, base_url: str) -> bool:
    """True when ``url`` has the scheme, host and port of ``base_url``."""
    a, b = urllib.parse.urlsplit(url), urllib.parse.urlsplit(base_url)
    try:
        return (a.scheme.lower(), (a.hostname or "").lower(), a.port) == \
            (b.scheme.lower(), (b.hostname or "").lower(), b.port)
    except ValueError:
        return False


def media_type(value: str) -> str:
    """A Content-Type header without its parameters, in lower case."""
    return value.split(";", 1)[0].strip().lower()


async def fetch(channel: str, url: str, policy: OutboundPolicy, *,
                headers: dict[str, str] | None = None, what: str = "file") -> Response:
    """GET ``url``; `MediaUnavailable` for a refusal, a failure or a non-2xx answer.

    The reason names ``what`` and the status, never the URL (Telegram's file URLs
    carry the bot token).
    """
    started = time.perf_counter()
    try:
        response = await get_bytes(url, policy, headers=headers)
    except OutboundRefused as exc:
        metrics.observe_api(channel, "media", time.perf_counter() - started,
                            SendResult(ok=False))
        raise MediaUnavailable(f"the {what}'s address is not allowed ({exc})", final=True) \
            from None
    except OutboundError as exc:
        metrics.observe_api(channel, "media", time.perf_counter() - started,
                            SendResult(ok=False))
        too_large = "larger than" in str(exc)
        raise MediaUnavailable(f"the {what} is larger than {policy.max_response_bytes} bytes"
                               if too_large else f"the {what} cannot be downloaded",
                               final=too_large) from None
    ok = 200 <= response.status < 300
    metrics.observe_api(channel, "media", time.perf_counter() - started,
                        SendResult(ok=ok, status_code=response.status))
    if not ok:
        raise MediaUnavailable(f"the platform answered HTTP {response.status} for the {what}",
                               final=response.status in (400, 403, 404, 410))
    return response


async def fetch_json(channel: str, url: str, policy: OutboundPolicy, *,
                     headers: dict[str, str] | None = None,
                     what: str = "media's details") -> dict[str, Any]:
    """`fetch` a small JSON object (a platform's answer about a file)."""
    small = replace(policy, max_response_bytes=MAX_METADATA_BYTES)
    response = await fetch(channel, url, small, headers=headers, what=what)
    try:
        body = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise MediaUnavailable(f"the platform's answer about the {what} is not JSON")
    return body


def checked_file(response: Response, *, declared: str = "", filename: str = "",
                 max_bytes: int) -> MediaFile:
    """The downloaded bytes as a `MediaFile` once size, type and image magic pass."""
    content = response.body
    if len(content) > max_bytes:
        raise MediaUnavailable(f"the file is larger than {max_bytes} bytes", final=True)
    if not content:
        raise MediaUnavailable("the file is empty", final=True)
    kind = media_type(response.content_type)
    if kind in _UNTYPED:
        kind = media_type(declared) or media_type(mimetypes.guess_type(filename)[0] or "")
    if kind not in ALLOWED_TYPES:
        raise MediaUnavailable(f"files of type {kind[:80] or 'unknown'} are not shown",
                               final=True)
    magic = IMAGE_TYPES.get(kind)
    if magic is not None and not content.startswith(magic):
        raise MediaUnavailable(f"the file is not the {kind} it claims to be", final=True)
    return MediaFile(content, kind, filename)


def safe_id(value: str) -> str:
    """A platform's file id, refused when it could change the path it is put in."""
    if not value or len(value) > 256 or not all(c.isalnum() or c in "-_." for c in value):
        raise MediaUnavailable("the media id is malformed", final=True)
    return value
