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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from importlib.metadata import entry_points
from typing import Any, ClassVar

from whatsease.channels import metrics
from whatsease.channels.events import (
    MAX_BUTTON_TITLE_CHARS,
    MAX_BUTTONS,
    MAX_EVENTS_PER_WEBHOOK,
    MAX_LIST_ROW_TITLE_CHARS,
    MAX_LIST_ROWS,
    MAX_TEXT_CHARS,
    MAX_WEBHOOK_BYTES,
    STATUS_MAP,
    Button,
    Event,
    InboundMessage,
    ListRow,
    ListSection,
    Location,
    Media,
    MessageKind,
    MessageStatus,
    OutboundMessage,
    ParseError,
    PlatformError,
    PlatformStatus,
    SendResult,
    StatusUpdate,
    Verdict,
    WebhookRequest,
    json_object,
)
from whatsease.channels.media import MediaFile, MediaUnavailable
from whatsease.channels.provider_config import (
    ConfigError,
    ConfigField,
    FieldKind,
    validate_config,
)
from whatsease.net.outbound import OutboundPolicy

# The seam's whole vocabulary is importable from here, as providers always have.
__all__ = [
    "MAX_BUTTONS", "MAX_BUTTON_TITLE_CHARS", "MAX_EVENTS_PER_WEBHOOK", "MAX_LIST_ROWS",
    "MAX_LIST_ROW_TITLE_CHARS", "MAX_TEXT_CHARS", "MAX_WEBHOOK_BYTES", "PROVIDER_GROUP",
    "Button", "ChannelProvider", "ConfigError", "ConfigField", "Event", "FieldKind",
    "InboundMessage", "ListRow", "ListSection", "Location", "Media", "MediaFile",
    "MediaUnavailable", "MessageKind", "MessageStatus", "OutboundMessage", "ParseError",
    "PlatformError", "PlatformStatus", "ProviderContext", "SendResult", "StatusUpdate",
    "Verdict", "WebhookRequest", "build_provider", "constant_time_equal", "deliver",
    "json_object", "provider_class", "provider_names", "validate_config",
]

log = logging.getLogger("whatsease.channels")

PROVIDER_GROUP = "whatsease.chat_providers"


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
    # Whether `mark_read` of a message covers the contact's earlier ones (WhatsApp's
    # read receipts); False: each message is marked on its own (Telegram's
    # acknowledgement of each pressed button).
    read_covers_earlier: ClassVar[bool] = True

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

    async def fetch_media(self, media: Media, max_bytes: int) -> MediaFile:
        """Download an attachment the platform keeps (``media.media_id``), at most
        ``max_bytes``; raises `MediaUnavailable` with a reason safe to show (media.py
        has the checks every download must pass). Platforms without files keep this."""
        raise MediaUnavailable(f"{self.name} attachments cannot be downloaded", final=True)

    def map_status(self, raw: str) -> MessageStatus | None:
        """WhatsEase's status for a platform status, or None when not tracked."""
        return STATUS_MAP.get(raw)

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
