"""The real-time service: per-socket protocol logic, rate limits and the cap on sockets per user.

Presence and typing live in `presence.py`.

Nothing here imports Tornado: `handler.py` owns the transport and hands each
parsed frame to a `ClientSession`, which answers through the connection's
``send_frame``. Messages and receipts go through `Messaging`, so REST and
WebSocket share one path to the database and to the hub.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any

from whatsease.auth.ratelimit import TokenBucket
from whatsease.auth.service import AuthService, Principal
from whatsease.batching import Batcher
from whatsease.config import Config
from whatsease.delivery import frames
from whatsease.delivery.frames import (
    WS_1013_TRY_AGAIN_LATER,
    WS_4009_TOO_MANY_SOCKETS,
    WS_4029_RATE_LIMITED,
)
from whatsease.delivery.hub import Connection, Hub
from whatsease.errors import AppError, Unauthorized
from whatsease.messaging.service import Messaging
from whatsease.metrics import (
    FRAMES_IN,
    FRAMES_OUT,
    RATE_LIMITED,
    SEND_ACK_LATENCY,
    SEND_QUEUE_OVERFLOWS,
    SOCKETS_OPEN,
    USERS_ONLINE,
)
from whatsease.realtime.collector import Collector, tune_collector
from whatsease.realtime.presence import MAX_TYPING_TARGETS, Presence, Typing
from whatsease.realtime.protocol import Frame
from whatsease.storage.faults import database_unreachable
from whatsease.storage.models import conversation_id
from whatsease.storage.store import Store
from whatsease.timeutil import isoformat, utcnow

if TYPE_CHECKING:
    from whatsease.services import Services

logger = logging.getLogger(__name__)

# Frames other than sends one socket may send per second (and in a burst):
# receipts, typing, sync and ping. Generous for any real client.
OTHER_FRAMES_PER_SEC = 100.0
OTHER_FRAMES_BURST = 400
# A socket refused this many times by the rate limit within the window is
# closed with 4029: it is ignoring the error frames.
RATE_LIMIT_STRIKES = 10
RATE_LIMIT_WINDOW_SECS = 10.0
# Per-user send buckets remembered at most (least recently used dropped).
MAX_BUCKETS = 100_000
# Conversations remembered as existing (typing is forwarded only within one);
# least recently used dropped. A conversation is never un-made except when an
# account is deleted, and then its sockets are closed.
MAX_KNOWN_CONVERSATIONS = 100_000
# Frames from one socket processed concurrently; beyond it the socket is not
# read until one finishes, so a fast client cannot queue unbounded work.
MAX_INFLIGHT_FRAMES = 64


def count_in(kind: str) -> None:
    """Count one client frame by its type (validated by the protocol: a bounded set)."""
    FRAMES_IN.inc(kind)


def count_out(data: bytes) -> None:
    """Count one frame queued to a socket, by the type its bytes start with."""
    FRAMES_OUT.inc(frame_type(data))


def frame_type(data: bytes) -> str:
    """The ``type`` of an encoded frame, without decoding it (`frames.encode` puts it first)."""
    prefix = b'{"type":"'
    if data.startswith(prefix):
        end = data.find(b'"', len(prefix))
        if 0 < end <= 40:
            return data[len(prefix):end].decode("ascii", "replace")
    return "other"


class Realtime:
    """Shared by every socket of the process: the hub, presence, typing and send buckets."""

    def __init__(self, config: Config, hub: Hub, auth: AuthService, messaging: Messaging,
                 store: Store, clock: Callable[[], datetime] = utcnow) -> None:
        self.config = config
        self.hub = hub
        self.auth = auth
        self.messaging = messaging
        self.store = store
        self.clock = clock
        self.typing = Typing(hub)
        self.presence = Presence(store, hub, messaging, clock)
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._known: OrderedDict[str, None] = OrderedDict()
        self._lookups: Batcher[str, bool] = Batcher(self._existing, name="typing-conversations")
        # What the sockets hold is frozen out of the collector's sight (collector.py).
        self.collector = Collector(lambda: hub.socket_count)
        # Every socket's frames being handled (ClientSession), referenced until done.
        self.tasks: set[asyncio.Task[None]] = set()

    async def authenticate(self, frame: Frame) -> Principal:
        """The first frame must be ``auth`` with a valid access token; `Unauthorized` otherwise."""
        if frame.type != "auth":
            raise Unauthorized(f"The first frame must be auth, not {frame.type}.",
                               code="auth_required")
        return await self.auth.authenticate(frame.token)

    def attach(self, conn: Connection) -> ClientSession:
        """An authenticated socket joins the hub; returns the session that handles its frames.

        A user at ``ws_max_sockets_per_user`` loses their oldest socket (close 4009).
        """
        older = self.hub.connections(conn.user)
        for old in older[:max(0, len(older) + 1 - self.config.ws_max_sockets_per_user)]:
            old.close(WS_4009_TOO_MANY_SOCKETS, "too many sockets: this was the oldest")
        if self.hub.add(conn):
            self.presence.changed(conn.user, True)
        self._gauge()
        self.collector.attached()
        return ClientSession(self, conn)

    def detach(self, conn: Connection) -> None:
        """The socket closed (or is being closed): forget it everywhere. Safe to call twice."""
        self.typing.drop(conn)
        if self.hub.remove(conn):
            self.presence.changed(conn.user, False)
        self._gauge()
        self.collector.detached()

    def _gauge(self) -> None:
        SOCKETS_OPEN.set(self.hub.socket_count)
        USERS_ONLINE.set(self.hub.user_count)

    def known_conversation(self, user: str, peer: str) -> bool:
        """Whether ``user`` and ``peer`` are known to share a conversation (no database)."""
        key = conversation_id(user, peer)
        if key in self._known:
            self._known.move_to_end(key)
            return True
        return False

    async def shares_conversation(self, user: str, peer: str) -> bool:
        """Whether ``user`` and ``peer`` share a conversation (batched lookups, remembered)."""
        if self.known_conversation(user, peer):
            return True
        await self.messaging.summaries_written()  # a chat started a moment ago counts
        return await self._lookups.submit(conversation_id(user, peer))

    async def _existing(self, keys: list[str]) -> list[bool]:
        found = await self.store.conversations.existing(list(set(keys)))
        for key in found:
            self._known[key] = None
        while len(self._known) > MAX_KNOWN_CONVERSATIONS:
            self._known.popitem(last=False)
        return [key in found for key in keys]

    def send_bucket(self, user: str) -> TokenBucket:
        bucket = self._buckets.get(user)
        if bucket is None:
            bucket = self._buckets[user] = TokenBucket(self.config.ws_send_rate,
                                                       self.config.ws_send_burst)
            while len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(user)
        return bucket

    async def drain(self) -> None:
        await self.presence.drain()


class ClientSession:
    """One authenticated socket's protocol state: answers frames through ``conn.send_frame``.

    One per live socket, so slots rather than a ``__dict__``, and the list of
    rate-limit refusals only once there is one (an empty bounded deque is
    ~760 bytes): about 1 KiB less per socket. For the same reason the bucket
    of frames other than sends is two of its slots rather than a `TokenBucket`
    of its own (one object less per socket for the collector), and the typing
    checks' dict is made on the first one.
    """

    __slots__ = ("_inflight", "_refusals", "_room", "_synced", "_tokens", "_tokens_at",
                 "_typing_seq", "_typing_wanted", "conn", "realtime", "session_open", "user")

    def __init__(self, realtime: Realtime, conn: Connection) -> None:
        self.realtime = realtime
        self.conn = conn
        self.user = conn.user
        # Frames other than sends: OTHER_FRAMES_PER_SEC, up to OTHER_FRAMES_BURST.
        self._tokens = float(OTHER_FRAMES_BURST)
        self._tokens_at = time.monotonic()
        self._refusals: deque[float] | None = None
        # Frames of this socket being handled; the tasks themselves are kept
        # in the service's one set (a set per socket is ~200 bytes).
        self._inflight = 0
        self._room: asyncio.Event | None = None
        self._typing_seq = 0
        # peer -> the typing frame awaiting its check (None until the first check)
        self._typing_wanted: dict[str, int] | None = None
        self.session_open = True
        self._synced = False  # whether this socket has asked for a sync yet

    def ready_frame(self) -> bytes:
        return frames.chat_ready(self.user, isoformat(self.realtime.clock()))

    def typing_frames(self) -> list[bytes]:
        """What a socket that just connected has missed: who is typing to its user now."""
        return [frames.chat_typing(typer, True)
                for typer in self.realtime.typing.typing_to(self.user)]

    def receive(self, frame: Frame) -> asyncio.Future[None] | None:
        """Handle one parsed frame. Returns a future while the socket should not be read further.

        Frames needing the database run as tasks, up to `MAX_INFLIGHT_FRAMES`
        at once; the rest are answered at once.
        """
        count_in(frame.type)
        if not self._admit(frame):
            return None
        if frame.type == "ping":
            self.conn.send_frame(frames.pong(frame.ref))
            return None
        if frame.type == "typing":
            self._typing(frame)
            return None
        if frame.type == "auth":
            self.error("already_authenticated", "This socket is already authenticated.",
                       frame.ref)
            return None
        self._start(self._run(frame, time.perf_counter()))
        if self._inflight >= MAX_INFLIGHT_FRAMES:
            self._room = asyncio.Event()
            return asyncio.ensure_future(self._wait_for_room(self._room))
        return None

    def _typing(self, frame: Frame) -> None:
        """Forward typing only to a peer the user shares a conversation with.

        Known pairs (and "stopped") apply at once; an unknown pair is looked
        up first, and applied only if no later typing frame to that peer came
        meanwhile, so a quick "stop" is never overtaken by its "start".
        """
        self._typing_seq += 1
        wanted = self._typing_wanted
        if not frame.state or self.realtime.known_conversation(self.user, frame.recipient):
            if wanted is not None:
                wanted.pop(frame.recipient, None)
            self.realtime.typing.update(self.conn, frame.recipient, frame.state)
            return
        if wanted is None:
            wanted = self._typing_wanted = {}
        elif len(wanted) >= MAX_TYPING_TARGETS:
            return
        wanted[frame.recipient] = self._typing_seq
        self._start(self._typing_checked(frame.recipient, self._typing_seq))

    async def _typing_checked(self, peer: str, seq: int) -> None:
        try:
            shared = await self.realtime.shares_conversation(self.user, peer)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("typing check for %s failed", self.user)
            shared = False
        wanted = self._typing_wanted
        if wanted is None or wanted.get(peer) != seq:
            return
        del wanted[peer]
        if shared and self.session_open:
            self.realtime.typing.update(self.conn, peer, True)

    @staticmethod
    async def _wait_for_room(room: asyncio.Event) -> None:
        await room.wait()

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.realtime.tasks.add(task)  # a reference until it is done
        self._inflight += 1
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.realtime.tasks.discard(task)
        self._inflight -= 1
        if self._room is not None and self._inflight < MAX_INFLIGHT_FRAMES:
            self._room.set()
            self._room = None

    def _take_other(self) -> bool:
        """Take a token for a frame other than a send (`TokenBucket.take`, inlined)."""
        now = time.monotonic()
        tokens = min(float(OTHER_FRAMES_BURST),
                     self._tokens + (now - self._tokens_at) * OTHER_FRAMES_PER_SEC)
        self._tokens_at = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        return False

    def _admit(self, frame: Frame) -> bool:
        """Apply the rate limits; refuse with an error frame, and close 4029 if it goes on."""
        if frame.type == "send":
            allowed = self.realtime.send_bucket(self.user).take()
        else:
            allowed = self._take_other()
        if allowed:
            return True
        RATE_LIMITED.inc()
        now = time.monotonic()
        if self._refusals is None:
            self._refusals = deque(maxlen=RATE_LIMIT_STRIKES)
        self._refusals.append(now)
        if (len(self._refusals) == RATE_LIMIT_STRIKES
                and now - self._refusals[0] <= RATE_LIMIT_WINDOW_SECS):
            self.conn.close(WS_4029_RATE_LIMITED, "rate limit exceeded")
            return False
        what = "messages" if frame.type == "send" else "frames"
        self.error("rate_limited", f"Too many {what}: slow down. The {frame.type} frame was "
                   "not processed; it is safe to retry it later.", frame.ref)
        return False

    async def _run(self, frame: Frame, started: float) -> None:
        try:
            if frame.type == "send":
                await self._send(frame, started)
            elif frame.type in ("delivered", "read"):
                status = "Delivered" if frame.type == "delivered" else "Read"
                await self.realtime.messaging.mark(self.user, list(frame.message_ids), status,
                                                   origin=self.conn)
            elif frame.type == "sync":
                await self._sync(frame)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if database_unreachable(exc):
                # Every later frame would fail the same way: reconnect and sync instead.
                logger.warning("closing a socket of %s with 1013: %s", self.user, exc)
                self.conn.close(WS_1013_TRY_AGAIN_LATER, "the database is unreachable; "
                                "reconnect in a few seconds")
                return
            if isinstance(exc, AppError):
                self.error(exc.code, exc.detail, frame.ref, exc.errors)
                return
            ref = secrets.token_hex(6)
            logger.exception("%s frame from %s failed (ref %s)", frame.type, self.user, ref)
            self.error("internal", f"The server failed to handle this frame (ref {ref}); "
                       "retry later.", frame.ref)

    async def _send(self, frame: Frame, started: float) -> None:
        self.realtime.typing.stop_sender(self.user, frame.recipient)
        message = await self.realtime.messaging.send(
            self.user, frame.recipient, frame.content, client_id=frame.client_id,
            origin=self.conn)
        self.conn.send_frame(frames.ack(frame.client_id, message.to_json()))
        SEND_ACK_LATENCY.observe(time.perf_counter() - started)

    async def _sync(self, frame: Frame) -> None:
        # A socket's first sync starts over from the settled position: the
        # client may have left in the middle of paging a held-back tail.
        page, more, cursor = await self.realtime.messaging.changes_since(
            self.user, frame.after, resume=self._synced)
        self._synced = True
        self.conn.send_frame(frames.synced([m.to_json() for m in page], more=more,
                                           cursor=cursor, ref=frame.ref))

    def error(self, code: str, detail: str, ref: str | None,
              errors: list[dict[str, str]] | None = None) -> None:
        self.conn.send_frame(frames.error_frame(code, detail, ref=ref, errors=errors))

    def overflowed(self) -> None:
        SEND_QUEUE_OVERFLOWS.inc()

    def release(self) -> None:
        """The socket is gone. Frames in progress finish (a send already queued for
        insert is stored regardless: the client finds it by sync, and its retry is
        idempotent); their replies go nowhere."""
        self.session_open = False
        if self._room is not None:
            self._room.set()
            self._room = None


async def setup(services: Services) -> None:
    tune_collector()
    services.realtime = Realtime(services.config, services.hub, services.auth,
                                           services.messaging, services.store)
    services.realtime.collector.install()


async def shutdown(services: Services) -> None:
    realtime = services.realtime
    if realtime is not None:
        realtime.collector.uninstall()
        await realtime.drain()
