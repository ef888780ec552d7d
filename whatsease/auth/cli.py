"""``python -m whatsease user reset-link EMAIL``: an operator issues a password-reset link.

The link works once and expires after ``WHATSEASE_RESET_LINK_TTL`` seconds; it
starts with ``WHATSEASE_PUBLIC_URL``. Like ``whatsease org``, the command talks
to the database directly (``WHATSEASE_MONGODB_URI``, or the embedded development
database in the data dir).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from whatsease import validation
from whatsease.activity import ActivityLog
from whatsease.auth.service import AuthService
from whatsease.commands import run_command
from whatsease.config import Config
from whatsease.delivery.hub import Hub
from whatsease.storage.store import Store


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="whatsease user",
                                     description="Operator tools for user accounts.")
    sub = parser.add_subparsers(dest="action", required=True)
    link = sub.add_parser("reset-link", help="print a one-time password-reset link for an "
                                             "account (give it to its owner privately)")
    link.add_argument("email")
    return parser


async def reset_link(config: Config, uri: str, email: str,
                     out: Callable[[str], None] = print) -> str:
    """Issue and print a reset link for ``email``; raises `AppError` if there is no account."""
    store = Store(uri, config.db_name)
    try:
        activity = ActivityLog(store, Hub())
        auth = AuthService(config, store, activity, Hub())
        link = await auth.resets.issue(validation.email(email))
        await activity.drain()
    finally:
        await store.close()
    minutes = config.reset_link_ttl // 60
    out(f"password-reset link for {email} (works once, for {minutes} minutes):")
    out(link)
    return link


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)

    async def work(config: Config, uri: str) -> None:
        await reset_link(config, uri, args.email)

    return run_command("user", work)
