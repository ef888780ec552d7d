"""Routing keys: which ring key a socket belongs to, and the close codes of homing.

Every user is homed on ``owner(user_route(email))`` and every support socket
(widget, agent console) on ``owner(org_route(org))``. The key is also what a
client puts on its socket URL (``?route=...``) so that an instance that is not
the owner can answer the upgrade with ``fly-replay`` before upgrading. It is
opaque (a hash: never an email) and not a secret (it only says where a user's
sockets live); the first frame's token must match it (close 4011 otherwise).

Pure: no I/O, the same answer in every process.
"""

from __future__ import annotations

import re
from hashlib import blake2b

# The query parameter of a socket URL that carries the routing key.
ROUTE_PARAM = "route"
# A routing key: u (a user) or o (an organisation), then 20 hex digits (80 bits).
ROUTE_PATTERN = re.compile(r"[uo][0-9a-f]{20}")
# The routing key on the socket URL is not the one the token's owner is homed by.
WS_4011_WRONG_ROUTE = 4011
# The ring changed and this socket's user is now homed on another instance:
# reconnect at once (with a little jitter), be replayed to the owner, then sync.
WS_4012_MOVED = 4012
REASON_WRONG_ROUTE = "the route on the socket URL is not this account's"
REASON_MOVED = "moved to another instance: reconnect now"


def _digest(kind: str, value: str) -> str:
    return blake2b(f"{kind}:{value}".encode(), digest_size=10,
                   person=b"whatsease-route").hexdigest()


def user_route(email: str) -> str:
    """The routing key of a messenger user (``email`` as stored, lower-case)."""
    return "u" + _digest("user", email)


def org_route(org_id: str) -> str:
    """The routing key of an organisation: its widget and agent-console sockets."""
    return "o" + _digest("org", org_id)


def valid_route(route: str) -> bool:
    """Whether ``route`` has the shape of a routing key (it may still belong to nobody)."""
    return ROUTE_PATTERN.fullmatch(route) is not None
