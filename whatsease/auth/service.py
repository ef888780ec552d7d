"""Accounts and sessions: register, log in, refresh, log out, and verify access tokens."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from whatsease import validation
from whatsease.activity import ActivityLog
from whatsease.auth import identity, tokens
from whatsease.auth.mail import SmtpMailer
from whatsease.auth.passwords import check_strength, hash_password, verify_password
from whatsease.auth.ratelimit import FailureLimiter
from whatsease.auth.reset import PasswordResets
from whatsease.batching import Batcher
from whatsease.cluster.routing import org_route, user_route
from whatsease.config import Config
from whatsease.delivery.frames import WS_4001_UNAUTHENTICATED
from whatsease.delivery.hub import Hub
from whatsease.errors import Conflict, NotFound, TooManyRequests, Unauthorized, invalid
from whatsease.storage.errors import Duplicate
from whatsease.storage.models import Session, User, new_id
from whatsease.storage.store import Store
from whatsease.timeutil import utcnow

LOGIN_FAILED = "Email or password is incorrect."
# Failed logins allowed per IP, as a multiple of the per-account limit: an IP
# may hold several people (an office, a phone carrier's NAT).
IP_LIMIT_FACTOR = 4
# How long a verified session stays cached before the database is asked again,
# in seconds. Revocation in this process evicts at once.
SESSION_CACHE_SECS = 5.0
SESSION_CACHE_SIZE = 50_000
MAX_USER_AGENT_CHARS = 300


@dataclass(frozen=True)
class Principal:
    """Who is calling: the verified user and the session their token belongs to."""

    user: User
    session_id: str

    @property
    def email(self) -> str:
        return self.user.email


@dataclass(frozen=True)
class TokenPair:
    user: User
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: str
    # Clustering only: put the routing keys in the answer (else it is as it always was).
    routed: bool = False

    def to_json(self) -> dict[str, Any]:
        answer = {"user": self.user.to_private(), "access_token": self.access_token,
                  "refresh_token": self.refresh_token, "expires_in": self.expires_in,
                  "token_type": "Bearer"}
        if self.routed:
            # Routing keys for the socket URLs (?route=): which instance the cluster
            # homes the messenger socket, and the org console's, on.
            answer["route"] = user_route(self.user.email)
            if self.user.org:
                answer["org_route"] = org_route(self.user.org)
        return answer


class AuthService:
    def __init__(self, config: Config, store: Store, activity: ActivityLog, hub: Hub,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.config = config
        self.store = store
        self.activity = activity
        # The one hub of every socket (messenger, agent console): a revoked
        # session's sockets close in it.
        self.hub = hub
        self.clock = clock
        self.account_failures = FailureLimiter(config.login_max_failures, config.login_window)
        self.ip_failures = FailureLimiter(config.login_max_failures * IP_LIMIT_FACTOR,
                                          config.login_window)
        # sid -> (monotonic expiry, user email); verified sessions, briefly.
        self._session_cache: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._user_cache: OrderedDict[str, tuple[float, User]] = OrderedDict()
        self._dummy_hash: str | None = None
        # A reconnect storm verifies thousands of tokens at once: look their
        # sessions and users up in batches, not one round trip each.
        self._session_lookups: Batcher[str, Session | None] = Batcher(
            self._fetch_sessions, name="session-lookups")
        self._user_lookups: Batcher[str, User | None] = Batcher(
            self._fetch_users, name="user-lookups")
        # Read the confusables table now (~50 ms) rather than on the loop at
        # the first registration.
        identity.skeleton("")
        self.resets = PasswordResets(self, store, SmtpMailer.from_config(config), clock)

    async def _fetch_sessions(self, session_ids: list[str]) -> list[Session | None]:
        found = await self.store.sessions.get_many(session_ids)
        return [found.get(sid) for sid in session_ids]

    async def _fetch_users(self, emails: list[str]) -> list[User | None]:
        found = await self.store.users.get_many(emails)
        return [found.get(email) for email in emails]

    async def register(self, email: str, name: str, password: str, *, user_agent: str = "",
                       ip: str = "") -> TokenPair:
        """Create the account and its first session, or nothing at all.

        ``email`` is normalised (`validation.email`). Raises `Unprocessable` if
        its local part mixes scripts, `Conflict` if it is taken or looks like an
        existing account's. Should anything fail after the insert, the account
        is removed again before the error propagates.
        """
        local = email.rpartition("@")[0]
        if identity.mixes_scripts(local):
            raise invalid("email", "must not mix letters of different scripts "
                                   f"({', '.join(sorted(identity.scripts(local))).lower()})")
        await self.check_password_strength(password, email, name)
        now = self.clock()
        user = User(email=email, name=name,
                    password_hash=await hash_password(password, self.config.bcrypt_rounds),
                    created_at=now, last_seen=now, skeleton=identity.email_skeleton(email))
        try:
            await self.store.users.insert(user)
        except Duplicate:
            if await self.store.users.get(email) is not None:
                raise Conflict("An account with this email already exists.",
                               errors=[{"field": "email", "message": "is already registered"}],
                               code="email_taken") from None
            raise Conflict("This email looks the same as an existing account's; choose "
                           "another.", errors=[{"field": "email",
                                                "message": "looks like an existing account"}],
                           code="email_confusable") from None
        try:
            pair = await self._open_session(user, user_agent=user_agent, ip=ip)
        except BaseException:
            # No half-made account: without its session nobody can use it, and
            # a retry would be told the email is taken.
            await asyncio.shield(self.store.users.delete(email))
            raise
        self.activity.record("user.registered", email)
        return pair

    async def login(self, email: str, password: str, *, user_agent: str = "",
                    ip: str = "") -> TokenPair:
        account_key, ip_key = f"acct:{email}", f"ip:{ip}"
        wait = max(self.account_failures.retry_after(account_key),
                   self.ip_failures.retry_after(ip_key))
        if wait:
            raise TooManyRequests("Too many failed logins; try again later.", retry_after=wait)
        user = await self.store.users.get(email)
        if user is None:
            # Spend the same bcrypt time as a real check so timing does not
            # reveal whether the account exists.
            await verify_password(password, await self._dummy())
            ok = False
        else:
            ok = await verify_password(password, user.password_hash)
        if not ok or user is None:
            self.account_failures.fail(account_key)
            self.ip_failures.fail(ip_key)
            raise Unauthorized(LOGIN_FAILED, code="login_failed")
        self.account_failures.reset(account_key)
        self.activity.record("user.login", email)
        return await self._open_session(user, user_agent=user_agent, ip=ip)

    async def check_password_strength(self, password: str, email: str, name: str,
                                      field: str = "password") -> None:
        """Refuse (422 naming ``field``) a password that is common or built from the
        account's own email or name."""
        local, _, domain = email.partition("@")
        await check_strength(password, [email, local, domain, name, *name.split()], field)

    async def set_password(self, email: str, password: str) -> None:
        hashed = await hash_password(password, self.config.bcrypt_rounds)
        if await self.store.users.update(email, {"password_hash": hashed}) is None:
            raise NotFound("No such user.")
        self.forget_user(email)

    async def change_password(self, principal: Principal, current: str, new: str, *,
                              ip: str = "") -> int:
        """Replace the caller's password; every other session of theirs ends.

        Raises `Unprocessable` naming ``current_password`` when it is wrong (and
        counts it as a failed login, so the change cannot be used to guess) or
        ``new_password`` when the new one is weak. Returns how many sessions ended.
        """
        account_key, ip_key = f"acct:{principal.email}", f"ip:{ip}"
        wait = max(self.account_failures.retry_after(account_key),
                   self.ip_failures.retry_after(ip_key))
        if wait:
            raise TooManyRequests("Too many wrong passwords; try again later.", retry_after=wait)
        user = await self._user(principal.email, fresh=True)
        if user is None or not await verify_password(current, user.password_hash):
            self.account_failures.fail(account_key)
            self.ip_failures.fail(ip_key)
            raise invalid("current_password", "is not your current password")
        if new == current:
            raise invalid("new_password", "must differ from the current password")
        await self.check_password_strength(new, user.email, user.name, "new_password")
        await self.set_password(user.email, new)
        ended = 0
        for session in await self.store.sessions.list_for(user.email, self.clock()):
            if session.session_id != principal.session_id:
                await self._revoke(session.session_id)
                ended += 1
        self.activity.record("user.password_changed", user.email,
                             text=f"{user.email} changed their password")
        return ended

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await hash_password(new_id(), self.config.bcrypt_rounds)
        return self._dummy_hash

    async def _open_session(self, user: User, *, user_agent: str, ip: str) -> TokenPair:
        now = self.clock()
        session_id = new_id()
        refresh, refresh_hash = tokens.new_refresh_token(session_id)
        session = Session(session_id=session_id, user=user.email, refresh_hash=refresh_hash,
                          created_at=now, last_used=now,
                          expires_at=now + timedelta(seconds=self.config.refresh_token_ttl),
                          user_agent=user_agent[:MAX_USER_AGENT_CHARS], ip=ip)
        await self.store.sessions.insert(session)
        return self._pair(user, session_id, refresh)

    def _pair(self, user: User, session_id: str, refresh: str) -> TokenPair:
        access = tokens.issue_access_token(self.config.jwt_secret, user.email, session_id,
                                           self.config.access_token_ttl)
        return TokenPair(user=user, access_token=access, refresh_token=refresh,
                         expires_in=self.config.access_token_ttl, session_id=session_id,
                         routed=self.config.cluster != "off")

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate a refresh token. Presenting an already-rotated one revokes the session."""
        session_id = tokens.split_refresh_token(refresh_token)
        if session_id is None:
            raise Unauthorized("The refresh token is invalid.", code="invalid_token")
        now = self.clock()
        old_hash = tokens.hash_refresh_token(refresh_token)
        new_token, new_hash = tokens.new_refresh_token(session_id)
        session = await self.store.sessions.rotate(
            session_id, old_hash, new_hash, now,
            now + timedelta(seconds=self.config.refresh_token_ttl))
        if session is None:
            if await self.store.sessions.was_rotated(session_id, old_hash):
                # Someone holds a token that was already exchanged: one of the
                # two copies is stolen, so neither may go on.
                await self._revoke(session_id)
                raise Unauthorized("This refresh token was already used; the session has been "
                                   "revoked. Log in again.", code="token_reused")
            raise Unauthorized("The refresh token is invalid or expired.", code="invalid_token")
        user = await self._user(session.user, fresh=True)
        if user is None:
            raise Unauthorized("The account no longer exists.", code="invalid_token")
        return self._pair(user, session_id, new_token)

    async def authenticate(self, access_token: str) -> Principal:
        """Verify an access token and its session; raise `Unauthorized` otherwise."""
        if not access_token or len(access_token) > 4096:
            raise Unauthorized("A bearer access token is required.", code="invalid_token")
        try:
            claims = tokens.decode_access_token(self.config.jwt_secret, access_token)
        except tokens.InvalidToken:
            raise Unauthorized("The access token is invalid or expired.",
                               code="invalid_token") from None
        if not await self._session_active(claims.session_id, claims.user):
            raise Unauthorized("The session has ended; log in again.", code="invalid_token")
        user = await self._user(claims.user)
        if user is None:
            raise Unauthorized("The account no longer exists.", code="invalid_token")
        return Principal(user=user, session_id=claims.session_id)

    async def _session_active(self, session_id: str, user: str) -> bool:
        cached = self._session_cache.get(session_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1] == user
        session = await self._session_lookups.submit(session_id)
        if session is None or session.revoked or session.expires_at <= self.clock():
            return False
        self._session_cache[session_id] = (time.monotonic() + SESSION_CACHE_SECS, session.user)
        self._session_cache.move_to_end(session_id)
        while len(self._session_cache) > SESSION_CACHE_SIZE:
            self._session_cache.popitem(last=False)
        return session.user == user

    async def _user(self, email: str, *, fresh: bool = False) -> User | None:
        cached = self._user_cache.get(email)
        if not fresh and cached is not None and cached[0] > time.monotonic():
            return cached[1]
        user = await self._user_lookups.submit(email)
        if user is None:
            self._user_cache.pop(email, None)
            return None
        self._user_cache[email] = (time.monotonic() + SESSION_CACHE_SECS, user)
        self._user_cache.move_to_end(email)
        while len(self._user_cache) > SESSION_CACHE_SIZE:
            self._user_cache.popitem(last=False)
        return user

    def forget_user(self, email: str) -> None:
        """Drop the cached profile after it changed (or the account was deleted)."""
        self._user_cache.pop(email, None)

    async def logout(self, principal: Principal) -> None:
        await self._revoke(principal.session_id)
        self.activity.record("user.logout", principal.email)

    async def list_sessions(self, principal: Principal) -> list[Session]:
        return await self.store.sessions.list_for(principal.email, self.clock())

    async def revoke_session(self, principal: Principal, session_id: str) -> bool:
        if not await self.store.sessions.revoke(session_id, user=principal.email):
            return False
        self._evict(session_id)
        self.activity.record("session.revoked", principal.email)
        return True

    async def revoke_all(self, email: str) -> None:
        for session_id in await self.store.sessions.revoke_all(email):
            self._evict(session_id)

    async def _revoke(self, session_id: str) -> None:
        await self.store.sessions.revoke(session_id)
        self._evict(session_id)

    def forget_session(self, session_id: str) -> None:
        """Drop a session from the cache: another instance revoked it."""
        self._session_cache.pop(session_id, None)

    def _evict(self, session_id: str) -> None:
        self._session_cache.pop(session_id, None)
        self.hub.close_session(session_id, WS_4001_UNAUTHENTICATED, "session revoked")


def parse_credentials(body: dict[str, Any], *, register: bool) -> dict[str, str]:
    """Validate a register or login body."""
    if register:
        validation.check_fields(body, required=("email", "name", "password"))
        return {"email": validation.email(body["email"]), "name": validation.name(body["name"]),
                "password": validation.password(body["password"])}
    validation.check_fields(body, required=("email", "password"))
    # Login accepts any string as password so a short one fails like a wrong one.
    password = body["password"]
    if not isinstance(password, str) or len(password) > validation.MAX_PASSWORD_CHARS:
        raise invalid("password", "must be a string")
    return {"email": validation.email(body["email"]), "password": password}
