"""Customer support across instances: an org's widget and console sockets and its REST calls
are served by the org's owner; sockets and requests that land elsewhere still work."""

from __future__ import annotations

import secrets
from typing import Any

import pymongo
import pytest
import websocket

from tests.cluster.conftest import follow, open_ws, register_on, ring_of
from tests.realtime.wsclient import WAIT_SECS, WS, ClosedError
from tests.support import User
from whatsease.cluster.local import LocalCluster
from whatsease.cluster.routing import WS_4012_MOVED, org_route

SHOP = "http://shop.example"


def _login(cluster: LocalCluster, user: User) -> dict[str, Any]:
    res = follow(cluster, "i1", "POST", "/api/v1/auth/login",
                 {"email": user.email, "password": user.password})
    assert res.status == 200, res.body
    body: dict[str, Any] = res.json
    return body


def _team(cluster: LocalCluster, agents: int) -> tuple[str, str, list[User]]:
    """An org with ``agents`` agents: its id, widget key and the agents (logged in again)."""
    root, _ = register_on(cluster.ports["i1"], "root")
    client: pymongo.MongoClient[dict[str, Any]]
    with pymongo.MongoClient(cluster.mongodb_uri) as client:
        client[cluster.db_name]["users"].update_one({"_id": root.email},
                                                    {"$set": {"role": "admin"}})
    root_token = _login(cluster, root)["access_token"]
    boss, _ = register_on(cluster.ports["i1"], "boss")
    res = follow(cluster, "i2", "POST", "/api/v1/orgs", {
        "name": f"Shop {secrets.token_hex(3)}", "admin": boss.email,
        "settings": {"allowed_origins": [SHOP], "routing": "agent"}}, token=root_token)
    assert res.status == 201, res.body
    org = res.json["org"]
    boss_token = _login(cluster, boss)["access_token"]
    members = []
    for n in range(agents):
        agent, _ = register_on(cluster.ports["i3"], f"agent{n}")
        added = follow(cluster, "i3", "POST", f"/api/v1/orgs/{org['id']}/agents",
                       {"email": agent.email}, token=boss_token)
        assert added.status == 201, added.body
        pair = _login(cluster, agent)
        assert pair["org_route"] == org_route(org["id"])
        agent.access_token = pair["access_token"]
        members.append(agent)
    return org["id"], org["widget_key"], members


def _console(cluster: LocalCluster, agent: User, route: str) -> WS:
    ws = open_ws(cluster.ports[ring_of(cluster).owner(route)], "/support/ws", route)
    ready = ws.call({"type": "auth", "token": agent.access_token}, "ready")
    assert ready["me"]["email"] == agent.email
    return ws


def _widget(port: int, token: str, route: str = "") -> WS:
    query = f"?route={route}" if route else ""
    ws = WS(websocket.create_connection(f"ws://127.0.0.1:{port}/widget/ws{query}",
                                        origin=SHOP, timeout=WAIT_SECS))
    ws.call({"type": "auth", "token": token}, "ready")
    return ws


def test_widget_and_console_chat_and_transfer_across_instances(cluster: LocalCluster) -> None:
    org_id, key, (first, second) = _team(cluster, 2)
    route = org_route(org_id)
    owner = ring_of(cluster).owner(route)
    elsewhere = next(m for m in cluster.ids if m != owner)
    one, two = _console(cluster, first, route), _console(cluster, second, route)
    # The session starts on a non-owner: replayed to the owner, which assigns it.
    started = follow(cluster, elsewhere, "POST", f"/widget/v1/{key}/sessions",
                     {"name": "Ann", "email": "ann@customer.test"}, headers={"Origin": SHOP})
    assert started.status == 201, started.body
    assert started.json["route"] == route
    cid, token = started.json["session"]["id"], started.json["token"]
    # The widget's socket is homed on the owner; one without the route is told where to go.
    tab = _widget(cluster.ports[owner], token, route)
    old = WS(websocket.create_connection(f"ws://127.0.0.1:{cluster.ports[elsewhere]}/widget/ws",
                                         origin=SHOP, timeout=WAIT_SECS))
    old.send({"type": "auth", "token": token})
    with pytest.raises(ClosedError) as closed:
        old.expect("ready")
    assert closed.value.code == WS_4012_MOVED and route in closed.value.reason
    assigned = one.expect("conversation", lambda f: f["conversation"]["id"] == cid
                          and f["conversation"]["agent"] is not None)["conversation"]["agent"]
    agent_ws, other_ws, other = (one, two, second) if assigned == first.email else \
        (two, one, first)
    tab.call({"type": "send", "client_id": "w1", "content": "hello from the widget"}, "ack")
    got = agent_ws.expect("message", lambda f: f["message"]["content"] == "hello from the widget")
    assert got["conversation_id"] == cid
    # A customer message posted over REST on a non-owner is replayed and goes live.
    posted = follow(cluster, elsewhere, "POST", f"/widget/v1/{key}/session/messages",
                    {"content": "and over REST", "client_id": "w2"},
                    token=token, headers={"Origin": SHOP})
    assert posted.status == 201, posted.body
    agent_ws.expect("message", lambda f: f["message"]["content"] == "and over REST")
    tab.expect("message", lambda f: f["message"]["content"] == "and over REST")
    agent_ws.send({"type": "typing", "conversation_id": cid, "state": True})
    tab.expect("typing", lambda f: f["who"] == "agent")
    agent_ws.call({"type": "send", "conversation_id": cid, "client_id": "a1",
                   "content": "Hello Ann!"}, "ack")
    tab.expect("message", lambda f: f["message"]["content"] == "Hello Ann!")
    tab.expect_none("message", lambda f: f["message"]["content"] == "Hello Ann!", timeout=0.2)
    # Transferred through a REST call that lands on a non-owner.
    agent_token = first.access_token if assigned == first.email else second.access_token
    moved = follow(cluster, elsewhere, "POST",
                   f"/api/v1/support/conversations/{cid}/transfer", {"agent": other.email},
                   token=agent_token)
    assert moved.status == 200, moved.body
    other_ws.expect("conversation", lambda f: f["conversation"]["id"] == cid
                    and f["conversation"]["agent"] == other.email)
    for ws in (tab, one, two):
        ws.close()
