"""The loopback provider: signatures both ways, parsing, and what the peer receives."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest

from tests.channels.conftest import LB_SECRET, Platforms, history, settle
from tests.fakes.platforms import FakeLoopbackPeer
from tests.support import Client, ServerThread
from whatsease.channels.base import (
    Button,
    InboundMessage,
    OutboundMessage,
    ParseError,
    ProviderContext,
    StatusUpdate,
    WebhookRequest,
    build_provider,
)
from whatsease.channels.loopback import SIGNATURE_HEADER, sign
from whatsease.net.outbound import OutboundPolicy

SECRET = "loopback-test-secret"


@pytest.fixture
def peer() -> Iterator[FakeLoopbackPeer]:
    fake = FakeLoopbackPeer().start()
    yield fake
    fake.stop()


def _request(body: bytes, signature: str | None) -> WebhookRequest:
    headers = {} if signature is None else {SIGNATURE_HEADER.lower(): signature}
    return WebhookRequest("POST", headers, {}, body)


def test_signature_is_checked_on_the_raw_body() -> None:
    provider = build_provider("loopback", {"peer_url": "http://x/", "secret": SECRET})
    body = b'{"messages": []}'
    assert provider.verify(_request(body, sign(SECRET, body))).ok
    assert provider.verify(_request(body, None)).reason == "signature missing"
    assert not provider.verify(_request(body, sign("other", body))).ok
    assert not provider.verify(_request(body + b" ", sign(SECRET, body))).ok
    assert not provider.verify(_request(body, "md5=abc")).ok


def test_parse_messages_and_statuses() -> None:
    provider = build_provider("loopback", {"peer_url": "http://x/", "secret": SECRET})
    events = provider.parse(orjson.dumps({
        "messages": [{"id": "m1", "from": "alice", "text": "hi", "timestamp": 1700000000},
                     {"id": "m2", "from": "alice", "text": "Yes", "choice_id": "yes"}],
        "statuses": [{"id": "lb-1", "recipient": "alice", "status": "failed",
                      "error_code": 131047}]}))
    first, second, status = events
    assert isinstance(first, InboundMessage) and first.sender == "lb:alice"
    assert first.kind == "text" and first.timestamp.year == 2023
    assert isinstance(second, InboundMessage) and second.kind == "button_reply"
    assert second.choice_id == "yes"
    assert isinstance(status, StatusUpdate) and status.status == "failed"
    assert status.error_code == 131047
    for bad in (b"not json", b"[]", b'{"messages": {}}', b'{"messages": [{"id": "x"}]}',
                b'{"statuses": [{"id": "x", "recipient": "a", "status": "odd"}]}'):
        with pytest.raises(ParseError):
            provider.parse(bad)


async def test_send_signs_the_body_for_the_peer(peer: FakeLoopbackPeer) -> None:
    provider = build_provider("loopback", {"peer_url": peer.peer_url, "secret": SECRET},
                              ProviderContext(OutboundPolicy(allow_private=True)))
    result = await provider.send(OutboundMessage(to="lb:alice", text="Pick one",
                                                 buttons=(Button("a", "A"), Button("b", "B"))))
    assert result.ok and result.message_id == "peer-1"
    (request,) = peer.requests
    assert request.method == "POST" and request.path == "/replies"
    assert request.body["to"] == "alice" and request.body["buttons"][1] == {"id": "b",
                                                                             "title": "B"}
    assert request.headers[SIGNATURE_HEADER.lower()] == sign(SECRET, orjson.dumps(request.body))


async def test_send_refuses_a_private_peer_without_permission(peer: FakeLoopbackPeer) -> None:
    provider = build_provider("loopback", {"peer_url": peer.peer_url, "secret": SECRET})
    result = await provider.send(OutboundMessage(to="lb:alice", text="x"))
    assert not result.ok and not result.retryable and "refused" in result.error
    assert peer.requests == []


def test_loopback_channel_round_trip(channel_server: ServerThread, platforms: Platforms) -> None:
    """A local test peer talks to bot:whatsease through the server."""
    body = orjson.dumps({"messages": [{"id": "peer-msg-1", "from": "tester", "text": "hello",
                                       "name": "Tess"}]})
    client = Client(channel_server.port)
    refused = client.request("POST", "/channels/loopback/webhook", body=body,
                             headers={SIGNATURE_HEADER: sign("wrong", body)})
    assert refused.status == 401
    res = client.request("POST", "/channels/loopback/webhook", body=body,
                         headers={SIGNATURE_HEADER: sign(LB_SECRET, body)})
    assert res.status == 200 and res.json == {"accepted": 1}
    (reply,) = platforms.peer.wait_for(lambda r: r.body.get("to") == "tester")
    assert reply.headers[SIGNATURE_HEADER.lower()] == sign(LB_SECRET, orjson.dumps(reply.body))
    settle(channel_server)
    stored = history(channel_server, "lb:tester")
    assert [m.sender for m in stored] == ["lb:tester", "bot:whatsease"]
    assert stored[1].content == reply.body["text"]
