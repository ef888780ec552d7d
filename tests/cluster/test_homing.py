"""Homing by replay: a socket upgrade lands on the instance that owns its routing key."""

from __future__ import annotations

import http.client

import pytest

from tests.cluster.conftest import open_ws, register_on, ring_of
from tests.realtime.wsclient import ClosedError
from whatsease.cluster.local import LocalCluster
from whatsease.cluster.routing import WS_4011_WRONG_ROUTE, org_route, user_route, valid_route

UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


def upgrade(port: int, path: str, **extra: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={**UPGRADE, "Origin": f"http://127.0.0.1:{port}", **extra})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def test_routing_keys_are_opaque_stable_and_distinct() -> None:
    route = user_route("ann@example.com")
    assert valid_route(route) and route == user_route("ann@example.com")
    assert "ann" not in route and route != user_route("bob@example.com")
    assert valid_route(org_route("acme")) and org_route("acme")[0] == "o"
    assert not valid_route("u" + "0" * 19) and not valid_route("x" + "0" * 20)


def test_login_answer_carries_the_route(cluster: LocalCluster) -> None:
    user, pair = register_on(cluster.ports["i1"])
    assert pair["route"] == user_route(user.email)
    login = user.client.post("/api/v1/auth/login",
                             {"email": user.email, "password": user.password}).json
    assert login["route"] == pair["route"]


def test_upgrade_on_a_non_owner_is_replayed_not_upgraded(cluster: LocalCluster) -> None:
    _user, pair = register_on(cluster.ports["i1"])
    owner = ring_of(cluster).owner(pair["route"])
    for member in cluster.ids:
        response = upgrade(cluster.ports[member], f"/ws?route={pair['route']}")
        if member == owner:
            assert response.status == 101
            continue
        assert response.status == 307
        assert response.getheader("fly-replay") == f"instance={owner}"
        assert response.getheader("Upgrade") is None
    # Replayed once already: served where it is, never replayed in a loop.
    other = next(m for m in cluster.ids if m != owner)
    assert upgrade(cluster.ports[other], f"/ws?route={pair['route']}",
                   **{"fly-replay-src": "instance=x;region=local"}).status == 101


def test_support_socket_upgrades_are_replayed_to_the_orgs_owner(cluster: LocalCluster) -> None:
    route = org_route("some-org")
    owner = ring_of(cluster).owner(route)
    for path in ("/widget/ws", "/support/ws"):
        for member in cluster.ids:
            response = upgrade(cluster.ports[member], f"{path}?route={route}")
            if member == owner:
                assert response.status == 101
            else:
                assert response.status == 307
                assert response.getheader("fly-replay") == f"instance={owner}"


def test_owner_serves_the_socket_and_first_frame_must_match(cluster: LocalCluster) -> None:
    user, pair = register_on(cluster.ports["i1"])
    other, _ = register_on(cluster.ports["i1"])
    owner = ring_of(cluster).owner(pair["route"])
    ws = open_ws(cluster.ports[owner], route=pair["route"])
    ready = ws.call({"type": "auth", "token": user.access_token}, "ready")
    assert ready["user"] == user.email
    ws.close()
    # Someone else's token on this route: refused with 4011, not served.
    ws = open_ws(cluster.ports[owner], route=pair["route"])
    ws.send({"type": "auth", "token": other.access_token})
    with pytest.raises(ClosedError) as closed:
        ws.expect("ready")
    assert closed.value.code == WS_4011_WRONG_ROUTE


def test_a_client_without_a_route_is_served_where_it_lands(cluster: LocalCluster) -> None:
    user, _pair = register_on(cluster.ports["i1"])
    for member in cluster.ids:
        ws = open_ws(cluster.ports[member])
        assert ws.call({"type": "auth", "token": user.access_token}, "ready")["user"] == user.email
        ws.close()
