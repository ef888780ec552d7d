"""A server with every built-in channel on, pointed at fake platform APIs (real local servers)."""

from __future__ import annotations

import secrets
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from tests.channels import payloads
from tests.fakes.platforms import FakeGraphAPI, FakeLoopbackPeer, FakePlatform, FakeTelegramAPI
from tests.support import Client, ServerThread
from tests.support import test_config as config_for_tests
from whatsease.channels.service import ChannelService
from whatsease.storage.models import Message, conversation_id

T = TypeVar("T")

APP_SECRET = "meta-app-secret-" + secrets.token_hex(8)
VERIFY_TOKEN = "verify-" + secrets.token_hex(8)
GRAPH_TOKEN = "EAAG" + secrets.token_hex(20)
TG_TOKEN = "123456789:" + secrets.token_urlsafe(30).replace("=", "")
TG_SECRET = "tg_secret-" + secrets.token_hex(8)
LB_SECRET = "loopback-" + secrets.token_hex(8)


@dataclass
class Platforms:
    graph: FakeGraphAPI
    telegram: FakeTelegramAPI
    peer: FakeLoopbackPeer

    def all(self) -> list[FakePlatform]:
        return [self.graph, self.telegram, self.peer]


@pytest.fixture(scope="module")
def platforms() -> Iterator[Platforms]:
    found = Platforms(FakeGraphAPI().start(), FakeTelegramAPI().start(),
                      FakeLoopbackPeer().start())
    yield found
    for fake in found.all():
        fake.stop()


def channel_config(platforms: Platforms, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = dict(
        whatsapp_app_secret=APP_SECRET, whatsapp_verify_token=VERIFY_TOKEN,
        whatsapp_token=GRAPH_TOKEN, whatsapp_phone_number_id=payloads.PHONE_NUMBER_ID,
        whatsapp_graph_url=platforms.graph.graph_url, whatsapp_number="+15550783881",
        telegram_token=TG_TOKEN, telegram_secret_token=TG_SECRET,
        telegram_api_url=platforms.telegram.api_url,
        loopback_peer_url=platforms.peer.peer_url, loopback_secret=LB_SECRET)
    settings.update(overrides)
    return settings


@pytest.fixture(scope="module")
def channel_server(mongo_uri: str, platforms: Platforms) -> Iterator[ServerThread]:
    """One server per test module with WhatsApp, Telegram and loopback bound to bot:whatsease."""
    thread = ServerThread(config_for_tests(**channel_config(platforms)), mongo_uri).start()
    channels(thread).retry_backoff = 0.01
    yield thread
    thread.stop()


def channels(server: ServerThread) -> ChannelService:
    service = server.services.channels
    assert service is not None
    return service


def run(server: ServerThread, coro: Coroutine[Any, Any, T]) -> T:
    return server.call(coro)


def post_whatsapp(server: ServerThread, payload: dict[str, Any], *,
                  secret: str | None = APP_SECRET, signature: str | None = None) -> Any:
    body = payloads.body_of(payload)
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    elif secret is not None:
        headers["X-Hub-Signature-256"] = payloads.sign(secret, body)
    return Client(server.port).request("POST", "/channels/whatsapp/webhook", body=body,
                                       headers=headers)


def post_telegram(server: ServerThread, update: dict[str, Any], *,
                  secret: str | None = TG_SECRET) -> Any:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    return Client(server.port).request("POST", "/channels/telegram/webhook",
                                       body=payloads.body_of(update), headers=headers)


def settle(server: ServerThread) -> None:
    """Wait until the server has processed every queued event and reply, and the bot is idle."""
    async def idle() -> None:
        services = server.services
        for _ in range(3):  # an inbound event starts a bot reply, which queues a send
            await channels(server).wait_idle()
            if services.assistant is not None:
                await services.assistant.wait_idle()
            if services.support is not None:
                await services.support.wait_idle()
            await services.messaging.drain()
    server.call(idle())


def history(server: ServerThread, contact: str, peer: str = "bot:whatsease") -> list[Message]:
    """The stored conversation between ``contact`` and ``peer``, oldest first."""
    async def read() -> list[Message]:
        await server.services.messaging.drain()
        found = await server.services.store.messages.history(
            conversation_id(contact, peer), before=None, limit=100)
        return list(reversed(found))
    return server.call(read())


def outbox(server: ServerThread, contact: str) -> list[dict[str, Any]]:
    return server.call(channels(server).store.outbox_for(contact))

