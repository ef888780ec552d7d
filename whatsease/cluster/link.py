"""The internal link: one persistent, authenticated, batched stream from this instance to a peer.

Each instance dials every other listed member on its cluster port (never the
public port) and sends over that connection only; what a peer sends arrives
on the connection the peer dialled. A connection starts with a mutual HMAC
challenge over the shared ``WHATSEASE_CLUSTER_SECRET`` (compared in constant
time, never logged), then carries length-prefixed payloads:

- a *batch*: a sequence number, the sender's wall-clock time and any number
  of records (an empty batch is a heartbeat);
- an *ack* (the other way): the highest batch sequence number handled.

A record is ``(kind, key, aux, data)``: one letter, two short strings and
bytes (see `whatsease.cluster.router` for the kinds). Records wait in a
bounded queue per peer; the writer drains as many as fit in one batch, so a
busy link sends few large batches and an idle one sends heartbeats. What did
not reach the peer (queue full, connection lost before the ack) is reported
by key so the router can make those sockets `sync` (nothing is lost: the
database is the truth, the link is the fast path).

Pure asyncio streams: no Tornado here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import struct
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson

from whatsease.metrics import CLUSTER_DROPPED, CLUSTER_FORWARD_LATENCY, CLUSTER_LINK_RECONNECTS

logger = logging.getLogger("whatsease.cluster")

# One payload at most (a batch of frames; a frame is at most 64 KiB).
MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
# A writer stops adding records to a batch past this size.
BATCH_BYTES = 256 * 1024
# Records waiting for one peer; beyond it they are dropped and their keys synced.
QUEUE_RECORDS = 20_000
# Batches sent and not yet acknowledged that we remember the keys of.
UNACKED_BATCHES = 2_048
# Keys remembered for a later sync per peer; beyond it the peer syncs everyone.
SYNC_KEYS = 10_000
HANDSHAKE_SECS = 5.0
HANDSHAKE_BYTES = 1024
RECONNECT_MIN_SECS = 0.1
RECONNECT_MAX_SECS = 2.0

_LEN = struct.Struct("!I")
_RECORD = struct.Struct("!cHHI")
_BATCH = struct.Struct("!Qd")
_ACK = struct.Struct("!Q")
# Record kinds that carry a frame for a key's sockets: lost ones are synced.
FRAME_KINDS = frozenset({"D", "F"})
# Record kinds a fresh snapshot (on every reconnection) replaces.
_STATE_KINDS = frozenset({"O", "X", "Z", "R", "r"})


class LinkError(Exception):
    """The peer broke the link protocol or failed authentication."""


@dataclass(frozen=True, slots=True)
class Record:
    kind: str
    key: str
    aux: str = ""
    data: bytes = b""

    def encode(self) -> bytes:
        key, aux = self.key.encode(), self.aux.encode()
        return _RECORD.pack(self.kind.encode(), len(key), len(aux), len(self.data)) \
            + key + aux + self.data


def encode_batch(seq: int, sent_at: float, records: Iterable[Record]) -> bytes:
    return b"B" + _BATCH.pack(seq, sent_at) + b"".join(r.encode() for r in records)


def decode_batch(payload: bytes) -> tuple[int, float, list[Record]]:
    """Raises `LinkError` on a malformed batch."""
    try:
        seq, sent_at = _BATCH.unpack_from(payload, 1)
        records = []
        view = memoryview(payload)
        at = 1 + _BATCH.size
        while at < len(payload):
            kind, klen, alen, dlen = _RECORD.unpack_from(payload, at)
            at += _RECORD.size
            key = bytes(view[at:at + klen]).decode()
            at += klen
            aux = bytes(view[at:at + alen]).decode()
            at += alen
            data = bytes(view[at:at + dlen])
            at += dlen
            if at > len(payload):
                raise LinkError("a record runs past the end of its batch")
            records.append(Record(kind.decode(), key, aux, data))
    except (struct.error, UnicodeDecodeError) as exc:
        raise LinkError(f"malformed batch: {exc}") from None
    return seq, sent_at, records


def proof(secret: str, role: str, nonce: str, first: str, second: str) -> str:
    """The HMAC-SHA256 one side shows to prove it holds the cluster secret."""
    return hmac.new(secret.encode(), f"{role}|{nonce}|{first}|{second}".encode(),
                    hashlib.sha256).hexdigest()


async def read_payload(reader: asyncio.StreamReader, limit: int = MAX_PAYLOAD_BYTES) -> bytes:
    """One length-prefixed payload; raises `LinkError` when it is over ``limit`` bytes."""
    (size,) = _LEN.unpack(await reader.readexactly(_LEN.size))
    if size > limit:
        raise LinkError(f"payload of {size} bytes is over the limit")
    return await reader.readexactly(size)


def write_payload(writer: asyncio.StreamWriter, payload: bytes) -> None:
    """Raises `ConnectionResetError` if the connection is already closed."""
    if writer.is_closing():
        # uvloop raises RuntimeError for a write on a closed transport.
        raise ConnectionResetError("the link's connection is closed")
    writer.write(_LEN.pack(len(payload)) + payload)


async def _read_json(reader: asyncio.StreamReader) -> dict[str, object]:
    # Before authentication nothing large is accepted.
    payload = await read_payload(reader, HANDSHAKE_BYTES)
    if not payload.startswith(b"J"):
        raise LinkError("expected a handshake payload")
    try:
        value = orjson.loads(payload[1:])
    except orjson.JSONDecodeError:
        raise LinkError("handshake is not JSON") from None
    if not isinstance(value, dict):
        raise LinkError("handshake is not an object")
    return value


def _write_json(writer: asyncio.StreamWriter, value: dict[str, object]) -> None:
    write_payload(writer, b"J" + orjson.dumps(value))


def _text(value: object) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 128:
        raise LinkError("a handshake field is missing or too long")
    return value


Handler = Callable[[str, list[Record]], None]
"""Called with a peer's id and the records of one batch, in order."""


class LinkServer:
    """Accepts peers' links on the cluster port and hands their records to ``handler``.

    ``seen(peer_id)`` is called on every payload (a heartbeat or a batch):
    it is what keeps the peer in the ring; ``hello(peer_id)`` once per new
    authenticated connection.
    """

    def __init__(self, me: str, secret: str, handler: Handler,
                 seen: Callable[[str], None],
                 hello: Callable[[str], None] | None = None) -> None:
        self.me = me
        self._secret = secret
        self._handler = handler
        self._seen = seen
        self._hello = hello
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._latency = CLUSTER_FORWARD_LATENCY

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host or None, port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._connections):
            writer.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    async def _handshake(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> str:
        hello = await _read_json(reader)
        peer, nonce, to = _text(hello.get("id")), _text(hello.get("nonce")), hello.get("to")
        if to != self.me:
            raise LinkError(f"a link meant for {str(to)[:64]!r} reached {self.me}")
        mine = secrets.token_hex(16)
        _write_json(writer, {"id": self.me, "nonce": mine,
                             "proof": proof(self._secret, "server", nonce, self.me, peer)})
        await writer.drain()
        answer = await _read_json(reader)
        expected = proof(self._secret, "client", mine, peer, self.me)
        if not hmac.compare_digest(_text(answer.get("proof")), expected):
            raise LinkError("the peer does not hold the cluster secret")
        return peer

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        peer = "?"
        try:
            peer = await asyncio.wait_for(self._handshake(reader, writer), HANDSHAKE_SECS)
            if self._hello is not None:
                self._hello(peer)
            self._seen(peer)
            while True:
                payload = await read_payload(reader)
                if not payload.startswith(b"B"):
                    raise LinkError("expected a batch")
                seq, sent_at, records = decode_batch(payload)
                self._seen(peer)
                if records:
                    self._latency.observe(max(0.0, time.time() - sent_at))
                    self._handler(peer, records)
                write_payload(writer, b"A" + _ACK.pack(seq))
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass
        except LinkError as exc:
            logger.warning("cluster: refused a link from %s: %s", peer, exc)
        except Exception:
            logger.exception("cluster: the link from %s failed", peer)
        finally:
            self._connections.discard(writer)
            writer.close()


class PeerLink:
    """This instance's link to one peer: a bounded queue, a writer and reconnection.

    ``lost(peer, keys)`` is called with the keys whose frames may not have
    arrived (``"*"`` among them: every key) when the peer acknowledges the
    reconnection, so the router can make those sockets sync; ``connected(peer)``
    after each (re)connection, so the router can send its state first;
    ``refused(peer)`` once when the peer, after having been connected, refuses
    a new connection (nothing listens on its cluster port any more: the
    process is gone), so the router need not wait for the heartbeat timeout;
    ``alive(peer)`` on every ack: the peer answering proves it alive as much as
    its own heartbeats do (which it sends only once it lists this instance).
    """

    def __init__(self, me: str, peer: str, url: str, secret: str, *,
                 heartbeat_every: float,
                 connected: Callable[[PeerLink], None],
                 lost: Callable[[PeerLink, set[str]], None],
                 refused: Callable[[PeerLink], None] | None = None,
                 alive: Callable[[str], None] | None = None) -> None:
        self.me = me
        self.peer = peer
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self._secret = secret
        self.heartbeat_every = heartbeat_every
        self._connected = connected
        self._lost = lost
        self._refused = refused
        self._alive = alive
        # Connected at least once, and whether this outage's refusal was reported.
        self._was_up = False
        self._refusal_told = False
        self.queue: deque[Record] = deque()
        self.up = False
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._seq = 0
        self._unacked: deque[tuple[int, set[str]]] = deque()
        # Keys whose frames may be lost, to sync once the link is back.
        self._missed: set[str] = set()
        self._dropped = CLUSTER_DROPPED.labels(peer)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(),
                                                            name=f"cluster-link-{self.peer}")

    async def flush(self) -> None:
        """Wait until the queue is sent, if the link is up (callers bound the wait)."""
        if self.up and self.queue:
            await self._drained.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def cancel(self) -> None:
        """Stop the link now (its peer is no longer listed)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def drop_state_records(self) -> None:
        """Forget queued records about who is online or relayed: a fresh snapshot follows."""
        if any(r.kind in _STATE_KINDS for r in self.queue):
            self.queue = deque(r for r in self.queue if r.kind not in _STATE_KINDS)

    def put(self, record: Record) -> None:
        """Queue ``record``; when the queue is full it is dropped and its key synced later."""
        if len(self.queue) >= QUEUE_RECORDS:
            self._dropped.inc()
            if record.kind in FRAME_KINDS:
                self._miss({record.key})
            return
        self.queue.append(record)
        self._drained.clear()
        if not self._wake.is_set():
            self._wake.set()

    def take_back(self) -> tuple[list[Record], set[str]]:
        """The peer left the ring: hand back what is queued and the keys that may be lost."""
        queued = list(self.queue)
        self.queue.clear()
        missed = set(self._missed)
        for _, keys in self._unacked:
            missed |= keys
        self._unacked.clear()
        self._missed.clear()
        return queued, missed

    def _miss(self, keys: Iterable[str]) -> None:
        self._missed.update(keys)
        if len(self._missed) > SYNC_KEYS:
            self._missed = {"*"}

    async def _run(self) -> None:
        delay = RECONNECT_MIN_SECS
        while True:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), HANDSHAKE_SECS)
            except (OSError, TimeoutError) as exc:
                if isinstance(exc, ConnectionRefusedError):
                    self._tell_refused()
                await asyncio.sleep(delay)
                delay = min(RECONNECT_MAX_SECS, delay * 2)
                continue
            try:
                await asyncio.wait_for(self._handshake(reader, writer), HANDSHAKE_SECS)
                delay = RECONNECT_MIN_SECS
                await self._serve(reader, writer)
            except (asyncio.IncompleteReadError, ConnectionError, OSError, TimeoutError):
                pass
            except LinkError as exc:
                logger.warning("cluster: link to %s refused: %s", self.peer, exc)
            except Exception:
                logger.exception("cluster: link to %s failed", self.peer)
            finally:
                writer.close()
                if self.up:
                    self.up = False
                    logger.info("cluster: link to %s lost", self.peer)
                for _, keys in self._unacked:
                    self._miss(keys)
                self._unacked.clear()
            await asyncio.sleep(delay)
            delay = min(RECONNECT_MAX_SECS, delay * 2)

    def _tell_refused(self) -> None:
        if self._was_up and not self._refusal_told and self._refused is not None:
            self._refusal_told = True
            logger.info("cluster: %s refused the link: its process is gone", self.peer)
            self._refused(self)

    async def _handshake(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        mine = secrets.token_hex(16)
        _write_json(writer, {"id": self.me, "nonce": mine, "to": self.peer})
        await writer.drain()
        answer = await _read_json(reader)
        if answer.get("id") != self.peer:
            raise LinkError(f"{self.host}:{self.port} is not {self.peer}")
        expected = proof(self._secret, "server", mine, self.peer, self.me)
        if not hmac.compare_digest(_text(answer.get("proof")), expected):
            raise LinkError("the peer does not hold the cluster secret")
        _write_json(writer, {"proof": proof(self._secret, "client", _text(answer.get("nonce")),
                                            self.me, self.peer)})
        await writer.drain()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.up = True
        self._was_up = True
        self._refusal_told = False
        CLUSTER_LINK_RECONNECTS.labels(self.peer).inc()
        logger.info("cluster: link to %s up", self.peer)
        missed, self._missed = self._missed, set()
        if missed:
            self._lost(self, missed)
        self._connected(self)
        acks = asyncio.get_running_loop().create_task(self._read_acks(reader))
        # The writer may be idle until the next heartbeat: a lost connection (the
        # reader's end) wakes it now, so the loss is seen at once, not a beat later.
        acks.add_done_callback(lambda _: self._wake.set())
        try:
            await self._write(writer, acks)
        finally:
            acks.cancel()
            await asyncio.gather(acks, return_exceptions=True)

    async def _read_acks(self, reader: asyncio.StreamReader) -> None:
        while True:
            payload = await read_payload(reader)
            if not payload.startswith(b"A"):
                raise LinkError("expected an ack")
            (seq,) = _ACK.unpack_from(payload, 1)
            if self._alive is not None:
                self._alive(self.peer)
            while self._unacked and self._unacked[0][0] <= seq:
                self._unacked.popleft()

    async def _write(self, writer: asyncio.StreamWriter, acks: asyncio.Task[None]) -> None:
        while not acks.done():
            if not self.queue:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.heartbeat_every)
            batch: list[Record] = []
            keys: set[str] = set()
            size = 0
            while self.queue and size < BATCH_BYTES:
                record = self.queue.popleft()
                batch.append(record)
                size += len(record.data) + len(record.key) + 16
                if record.kind in FRAME_KINDS:
                    keys.add(record.key)
            self._seq += 1
            if keys:
                self._unacked.append((self._seq, keys))
                if len(self._unacked) > UNACKED_BATCHES:
                    self._miss(self._unacked.popleft()[1])
            write_payload(writer, encode_batch(self._seq, time.time(), batch))
            await writer.drain()
            if not self.queue:
                self._drained.set()
        acks.result()  # raises what ended the reader (a lost connection)
