"""The /ws endpoint over a real socket: authentication, origin, every frame type and error."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import websocket

from tests.delivery.test_hub import Socket
from tests.realtime.wsclient import WS, connect, open_socket
from tests.support import TEST_ORIGIN, Client, ServerThread, User, register
from whatsease.messaging.service import SYNC_PAGE_LIMIT
from whatsease.services import Services
from whatsease.storage.models import User as StoredUser


async def _store_users(services: Services, *emails: str) -> None:
    for email in emails:
        await services.store.users.insert(StoredUser(email=email, name=email))


@pytest.fixture
def pair(server: ServerThread) -> Iterator[tuple[User, User, WS, WS]]:
    alice, bob = register(server.port, "alice"), register(server.port, "bob")
    a, b = connect(server, alice), connect(server, bob)
    yield alice, bob, a, b
    a.close()
    b.close()


# --- authentication and origin -------------------------------------------------------------


def test_ready_after_auth_frame(server: ServerThread) -> None:
    user = register(server.port)
    ws = open_socket(server)
    ready = ws.call({"type": "auth", "token": user.access_token}, "ready")
    assert ready["user"] == user.email
    server_time = datetime.fromisoformat(ready["server_time"].replace("Z", "+00:00"))
    assert abs((server_time - datetime.now(UTC)).total_seconds()) < 5
    ws.close()


def test_bad_token_closes_4001(server: ServerThread) -> None:
    ws = open_socket(server)
    ws.send({"type": "auth", "token": "not.a.jwt"})
    assert ws.expect_close() == 4001


def test_first_frame_must_be_auth(server: ServerThread) -> None:
    ws = open_socket(server)
    ws.send({"type": "ping"})
    assert ws.expect_close() == 4001
    assert "auth" in ws.close_reason


def test_malformed_first_frame_closes_4001(server: ServerThread) -> None:
    ws = open_socket(server)
    ws.send("{not json")
    assert ws.expect_close() == 4001


def test_no_auth_within_5_seconds_closes_4001(server: ServerThread) -> None:
    ws = open_socket(server)
    started = time.monotonic()
    assert ws.expect_close(timeout=8) == 4001
    assert 4.5 <= time.monotonic() - started < 7.5


def test_token_in_url_is_not_accepted(server: ServerThread) -> None:
    user = register(server.port)
    ws = WS(websocket.create_connection(f"{server.ws_url}?token={user.access_token}",
                                        timeout=5))
    ws.send({"type": "ping"})
    assert ws.expect_close() == 4001


def test_revoked_session_closes_socket_4001(server: ServerThread) -> None:
    user = register(server.port)
    ws = connect(server, user)
    assert user.client.post("/api/v1/auth/logout").status == 204
    assert ws.expect_close() == 4001


def test_foreign_origin_closes_4003(server: ServerThread) -> None:
    user = register(server.port)
    ws = open_socket(server, origin="http://evil.example")
    ws.send({"type": "auth", "token": user.access_token})
    assert ws.expect_close() == 4003
    assert not ws.backlog  # no ready, nothing else


def test_allowed_and_own_origins_are_accepted(server: ServerThread) -> None:
    user = register(server.port)
    for origin in (TEST_ORIGIN, f"http://127.0.0.1:{server.port}"):
        ws = connect(server, user, origin=origin)
        assert ws.call({"type": "ping"}, "pong")["type"] == "pong"
        ws.close()
    # Same host, other port: another site.
    ws = open_socket(server, origin=f"http://127.0.0.1:{server.port + 1}")
    assert ws.expect_close() == 4003


# --- ping, bad frames ------------------------------------------------------------------------


def test_ping_pong_echoes_ref(pair: tuple[User, User, WS, WS]) -> None:
    _, _, a, _ = pair
    assert a.call({"type": "ping", "ref": "p1"}, "pong")["ref"] == "p1"


@pytest.mark.parametrize(("raw", "code", "named"), [
    ("{nope", "malformed_json", "not valid JSON"),
    ("[1, 2]", "malformed_json", "an array"),
    ('{"content": "x"}', "missing_type", "type"),
    ('{"type": "shout"}', "unknown_type", "shout"),
    ('{"type": "send", "recipient": "b@example.com", "content": "x"}', "invalid",
     "client_id"),
    ('{"type": "send", "client_id": "c1", "recipient": "b@example.com", "content": "  "}',
     "invalid", "content"),
    ('{"type": "send", "client_id": "c1", "recipient": "not-an-email", "content": "x"}',
     "invalid", "recipient"),
    ('{"type": "send", "client_id": "c1", "recipient": "b@example.com", "content": "x", '
     '"colour": "red"}', "invalid", "colour"),
    ('{"type": "delivered", "message_ids": []}', "invalid", "message_ids"),
    ('{"type": "read", "message_ids": ["zz"]}', "invalid", "message_ids"),
    ('{"type": "typing", "recipient": "b@example.com", "state": "yes"}', "invalid", "state"),
    ('{"type": "sync", "after": 12}', "invalid", "after"),
    ('{"type": "ping", "ref": 5}', "invalid", "ref"),
])
def test_bad_frames_get_an_error_naming_the_problem(pair: tuple[User, User, WS, WS], raw: str,
                                                    code: str, named: str) -> None:
    _, _, a, _ = pair
    a.send(raw)
    error = a.expect("error")
    assert error["code"] == code
    assert named in error["detail"]
    # The socket stays open and usable.
    assert a.call({"type": "ping"}, "pong")


def test_error_carries_client_ref(pair: tuple[User, User, WS, WS]) -> None:
    _, _, a, _ = pair
    a.send({"type": "send", "client_id": "mine-1", "recipient": "nobody@example.com",
            "content": "hello"})
    error = a.expect("error")
    assert error == {"type": "error", "code": "not_found", "ref": "mine-1",
                     "detail": "No user or bot called 'nobody@example.com'.",
                     "errors": [{"field": "recipient", "message": "does not exist"}]}


def test_frame_over_64_kib_gets_error_and_socket_stays(pair: tuple[User, User, WS, WS]) -> None:
    _, bob, a, _ = pair
    big = orjson.dumps({"type": "send", "client_id": "big", "recipient": bob.email,
                        "content": "x" * (70 * 1024)}).decode()
    a.send(big)
    error = a.expect("error")
    assert error["code"] == "frame_too_large"
    assert "65536" in error["detail"]
    assert a.call({"type": "ping"}, "pong")


def test_frame_over_transport_limit_closes_1009(pair: tuple[User, User, WS, WS]) -> None:
    _, _, a, _ = pair
    a.send("x" * (90 * 1024))
    assert a.expect_close() == 1009


def test_second_auth_frame_is_refused(pair: tuple[User, User, WS, WS]) -> None:
    alice, _, a, _ = pair
    a.send({"type": "auth", "token": alice.access_token})
    assert a.expect("error")["code"] == "already_authenticated"


# --- messages ----------------------------------------------------------------------------------


def test_send_ack_and_message_to_recipient_and_other_tabs(server: ServerThread,
                                                          pair: tuple[User, User, WS, WS]) -> None:
    alice, bob, a, b = pair
    a2 = connect(server, alice)  # alice's second tab
    b2 = connect(server, bob)
    ack = a.call({"type": "send", "client_id": "c-1", "recipient": bob.email,
                  "content": "  hello bob  "}, "ack")
    message = ack["message"]
    assert ack["client_id"] == "c-1"
    assert message["status"] == "Sent"
    assert message["content"] == "hello bob"
    assert message["sender"] == alice.email and message["recipient"] == bob.email
    for ws in (b, b2, a2):
        assert ws.expect("message")["message"] == message
    a.expect_none("message")  # the sending tab has its ack
    # Stored: the REST history has it.
    history = bob.client.get(f"/api/v1/messages?with={alice.email}").json["messages"]
    assert [m["message_id"] for m in history] == [message["message_id"]]
    a2.close()
    b2.close()


def test_send_to_bot_and_to_self(pair: tuple[User, User, WS, WS]) -> None:
    alice, _, a, _ = pair
    a.send({"type": "send", "client_id": "self", "recipient": alice.email, "content": "me"})
    error = a.expect("error")
    assert error["code"] == "invalid" and "recipient" in error["detail"]


def test_retry_with_same_client_id_is_stored_and_delivered_once(
        pair: tuple[User, User, WS, WS]) -> None:
    alice, bob, a, b = pair
    frame = {"type": "send", "client_id": "retry-1", "recipient": bob.email, "content": "once"}
    first = a.call(frame, "ack")["message"]
    second = a.call(frame, "ack")["message"]
    assert first == second
    assert b.expect("message")["message"]["message_id"] == first["message_id"]
    b.expect_none("message")
    history = bob.client.get(f"/api/v1/messages?with={alice.email}").json["messages"]
    assert len(history) == 1


def test_concurrent_retries_are_stored_once(pair: tuple[User, User, WS, WS]) -> None:
    _alice, bob, a, b = pair
    frame = {"type": "send", "client_id": "burst", "recipient": bob.email, "content": "x"}
    for _ in range(5):
        a.send(frame)
    ids = {a.expect("ack")["message"]["message_id"] for _ in range(5)}
    assert len(ids) == 1
    b.expect("message")
    b.expect_none("message")


def test_receipts_move_status_forward_and_reach_sender(pair: tuple[User, User, WS, WS]) -> None:
    alice, bob, a, b = pair
    mid = a.call({"type": "send", "client_id": "r1", "recipient": bob.email, "content": "hi"},
                 "ack")["message"]["message_id"]
    b.expect("message")
    b.send({"type": "delivered", "message_ids": [mid]})
    assert a.expect("status") == {"type": "status", "message_id": mid, "status": "Delivered",
                                  "conversation_id": " ".join(sorted((alice.email, bob.email)))}
    b.send({"type": "read", "message_ids": [mid]})
    assert a.expect("status")["status"] == "Read"
    # A late "delivered" never moves it back, and sends nothing.
    b.send({"type": "delivered", "message_ids": [mid]})
    a.expect_none("status")
    assert bob.client.get(f"/api/v1/messages/{mid}").json["message"]["status"] == "Read"


def test_receipts_only_count_from_the_recipient(pair: tuple[User, User, WS, WS]) -> None:
    alice, bob, a, _b = pair
    mid = a.call({"type": "send", "client_id": "own", "recipient": bob.email, "content": "hi"},
                 "ack")["message"]["message_id"]
    a.send({"type": "read", "message_ids": [mid]})  # the sender cannot mark its own
    a.expect_none("status")
    assert alice.client.get(f"/api/v1/messages/{mid}").json["message"]["status"] == "Sent"


def test_status_reaches_the_readers_other_tabs(server: ServerThread,
                                               pair: tuple[User, User, WS, WS]) -> None:
    _alice, bob, a, b = pair
    b2 = connect(server, bob)
    mid = a.call({"type": "send", "client_id": "tabs", "recipient": bob.email, "content": "x"},
                 "ack")["message"]["message_id"]
    b.send({"type": "read", "message_ids": [mid]})
    assert b2.expect("status")["status"] == "Read"
    b.expect_none("status")  # the tab that sent the receipt knows
    b2.close()


def test_rest_send_and_rest_status_go_live(pair: tuple[User, User, WS, WS]) -> None:
    alice, bob, a, b = pair
    res = alice.client.post("/api/v1/messages", {"recipient": bob.email, "content": "rest"})
    mid = res.json["message"]["message_id"]
    assert b.expect("message")["message"]["message_id"] == mid
    assert a.expect("message")["message"]["message_id"] == mid  # the sender's socket too
    assert bob.client.patch(f"/api/v1/messages/{mid}", {"status": "Read"}).status == 200
    assert a.expect("status")["status"] == "Read"


def test_offline_message_is_sent_then_delivered_via_sync(server: ServerThread) -> None:
    alice, bob = register(server.port, "alice"), register(server.port, "bob")
    a = connect(server, alice)
    mid = a.call({"type": "send", "client_id": "off", "recipient": bob.email,
                  "content": "while you were out"}, "ack")["message"]["message_id"]
    assert bob.client.get(f"/api/v1/messages/{mid}").json["message"]["status"] == "Sent"
    b = connect(server, bob)
    synced = b.call({"type": "sync", "after": None}, "synced")
    assert [m["message_id"] for m in synced["messages"]] == [mid]
    assert synced["more"] is False
    b.send({"type": "delivered", "message_ids": [mid]})
    assert a.expect("status")["status"] == "Delivered"
    assert bob.client.get(f"/api/v1/messages/{mid}").json["message"]["status"] == "Delivered"
    a.close()
    b.close()


def test_sync_pages_with_more_and_cursor(server: ServerThread) -> None:
    alice, bob = register(server.port, "alice"), register(server.port, "bob")
    ids = [alice.client.post("/api/v1/messages", {"recipient": bob.email,
                                                  "content": f"m{i}"}).json["message"]["message_id"]
           for i in range(5)]
    b = connect(server, bob)
    assert SYNC_PAGE_LIMIT >= 5
    first = b.call({"type": "sync"}, "synced")
    assert [m["message_id"] for m in first["messages"]] == ids
    # A status change of an old message comes back after the cursor; nothing else repeats.
    bob.client.patch(f"/api/v1/messages/{ids[1]}", {"status": "Read"})
    again = b.call({"type": "sync", "after": first["cursor"]}, "synced")
    assert [(m["message_id"], m["status"]) for m in again["messages"]] == [(ids[1], "Read")]
    assert again["more"] is False
    # Paging: ask from an old message id.
    rest = b.call({"type": "sync", "after": ids[2]}, "synced")
    assert {m["message_id"] for m in rest["messages"]} == {ids[1], ids[3], ids[4]}
    b.close()


async def test_sync_pages_when_more_than_a_page(services: Services) -> None:
    messaging = services.messaging
    await _store_users(services, "p@example.com", "q@example.com")
    sent = [(await messaging.send("p@example.com", "q@example.com", f"n{i}")).message_id
            for i in range(7)]
    got: list[str] = []
    cursor = None
    pages = 0
    while True:
        page, more, cursor = await messaging.changes_since("q@example.com", cursor, limit=3)
        got += [m.message_id for m in page]
        pages += 1
        if not more:
            break
    assert got == sent
    assert pages == 3


# --- typing and presence ----------------------------------------------------------------------


def _chat(sender: User, recipient: User) -> None:
    """Start a conversation between the two (typing is forwarded only within one)."""
    sent = sender.client.post("/api/v1/messages", {"recipient": recipient.email,
                                                   "content": "hello"})
    assert sent.status == 201, sent.body


def test_typing_goes_only_to_the_peer(server: ServerThread,
                                      pair: tuple[User, User, WS, WS]) -> None:
    alice, bob, a, b = pair
    carol = register(server.port, "carol")
    _chat(alice, bob)
    c = connect(server, carol)
    a2 = connect(server, alice)
    a.send({"type": "typing", "recipient": bob.email, "state": True})
    assert b.expect("typing") == {"type": "typing", "sender": alice.email, "state": True}
    a.send({"type": "typing", "recipient": bob.email, "state": False})
    assert b.expect("typing")["state"] is False
    c.expect_none("typing", timeout=0.3)
    a2.expect_none("typing", timeout=0.1)
    c.close()
    a2.close()


def test_a_socket_that_connects_mid_typing_is_told_at_once(
        server: ServerThread, pair: tuple[User, User, WS, WS]) -> None:
    alice, bob, a, b = pair
    _chat(alice, bob)
    a.send({"type": "typing", "recipient": bob.email, "state": True})
    b.expect("typing")
    late = connect(server, bob)  # another device of bob's, opened while alice types
    try:
        assert late.expect("typing") == {"type": "typing", "sender": alice.email,
                                         "state": True}
        a.send({"type": "typing", "recipient": bob.email, "state": False})
        assert late.expect("typing")["state"] is False
        carol = connect(server, register(server.port, "carol2"))
        carol.expect_none("typing", timeout=0.3)  # not typed to: told nothing
        carol.close()
    finally:
        late.close()


def test_typing_stops_when_the_typer_disconnects(pair: tuple[User, User, WS, WS]) -> None:
    alice, bob, a, b = pair
    _chat(alice, bob)
    a.send({"type": "typing", "recipient": bob.email, "state": True})
    assert b.expect("typing")["state"] is True
    a.close()
    assert b.expect("typing", timeout=3) == {"type": "typing", "sender": alice.email,
                                             "state": False}


def test_typing_expires_by_itself(make_server: Callable[..., ServerThread]) -> None:
    srv = make_server()
    assert srv.services.realtime is not None
    srv.services.realtime.typing.expiry = 0.4
    alice, bob = register(srv.port, "alice"), register(srv.port, "bob")
    _chat(alice, bob)
    a, b = connect(srv, alice), connect(srv, bob)
    a.send({"type": "typing", "recipient": bob.email, "state": True})
    assert b.expect("typing")["state"] is True
    started = time.monotonic()
    assert b.expect("typing", timeout=3)["state"] is False
    assert 0.2 < time.monotonic() - started < 2
    a.close()
    b.close()


def test_sending_a_message_ends_typing(pair: tuple[User, User, WS, WS]) -> None:
    alice, bob, a, b = pair
    _chat(alice, bob)
    a.send({"type": "typing", "recipient": bob.email, "state": True})
    b.expect("typing")
    a.send({"type": "send", "client_id": "t", "recipient": bob.email, "content": "done"})
    assert b.expect("typing")["state"] is False


def test_typing_reaches_only_people_who_share_a_conversation(
        server: ServerThread, pair: tuple[User, User, WS, WS]) -> None:
    alice, bob, a, b = pair
    a.send({"type": "typing", "recipient": bob.email, "state": True})
    b.expect_none("typing", timeout=0.8)  # strangers: nothing, not even to a known address
    a.send({"type": "typing", "recipient": bob.email, "state": False})
    _chat(alice, bob)
    a.send({"type": "typing", "recipient": bob.email, "state": True})
    assert b.expect("typing") == {"type": "typing", "sender": alice.email, "state": True}
    a.send({"type": "typing", "recipient": bob.email, "state": False})
    assert b.expect("typing")["state"] is False


def test_presence_goes_to_conversation_peers_only(server: ServerThread) -> None:
    alice, bob, carol = (register(server.port, n) for n in ("alice", "bob", "carol"))
    alice.client.post("/api/v1/messages", {"recipient": bob.email, "content": "hi"})
    b = connect(server, bob)
    c = connect(server, carol)  # no conversation with alice
    a = connect(server, alice)
    online = b.expect("presence", lambda f: f["user"] == alice.email)
    assert online["online"] is True
    a2 = connect(server, alice)  # a second tab is not news
    a2.close()
    b.expect_none("presence", timeout=0.5)
    a.close()
    offline = b.expect("presence", lambda f: f["user"] == alice.email)
    assert offline["online"] is False
    last_seen = datetime.fromisoformat(offline["last_seen"].replace("Z", "+00:00"))
    assert abs((last_seen - datetime.now(UTC)).total_seconds()) < 5
    c.expect_none("presence", timeout=0.2)
    # last_seen is stored.
    deadline = time.monotonic() + 5
    while True:
        profile = bob.client.get(f"/api/v1/users/{alice.email}").json["user"]
        if profile["last_seen"] == offline["last_seen"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert profile["last_seen"] == offline["last_seen"]
    assert profile["online"] is False
    b.close()
    c.close()


# --- activity and metrics ------------------------------------------------------------------


def test_activity_is_pushed_live_to_both_sides(pair: tuple[User, User, WS, WS]) -> None:
    alice, bob, a, b = pair
    mid = a.call({"type": "send", "client_id": "act", "recipient": bob.email, "content": "x"},
                 "ack")["message"]["message_id"]
    for ws in (a, b):
        entry = ws.expect("activity", lambda f: f["entry"]["kind"] == "message.sent")["entry"]
        assert entry["message_id"] == mid and entry["actor"] == alice.email
    b.send({"type": "delivered", "message_ids": [mid]})
    b.send({"type": "read", "message_ids": [mid]})
    for kind in ("message.delivered", "message.read"):
        for ws in (a, b):
            entry = ws.expect("activity", _kind_is(kind))["entry"]
            assert entry["message_id"] == mid and entry["actor"] == bob.email


def _kind_is(kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: bool(f["entry"]["kind"] == kind)


def _metric(port: int, name: str, labels: str = "") -> float:
    text = Client(port).get("/metrics").body.decode()
    key = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.split()[-1])
    return 0.0


def test_metrics_move(server: ServerThread, pair: tuple[User, User, WS, WS]) -> None:
    _alice, bob, a, b = pair
    port = server.port
    names = [("whatsease_ws_frames_in_total", 'type="send"'),
             ("whatsease_ws_frames_out_total", 'type="ack"'),
             ("whatsease_ws_frames_out_total", 'type="message"'),
             ("whatsease_messages_total", 'status="Sent"'),
             ("whatsease_messages_total", 'status="Delivered"'),
             ("whatsease_messages_total", 'status="Read"'),
             ("whatsease_send_ack_seconds_count", ""),
             ("whatsease_send_delivered_seconds_count", "")]
    before = {n: _metric(port, *n) for n in names}
    assert _metric(port, "whatsease_ws_sockets_open") >= 2
    assert _metric(port, "whatsease_ws_users_online") >= 2
    mid = a.call({"type": "send", "client_id": "m", "recipient": bob.email, "content": "x"},
                 "ack")["message"]["message_id"]
    b.expect("message")
    b.send({"type": "delivered", "message_ids": [mid]})
    a.expect("status")
    b.send({"type": "read", "message_ids": [mid]})
    a.expect("status")
    after = {n: _metric(port, *n) for n in names}
    for n in names:
        assert after[n] >= before[n] + 1, n
    text = Client(port).get("/metrics").body.decode()
    assert "whatsease_event_loop_lag_seconds" in text
    assert "whatsease_ws_send_queue_overflows_total" in text


# --- bounds ------------------------------------------------------------------------------------


def test_rate_limit_errors_then_closes_4029(make_server: Callable[..., ServerThread]) -> None:
    srv = make_server(ws_send_rate=1.0, ws_send_burst=3)
    alice, bob = register(srv.port, "alice"), register(srv.port, "bob")
    a = connect(srv, alice)
    for i in range(3):
        a.send({"type": "send", "client_id": f"ok{i}", "recipient": bob.email, "content": "x"})
    for _ in range(3):
        a.expect("ack")
    a.send({"type": "send", "client_id": "over", "recipient": bob.email, "content": "x"})
    error = a.expect("error")
    assert error["code"] == "rate_limited" and error["ref"] == "over"
    assert a.call({"type": "ping"}, "pong")  # other frames still pass
    for i in range(20):
        try:
            a.send({"type": "send", "client_id": f"flood{i}", "recipient": bob.email,
                    "content": "x"})
        except OSError:
            break
    assert a.expect_close() == 4029
    assert _metric(srv.port, "whatsease_ws_rate_limited_total") >= 10


def test_shutdown_closes_sockets_1012(make_server: Callable[..., ServerThread]) -> None:
    srv = make_server()
    user = register(srv.port)
    ws = connect(srv, user)
    srv.call(srv.server.stop(grace=2), timeout=20)
    assert ws.expect_close() == 1012


async def test_sync_cursor_stops_below_a_write_in_flight(services: Services) -> None:
    """A change committed while an older write is still in flight is returned, but the
    cursor stays below it, so nothing between them can be skipped."""
    messaging = services.messaging
    await _store_users(services, "r@example.com", "s@example.com")
    first = await messaging.send("s@example.com", "r@example.com", "one")
    second = await messaging.send("s@example.com", "r@example.com", "two")
    _, _, cursor = await messaging.changes_since("r@example.com", None)
    in_flight = messaging._revisions.begin()  # e.g. an insert waiting for the database
    await messaging.mark("r@example.com", [first.message_id], "Read")
    page, more, held = await messaging.changes_since("r@example.com", cursor)
    assert [(m.message_id, m.status) for m in page] == [(first.message_id, "Read")]
    assert held == cursor and not more  # not past the write still in flight
    messaging._revisions.end(in_flight)
    page, _, after = await messaging.changes_since("r@example.com", held)
    assert [(m.message_id, m.status) for m in page] == [(first.message_id, "Read")]
    assert after is not None and after.split(".")[0] > second.message_id


async def test_sync_pages_through_messages_that_share_a_revision(services: Services) -> None:
    """One receipt batch gives its messages one rev; pages split such a group safely."""
    messaging = services.messaging
    await _store_users(services, "t@example.com", "u@example.com")
    sent = [(await messaging.send("t@example.com", "u@example.com", f"m{i}")).message_id
            for i in range(5)]
    _, _, cursor = await messaging.changes_since("t@example.com", None)
    await messaging.mark("u@example.com", sent, "Read")  # one batch: one shared rev
    got: list[str] = []
    more = True
    while more:
        page, more, cursor = await messaging.changes_since("t@example.com", cursor, limit=2)
        got += [m.message_id for m in page]
        assert all(m.status == "Read" for m in page)
    assert got == sent


async def test_chat_list_and_receipts_wait_for_summaries_still_queued(services: Services) -> None:
    """Summaries are written after delivery, in their own turn: a chat list read just
    after a send shows the message, and a Read just after it leaves nothing unread."""
    messaging = services.messaging
    await _store_users(services, "t@example.com", "u@example.com")
    for i in range(5):
        sent = await messaging.send("t@example.com", "u@example.com", f"m{i}")
        rows = await messaging.chats("u@example.com")
        assert [(r["peer"], r["last_message"]["message_id"], r["unread_count"])
                for r in rows] == [("t@example.com", sent.message_id, 1)]
        await messaging.mark("u@example.com", [sent.message_id], "Read")
        rows = await messaging.chats("u@example.com")
        assert rows[0]["unread_count"] == 0


async def test_presence_reaches_the_peer_of_a_conversation_started_a_moment_ago(
        services: Services) -> None:
    """The chat's summary (which makes them peers) is written after the send returns."""
    await _store_users(services, "v@example.com", "w@example.com")
    realtime = services.realtime
    assert realtime is not None
    watcher = Socket("w@example.com")
    realtime.attach(watcher)
    await services.messaging.send("v@example.com", "w@example.com", "hello")
    realtime.attach(Socket("v@example.com"))
    await realtime.presence.drain()
    presence = [f for f in map(orjson.loads, watcher.frames) if f["type"] == "presence"]
    assert [(f["user"], f["online"]) for f in presence] == [("v@example.com", True)]
