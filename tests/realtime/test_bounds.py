"""Bounds over real sockets: a stalled reader is closed with 4008; dead peers time out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import websocket

from tests.realtime.wsclient import connect
from tests.support import Client, ServerThread, register
from whatsease.delivery.hub import Connection

QUEUE_FRAMES = 50
CONTENT_CHARS = 4000
# Enough messages to fill the kernel's socket buffers and then the queue,
# few enough to stay fast: the test stops as soon as the socket is closed.
MAX_FLOOD_MESSAGES = 400


def _overflows(port: int) -> float:
    for line in Client(port).get("/metrics").body.decode().splitlines():
        if line.startswith("whatsease_ws_send_queue_overflows_total "):
            return float(line.split()[-1])
    return 0.0


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_reader_that_stops_reading_is_closed_4008(
        make_server: Callable[..., ServerThread]) -> None:
    srv = make_server(ws_queue_frames=QUEUE_FRAMES)
    alice, bob = register(srv.port, "alice"), register(srv.port, "bob")
    # A tiny receive buffer that nobody reads: the server's writes back up.
    stuck = connect(srv, bob, rcvbuf=2048)
    conns: list[Connection] = srv.services.hub.connections(bob.email)
    assert len(conns) == 1
    victim = conns[0]
    before = _overflows(srv.port)
    sent = 0
    content = "x" * CONTENT_CHARS
    while srv.services.hub.is_online(bob.email) and sent < MAX_FLOOD_MESSAGES:
        res = alice.client.post("/api/v1/messages", {"recipient": bob.email, "content": content})
        assert res.status == 201
        sent += 1
    assert not srv.services.hub.is_online(bob.email), f"still open after {sent} messages"
    assert _overflows(srv.port) == before + 1
    # Memory stayed bounded: never more than the limit (plus the frame that
    # crossed it) waited in the server's queue, and nothing was queued after.
    queue = victim.queue  # type: ignore[attr-defined]
    assert queue.peak <= QUEUE_FRAMES + 1
    for _ in range(20):
        alice.client.post("/api/v1/messages", {"recipient": bob.email, "content": content})
    assert queue.pending <= QUEUE_FRAMES + 1
    # Reading again, the client finds the close code at the end of what was queued.
    assert stuck.expect_close(timeout=10) == 4008
    # Other sockets are unaffected.
    fresh = connect(srv, bob)
    assert fresh.call({"type": "ping"}, "pong")
    fresh.close()


def test_dead_peer_is_dropped_by_pings(make_server: Callable[..., ServerThread]) -> None:
    srv = make_server()
    # Ping often so the test is quick; a client that never answers is dropped.
    assert srv.server.app is not None
    srv.server.app.settings["websocket_ping_interval"] = 0.3
    srv.server.app.settings["websocket_ping_timeout"] = 0.3
    user = register(srv.port)
    silent = connect(srv, user)
    assert srv.services.hub.is_online(user.email)
    # The client now never reads, so it never answers a ping.
    assert _wait(lambda: not srv.services.hub.is_online(user.email), timeout=10)
    silent.close()


def test_a_peer_that_answers_pings_stays_and_no_socket_has_its_own_ping_task(
        make_server: Callable[..., ServerThread]) -> None:
    srv = make_server()
    assert srv.server.app is not None
    # A pong may take this long: room for a loaded machine, still several pings in the test.
    srv.server.app.settings["websocket_ping_interval"] = 1.0
    srv.server.app.settings["websocket_ping_timeout"] = 1.0
    alice, bob = register(srv.port, "alice"), register(srv.port, "bob")
    live = [connect(srv, alice), connect(srv, bob)]

    async def ping_tasks() -> int:
        return sum(1 for t in asyncio.all_tasks()
                   if "periodic_ping" in repr(t.get_coro()))

    # One wheel pings every socket: Tornado's task per socket stays off.
    assert srv.call(ping_tasks()) == 0
    # Several intervals later both are still there: reading, the client answers each ping
    # (it reads all the time, as a browser does, not only when it expects a frame).
    for _ in range(8):
        for ws in live:
            ws.expect_none("nothing", timeout=0.2)
            assert ws.call({"type": "ping"}, "pong")
    assert srv.services.hub.is_online(alice.email) and srv.services.hub.is_online(bob.email)
    for ws in live:
        ws.close()


def test_frames_to_a_reading_socket_go_straight_to_the_kernel_in_order(
        make_server: Callable[..., ServerThread]) -> None:
    srv = make_server()
    user = register(srv.port)
    ws = connect(srv, user)
    conns: list[Connection] = srv.services.hub.connections(user.email)
    stream = conns[0].ws_connection.stream  # type: ignore[attr-defined]
    writes: list[int] = []
    write = stream.write

    def counted(data: bytes) -> object:  # Tornado's own write, counted
        writes.append(len(data))
        return write(data)

    stream.write = counted
    try:
        refs = [f"p{i}" for i in range(30)]
        for ref in refs:
            ws.send({"type": "ping", "ref": ref})
        assert [ws.expect("pong")["ref"] for _ in refs] == refs
        # Nothing was waiting to be written each time: no future of Tornado's per write.
        assert writes == []
    finally:
        stream.write = write
        ws.close()


def test_the_wheels_pings_go_straight_to_the_kernel_and_are_answered(
        make_server: Callable[..., ServerThread]) -> None:
    srv = make_server()
    assert srv.server.app is not None
    srv.server.app.settings["websocket_ping_interval"] = 0.3
    srv.server.app.settings["websocket_ping_timeout"] = 5.0
    user = register(srv.port)
    ws = connect(srv, user)
    conns: list[Connection] = srv.services.hub.connections(user.email)
    stream = conns[0].ws_connection.stream  # type: ignore[attr-defined]
    writes: list[bytes] = []
    write = stream.write

    def counted(data: bytes) -> object:  # Tornado's own write, counted
        writes.append(bytes(data))
        return write(data)

    stream.write = counted
    try:
        pings = 0
        deadline = time.monotonic() + 15
        while pings < 2 and time.monotonic() < deadline:
            ws.sock.settimeout(deadline - time.monotonic())
            frame = ws.sock.recv_frame()
            if frame.opcode == websocket.ABNF.OPCODE_PING:
                assert frame.data == b""
                pings += 1
                ws.sock.pong(frame.data)
        assert pings == 2
        # Nothing was waiting to be written: no future of Tornado's per ping.
        assert writes == []
        # Answered, the socket stays; it still talks.
        assert srv.services.hub.is_online(user.email)
        assert ws.call({"type": "ping", "ref": "after"}, "pong")["ref"] == "after"
    finally:
        stream.write = write
        ws.close()
