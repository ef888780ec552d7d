"""The channel service: what happens to a verified webhook's events, and how replies leave.

A webhook handler verifies the request, parses it into events and hands them
to `ChannelService.accept`, which only queues them (bounded: when full it
raises `Overloaded`, the handler answers 503 and the platform delivers again
later), so the platform gets its 200 before any bot runs. Events are then
processed in order per contact, different contacts concurrently:

- an `InboundMessage` is de-duplicated by its platform id (a unique key in
  MongoDB), its contact (``wa:+4915112345678``) is recorded with the time of
  its last message (for WhatsApp's 24-hour window), it is marked read, and it
  enters WhatsEase as a message from the contact: to the bound bot through the
  messenger (``bot:<name>``, stored in ``messages``) or to an organisation's
  support routing (``org:<id>``: bot, agents, handoff, transfer, stored in
  ``support_messages``), exactly like a widget customer;
- a `StatusUpdate` moves the delivery state of the message it is about forward
  (and the messenger's status, for bot bindings); a failure is logged with the
  platform's error code;
- a `PlatformError` is logged and counted.

Replies leave through the hub: the contact (or its support conversation) has a
`ChannelConnection` in the process hub, so whatever WhatsEase sends to a web
user's sockets (a bot reply, an agent's message, a system note) reaches it
through the same ``Hub.send`` seam, and it forwards the replies meant for the
contact to the platform, with retries, outside the event loop's way.

The parts live in their own modules: core.py (state), intake.py (events in),
receipts.py (statuses), replies.py (replies out), connection.py (the hub
connection), console.py (what agents see: failed deliveries, attachments).
"""

from __future__ import annotations

import asyncio
import logging

from whatsease.channels.base import ChannelProvider, ProviderContext, build_provider
from whatsease.channels.base import ConfigError as ProviderConfigError
from whatsease.channels.connection import ChannelConnection
from whatsease.channels.core import OUTSIDE_WINDOW, Channel, Overloaded
from whatsease.channels.intake import ChannelIntake
from whatsease.net.outbound import OutboundPolicy
from whatsease.services import Services

__all__ = ["OUTSIDE_WINDOW", "Channel", "ChannelConnection", "ChannelService", "Overloaded",
           "configured_channels", "setup", "shutdown"]

logger = logging.getLogger(__name__)


class ChannelService(ChannelIntake):
    """Every configured channel of the process; see the module docstring."""

    async def run_janitor(self, interval: float = 600.0) -> None:
        """Detach idle connections every ``interval`` seconds, until cancelled."""
        while True:
            await asyncio.sleep(interval)
            self.detach_idle()

    def start(self) -> None:
        """Start the janitor that detaches idle contacts."""
        if self._janitor is None:
            self._janitor = asyncio.get_running_loop().create_task(self.run_janitor(),
                                                                   name="channel-janitor")

    async def close(self) -> None:
        janitor, self._janitor = self._janitor, None
        if janitor is not None:
            janitor.cancel()
            await asyncio.gather(janitor, return_exceptions=True)
        await self.wait_idle()
        await self._dedup.drain()
        await self._contact_writes.drain()
        await self._out_writes.drain()
        for connection, _at in list(self._attached.values()):
            self.detach(connection)
        for channel in self.channels.values():
            await channel.provider.close()


class ChannelSettingError(ProviderConfigError):
    """A provider's `ConfigError` (``field``) with the environment variable it came from."""

    def __init__(self, exc: ProviderConfigError, variable: str) -> None:
        super().__init__(exc.field, exc.message)
        self.variable = variable


# The provider fields whose variable is not WHATSEASE_<CHANNEL>_<FIELD>.
_VARIABLES = {"display_number": "NUMBER"}


def _build(name: str, channel: str, settings: dict[str, str],
           context: ProviderContext) -> ChannelProvider:
    try:
        return build_provider(name, settings, context)
    except ProviderConfigError as exc:
        field = _VARIABLES.get(exc.field, exc.field.upper())
        raise ChannelSettingError(exc, f"WHATSEASE_{channel}_{field}") from None


def configured_channels(services: Services) -> list[Channel]:
    """The built-in channels the settings turn on (WHATSEASE_WHATSAPP_*, _TELEGRAM_*,
    _LOOPBACK_*). Raises `ChannelSettingError` naming a bad setting (never its value)."""
    config = services.config
    context = ProviderContext(OutboundPolicy(allow_private=config.outbound_allow_private))
    channels: list[Channel] = []
    whatsapp = {"app_secret": config.whatsapp_app_secret,
                "verify_token": config.whatsapp_verify_token, "token": config.whatsapp_token,
                "phone_number_id": config.whatsapp_phone_number_id}
    if all(whatsapp.values()):
        channels.append(Channel(_build("whatsapp_cloud", "WHATSAPP", {
            **whatsapp, "graph_url": config.whatsapp_graph_url,
            "display_number": config.whatsapp_number}, context), "whatsapp",
            config.whatsapp_binding))
    elif any(whatsapp.values()):
        missing = [k for k, v in whatsapp.items() if not v]
        logger.warning("the WhatsApp channel is off: WHATSEASE_WHATSAPP_%s not set",
                       "/".join(m.upper() for m in missing))
    if config.telegram_token and config.telegram_secret_token:
        channels.append(Channel(_build("telegram", "TELEGRAM", {
            "token": config.telegram_token, "secret_token": config.telegram_secret_token,
            "api_url": config.telegram_api_url}, context), "telegram", config.telegram_binding))
    if config.loopback_peer_url and config.loopback_secret:
        channels.append(Channel(_build("loopback", "LOOPBACK", {
            "peer_url": config.loopback_peer_url, "secret": config.loopback_secret}, context),
            "loopback", config.loopback_binding))
    return channels


async def setup(services: Services) -> None:
    from whatsease.errors import ConfigError

    try:
        channels = configured_channels(services)
    except ProviderConfigError as exc:
        # Name the environment variable, never its value (they hold secrets).
        setting = exc.variable if isinstance(exc, ChannelSettingError) else exc.field
        raise ConfigError(f"a channel setting is invalid: {setting}: {exc.message}") from None
    service = ChannelService(services, channels)
    await service.store.ensure_indexes()
    services.channels = service
    service.start()
    for channel in channels:
        logger.info("channel %s is on, answered by %s", channel.name, channel.binding)


async def shutdown(services: Services) -> None:
    if services.channels is not None:
        await services.channels.close()
