"""Sending email over SMTP (password-reset links), off the event loop and bounded in time."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage

from whatsease.config import Config

SMTP_TIMEOUT_SECS = 10.0
# Mails in flight at once; a burst of reset requests waits its turn.
_EXECUTOR = ThreadPoolExecutor(max_workers=2, thread_name_prefix="smtp")


class MailError(Exception):
    """The SMTP server could not be reached or refused the message."""


@dataclass(frozen=True)
class SmtpMailer:
    """An SMTP submission server: ``security`` is "starttls", "tls" or "none"."""

    host: str
    port: int
    sender: str
    security: str = "starttls"
    user: str = ""
    password: str = ""
    timeout: float = SMTP_TIMEOUT_SECS

    @classmethod
    def from_config(cls, config: Config) -> SmtpMailer | None:
        """The configured mailer, or None when ``WHATSEASE_SMTP_HOST`` is unset."""
        if not config.smtp_host:
            return None
        return cls(config.smtp_host, config.smtp_port, config.smtp_from, config.smtp_security,
                   config.smtp_user, config.smtp_password)

    def _send(self, message: EmailMessage) -> None:
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.security == "tls":
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            if self.security == "starttls":
                smtp.starttls(context=context)
            if self.user:
                smtp.login(self.user, self.password)
            smtp.send_message(message)

    async def send(self, to: str, subject: str, body: str) -> None:
        """Send a plain-text mail; raises `MailError` on any SMTP or network failure."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.run_in_executor(_EXECUTOR, self._send, message),
                                   self.timeout * 3)
        except (OSError, smtplib.SMTPException, TimeoutError) as exc:
            raise MailError(f"cannot send mail through {self.host}:{self.port}: "
                            f"{type(exc).__name__}") from None
