"""The instances API against a real server: create, replace, list, status, delete, secrets."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pytest

from tests.chatbots.helpers import (
    PEER_SECRET,
    create,
    entry,
    put_chatbots,
    status,
    wait_replies,
    webhook,
)
from tests.customer_support.http import platform_admin
from tests.fakes.platforms import FakeLoopbackPeer
from tests.support import ServerThread, User, register
from whatsease.storage.chatbots import INSTANCES


def test_create_list_status_replace_and_delete(server: ServerThread,
                                               peer: FakeLoopbackPeer) -> None:
    root = platform_admin(server)
    res = put_chatbots(root, [entry(peer, "shop_bot", whitelist=["alice"]),
                              entry(peer, "help_bot", llm_config={"reply": "Help: {text}"})])
    assert res.status == 200, res.body
    assert [r["user_id"] for r in res.json] == ["shop_bot", "help_bot"]
    shop, help_bot = (r["instance_id"] for r in res.json)
    listed = root.client.get("/api/v1/chatbots").json["chatbots"]
    assert {c["instance_id"] for c in listed} == {shop, help_bot}
    shown = next(c for c in listed if c["instance_id"] == shop)
    assert shown["respond_to_whitelist"] == ["alice"] and shown["state"] == "running"
    assert shown["webhook_path"] == f"/channels/loopback/webhook/{shop}"
    assert shown["chat_provider_config"]["provider_config"] == {
        "peer_url": peer.peer_url, "allow_group_messages": False}

    assert webhook(server, help_bot, [("bob", "hello")]).status == 200
    assert wait_replies(peer, "bob", 1) == ["Help: hello"]
    state = status(root, help_bot)
    assert state["state"] == "running" and state["counts"]["answered"] == 1
    assert state["llm_provider"] == {"provider_name": "fake", "health": "ok"}
    # The peer records the reply before its answer reaches the server, which only
    # then knows the send went well: wait for that instead of racing it.
    state = _status_when(root, help_bot, lambda s: s["chat_provider"]["health"] == "ok")
    assert state["tokens"]["prompt"] > 0 and state["latency"]["calls"] == 1
    assert state["conversations"][0]["sender"] == "lb:bob"

    # Replacing keeps the id (the webhook URL stays valid) and the totals.
    again = put_chatbots(root, [entry(peer, "help_bot", llm_config={"reply": "New: {text}"})])
    assert again.json == [{"user_id": "help_bot", "instance_id": help_bot}]
    assert webhook(server, help_bot, [("bob", "again")]).status == 200
    assert wait_replies(peer, "bob", 2)[1] == "New: again"
    assert status(root, help_bot)["counts"]["answered"] == 2

    assert root.client.delete(f"/api/v1/chatbots/{help_bot}").status == 204
    assert root.client.get(f"/api/v1/chatbots/{help_bot}/status").status == 404
    assert webhook(server, help_bot, [("bob", "anyone?")]).status == 404
    assert [c["instance_id"] for c in root.client.get("/api/v1/chatbots").json["chatbots"]] == [
        shop]


def _status_when(root: User, instance_id: str, ready: Callable[[dict[str, Any]], bool],
                 timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state = status(root, instance_id)
        if ready(state):
            return state
        assert time.monotonic() < deadline, state
        time.sleep(0.02)


def test_replacing_an_instance_while_it_retries_a_send_loses_no_answer(
        server: ServerThread, peer: FakeLoopbackPeer) -> None:
    root = platform_admin(server)
    instance = create(root, peer, "retrying_bot", llm_config={"reply": "Sure: {text}"})
    # The peer is busy once and asks for a retry in 3 s: the answer waits to be sent again.
    peer.fail_next(503, body={"parameters": {"retry_after": 3}})
    assert webhook(server, instance, [("carol", "open today?")]).status == 200
    peer.wait_for(lambda r: isinstance(r.body, dict) and r.body.get("to") == "carol")
    # The operator replaces the instance meanwhile (same user_id: same instance).
    again = put_chatbots(root, [entry(peer, "retrying_bot", llm_config={"reply": "New: {text}"})])
    assert again.json == [{"user_id": "retrying_bot", "instance_id": instance}]
    assert wait_replies(peer, "carol", 2) == ["Sure: open today?", "Sure: open today?"]


def test_one_bad_entry_creates_nothing(server: ServerThread, peer: FakeLoopbackPeer) -> None:
    root = platform_admin(server)
    bad = entry(peer, "second", max_messages=0)
    res = put_chatbots(root, [entry(peer, "first"), bad,
                              entry(peer, "third", llm="no_such_llm")])
    assert res.status == 422, res.body
    assert [e["field"] for e in res.json["errors"]] == [
        "[1].queue_config.max_messages", "[2].llm_provider_config.provider_name"]
    assert "[1].queue_config.max_messages" in res.json["detail"]
    assert root.client.get("/api/v1/chatbots").json["chatbots"] == []
    for body in ({"user_id": "x"}, [], [entry(peer, "a", surprise=1)]):
        assert put_chatbots(root, body).status == 422
    many = [entry(peer, f"bot{n}") for n in range(51)]
    assert put_chatbots(root, many).status == 422
    assert root.client.get("/api/v1/chatbots").json["chatbots"] == []


def test_only_operators_and_only_their_own_instances(server: ServerThread,
                                                     peer: FakeLoopbackPeer) -> None:
    root = platform_admin(server)
    other = platform_admin(server)
    plain = register(server.port, "plain")
    instance = create(root, peer, "mine")
    assert put_chatbots(plain, [entry(peer, "x")]).status == 403
    assert plain.client.get("/api/v1/chatbots").status == 403
    assert other.client.get(f"/api/v1/chatbots/{instance}/status").status == 404
    assert other.client.delete(f"/api/v1/chatbots/{instance}").status == 404
    assert other.client.get("/api/v1/chatbots").json["chatbots"] == []
    # The same user_id under another operator is another instance.
    theirs = create(other, peer, "mine")
    assert theirs != instance
    assert root.client.get(f"/api/v1/chatbots/{instance}/status").status == 200


def test_keys_are_never_echoed_logged_or_stored_in_plain(
        server: ServerThread, peer: FakeLoopbackPeer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="whatsease")
    root = platform_admin(server)
    key = "sk-never-" + secrets.token_hex(12)
    # An unreachable endpoint: the failure is logged, and must not carry the key.
    config = entry(peer, "keyed", llm="openai_compatible", llm_config={
        "url": "http://127.0.0.1:9/v1/chat/completions", "api_key": key, "timeout": 1})
    res = put_chatbots(root, [config])
    assert res.status == 200 and key not in res.body.decode()
    instance = res.json[0]["instance_id"]
    listed = root.client.get("/api/v1/chatbots")
    assert key not in listed.body.decode() and PEER_SECRET not in listed.body.decode()
    shown = listed.json["chatbots"][0]
    assert shown["secrets_set"] == ["chat_provider_config.provider_config.secret",
                                    "llm_provider_config.provider_config.api_key"]
    assert "api_key" not in shown["llm_provider_config"]["provider_config"]
    assert webhook(server, instance, [("carol", "hi")]).status == 200
    assert wait_replies(peer, "carol", 1)[0].startswith("Sorry, I can't answer right now")
    state = root.client.get(f"/api/v1/chatbots/{instance}/status")
    assert key not in state.body.decode() and state.json["last_error"] is not None
    # A 422 about the key does not repeat it either.
    bad = put_chatbots(root, [entry(peer, "keyed", llm="openai_compatible", llm_config={
        "url": "http://127.0.0.1:9/v1", "api_key": key + " \n"})])
    assert bad.status == 422 and key not in bad.body.decode()

    async def stored() -> bytes:
        doc = await server.services.store.db[INSTANCES].find_one({"_id": instance})
        return orjson.dumps(doc, default=str)

    raw = server.call(stored())
    assert key.encode() not in raw and PEER_SECRET.encode() not in raw
    for record in caplog.records:
        assert key not in record.getMessage() and key not in str(record.__dict__)


def test_a_replaced_config_keeps_keys_only_when_asked(server: ServerThread,
                                                      peer: FakeLoopbackPeer) -> None:
    root = platform_admin(server)
    instance = create(root, peer, "kept", llm_config={"api_key": "sk-old"})
    without = entry(peer, "kept")
    del without["chat_provider_config"]["provider_config"]["secret"]
    # Without keep_secrets, a required secret left out is a 422 naming it.
    res = put_chatbots(root, [without])
    assert res.status == 422
    assert res.json["errors"][0]["field"] == "[0].chat_provider_config.provider_config.secret"
    res = put_chatbots(root, [{**without, "keep_secrets": True}])
    assert res.status == 200, res.body
    shown = root.client.get("/api/v1/chatbots").json["chatbots"][0]
    assert shown["instance_id"] == instance
    assert shown["secrets_set"] == ["chat_provider_config.provider_config.secret",
                                    "llm_provider_config.provider_config.api_key"]
    # The kept secret still signs: the peer's webhooks verify, answers go out.
    assert webhook(server, instance, [("dave", "still there?")]).status == 200
    assert wait_replies(peer, "dave", 1) == ["You said: still there?"]
    # Replaced without keep_secrets, the optional key is gone.
    assert put_chatbots(root, [entry(peer, "kept")]).status == 200
    shown = root.client.get("/api/v1/chatbots").json["chatbots"][0]
    assert shown["secrets_set"] == ["chat_provider_config.provider_config.secret"]


def test_concurrent_puts_of_one_user_id_make_one_instance(server: ServerThread,
                                                          peer: FakeLoopbackPeer) -> None:
    root = platform_admin(server)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: put_chatbots(root, [entry(peer, "racy")]), range(4)))
    assert [a.status for a in answers] == [200] * 4
    assert len({a.json[0]["instance_id"] for a in answers}) == 1
    assert len(root.client.get("/api/v1/chatbots").json["chatbots"]) == 1
