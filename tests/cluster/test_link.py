"""The internal link on real sockets: mutual HMAC authentication, batches, acks, bounds."""

from __future__ import annotations

import asyncio
import socket

import pytest

from whatsease.cluster import link as link_module
from whatsease.cluster.link import (
    LinkError,
    LinkServer,
    PeerLink,
    Record,
    decode_batch,
    encode_batch,
    proof,
)

SECRET = "a-cluster-secret-of-some-length"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_batches_round_trip_and_malformed_ones_are_refused() -> None:
    records = [Record("F", "ann@example.com", "a:1", b'{"type":"message"}'),
               Record("O", "bob@example.com"), Record("C", "", "", b"12")]
    seq, sent_at, decoded = decode_batch(encode_batch(7, 123.5, records))
    assert (seq, sent_at, decoded) == (7, 123.5, records)
    whole = encode_batch(1, 0.0, records)
    with pytest.raises(LinkError):
        decode_batch(whole[:-3])  # a record cut short
    assert proof(SECRET, "client", "n", "a", "b") != proof(SECRET, "server", "n", "a", "b")


async def _pair(server_secret: str, client_secret: str,
                ) -> tuple[LinkServer, PeerLink, list[tuple[str, list[Record]]], list[str]]:
    got: list[tuple[str, list[Record]]] = []
    seen: list[str] = []
    port = _free_port()
    server = LinkServer("b", server_secret, lambda peer, rs: got.append((peer, rs)), seen.append)
    await server.start("127.0.0.1", port)
    peer = PeerLink("a", "b", f"http://127.0.0.1:{port}", client_secret, heartbeat_every=0.1,
                    connected=lambda _link: None, lost=lambda _link, _keys: None)
    peer.start()
    return server, peer, got, seen


async def _until(check: object, within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


async def test_records_cross_in_order_and_heartbeats_count_as_seen() -> None:
    server, peer, got, seen = await _pair(SECRET, SECRET)
    try:
        await _until(lambda: peer.up)
        for n in range(500):
            peer.put(Record("F", f"user{n}", "", b"x" * 100))
        await _until(lambda: sum(len(rs) for _, rs in got) == 500)
        keys = [r.key for _, rs in got for r in rs]
        assert keys == [f"user{n}" for n in range(500)]
        assert all(p == "a" for p, _ in got)
        assert len(got) < 500  # batched
        count = len(seen)
        await _until(lambda: len(seen) >= count + 3)  # idle: heartbeats keep coming
        await _until(lambda: not peer._unacked)  # acks come back
    finally:
        await peer.stop()
        await server.stop()


async def test_a_peer_without_the_secret_is_refused() -> None:
    server, peer, got, seen = await _pair(SECRET, "another-secret-entirely-123")
    try:
        peer.put(Record("F", "ann@example.com", "", b"forged"))
        await asyncio.sleep(1.0)
        assert not peer.up and got == [] and seen == []
    finally:
        await peer.stop()
        await server.stop()


async def test_a_full_queue_drops_and_remembers_what_to_sync(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(link_module, "QUEUE_RECORDS", 3)
    lost: list[set[str]] = []
    port = _free_port()  # nobody listens: the queue fills
    peer = PeerLink("a", "b", f"http://127.0.0.1:{port}", SECRET, heartbeat_every=0.1,
                    connected=lambda _link: None, lost=lambda _link, keys: lost.append(keys))
    for n in range(5):
        peer.put(Record("F", f"user{n}", "", b"x"))
    assert [r.key for r in peer.queue] == ["user0", "user1", "user2"]
    queued, missed = peer.take_back()
    assert [r.key for r in queued] == ["user0", "user1", "user2"]
    assert missed == {"user3", "user4"}
    # When the peer comes up, what was dropped is reported for a sync.
    for n in range(5):
        peer.put(Record("F", f"user{n}", "", b"x"))
    got: list[tuple[str, list[Record]]] = []
    server = LinkServer("b", SECRET, lambda p, rs: got.append((p, rs)), lambda _p: None)
    await server.start("127.0.0.1", port)
    peer.start()
    try:
        await _until(lambda: bool(lost))
        assert lost[0] == {"user3", "user4"}
        await _until(lambda: sum(len(rs) for _, rs in got) == 3)
    finally:
        await peer.stop()
        await server.stop()


async def test_an_oversized_handshake_is_refused_before_authentication() -> None:
    got: list[tuple[str, list[Record]]] = []
    port = _free_port()
    server = LinkServer("b", SECRET, lambda p, rs: got.append((p, rs)), lambda _p: None)
    await server.start("127.0.0.1", port)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write((64 * 1024).to_bytes(4, "big") + b"J" + b" " * 1024)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, nothing answered
        writer.close()
    finally:
        await server.stop()
