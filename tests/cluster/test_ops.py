"""Operations: GET /api/v1/cluster and the cluster's metrics (a real cluster, and one process)."""

from __future__ import annotations

import http.client
from typing import Any

import pymongo

from tests.cluster.conftest import (
    connect_home,
    follow,
    homed_user,
    metric_total,
    register_on,
)
from tests.customer_support.http import platform_admin
from tests.support import Client, ServerThread, register, wait_for
from whatsease.cluster.local import LocalCluster


def _operator(cluster: LocalCluster) -> str:
    root, _ = register_on(cluster.ports["i1"], "operator")
    client: pymongo.MongoClient[dict[str, Any]]
    with pymongo.MongoClient(cluster.mongodb_uri) as client:
        client[cluster.db_name]["users"].update_one({"_id": root.email},
                                                    {"$set": {"role": "admin"}})
    res = follow(cluster, "i1", "POST", "/api/v1/auth/login",
                 {"email": root.email, "password": root.password})
    token: str = res.json["access_token"]
    return token


def test_cluster_state_for_operators(cluster: LocalCluster) -> None:
    token = _operator(cluster)
    user, route = homed_user(cluster, "i2", "counted")
    ws = connect_home(cluster, user, route)

    def state() -> dict[str, Any] | None:
        body: dict[str, Any] = Client(cluster.ports["i1"], token=token).get(
            "/api/v1/cluster").json
        peers = {m["id"]: m for m in body["members"]}
        return body if peers["i2"]["sockets"] >= 1 and peers["i2"]["link"] == "up" else None

    body = wait_for(state, timeout=5, what="i2's socket count to reach i1")
    assert body["mode"] == "static" and body["self"] == "i1" and body["generation"] >= 2
    assert [m["id"] for m in body["members"]] == ["i1", "i2", "i3"]
    assert all(m["live"] for m in body["members"])
    ws.close()
    # Not for everyone.
    assert user.client.get("/api/v1/cluster").status == 403
    assert Client(cluster.ports["i1"]).get("/api/v1/cluster").status == 401


def test_cluster_metrics_move(cluster: LocalCluster) -> None:
    alice, a_route = homed_user(cluster, "i1", "metric")
    bob, b_route = homed_user(cluster, "i3", "metric")
    a, b = connect_home(cluster, alice, a_route), connect_home(cluster, bob, b_route)
    before = metric_total(cluster.ports["i1"], "whatsease_cluster_forwards_out_total")
    a.call({"type": "send", "client_id": "m1", "recipient": bob.email, "content": "x"}, "ack")
    b.expect("message")
    assert metric_total(cluster.ports["i1"], "whatsease_cluster_forwards_out_total") > before
    assert metric_total(cluster.ports["i3"], "whatsease_cluster_forwards_in_total") >= 1
    assert metric_total(cluster.ports["i1"], "whatsease_cluster_members") == 3
    assert metric_total(cluster.ports["i1"], "whatsease_cluster_link_reconnects_total") >= 2
    assert metric_total(cluster.ports["i3"], "whatsease_cluster_forward_seconds_count") >= 1
    # An upgrade for alice on i3 is replayed to i1, and counted.
    replays = metric_total(cluster.ports["i3"], "whatsease_cluster_replays_total")
    conn = http.client.HTTPConnection("127.0.0.1", cluster.ports["i3"], timeout=5)
    conn.request("GET", f"/ws?route={a_route}", headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert conn.getresponse().status == 307
    conn.close()
    assert metric_total(cluster.ports["i3"], "whatsease_cluster_replays_total") == replays + 1
    a.close()
    b.close()


def test_one_process_answers_mode_off(server: ServerThread) -> None:
    root = platform_admin(server)
    body = root.client.get("/api/v1/cluster").json
    assert body["mode"] == "off" and body["self"] is None and body["generation"] == 0
    assert len(body["members"]) == 1
    plain = register(server.port, "plain")
    assert plain.client.get("/api/v1/cluster").status == 403
    # Nothing changes for one process: no routing keys in the answers.
    pair = plain.client.post("/api/v1/auth/login",
                             {"email": plain.email, "password": plain.password}).json
    assert "route" not in pair and "org_route" not in pair
