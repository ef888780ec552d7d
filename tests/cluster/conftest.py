"""A real three-instance cluster (static membership, one database) for the cluster tests."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket
from pymongo import MongoClient

from tests.realtime.wsclient import WAIT_SECS, WS
from tests.support import Client, Response, User, unique_email
from whatsease.cluster.local import LocalCluster
from whatsease.cluster.ring import Ring
from whatsease.storage.models import Message, conversation_id, new_id
from whatsease.timeutil import utcnow

FAST = {"WHATSEASE_BOT_SEMANTIC": "false", "WHATSEASE_LOG_LEVEL": "INFO",
        "WHATSEASE_CLUSTER_HEARTBEAT_TIMEOUT": "3", "WHATSEASE_CLUSTER_POLL_INTERVAL": "0.5"}
PASSWORD = "correct horse battery"
# The heartbeat timeout (3 s in FAST) plus the ring change, with room for a busy machine.
TOLD_WITHIN_SECS = 20.0


@pytest.fixture(scope="module")
def cluster(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    root = tmp_path_factory.mktemp("cluster")
    with LocalCluster(Path(root), 3, mongodb_uri=mongo_uri, db_name=f"c{secrets.token_hex(5)}",
                      bcrypt_rounds=4, env=FAST) as running:
        yield running


@pytest.fixture
def three_of_our_own(mongo_uri: str, tmp_path: Path) -> Iterator[LocalCluster]:
    """A three-instance cluster of the test's own, for tests that kill or add members."""
    with LocalCluster(tmp_path / "own", 3, mongodb_uri=mongo_uri,
                      db_name=f"o{secrets.token_hex(5)}", bcrypt_rounds=4,
                      env=FAST) as running:
        yield running


def metric_total(port: int, name: str) -> float:
    """The sum of metric ``name``'s samples (every label set) on one member's /metrics."""
    total = 0.0
    for line in Client(port).get("/metrics").body.decode().splitlines():
        if line.startswith((name + " ", name + "{")):
            total += float(line.split()[-1])
    return total


def store_unforwarded(cluster: LocalCluster, sender: str, recipient: str) -> str:
    """Store a message the way an instance does, and send no frame for it."""
    message = Message(message_id=new_id(), sender=sender, recipient=recipient,
                      content="stored, never forwarded", timestamp=utcnow(),
                      conversation_id=conversation_id(sender, recipient), client_id="last")
    client: MongoClient[dict[str, Any]] = MongoClient(cluster.mongodb_uri)
    with client:
        client[cluster.db_name].messages.insert_one(message.to_doc())
    return message.message_id


def ring_of(cluster: LocalCluster) -> Ring:
    """The ring every instance computes once it has read the member list."""
    return Ring(cluster.ids)


def register_on(port: int, prefix: str = "user") -> tuple[User, dict[str, Any]]:
    """Register a fresh account through ``port``; the user and the whole token-pair answer."""
    email = unique_email(prefix)
    res = Client(port).post("/api/v1/auth/register",
                            {"email": email, "name": prefix.title(), "password": PASSWORD})
    assert res.status == 201, res.body
    body = res.json
    return (User(email=email, name=body["user"]["name"], password=PASSWORD,
                 access_token=body["access_token"], refresh_token=body["refresh_token"],
                 client=Client(port, token=body["access_token"])), body)


def open_ws(port: int, path: str = "/ws", route: str = "", **headers: str) -> WS:
    """A connected socket on ``port`` (not yet authenticated); ``route`` goes on the URL."""
    query = f"?route={route}" if route else ""
    return WS(websocket.create_connection(
        f"ws://127.0.0.1:{port}{path}{query}", timeout=WAIT_SECS,
        origin=f"http://127.0.0.1:{port}", header=[f"{k}: {v}" for k, v in headers.items()]))


def homed_user(cluster: LocalCluster, member: str, prefix: str = "user") -> tuple[User, str]:
    """A fresh account homed on ``member``; returns it and its routing key."""
    ring = ring_of(cluster)
    for _ in range(200):
        user, pair = register_on(cluster.ports[member], prefix)
        if ring.owner(pair["route"]) == member:
            return user, pair["route"]
    raise AssertionError(f"no account homed on {member} in 200 tries")


def connect_home(cluster: LocalCluster, user: User, route: str) -> WS:
    """``user``'s socket on its owner, following fly-replay as Fly's proxy would."""
    ws = open_ws(cluster.ports[ring_of(cluster).owner(route)], route=route)
    ready = ws.call({"type": "auth", "token": user.access_token}, "ready")
    assert ready["user"] == user.email
    return ws


def follow(cluster: LocalCluster, member: str, method: str, path: str, json: Any = None, *,
           token: str | None = None, headers: dict[str, str] | None = None) -> Response:
    """A REST call on ``member`` that follows ``fly-replay`` once, as Fly's proxy does."""
    res = Client(cluster.ports[member], token=token).request(method, path, json,
                                                             headers=headers)
    replay = res.header("fly-replay")
    if res.status == 307 and replay:
        target = replay.removeprefix("instance=")
        res = Client(cluster.ports[target], token=token).request(
            method, path, json, headers={**(headers or {}),
                                         "fly-replay-src": f"instance={member}"})
    return res
