"""The session list people read (device, browser, place, this device) and "log out the others"."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support import Client, ServerThread, register
from whatsease.auth.sessionlist import approximate_place, browser_of, device_of

PIXEL = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/120.0.6099.43 Mobile Safari/537.36")
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1")
EDGE = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.61")
MAC_FIREFOX = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.1; rv:120.0) Gecko/20100101 Firefox/120.0"


@pytest.mark.parametrize(("agent", "device", "browser"), [
    (PIXEL, "Android phone", "Chrome 120"),
    (IPHONE, "iPhone", "Safari 17"),
    (EDGE, "Windows computer", "Edge 120"),
    (MAC_FIREFOX, "Mac", "Firefox 120"),
    ("Python-urllib/3.11", "Unknown device", "Python script"),
    ("", "Unknown device", "Unknown browser"),
])
def test_user_agents_read_as_device_and_browser(agent: str, device: str, browser: str) -> None:
    assert (device_of(agent), browser_of(agent)) == (device, browser)


def test_place_only_from_a_trusted_proxy() -> None:
    headers = {"CF-IPCountry": "de", "CF-IPCity": "Berlin"}
    assert approximate_place(headers, trusted_proxy=True) == "Berlin, DE"
    assert approximate_place({"CF-IPCountry": "FR"}, trusted_proxy=True) == "FR"
    assert approximate_place(headers, trusted_proxy=False) is None
    assert approximate_place({"CF-IPCountry": "XX"}, trusted_proxy=True) is None
    assert approximate_place({}, trusted_proxy=True) is None


def login_from(server: ServerThread, email: str, password: str, agent: str) -> str:
    res = Client(server.port, headers={"User-Agent": agent}).post(
        "/api/v1/auth/login", {"email": email, "password": password})
    assert res.status == 200, res.body
    return str(res.json["access_token"])


def test_sessions_name_device_browser_and_this_device(server: ServerThread) -> None:
    me = register(server.port, "devices")
    phone = login_from(server, me.email, me.password, PIXEL)
    # Location headers from a client that talks to us directly are not believed.
    res = Client(server.port, token=phone).get("/api/v1/auth/sessions",
                                               headers={"CF-IPCountry": "DE"})
    assert res.status == 200
    sessions = res.json["sessions"]
    assert len(sessions) == 2
    (current,) = [s for s in sessions if s["current"]]
    assert (current["device"], current["browser"]) == ("Android phone", "Chrome 120")
    assert current["last_active"] == current["last_used"] and current["created_at"]
    assert all(s["place"] is None for s in sessions)


def test_place_of_this_device_behind_a_trusted_proxy(
        make_server: Callable[..., ServerThread]) -> None:
    server = make_server(trusted_proxy=True)
    me = register(server.port, "placed")
    token = login_from(server, me.email, me.password, IPHONE)
    res = Client(server.port, token=token).get(
        "/api/v1/auth/sessions", headers={"CF-IPCountry": "DE", "CF-IPCity": "Berlin",
                                          "X-Forwarded-For": "203.0.113.9"})
    places = {s["current"]: s["place"] for s in res.json["sessions"]}
    assert places == {True: "Berlin, DE", False: None}


def test_log_out_all_other_sessions(server: ServerThread) -> None:
    me = register(server.port, "others")
    others = [login_from(server, me.email, me.password, agent) for agent in (PIXEL, IPHONE)]
    res = me.client.post("/api/v1/auth/sessions/revoke-others")
    assert res.status == 200, res.body
    assert res.json == {"revoked": 2}
    for token in others:
        assert Client(server.port, token=token).get("/api/v1/users/me").status == 401
    # This session stays; nothing is left to revoke; strangers get 401.
    listed = me.client.get("/api/v1/auth/sessions").json["sessions"]
    assert [s["current"] for s in listed] == [True]
    assert me.client.post("/api/v1/auth/sessions/revoke-others").json == {"revoked": 0}
    assert Client(server.port).post("/api/v1/auth/sessions/revoke-others").status == 401
