"""Access tokens (HS256 JWTs) and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
# Only this algorithm is accepted on decode: no "none", no RS/HS confusion.
ALLOWED_ALGORITHMS = [ALGORITHM]
REQUIRED_CLAIMS = ["sub", "sid", "iat", "exp", "jti"]
# Small allowance for clock skew between processes, in seconds.
LEEWAY_SECS = 5


class InvalidToken(Exception):
    """The token is malformed, forged, of the wrong algorithm or expired."""


@dataclass(frozen=True)
class AccessClaims:
    user: str
    session_id: str
    issued_at: int
    expires_at: int
    token_id: str


def issue_access_token(secret: str, user: str, session_id: str, ttl: int,
                       now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    claims = {"sub": user, "sid": session_id, "iat": issued, "exp": issued + ttl,
              "jti": secrets.token_urlsafe(12)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_access_token(secret: str, token: str) -> AccessClaims:
    """Verify signature, algorithm and expiry; raise `InvalidToken` otherwise."""
    try:
        claims = jwt.decode(token, secret, algorithms=ALLOWED_ALGORITHMS, leeway=LEEWAY_SECS,
                            options={"require": REQUIRED_CLAIMS})
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("sid"), str):
        raise InvalidToken("sub and sid must be strings")
    return AccessClaims(user=claims["sub"], session_id=claims["sid"], issued_at=claims["iat"],
                        expires_at=claims["exp"], token_id=str(claims["jti"]))


def new_refresh_token(session_id: str) -> tuple[str, str]:
    """A refresh token ``<session id>.<secret>`` and the hash to store for it."""
    token = f"{session_id}.{secrets.token_urlsafe(32)}"
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    # The token has 256 bits of entropy, so a fast hash is enough to make a
    # leaked database useless for replay.
    return hashlib.sha256(token.encode()).hexdigest()


def split_refresh_token(token: str) -> str | None:
    """The session id inside a refresh token, or None if it is malformed."""
    session_id, dot, rest = token.partition(".")
    if not dot or not rest or len(token) > 200:
        return None
    return session_id
