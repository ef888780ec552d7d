"""Every messenger path across instances: users homed on different instances of a real cluster."""

from __future__ import annotations

import pytest

from tests.cluster.conftest import connect_home, homed_user, open_ws, ring_of
from tests.realtime.wsclient import WS, ClosedError
from tests.support import User, wait_for
from whatsease.cluster.local import LocalCluster

Pair = tuple[User, User, WS, WS]


@pytest.fixture
def pair(cluster: LocalCluster) -> Pair:
    alice, a_route = homed_user(cluster, "i1", "alice")
    bob, b_route = homed_user(cluster, "i2", "bob")
    return alice, bob, connect_home(cluster, alice, a_route), connect_home(cluster, bob, b_route)


def test_message_ack_receipts_and_activity_cross_instances(pair: Pair) -> None:
    _alice, bob, a, b = pair
    ack = a.call({"type": "send", "client_id": "x1", "recipient": bob.email,
                  "content": "hello across"}, "ack")
    message = ack["message"]
    assert b.expect("message")["message"] == message
    b.expect_none("message", timeout=0.3)
    entry = b.expect("activity", lambda f: f["entry"]["kind"] == "message.sent")["entry"]
    assert entry["message_id"] == message["message_id"]
    b.send({"type": "delivered", "message_ids": [message["message_id"]]})
    assert a.expect("status")["status"] == "Delivered"
    b.send({"type": "read", "message_ids": [message["message_id"]]})
    assert a.expect("status")["status"] == "Read"
    a.expect_none("status", timeout=0.3)


def test_typing_and_presence_cross_instances(cluster: LocalCluster, pair: Pair) -> None:
    alice, bob, a, b = pair
    a.call({"type": "send", "client_id": "t1", "recipient": bob.email, "content": "hi"}, "ack")
    b.expect("message")
    a.send({"type": "typing", "recipient": bob.email, "state": True})
    assert b.expect("typing") == {"type": "typing", "sender": alice.email, "state": True}
    # Bob sees alice go offline and come back, though her sockets live on another instance.
    a.close()
    assert b.expect("presence", lambda f: f["user"] == alice.email)["online"] is False
    profile = bob.client.get(f"/api/v1/users/{alice.email}").json["user"]
    assert profile["online"] is False
    a2 = connect_home(cluster, alice, ring_and_route(cluster, alice))
    assert b.expect("presence", lambda f: f["user"] == alice.email)["online"] is True
    # Asked on any instance, alice is online.
    for member in cluster.ids:
        client = type(bob.client)(cluster.ports[member], token=bob.access_token)
        assert client.get(f"/api/v1/users/{alice.email}").json["user"]["online"] is True
    a2.close()


def ring_and_route(cluster: LocalCluster, user: User) -> str:
    res = user.client.post("/api/v1/auth/login", {"email": user.email, "password": user.password})
    route: str = res.json["route"]
    assert ring_of(cluster).owner(route) in cluster.ids
    return route


def test_rest_send_on_a_third_instance_goes_live(cluster: LocalCluster, pair: Pair) -> None:
    alice, bob, a, b = pair
    client = type(alice.client)(cluster.ports["i3"], token=alice.access_token)
    res = client.post("/api/v1/messages", {"recipient": bob.email, "content": "via i3"})
    assert res.status == 201, res.body
    mid = res.json["message"]["message_id"]
    assert b.expect("message")["message"]["message_id"] == mid
    # alice's own tab hears of it too (multi-tab echo of a REST send).
    assert a.expect("message")["message"]["message_id"] == mid


def test_bot_reply_reaches_a_user_homed_elsewhere(cluster: LocalCluster) -> None:
    user, route = homed_user(cluster, "i2", "botfan")
    ws = connect_home(cluster, user, route)
    # Sent through REST on another instance: the reply comes back to the socket on i2.
    client = type(user.client)(cluster.ports["i1"], token=user.access_token)
    assert client.post("/api/v1/messages", {"recipient": "bot:whatsease",
                                            "content": "hello"}).status == 201
    reply = ws.expect("message", lambda f: f["message"]["is_bot_response"], timeout=10)
    assert reply["message"]["sender"] == "bot:whatsease"
    ws.close()


def test_keyless_socket_on_a_non_owner_is_relayed(cluster: LocalCluster, pair: Pair) -> None:
    alice, bob, a, b = pair
    # An old client with no route lands on i3, which owns neither of them.
    old = open_ws(cluster.ports["i3"])
    assert old.call({"type": "auth", "token": bob.access_token}, "ready")["user"] == bob.email
    ack = a.call({"type": "send", "client_id": "k1", "recipient": bob.email,
                  "content": "to both tabs"}, "ack")
    mid = ack["message"]["message_id"]
    for ws in (b, old):
        assert ws.expect("message")["message"]["message_id"] == mid
        ws.expect_none("message", timeout=0.3)
    # Its own sends work, and its other tab (homed on i2) hears them exactly once.
    sent = old.call({"type": "send", "client_id": "k2", "recipient": alice.email,
                     "content": "from the old client"}, "ack")["message"]
    assert b.expect("message")["message"]["message_id"] == sent["message_id"]
    assert a.expect("message")["message"]["message_id"] == sent["message_id"]
    old.expect_none("message", timeout=0.3)
    old.close()


def test_revocation_closes_a_socket_on_another_instance_at_once(cluster: LocalCluster) -> None:
    user, route = homed_user(cluster, "i2", "revoked")
    ws = connect_home(cluster, user, route)
    # Logged out through i1: the socket on i2 closes, and i3 refuses the token.
    client = type(user.client)(cluster.ports["i3"], token=user.access_token)
    assert client.get("/api/v1/users/me").status == 200  # cached as valid on i3
    assert type(user.client)(cluster.ports["i1"], token=user.access_token).post(
        "/api/v1/auth/logout", {}).status == 204
    with pytest.raises(ClosedError) as closed:
        ws.expect("message", timeout=3)
    assert closed.value.code == 4001
    # The same broadcast reaches i3 over its own link: within moments, not a cache expiry.
    wait_for(lambda: client.get("/api/v1/users/me").status == 401, timeout=1.0,
             what="i3 to refuse the revoked token")


def test_login_failures_count_across_instances(cluster: LocalCluster) -> None:
    user, _ = homed_user(cluster, "i1", "guessed")
    statuses = []
    for attempt in range(12):
        port = cluster.ports[cluster.ids[attempt % 3]]
        res = type(user.client)(port).post("/api/v1/auth/login",
                                           {"email": user.email, "password": "wrong password"})
        statuses.append(res.status)
    assert 429 in statuses, statuses
    # Limited on every instance, even one that saw fewer failures than the limit itself.
    for member in cluster.ids:
        res = type(user.client)(cluster.ports[member]).post(
            "/api/v1/auth/login", {"email": user.email, "password": user.password})
        assert res.status == 429


def test_deleting_an_account_closes_its_sockets_on_every_instance(
        cluster: LocalCluster) -> None:
    user, route = homed_user(cluster, "i3", "leaving")
    ws = connect_home(cluster, user, route)
    old = open_ws(cluster.ports["i1"])  # a keyless tab that landed elsewhere
    assert old.call({"type": "auth", "token": user.access_token}, "ready")["user"] == user.email
    res = type(user.client)(cluster.ports["i2"], token=user.access_token).delete(
        "/api/v1/users/me")
    assert res.status == 204, res.body
    for socket in (ws, old):
        with pytest.raises(ClosedError) as closed:
            socket.expect("message", timeout=3)
        assert closed.value.code == 4001
