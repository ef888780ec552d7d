"""A socket's read watcher stays registered between the parts of a frame, within a bound."""

from __future__ import annotations

import asyncio
import gc
import socket
import time
from collections.abc import Iterator

import pytest
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream

from tests.realtime.wsclient import WAIT_SECS, connect
from tests.support import ServerThread, register
from whatsease.realtime.transport import STEADY_READ_BYTES, SteadyReads

# A client frame as Tornado reads it: a 2-byte header, then the rest.
HEADER, BODY = b"\x81\x8a", b"mask" + b"0123456789"


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    yield ours, theirs
    ours.close()
    theirs.close()


def _watching(loop: IOLoop, sock: socket.socket) -> bool:
    """Whether the loop has a read watcher on ``sock`` (Tornado's asyncio loop keeps the set)."""
    readers: set[int] = loop.readers  # type: ignore[attr-defined]
    return sock.fileno() in readers


async def _read_frames(stream: IOStream, theirs: socket.socket, loop: IOLoop,
                       frames: int) -> list[bool]:
    """Read ``frames`` frames part by part; whether the watcher stayed after each header."""
    stayed = []
    for _ in range(frames):
        header = stream.read_bytes(len(HEADER))  # waits, with the watcher registered
        theirs.sendall(HEADER + BODY)
        assert await header == HEADER
        # The rest of the frame is buffered and no read is pending at this moment.
        stayed.append(_watching(loop, stream.socket))
        assert await stream.read_bytes(len(BODY)) == BODY
    return stayed


async def test_the_watcher_stays_between_a_frames_parts(
        pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    loop = IOLoop.current()
    stream = IOStream(ours)
    stream.io_loop = SteadyReads(loop, stream)  # type: ignore[assignment]
    assert await _read_frames(stream, theirs, loop, 20) == [True] * 20
    stream.close()
    assert not _watching(loop, ours)


async def test_tornado_alone_drops_and_restores_it_for_every_frame(
        pair: tuple[socket.socket, socket.socket]) -> None:
    # What SteadyReads saves: without it, the watcher is gone after every header.
    ours, theirs = pair
    loop = IOLoop.current()
    stream = IOStream(ours)
    assert await _read_frames(stream, theirs, loop, 5) == [False] * 5
    stream.close()


async def test_past_the_bound_reading_pauses_as_tornado_would(
        pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    loop = IOLoop.current()
    stream = IOStream(ours)
    stream.io_loop = SteadyReads(loop, stream)  # type: ignore[assignment]
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    theirs.setblocking(False)
    header = stream.read_bytes(2)
    sent = theirs.send(b"x" * (8 * STEADY_READ_BYTES))
    assert sent > 2 * STEADY_READ_BYTES + stream.read_chunk_size  # the kernel holds the rest
    assert await header == b"xx"
    # No read is pending: the stream fills its buffer past the bound, then stops watching,
    # so a client that outpaces the server is not read further until frames are handled.
    deadline = loop.time() + 10
    while _watching(loop, ours):
        assert loop.time() < deadline, "the stream never stopped reading"
        await asyncio.sleep(0.01)
    assert stream._read_buffer_size >= STEADY_READ_BYTES
    assert stream._read_buffer_size <= STEADY_READ_BYTES + stream.read_chunk_size
    rest = await stream.read_bytes(sent - 2)  # reading resumes with the next read
    assert len(rest) == sent - 2
    stream.close()


def test_every_chat_socket_reads_steadily(server: ServerThread) -> None:
    user = register(server.port, "steady")
    ws = connect(server, user)
    try:
        assert ws.call({"type": "ping", "ref": "p"}, "pong")["ref"] == "p"
        (sock,) = server.services.hub.connections(user.email)
        stream = sock.ws_connection.stream  # type: ignore[attr-defined]
        assert isinstance(stream.io_loop, SteadyReads)
        for i in range(30):  # frames keep flowing through it
            assert ws.call({"type": "ping", "ref": str(i)}, "pong")["ref"] == str(i)
    finally:
        ws.close()
    # Once closed, the stand-in lets go of the stream: no stream <-> stand-in cycle is left
    # for the collector (which freezes what survives while sockets are many).
    deadline = time.monotonic() + WAIT_SECS
    while not stream.closed():
        assert time.monotonic() < deadline, "the stream did not close"
        time.sleep(0.01)
    assert stream not in gc.get_referents(stream.io_loop)
