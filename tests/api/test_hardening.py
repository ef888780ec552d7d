"""Headers and small holes (issue 16 item 5): each case once failed on a clean clone."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from tests.api.checks import assert_problem
from tests.support import Client, ServerThread, User, register


@pytest.fixture(scope="module")
def pair(server: ServerThread) -> tuple[User, User]:
    return register(server.port, "harda"), register(server.port, "hardb")


def test_head_on_the_root_is_200(server: ServerThread) -> None:
    res = Client(server.port).request("HEAD", "/")
    assert res.status == 200
    assert res.body == b""
    assert "connect-src" in (res.header("Content-Security-Policy") or "")


@pytest.mark.parametrize("path", ["/static/%00", "/static/a%00b.js", "/static/%01x"])
def test_a_nul_in_a_static_path_is_404_problem(server: ServerThread, path: str) -> None:
    assert_problem(Client(server.port).get(path), 404)


def test_static_files_say_nosniff(server: ServerThread) -> None:
    for path in ("/static/css/app.css", "/static/widget.js", "/static/no-such-file.js"):
        res = Client(server.port).get(path)
        assert res.header("X-Content-Type-Options") == "nosniff", (path, res.headers)


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("PUT", "/api/v1/auth/login", "POST"),
    ("GET", "/api/v1/auth/register", "POST"),
    ("DELETE", "/api/v1/messages", "GET, POST"),
    ("POST", "/healthz", "GET"),
    ("PATCH", "/api/v1/users", "GET"),
    ("POST", "/ws", "GET"),
    ("DELETE", "/widget/ws", "GET"),
    ("PUT", "/support/ws", "GET"),
    ("POST", "/", "GET, HEAD"),
    ("POST", "/static/css/app.css", "GET, HEAD"),
    ("POST", "/reset-password", "GET"),
])
def test_every_405_says_what_is_allowed(server: ServerThread, method: str, path: str,
                                        allow: str) -> None:
    res = Client(server.port).request(method, path, body=b"{}",
                                      headers={"Content-Type": "application/json"})
    assert_problem(res, 405)
    assert res.header("Allow") == allow


@pytest.mark.parametrize("body", [
    b'{"email": "a@b.example", "password": "x", "email": "c@d.example"}',
    b'{"email": "a@b.example", "password": "x", "extra": {"k": 1, "k": 2}}',
])
def test_duplicate_json_keys_are_400(server: ServerThread, body: bytes) -> None:
    res = Client(server.port).post("/api/v1/auth/login", body=body,
                                   headers={"Content-Type": "application/json"})
    problem = assert_problem(res, 400)
    assert problem["type"].endswith("duplicate_key")


def test_the_csp_allows_sockets_to_this_origin_only(server: ServerThread) -> None:
    csp = Client(server.port).get("/").header("Content-Security-Policy") or ""
    connect = next(d for d in csp.split(";") if d.strip().startswith("connect-src")).split()
    assert connect == ["connect-src", "'self'", f"ws://127.0.0.1:{server.port}"]
    # A Host header that is not a plain host[:port] is never echoed into the policy.
    odd = Client(server.port).get("/", headers={"Host": "x; script-src *"})
    assert "script-src *" not in (odd.header("Content-Security-Policy") or "")
    console = Client(server.port).get("/agent").header("Content-Security-Policy") or ""
    assert " ws: " not in console and "wss:;" not in console


def test_hsts_only_over_tls_at_a_trusted_proxy(
        server: ServerThread, make_server: Callable[..., ServerThread]) -> None:
    tls = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    # Not behind a trusted proxy: the header is the client's word.
    assert Client(server.port).get("/healthz", headers=tls).header(
        "Strict-Transport-Security") is None
    proxied = make_server(trusted_proxy=True)
    for path in ("/healthz", "/", "/static/css/app.css", "/api/v1/nothing-here"):
        res = Client(proxied.port).get(path, headers=tls)
        assert (res.header("Strict-Transport-Security") or "").startswith("max-age="), path
    plain = Client(proxied.port).get("/healthz", headers={"X-Forwarded-Proto": "http"})
    assert plain.header("Strict-Transport-Security") is None


def test_metrics_can_ask_for_a_token(make_server: Callable[..., ServerThread]) -> None:
    token = "m3tr1cs-t0ken-for-tests"
    guarded = make_server(metrics_token=token)
    assert_problem(Client(guarded.port).get("/metrics"), 401)
    assert_problem(Client(guarded.port, token="wrong-token-of-same-size").get("/metrics"), 401)
    res = Client(guarded.port, token=token).get("/metrics")
    assert res.status == 200 and b"whatsease_http_requests_total" in res.body


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_metrics_can_move_to_their_own_port(make_server: Callable[..., ServerThread]) -> None:
    port = _free_port()
    moved = make_server(metrics_port=port)
    assert_problem(Client(moved.port).get("/metrics"), 404)
    res = Client(port).get("/metrics")
    assert res.status == 200 and b"whatsease_http_requests_total" in res.body
    assert_problem(Client(port).get("/api/v1/users/me"), 404)


@pytest.mark.parametrize("content", ["a\x00b", "\x1b[31mred", "bell\x07", "c1\x85x", "\x7f"])
def test_message_content_refuses_control_characters(
        pair: tuple[User, User], content: str) -> None:
    alice, bob = pair
    res = alice.client.post("/api/v1/messages", {"recipient": bob.email, "content": content})
    assert_problem(res, 422, "content")


def test_message_content_keeps_newlines_and_tabs_and_drops_bidi_overrides(
        pair: tuple[User, User]) -> None:
    alice, bob = pair
    sent = alice.client.post("/api/v1/messages", {
        "recipient": bob.email, "content": "line 1\r\n\tline 2 invoice\u202etxt.exe\u202c"})
    assert sent.status == 201, sent.body
    assert sent.json["message"]["content"] == "line 1\n\tline 2 invoicetxt.exe"


@pytest.mark.parametrize("name", ["\u200b\u200b", "\u3164", "\u2060 \ufeff", "\u0301",
                                  "Bob\u202e", "\u2800\u2800"])
def test_names_made_of_nothing_visible_are_refused(
        server: ServerThread, pair: tuple[User, User], name: str) -> None:
    alice, _ = pair
    assert_problem(alice.client.patch("/api/v1/users/me", {"name": name}), 422, "name")
    res = Client(server.port).post("/api/v1/auth/register", {
        "email": "invisible@example.com", "name": name, "password": "correct horse battery"})
    assert_problem(res, 422, "name")
