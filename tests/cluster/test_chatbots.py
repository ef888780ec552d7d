"""Chatbot instances in a cluster: they run on one member (the owner of CHATBOTS_ROUTE); the
API and the instances' webhooks are replayed there, and a member that becomes the owner
loads the instances from MongoDB and answers."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pymongo
import pytest

from tests.chatbots.helpers import PEER_SECRET, entry, wait_replies
from tests.cluster.conftest import FAST, follow, register_on
from tests.fakes.platforms import FakeLoopbackPeer
from tests.support import Client, Response
from whatsease.channels.loopback import SIGNATURE_HEADER, sign
from whatsease.chatbots.service import CHATBOTS_ROUTE
from whatsease.cluster.local import LocalCluster
from whatsease.cluster.ring import Ring

WAIT_SECS = 20.0


@pytest.fixture(scope="module")
def pair(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    root = tmp_path_factory.mktemp("chatbots-cluster")
    # The loopback peer listens on 127.0.0.1: allow private outbound targets, as in development.
    env = {**FAST, "WHATSEASE_OUTBOUND_ALLOW_PRIVATE": "true"}
    with LocalCluster(Path(root), 2, mongodb_uri=mongo_uri, db_name=f"c{secrets.token_hex(5)}",
                      bcrypt_rounds=4, env=env) as running:
        yield running


@pytest.fixture
def peer() -> Iterator[FakeLoopbackPeer]:
    fake = FakeLoopbackPeer().start()
    yield fake
    fake.stop()


def _operator(cluster: LocalCluster) -> str:
    user, _ = register_on(cluster.ports["i1"], "root")
    client: pymongo.MongoClient[dict[str, Any]]
    with pymongo.MongoClient(cluster.mongodb_uri) as client:
        client[cluster.db_name]["users"].update_one({"_id": user.email},
                                                    {"$set": {"role": "admin"}})
    res = follow(cluster, "i1", "POST", "/api/v1/auth/login",
                 {"email": user.email, "password": user.password})
    assert res.status == 200, res.body
    return str(res.json["access_token"])


def _webhook(port: int, instance_id: str, sender: str, text: str, *,
             replayed_from: str = "") -> Response:
    body = orjson.dumps({"messages": [{"id": f"m{secrets.token_hex(6)}", "from": sender,
                                       "text": text}]})
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(PEER_SECRET, body)}
    if replayed_from:
        headers["fly-replay-src"] = f"instance={replayed_from}"
    return Client(port).request("POST", f"/channels/loopback/webhook/{instance_id}",
                                body=body, headers=headers)


def test_instances_run_on_the_owner_and_move_with_the_ring(pair: LocalCluster,
                                                           peer: FakeLoopbackPeer) -> None:
    token = _operator(pair)
    owner = Ring(pair.ids).owner(CHATBOTS_ROUTE)
    other = next(i for i in pair.ids if i != owner)

    # The API on a member that does not own the instances: replayed, not served.
    direct = Client(pair.ports[other], token=token).request(
        "PUT", "/api/v1/chatbots", [entry(peer, "desk", llm_config={"reply": "Bot: {text}"})])
    assert direct.status == 307 and direct.header("fly-replay") == f"instance={owner}"
    made = follow(pair, other, "PUT", "/api/v1/chatbots",
                  [entry(peer, "desk", llm_config={"reply": "Bot: {text}"})], token=token)
    assert made.status == 200, made.body
    instance_id = made.json[0]["instance_id"]

    # A webhook that lands on the other member is replayed to the owner, which answers.
    landed = _webhook(pair.ports[other], instance_id, "ann", "hello")
    assert landed.status == 307 and landed.header("fly-replay") == f"instance={owner}"
    assert _webhook(pair.ports[owner], instance_id, "ann", "hello",
                    replayed_from=other).status == 200
    assert wait_replies(peer, "ann", 1) == ["Bot: hello"]

    # The owner dies and leaves the member list: the other member loads the instance from
    # MongoDB and answers its webhook itself.
    pair.kill(owner)
    pair.forget(owner)
    deadline = time.monotonic() + WAIT_SECS
    while True:
        res = _webhook(pair.ports[other], instance_id, "ann", "still there?")
        if res.status == 200:
            break
        assert time.monotonic() < deadline, f"the new owner never answered: {res.status}"
        time.sleep(0.2)
    assert wait_replies(peer, "ann", 2)[1] == "Bot: still there?"
