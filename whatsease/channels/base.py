"""The channel seam: one small interface every chat platform implements.

A *channel provider* connects WhatsEase to one messaging platform (WhatsApp
Cloud API, Telegram, a local loopback peer, or a third party's). The rest of
WhatsEase only ever talks to a provider through `ChannelProvider`; it never
sees a platform's JSON.

The contract
------------
Incoming (a webhook request reaches the server):

1. ``provider.handshake(query)`` answers a platform's subscription check
   (``GET``): the text to echo, or ``None`` for 403. Providers without one
   return ``None``.
2. ``provider.verify(request)`` runs on the raw bytes *before* anything is
   parsed or stored and returns a `Verdict`; ``Verdict.ok`` False means 401,
   store nothing and log only ``Verdict.reason`` (never a secret or the body).
3. ``provider.parse(body)`` turns the raw body into normalised events:
   `InboundMessage` (text, button/list reply, reply context, reaction,
   location, media with its platform media id), `StatusUpdate` (sent,
   delivered, read, failed with the platform's error code) and
   `PlatformError`. It raises `ParseError` for a body that is not the
   platform's shape. Every event carries the platform's id for de-duplication
   (``InboundMessage.message_id``, or ``update_id`` for platforms that number
   updates); the caller de-duplicates, the provider does not.

Outgoing:

4. ``await provider.send(OutboundMessage(...))`` makes *one* attempt and
   returns a `SendResult` (never raises for a platform or network failure):
   ``ok`` with the platform's message id, or ``retryable`` (429, 5xx,
   network) or final (other 4xx). `deliver` wraps it with bounded retries and
   exponential backoff. Buttons and list sections are rendered in the
   platform's own way (WhatsApp interactive messages, Telegram inline
   keyboards), or as numbered text where a platform has none.
5. ``await provider.mark_read(message)`` sends a read receipt when the
   platform has them (a no-op returning ok otherwise).
6. ``provider.map_status(raw)`` maps a platform delivery status to
   WhatsEase's message status (``"Sent"``, ``"Delivered"``, ``"Read"``,
   ``"Failed"``), ``None`` for statuses WhatsEase does not track.

Addresses: WhatsEase names an external person by a *contact address*
``<prefix>:<platform id>`` (``wa:+4915112345678``, ``tg:123456789``,
``lb:alice``); ``provider.contact(platform_id)`` and
``provider.platform_id(contact)`` convert between the two.

Configuration and discovery
---------------------------
A provider class declares its settings as `ConfigField` entries and is built
from a plain dict by `build_provider(name, config, context)`, which validates
the dict first and raises `ConfigError` naming the offending field (secret
fields are never echoed in error messages). Providers are found through the
Python entry-point group ``whatsease.chat_providers`` (`PROVIDER_GROUP`): a
third party ships a package whose ``setup.cfg`` says::

    [options.entry_points]
    whatsease.chat_providers =
        myplatform = mypackage.provider:MyPlatformProvider

and WhatsEase finds it after ``pip install``. The built-in providers
(``whatsapp_cloud``, ``telegram``, ``loopback``) are registered the same way
in WhatsEase's own ``setup.cfg``. A provider class must subclass
`ChannelProvider` and set ``name`` to its entry-point name.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib.metadata import entry_points
from typing import Any, ClassVar, Literal, TypeAlias

import orjson

from whatsease.channels import metrics
from whatsease.net.outbound import OutboundPolicy

log = logging.getLogger("whatsease.channels")

PROVIDER_GROUP = "whatsease.chat_providers"

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

_STATUS_MAP: dict[str, MessageStatus] = {"sent": "Sent", "delivered": "Delivered",
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


# -------------------------------------------------------------- configuration

class ConfigError(ValueError):
    """A provider configuration is invalid; ``field`` names the offending key."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


FieldKind: TypeAlias = Literal["str", "secret", "url", "int", "float", "bool"]


@dataclass(frozen=True)
class ConfigField:
    """One setting of a provider. ``secret`` fields are write-only for callers."""

    name: str
    kind: FieldKind = "str"
    required: bool = False
    default: Any = None
    help: str = ""
    max_chars: int = 512

    @property
    def secret(self) -> bool:
        return self.kind == "secret"


def validate_config(fields: Sequence[ConfigField], raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``raw`` against ``fields``; return a complete dict (defaults filled in).

    Raises `ConfigError` naming the first bad or unknown field.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError("provider_config", "must be an object")
    known = {f.name for f in fields}
    for key in raw:
        if key not in known:
            raise ConfigError(str(key)[:64],
                              f"is not a setting (known: {', '.join(sorted(known))})")
    out: dict[str, Any] = {}
    for f in fields:
        value = raw.get(f.name)
        if value is None or value == "":
            if f.required:
                raise ConfigError(f.name, "is required")
            out[f.name] = f.default
            continue
        out[f.name] = _check_field(f, value)
    return out


def _check_field(f: ConfigField, value: Any) -> Any:
    if f.kind in ("str", "secret", "url"):
        if not isinstance(value, str):
            raise ConfigError(f.name, "must be a string")
        if len(value) > f.max_chars:
            raise ConfigError(f.name, f"must be at most {f.max_chars} characters")
        if f.kind == "url" and not value.startswith(("https://", "http://")):
            raise ConfigError(f.name, "must be an http:// or https:// URL")
        return value
    if f.kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f.name, "must be true or false")
        return value
    if f.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f.name, "must be an integer")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f.name, "must be a number")
    return float(value)


@dataclass(frozen=True)
class ProviderContext:
    """What WhatsEase lends a provider: how outbound HTTP may be made."""

    policy: OutboundPolicy = field(default_factory=OutboundPolicy)


# ------------------------------------------------------------------ interface

class ChannelProvider(ABC):
    """One messaging platform. Subclasses set the class attributes and implement
    the abstract methods; see the module docstring for the contract."""

    name: ClassVar[str]                     # the entry-point name ("whatsapp_cloud")
    contact_prefix: ClassVar[str]           # "wa" -> contacts "wa:..."
    config_fields: ClassVar[tuple[ConfigField, ...]] = ()
    # How long after a person's last message we may still write to them
    # (WhatsApp's customer-service window); None means no limit.
    service_window: ClassVar[timedelta | None] = None

    def __init__(self, config: Mapping[str, Any], context: ProviderContext) -> None:
        self.config = dict(config)
        self.context = context

    # -- incoming
    def handshake(self, query: Mapping[str, str]) -> str | None:
        """The body to answer a subscription check with, or None (403)."""
        return None

    @abstractmethod
    def verify(self, request: WebhookRequest) -> Verdict:
        """Check the request's signature or secret on the raw body, before parsing."""

    @abstractmethod
    def parse(self, body: bytes) -> list[Event]:
        """Normalised events in the order the platform listed them; raises ParseError."""

    # -- outgoing
    @abstractmethod
    async def send(self, message: OutboundMessage) -> SendResult:
        """One attempt to send ``message``; never raises for platform failures."""

    async def mark_read(self, message: InboundMessage) -> SendResult:
        """Tell the platform ``message`` was read; a no-op where it has no receipts."""
        return SendResult(ok=True)

    def map_status(self, raw: str) -> MessageStatus | None:
        """WhatsEase's status for a platform status, or None when not tracked."""
        return _STATUS_MAP.get(raw)

    async def close(self) -> None:  # noqa: B027  # optional hook: most providers hold nothing
        """Release what the provider holds (connections, tasks)."""

    # -- addresses
    def contact(self, platform_id: str) -> str:
        return f"{self.contact_prefix}:{platform_id}"

    def platform_id(self, contact: str) -> str:
        """The platform's id in a contact address; ValueError if not this provider's."""
        prefix, sep, rest = contact.partition(":")
        if not sep or prefix != self.contact_prefix or not rest:
            raise ValueError(f"{contact!r} is not a {self.name} contact")
        return rest

    @classmethod
    def secret_fields(cls) -> frozenset[str]:
        return frozenset(f.name for f in cls.config_fields if f.secret)


def constant_time_equal(a: str, b: str) -> bool:
    """Compare secrets without leaking where they differ."""
    return hmac.compare_digest(a.encode(), b.encode())


# ---------------------------------------------------------------- delivery

DEFAULT_ATTEMPTS = 4
BACKOFF_BASE_SECS = 0.5
BACKOFF_MAX_SECS = 8.0

Sleep = Callable[[float], Any]


async def deliver(provider: ChannelProvider, message: OutboundMessage, *,
                  attempts: int = DEFAULT_ATTEMPTS, backoff: float = BACKOFF_BASE_SECS,
                  ) -> SendResult:
    """Send with retries: 429/5xx/network are retried with exponential backoff and
    jitter (honouring Retry-After), up to ``attempts``; any other failure is final.
    Returns the last result and counts it in the channel's out metric (the
    provider records each API call's latency and errors itself)."""

    result = SendResult(ok=False, error="not attempted")
    for attempt in range(max(1, attempts)):
        result = await provider.send(message)
        if result.ok or not result.retryable or attempt == attempts - 1:
            break
        delay = min(BACKOFF_MAX_SECS, backoff * (2 ** attempt))
        if result.retry_after is not None:
            delay = min(BACKOFF_MAX_SECS, max(delay, result.retry_after))
        await asyncio.sleep(delay * (0.75 + random.random() / 2))
    metrics.count_out(provider.name, "sent" if result.ok else "failed")
    return result


# ------------------------------------------------------------------ registry

_BUILTIN = {
    "whatsapp_cloud": "whatsease.channels.whatsapp:WhatsAppCloudProvider",
    "telegram": "whatsease.channels.telegram:TelegramProvider",
    "loopback": "whatsease.channels.loopback:LoopbackProvider",
}


def _load_target(target: str) -> type[ChannelProvider]:
    module_name, _, attr = target.partition(":")
    module = __import__(module_name, fromlist=[attr])
    cls = getattr(module, attr)
    if not (isinstance(cls, type) and issubclass(cls, ChannelProvider)):
        raise TypeError(f"{target} is not a ChannelProvider")
    return cls


def provider_names() -> list[str]:
    """Every provider name: the built-ins and the installed entry points."""
    names = set(_BUILTIN)
    names.update(ep.name for ep in entry_points(group=PROVIDER_GROUP))
    return sorted(names)


def provider_class(name: str) -> type[ChannelProvider]:
    """The provider class registered as ``name``; ConfigError("provider_name") if none.

    Built-in names always resolve to the built-in class: an installed package
    cannot replace them.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError("provider_name", "is required")
    if name in _BUILTIN:
        return _load_target(_BUILTIN[name])
    for ep in entry_points(group=PROVIDER_GROUP):
        if ep.name == name:
            try:
                cls = ep.load()
            except Exception as exc:  # noqa: BLE001  # a broken package must not take us down
                log.error("chat provider %s cannot be loaded: %s", name, exc)
                raise ConfigError("provider_name", f"{name!r} cannot be loaded") from None
            if not (isinstance(cls, type) and issubclass(cls, ChannelProvider)):
                raise ConfigError("provider_name", f"{name!r} is not a chat provider")
            return cls
    raise ConfigError("provider_name",
                      f"unknown provider {name[:64]!r} (known: {', '.join(provider_names())})")


def build_provider(name: str, config: Mapping[str, Any],
                   context: ProviderContext | None = None) -> ChannelProvider:
    """Validate ``config`` for provider ``name`` and build it.

    Raises `ConfigError` naming ``provider_name`` or the bad setting.
    """
    cls = provider_class(name)
    checked = validate_config(cls.config_fields, config)
    return cls(checked, context or ProviderContext())
