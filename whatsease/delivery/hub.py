"""The hub: which live sockets each user has, and delivery of encoded frames to them.

It knows nothing of Tornado: a connection is anything with ``user``,
``session_id``, ``send_frame(bytes)`` and ``close(code, reason)``. Delivery to
users owned by another process plugs in behind `send` as a `Router`
(``whatsease.cluster.router``), set only when clustering is on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from whatsease.delivery.events import Event, encode


class Connection(Protocol):
    user: str
    session_id: str
    # The routing key that homes this connection in a cluster (``cluster/routing.py``):
    # the user's, or a support socket's organisation's; "" when it has none (a
    # channel conversation not bound to an organisation). Set once it is authenticated.
    home_route: str

    def send_frame(self, data: bytes) -> None:
        """Queue an encoded frame; must not block (the connection bounds its own queue)."""

    def close(self, code: int, reason: str) -> None:
        """Close the socket with a WebSocket close code."""


class Router(Protocol):
    """Where frames for users homed on other instances go (clustering only)."""

    def forward(self, user: str, data: bytes, exclude: Connection | None) -> bool:
        """Send ``data`` towards ``user``'s home; True if it is not delivered here."""

    def joined(self, conn: Connection, first: bool) -> None:
        """``conn`` joined (``first``: the user's first socket here)."""

    def left(self, conn: Connection, last: bool) -> None:
        """``conn`` left (``last``: the user's last socket here)."""

    def online_elsewhere(self, user: str) -> bool:
        """Whether ``user`` has a socket on another instance."""

    def closing(self, kind: str, key: str, code: int, reason: str) -> None:
        """A session (``kind`` "session") or user ("user") is being closed here: everywhere too."""


class Hub:
    """User → live connections. Frames are encoded once and the same bytes go to every socket."""

    def __init__(self) -> None:
        # A user's one socket, or (two and more) their sockets in the order they
        # joined (a dict keeps it): the oldest is the first to go when a user opens
        # too many. Most users have one socket, and a dict per user was 224 bytes
        # (and one more object for the collector to walk) per socket.
        self._by_user: dict[str, Connection | dict[Connection, None]] = {}
        self._sockets = 0  # kept as we go: counting would be O(users) per call
        self.router: Router | None = None

    def add(self, conn: Connection) -> bool:
        """Register ``conn``; True if it is the user's first live socket (they came online)."""
        held = self._by_user.get(conn.user)
        if held is None:
            self._by_user[conn.user] = conn
            count = 1
        elif isinstance(held, dict):
            if conn in held:
                return False
            held[conn] = None
            count = len(held)
        elif held is conn:
            return True
        else:
            self._by_user[conn.user] = {held: None, conn: None}
            count = 2
        self._sockets += 1
        if self.router is not None:
            self.router.joined(conn, count == 1)
        return count == 1

    def remove(self, conn: Connection) -> bool:
        """Forget ``conn``; True if it was the user's last live socket (they went offline)."""
        held = self._by_user.get(conn.user)
        if isinstance(held, dict):
            if conn not in held:
                return False
            del held[conn]
            if len(held) == 1:
                self._by_user[conn.user] = next(iter(held))
            self._sockets -= 1
            if self.router is not None:
                self.router.left(conn, False)
            return False
        if held is None or held is not conn:
            return False
        del self._by_user[conn.user]
        self._sockets -= 1
        if self.router is not None:
            self.router.left(conn, True)
        return True

    def _held(self, user: str) -> Sequence[Connection]:
        """The user's live sockets, oldest first: a copy (sending may close one)."""
        held = self._by_user.get(user)
        if held is None:
            return ()
        if isinstance(held, dict):
            return list(held)
        return (held,)

    def is_online(self, user: str) -> bool:
        if user in self._by_user:
            return True
        return self.router is not None and self.router.online_elsewhere(user)

    def online(self, users: Iterable[str]) -> list[str]:
        if self.router is not None:
            return [u for u in users if self.is_online(u)]
        return [u for u in users if u in self._by_user]

    def users(self) -> list[str]:
        """Every user (hub key) with a live socket here."""
        return list(self._by_user)

    def connections(self, user: str) -> list[Connection]:
        """The user's live sockets, oldest first."""
        return list(self._held(user))

    def send(self, user: str, data: bytes, exclude: Connection | None = None) -> int:
        """Queue ``data`` on every socket of ``user`` except ``exclude``; returns how many
        (none when the frame went to the user's home instance instead)."""
        if self.router is not None and self.router.forward(user, data, exclude):
            return 0
        sent = 0
        for conn in self._held(user):
            if conn is not exclude:
                conn.send_frame(data)
                sent += 1
        return sent

    def send_many(self, users: Iterable[str], data: bytes,
                  exclude: Connection | None = None) -> int:
        return sum(self.send(user, data, exclude) for user in set(users))

    def publish(self, event: Event, *targets: tuple[str, Connection | None]) -> int:
        """Encode ``event`` once and send it to each ``(user, exclude)`` target in turn
        (through `send`, the cluster seam); returns how many sockets it was queued on."""
        data = encode(event)
        return sum(self.send(user, data, exclude) for user, exclude in targets)

    def close_session(self, session_id: str, code: int, reason: str, *,
                      everywhere: bool = True) -> None:
        """Close every socket opened with a (now revoked) session, on every instance unless
        ``everywhere`` is False."""
        if everywhere and self.router is not None:
            self.router.closing("session", session_id, code, reason)
        for user in list(self._by_user):
            for conn in self._held(user):
                if conn.session_id == session_id:
                    conn.close(code, reason)

    def close_user(self, user: str, code: int, reason: str, *, everywhere: bool = True) -> None:
        if everywhere and self.router is not None:
            self.router.closing("user", user, code, reason)
        for conn in self._held(user):
            conn.close(code, reason)

    def close_all(self, code: int, reason: str) -> None:
        for user in list(self._by_user):
            for conn in self._held(user):
                conn.close(code, reason)

    @property
    def user_count(self) -> int:
        return len(self._by_user)

    @property
    def socket_count(self) -> int:
        return self._sockets
