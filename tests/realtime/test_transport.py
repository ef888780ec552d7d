"""The shared socket transport: close codes for a lost database and for too many sockets,
and frames written together in one turn of the loop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson

from tests import support
from tests.realtime.wsclient import connect, open_socket
from whatsease.delivery import frames
from whatsease.delivery.frames import (
    WS_1013_TRY_AGAIN_LATER,
    WS_4008_TOO_SLOW,
    WS_4009_TOO_MANY_SOCKETS,
)
from whatsease.realtime.transport import Socket
from whatsease.storage.launcher import EmbeddedDatabase


def test_the_oldest_socket_goes_when_a_user_opens_too_many(
        make_server: Callable[..., support.ServerThread]) -> None:
    srv = make_server(ws_max_sockets_per_user=2)
    user = support.register(srv.port, "many")
    first, second = connect(srv, user), connect(srv, user)
    third = connect(srv, user)
    assert first.expect_close() == WS_4009_TOO_MANY_SOCKETS
    assert "too many sockets" in first.close_reason
    for ws in (second, third):
        assert ws.call({"type": "ping", "ref": "p"}, "pong")["ref"] == "p"
    assert srv.call(_socket_count(srv, user.email)) == 2
    second.close()
    third.close()


async def _socket_count(srv: support.ServerThread, email: str) -> int:
    return len(srv.services.hub.connections(email))


def test_a_lost_database_closes_with_try_again_later_not_bad_token(tmp_path: Path) -> None:
    database = EmbeddedDatabase(tmp_path / "db", log_path=tmp_path / "secantusd.log")
    database.start()
    srv = support.ServerThread(support.test_config(), database.uri).start()
    try:
        user = support.register(srv.port, "dbdown")
        other = support.register(srv.port, "dbdown")  # a session not yet seen by a socket
        live = connect(srv, user)
        database.stop()
        # A new socket's auth needs the session from the database.
        fresh = open_socket(srv)
        fresh.send({"type": "auth", "token": other.access_token})
        assert fresh.expect_close(timeout=20) == WS_1013_TRY_AGAIN_LATER
        assert "try" in fresh.close_reason or "reconnect" in fresh.close_reason
        # An open socket whose frame needs the database is told the same.
        live.send({"type": "sync", "after": None})
        assert live.expect_close(timeout=20) == WS_1013_TRY_AGAIN_LATER
    finally:
        srv.stop()
        database.stop()


def test_an_authenticated_socket_keeps_no_handshake_headers(
        server: support.ServerThread) -> None:
    user = support.register(server.port, "headers")
    ws = connect(server, user)
    try:
        conns = server.services.hub.connections(user.email)
        assert len(conns) == 1
        sock = conns[0]
        assert isinstance(sock, Socket)
        # Read for the origin and the upgrade, then emptied once authentication
        # returns (the client may see the welcome frame a moment before): ~2 KiB
        # per socket otherwise.
        assert support.wait_for(lambda: not list(sock.request.headers) or None, timeout=5)
        assert ws.call({"type": "ping"}, "pong")["type"] == "pong"
    finally:
        ws.close()


# Payload lengths around each of RFC 6455's three length encodings (7 bits, 16, 64).
FRAME_SIZES = (40, 125, 126, 300, 65_535, 65_536, 70_000)


def _padded(index: int, size: int) -> bytes:
    """A frame of exactly ``size`` bytes numbered ``index``."""
    bare = frames.encode("pong", ref=str(index), pad="")
    return frames.encode("pong", ref=str(index), pad="x" * (size - len(bare)))


async def _send_in_one_turn(srv: support.ServerThread, email: str,
                            close_code: int | None = None) -> None:
    (sock,) = srv.services.hub.connections(email)
    for index, size in enumerate(FRAME_SIZES):
        data = _padded(index, size)
        assert len(data) == size
        sock.send_frame(data)
    if close_code is not None:
        sock.close(close_code, "closing after the frames")


def test_frames_sent_in_one_turn_arrive_whole_and_in_order(
        server: support.ServerThread) -> None:
    user = support.register(server.port, "turn")
    ws = connect(server, user)
    try:
        server.call(_send_in_one_turn(server, user.email))
        for index, size in enumerate(FRAME_SIZES):
            frame = ws.expect("pong")
            assert frame["ref"] == str(index)
            assert len(orjson.dumps(frame)) == size
        assert ws.call({"type": "ping", "ref": "after"}, "pong")["ref"] == "after"
    finally:
        ws.close()


def test_frames_queued_before_a_close_arrive_before_it(
        server: support.ServerThread) -> None:
    user = support.register(server.port, "turnclose")
    ws = connect(server, user)
    server.call(_send_in_one_turn(server, user.email, close_code=WS_4008_TOO_SLOW))
    assert ws.expect_close() == WS_4008_TOO_SLOW
    assert [f["ref"] for f in ws.backlog if f.get("type") == "pong"] == [
        str(index) for index in range(len(FRAME_SIZES))]


# CPython shares an instance dict's keys with its class up to this many attributes;
# one more and every socket's handler carries a full dict (~1.3 KiB more per socket).
SHARED_KEYS_MAX_ATTRIBUTES = 29


def test_a_socket_handler_stays_within_the_shared_key_dict_limit(
        server: support.ServerThread) -> None:
    user = support.register(server.port, "slim")
    ws = connect(server, user)
    try:
        (sock,) = server.services.hub.connections(user.email)
        assert ws.call({"type": "ping"}, "pong")
        assert len(vars(sock)) <= SHARED_KEYS_MAX_ATTRIBUTES, sorted(vars(sock))
    finally:
        ws.close()
