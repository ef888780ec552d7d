"""The channel seam: configuration, the registry and its entry points, and delivery."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.platforms import FakeLoopbackPeer
from whatsease.channels import base
from whatsease.channels.base import (
    Button,
    ChannelProvider,
    ConfigError,
    ConfigField,
    ListRow,
    ListSection,
    OutboundMessage,
    ProviderContext,
    build_provider,
    deliver,
    provider_names,
    validate_config,
)
from whatsease.channels.loopback import LoopbackProvider
from whatsease.net.outbound import OutboundPolicy

LOCAL = ProviderContext(OutboundPolicy(allow_private=True, timeout=2.0))


@pytest.fixture
def peer() -> Iterator[FakeLoopbackPeer]:
    fake = FakeLoopbackPeer().start()
    yield fake
    fake.stop()


def test_validate_config_names_the_field() -> None:
    fields = (ConfigField("url", "url", required=True), ConfigField("n", "int", default=3),
              ConfigField("key", "secret"))
    assert validate_config(fields, {"url": "https://x.example"}) == {
        "url": "https://x.example", "n": 3, "key": None}
    with pytest.raises(ConfigError) as missing:
        validate_config(fields, {})
    assert missing.value.field == "url"
    with pytest.raises(ConfigError) as wrong:
        validate_config(fields, {"url": "https://x.example", "n": "3"})
    assert wrong.value.field == "n"
    with pytest.raises(ConfigError) as unknown:
        validate_config(fields, {"url": "https://x.example", "extra": 1})
    assert unknown.value.field == "extra"
    with pytest.raises(ConfigError) as scheme:
        validate_config(fields, {"url": "ftp://x"})
    assert scheme.value.field == "url"
    with pytest.raises(ConfigError) as secret:
        validate_config(fields, {"url": "https://x.example", "key": 12345})
    assert secret.value.field == "key" and "12345" not in str(secret.value)


def test_unknown_provider_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        build_provider("nosuch", {})
    assert caught.value.field == "provider_name"
    assert "loopback" in caught.value.message


def test_builtin_provider_is_built_from_a_validated_config() -> None:
    with pytest.raises(ConfigError) as caught:
        build_provider("loopback", {"secret": "s"})
    assert caught.value.field == "peer_url"
    provider = build_provider("loopback", {"peer_url": "http://127.0.0.1:9/r", "secret": "s"})
    assert isinstance(provider, LoopbackProvider)
    assert LoopbackProvider.secret_fields() == {"secret"}
    assert provider.contact("alice") == "lb:alice"
    assert provider.platform_id("lb:alice") == "alice"
    with pytest.raises(ValueError):
        provider.platform_id("wa:+1")


@pytest.fixture
def third_party(tmp_path: Path) -> Iterator[str]:
    """An installed third-party package that registers a provider by entry point."""
    (tmp_path / "acme_chat.py").write_text(textwrap.dedent("""
        from whatsease.channels.base import ChannelProvider, ConfigField, SendResult, Verdict

        class AcmeProvider(ChannelProvider):
            name = "acme"
            contact_prefix = "acme"
            config_fields = (ConfigField("token", "secret", required=True),)

            def verify(self, request):
                return Verdict.accept()

            def parse(self, body):
                return []

            async def send(self, message):
                return SendResult(ok=True, message_id="acme-1")
        """))
    info = tmp_path / "acme_chat-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-chat\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[whatsease.chat_providers]\nacme = acme_chat:AcmeProvider\n"
        "loopback = acme_chat:AcmeProvider\n")
    sys.path.insert(0, str(tmp_path))
    yield "acme"
    sys.path.remove(str(tmp_path))
    sys.modules.pop("acme_chat", None)


async def test_third_party_provider_is_found_by_entry_point(third_party: str) -> None:
    assert third_party in provider_names()
    provider = build_provider(third_party, {"token": "t"})
    assert isinstance(provider, ChannelProvider) and provider.name == "acme"
    result = await provider.send(OutboundMessage(to="acme:1", text="hi"))
    assert result.ok and result.message_id == "acme-1"
    with pytest.raises(ConfigError) as caught:
        build_provider(third_party, {})
    assert caught.value.field == "token"
    # A package cannot take over a built-in name.
    assert isinstance(build_provider("loopback", {"peer_url": "http://x/", "secret": "s"}),
                      LoopbackProvider)


def test_outbound_message_bounds() -> None:
    with pytest.raises(ValueError):
        OutboundMessage(to="lb:a", text="")
    with pytest.raises(ValueError):
        OutboundMessage(to="lb:a", text="x", buttons=tuple(Button(str(i), "b") for i in range(4)))
    with pytest.raises(ValueError):
        OutboundMessage(to="lb:a", text="x", buttons=(Button("1", "b"),),
                        sections=(ListSection("s", (ListRow("1", "r"),)),))


async def test_deliver_retries_429_and_5xx_then_succeeds(peer: FakeLoopbackPeer) -> None:
    provider = build_provider("loopback", {"peer_url": peer.peer_url, "secret": "k"}, LOCAL)
    peer.fail_next(429, 503)
    result = await deliver(provider, OutboundMessage(to="lb:bob", text="hello"), backoff=0.01)
    assert result.ok and result.message_id.startswith("peer-")
    assert len(peer.requests) == 3
    assert all(r.body["to"] == "bob" and r.body["text"] == "hello" for r in peer.requests)


async def test_deliver_treats_4xx_as_final(peer: FakeLoopbackPeer) -> None:
    provider = build_provider("loopback", {"peer_url": peer.peer_url, "secret": "k"}, LOCAL)
    peer.fail_next(400)
    result = await deliver(provider, OutboundMessage(to="lb:bob", text="hello"), backoff=0.01)
    assert not result.ok and not result.retryable and result.status_code == 400
    assert "400" in result.error
    assert len(peer.requests) == 1


async def test_deliver_gives_up_after_the_attempts(peer: FakeLoopbackPeer) -> None:
    provider = build_provider("loopback", {"peer_url": peer.peer_url, "secret": "k"}, LOCAL)
    peer.fail_next(500, 500, 500)
    result = await deliver(provider, OutboundMessage(to="lb:bob", text="x"), attempts=3,
                           backoff=0.01)
    assert not result.ok and result.retryable and len(peer.requests) == 3


def test_status_mapping() -> None:
    provider = build_provider("loopback", {"peer_url": "http://x/", "secret": "s"})
    assert [provider.map_status(s) for s in ("sent", "delivered", "read", "failed", "deleted")] \
        == ["Sent", "Delivered", "Read", "Failed", None]
    assert base.PROVIDER_GROUP == "whatsease.chat_providers"


def test_channels_turn_on_only_with_all_their_settings(caplog: pytest.LogCaptureFixture) -> None:
    from types import SimpleNamespace
    from typing import cast

    from whatsease.channels.service import configured_channels
    from whatsease.config import Config
    from whatsease.services import Services

    def built(**settings: str) -> list[str]:
        services = cast(Services, SimpleNamespace(config=Config().replace(**settings)))
        return [c.slug for c in configured_channels(services)]

    assert built() == []
    whatsapp = {"whatsapp_app_secret": "APPSECRET123", "whatsapp_verify_token": "v",
                "whatsapp_token": "t", "whatsapp_phone_number_id": "1"}
    assert built(**whatsapp) == ["whatsapp"]
    partial = {k: v for k, v in whatsapp.items() if k != "whatsapp_token"}
    with caplog.at_level("WARNING"):
        assert built(**partial) == []
    assert "WHATSEASE_WHATSAPP_TOKEN" in caplog.text and "APPSECRET123" not in caplog.text
    assert built(telegram_token="123:" + "a" * 30, telegram_secret_token="ok_token") == [
        "telegram"]
    with pytest.raises(ConfigError) as caught:
        built(telegram_token="123:" + "a" * 30, telegram_secret_token="not allowed!")
    assert caught.value.field == "secret_token" and "not allowed" not in str(caught.value)
    assert getattr(caught.value, "variable", "") == "WHATSEASE_TELEGRAM_SECRET_TOKEN"


def test_the_24_hour_window() -> None:
    from datetime import UTC, datetime, timedelta

    from whatsease.channels.whatsapp import SERVICE_WINDOW
    from whatsease.storage.channels import within

    now = datetime(2026, 12, 4, 12, tzinfo=UTC)
    assert within(now - timedelta(hours=23, minutes=59), SERVICE_WINDOW, now)
    assert not within(now - timedelta(hours=24), SERVICE_WINDOW, now)
    assert not within(None, SERVICE_WINDOW, now)
    assert within(None, None, now)
