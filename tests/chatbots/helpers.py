"""Helpers for chatbot-instance tests: operators, configs, signed loopback webhooks."""

from __future__ import annotations

import itertools
from typing import Any

import orjson

from tests.fakes.platforms import FakeLoopbackPeer, Recorded
from tests.support import Client, Response, ServerThread, User
from whatsease.channels.loopback import SIGNATURE_HEADER, sign

PEER_SECRET = "loopback-peer-secret-5b7e"
_ids = itertools.count(1)


def put_chatbots(user: User, entries: Any) -> Response:
    return user.client.request("PUT", "/api/v1/chatbots", entries)


def entry(peer: FakeLoopbackPeer, user_id: str, *, llm: str = "fake",
          llm_config: dict[str, Any] | None = None, whitelist: list[str] | None = None,
          max_messages: int = 20, max_characters: int = 10_000, max_days: float = 1,
          allow_groups: bool | None = None, **extra: Any) -> dict[str, Any]:
    """A config whose chat provider is the loopback peer ``peer``."""
    chat: dict[str, Any] = {"peer_url": peer.peer_url, "secret": PEER_SECRET}
    if allow_groups is not None:
        chat["allow_group_messages"] = allow_groups
    config: dict[str, Any] = {
        "user_id": user_id,
        "chat_provider_config": {"provider_name": "loopback", "provider_config": chat},
        "queue_config": {"max_messages": max_messages, "max_characters": max_characters,
                         "max_days": max_days},
        "llm_provider_config": {"provider_name": llm, "provider_config": llm_config or {}}}
    if whitelist is not None:
        config["respond_to_whitelist"] = whitelist
    config.update(extra)
    return config


def create(user: User, peer: FakeLoopbackPeer, user_id: str, **kwargs: Any) -> str:
    """One instance; its id."""
    res = put_chatbots(user, [entry(peer, user_id, **kwargs)])
    assert res.status == 200, res.body
    return str(res.json[0]["instance_id"])


def webhook(server: ServerThread, instance_id: str, messages: list[tuple[str, str]], *,
            secret: str = PEER_SECRET) -> Response:
    """Post (sender, text) messages to the instance's loopback webhook, signed with ``secret``."""
    body = orjson.dumps({"messages": [{"id": f"m{next(_ids)}", "from": sender, "text": text}
                                      for sender, text in messages]})
    return post_signed(server, instance_id, body, secret=secret)


def post_signed(server: ServerThread, instance_id: str, body: bytes, *,
                secret: str = PEER_SECRET) -> Response:
    return Client(server.port).request(
        "POST", f"/channels/loopback/webhook/{instance_id}", body=body,
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body)})


def replies_to(peer: FakeLoopbackPeer, who: str) -> list[str]:
    return [r.body["text"] for r in peer.matching(lambda r: _to(r, who))]


def wait_replies(peer: FakeLoopbackPeer, who: str, count: int,
                 timeout: float = 15.0) -> list[str]:
    found = peer.wait_for(lambda r: _to(r, who), count=count, timeout=timeout)
    return [r.body["text"] for r in found]


def _to(record: Recorded, who: str) -> bool:
    return isinstance(record.body, dict) and record.body.get("to") == who


def status(user: User | Client, instance_id: str) -> dict[str, Any]:
    client = user.client if isinstance(user, User) else user
    res = client.get(f"/api/v1/chatbots/{instance_id}/status")
    assert res.status == 200, res.body
    return dict(res.json)
