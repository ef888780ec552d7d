"""Password resets: one-time, expiring links, issued by an operator or mailed on request.

A link carries its token in the URL *fragment* (``/reset-password#<token>``):
browsers never send the fragment to a server, so it stays out of access logs
and Referer headers. The database keeps only the token's SHA-256, and using a
token deletes it, so a link works once; issuing a new one voids the older ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from whatsease.auth.mail import MailError, SmtpMailer
from whatsease.auth.ratelimit import FailureLimiter
from whatsease.errors import NotFound, TooManyRequests, invalid
from whatsease.storage.store import Store

if TYPE_CHECKING:
    from whatsease.auth.service import AuthService

logger = logging.getLogger(__name__)

RESETS = "password_resets"
RESET_PATH = "/reset-password"
TOKEN_BYTES = 32
MAX_TOKEN_CHARS = 100
# Mailed links per account and per address in a window: enough to retry a lost
# mail, too few to flood someone's inbox.
MAX_REQUESTS_PER_WINDOW = 3
REQUEST_WINDOW_SECS = 15 * 60
IP_REQUEST_FACTOR = 10


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class PasswordResets:
    """Issue, mail and redeem reset links for `AuthService`'s accounts."""

    def __init__(self, auth: AuthService, store: Store, mailer: SmtpMailer | None,
                 clock: Callable[[], datetime]) -> None:
        self.auth = auth
        self.store = store
        self.mailer = mailer
        self.clock = clock
        self.account_requests = FailureLimiter(MAX_REQUESTS_PER_WINDOW, REQUEST_WINDOW_SECS)
        self.ip_requests = FailureLimiter(MAX_REQUESTS_PER_WINDOW * IP_REQUEST_FACTOR,
                                          REQUEST_WINDOW_SECS)
        self._mails: set[asyncio.Task[None]] = set()

    @property
    def by_email(self) -> bool:
        """True when people can ask for a link by email (SMTP is configured)."""
        return self.mailer is not None

    async def issue(self, email: str) -> str:
        """A fresh one-time link for ``email``'s account; raises `NotFound` if there is none."""
        if await self.store.users.get(email) is None:
            raise NotFound("No account has this email.")
        now = self.clock()
        token = secrets.token_urlsafe(TOKEN_BYTES)
        # Only the newest link works; expired ones of anyone are swept here too.
        await self.store.documents.delete_many(RESETS, {"user": email})
        await self.store.documents.delete_many(RESETS, {"expires_at": {"$lte": now}})
        await self.store.documents.put(RESETS, _digest(token), {
            "user": email, "created_at": now,
            "expires_at": now + timedelta(seconds=self.auth.config.reset_link_ttl)})
        return f"{self.auth.config.base_url}{RESET_PATH}#{token}"

    async def request(self, email: str, ip: str) -> None:
        """Mail a link to ``email`` if it has an account; silent either way.

        The answer does not depend on whether the account exists (no
        enumeration) and the mail goes out in the background, so the timing
        does not tell either. Raises `TooManyRequests` past the rate limit and
        `NotFound` when this server sends no mail.
        """
        if self.mailer is None:
            raise NotFound("This server does not send password-reset mails; ask its operator "
                           "for a reset link.", code="reset_by_email_disabled")
        account_key, ip_key = f"reset:{email}", f"reset-ip:{ip}"
        wait = max(self.account_requests.retry_after(account_key),
                   self.ip_requests.retry_after(ip_key))
        if wait:
            raise TooManyRequests("Too many reset requests; try again later.", retry_after=wait)
        self.account_requests.fail(account_key)
        self.ip_requests.fail(ip_key)
        task = asyncio.get_running_loop().create_task(self._mail_link(self.mailer, email))
        self._mails.add(task)
        task.add_done_callback(self._mails.discard)

    async def _mail_link(self, mailer: SmtpMailer, email: str) -> None:
        try:
            link = await self.issue(email)
        except NotFound:
            return
        minutes = self.auth.config.reset_link_ttl // 60
        try:
            await mailer.send(email, "Reset your WhatsEase password",
                              f"Someone asked to reset the password of your WhatsEase account "
                              f"{email}.\n\nTo choose a new password, open this link within "
                              f"{minutes} minutes (it works once):\n\n{link}\n\nIf it was not "
                              f"you, ignore this mail: your password stays as it is.\n")
        except MailError as exc:
            logger.warning("password-reset mail not sent: %s", exc)

    async def drain(self) -> None:
        """Wait for mails being sent (tests, shutdown)."""
        if self._mails:
            await asyncio.gather(*list(self._mails), return_exceptions=True)

    async def redeem(self, token: str, password: str) -> str:
        """Set a new password with a link's token; the token is spent. Returns the email.

        Raises `Unprocessable` (field ``token``) for an unknown, used or expired
        token and (field ``password``) for a weak password. Every session of
        the account ends.
        """
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise invalid("token", "is not a valid reset link")
        key = _digest(token)
        doc = await self.store.documents.get(RESETS, key)
        if doc is None or doc["expires_at"] <= self.clock():
            raise invalid("token", "this reset link is unknown, used or expired; ask for a "
                                   "new one")
        email = str(doc["user"])
        user = await self.store.users.get(email)
        if user is None:
            raise invalid("token", "this reset link is unknown, used or expired; ask for a "
                                   "new one")
        await self.auth.check_password_strength(password, user.email, user.name)
        # Deleting is the claim: of two concurrent uses, only one deletes it.
        if not await self.store.documents.delete(RESETS, key):
            raise invalid("token", "this reset link was just used")
        await self.auth.set_password(email, password)
        await self.auth.revoke_all(email)
        self.auth.account_failures.reset(f"acct:{email}")
        self.auth.activity.record("user.password_reset", email,
                                  text=f"{email} reset their password")
        return email
