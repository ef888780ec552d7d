"""What a channel provider hands WhatsEase and takes from it: normalised events in
(messages, receipts, platform errors), messages out, and one attempt's result.

Plain frozen dataclasses, with no behaviour beyond checking their own bounds;
the contract that produces and consumes them is in base.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeAlias

import orjson

# Bounds on what a provider accepts from a platform and sends to it. WhatsApp
# allows 4,096 characters of text, 3 reply buttons of 20 characters and 10
# list rows; Telegram's are wider, so the narrower ones are the common rule.
MAX_TEXT_CHARS = 4096
MAX_BUTTONS = 3
MAX_BUTTON_TITLE_CHARS = 20
MAX_LIST_ROWS = 10
MAX_LIST_ROW_TITLE_CHARS = 24
# Below the server's own cut-off (1 MiB), so that a larger webhook gets a 413 answer.
MAX_WEBHOOK_BYTES = 512 * 1024
MAX_EVENTS_PER_WEBHOOK = 1000

MessageKind: TypeAlias = Literal["text", "button_reply", "list_reply", "reaction", "location",
                                 "media", "unsupported"]
PlatformStatus: TypeAlias = Literal["sent", "delivered", "read", "failed"]
MessageStatus: TypeAlias = Literal["Sent", "Delivered", "Read", "Failed"]

STATUS_MAP: dict[str, MessageStatus] = {"sent": "Sent", "delivered": "Delivered",
                                          "read": "Read", "failed": "Failed"}


# ---------------------------------------------------------------- events in

@dataclass(frozen=True)
class Media:
    """An attachment the platform keeps: fetch it later by ``media_id``."""

    media_id: str
    media_type: str          # image, audio, video, document, sticker, voice, photo
    mime_type: str = ""
    caption: str = ""
    filename: str = ""
    sha256: str = ""


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float
    name: str = ""
    address: str = ""


@dataclass(frozen=True)
class InboundMessage:
    """A message an external person sent to us, in one normalised shape.

    ``text`` is always filled with something readable (the reply's title, the
    reaction emoji, a description of a location or a media caption), so a
    consumer that only understands text still works; the typed fields carry
    the rest.
    """

    channel: str                 # the provider name ("whatsapp_cloud")
    message_id: str              # the platform's id: the de-duplication key
    sender: str                  # the contact address ("wa:+4915112345678")
    kind: MessageKind
    text: str
    timestamp: datetime          # UTC, from the platform
    sender_name: str = ""
    account: str = ""            # which of our numbers/bots it reached (phone_number_id)
    reply_to: str = ""           # platform id of the message this one answers
    choice_id: str = ""          # button or list-row id for button_reply / list_reply
    reaction_to: str = ""        # platform id of the message reacted to
    emoji: str = ""              # reaction emoji ("" removes a reaction)
    location: Location | None = None
    media: Media | None = None
    chat_id: str = ""            # where to answer (a contact address) when not the sender
    is_group: bool = False
    # The platform's own reference when it differs from ``message_id`` (Telegram:
    # the message's id in its chat, or a callback query's id to acknowledge).
    platform_ref: str = ""

    @property
    def reply_address(self) -> str:
        """The contact address the conversation is with (the group for group messages)."""
        return self.chat_id or self.sender


@dataclass(frozen=True)
class StatusUpdate:
    """The platform's receipt for a message we sent."""

    channel: str
    message_id: str              # the platform id `SendResult.message_id` returned
    recipient: str               # contact address
    status: PlatformStatus
    timestamp: datetime
    error_code: int | None = None
    error_title: str = ""


@dataclass(frozen=True)
class PlatformError:
    """An error the platform reports in a webhook (not tied to one of our messages)."""

    channel: str
    code: int | None
    title: str
    detail: str = ""


Event: TypeAlias = InboundMessage | StatusUpdate | PlatformError


# --------------------------------------------------------------- messages out

@dataclass(frozen=True)
class Button:
    id: str
    title: str


@dataclass(frozen=True)
class ListRow:
    id: str
    title: str
    description: str = ""


@dataclass(frozen=True)
class ListSection:
    title: str
    rows: tuple[ListRow, ...]


@dataclass(frozen=True)
class OutboundMessage:
    """What to send: text, optionally with reply buttons *or* a list (not both)."""

    to: str                                  # contact address
    text: str
    buttons: tuple[Button, ...] = ()
    sections: tuple[ListSection, ...] = ()
    list_button: str = "Choose"              # the label that opens the list
    reply_to: str = ""                       # platform id to quote

    def __post_init__(self) -> None:
        if not self.text or len(self.text) > MAX_TEXT_CHARS:
            raise ValueError(f"text must be 1-{MAX_TEXT_CHARS} characters")
        if self.buttons and self.sections:
            raise ValueError("a message has buttons or a list, not both")
        if len(self.buttons) > MAX_BUTTONS:
            raise ValueError(f"at most {MAX_BUTTONS} buttons")
        if sum(len(s.rows) for s in self.sections) > MAX_LIST_ROWS:
            raise ValueError(f"at most {MAX_LIST_ROWS} list rows")


@dataclass(frozen=True)
class SendResult:
    """The outcome of one attempt to send (or mark read)."""

    ok: bool
    message_id: str = ""        # the platform's id of the sent message
    retryable: bool = False     # 429, 5xx or a network failure: try again later
    status_code: int | None = None
    error_code: int | None = None
    error: str = ""             # one line, safe to log (no token, no body of ours)
    retry_after: float | None = None


@dataclass(frozen=True)
class WebhookRequest:
    """The parts of an HTTP request a provider may look at."""

    method: str
    headers: Mapping[str, str]       # names in lower case
    query: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str = ""

    @classmethod
    def accept(cls) -> Verdict:
        return cls(True)

    @classmethod
    def refuse(cls, reason: str) -> Verdict:
        return cls(False, reason)


class ParseError(ValueError):
    """The webhook body is not the platform's shape."""


def json_object(body: bytes, what: str = "body") -> dict[str, Any]:
    """``body`` parsed as a JSON object; `ParseError` ("<what> must be an object") otherwise."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ParseError("body is not JSON") from None
    if not isinstance(data, dict):
        raise ParseError(f"{what} must be an object")
    return data
