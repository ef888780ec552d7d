"""Give accounts created before look-alike checks existed their TR39 skeleton.

Registration stores each address's skeleton (`identity.email_skeleton`) under a
unique index, so a look-alike of an account is refused; accounts from before
that change have none, and so nothing stops a look-alike of them. At start-up
`backfill_skeletons` computes the missing ones, a bounded page at a time. It is
idempotent: only accounts without the field are read, and each write applies
only if the field is still missing.

Where old accounts already look alike, both stay: the oldest gets the skeleton,
the later one keeps none (a warning names both, masked), and start-up goes on.
"""

from __future__ import annotations

import logging
from datetime import datetime

from whatsease.auth import identity
from whatsease.storage.models import User, is_bot
from whatsease.storage.users import UserRepo

logger = logging.getLogger(__name__)

BATCH_SIZE = 500


def mask_email(email: str) -> str:
    """Enough of an address for an operator to find it, not enough to read it whole."""
    local, at, domain = email.rpartition("@")
    if not at:
        return email[:1] + "***"
    label, dot, rest = domain.partition(".")
    return f"{local[:1]}***@{label[:1]}***{dot}{rest}"


async def backfill_skeletons(users: UserRepo, batch_size: int = BATCH_SIZE) -> int:
    """Set the skeleton of every account that has none; return how many were set.

    Pages through the accounts without one, oldest first, ``batch_size`` at a
    time, with one bulk write per page. Raises only on database errors other
    than a look-alike (which is logged and skipped).
    """
    updated = 0
    after: tuple[datetime | None, str] | None = None
    while True:
        page = await users.without_skeleton(after, batch_size)
        if not page:
            break
        last = page[-1]
        after = (last.created_at, last.email)
        wanted: dict[str, str] = {}
        holder: dict[str, User] = {}
        for user in page:
            if is_bot(user.email):
                continue
            shape = identity.email_skeleton(user.email)
            if shape in holder:
                _warn(holder[shape].email, user.email)
                continue
            holder[shape] = user
            wanted[user.email] = shape
        refused = await users.set_skeletons(wanted)
        for email in refused:
            _warn(await users.with_skeleton(wanted[email]) or "?", email)
        updated += len(wanted) - len(refused)
        if len(page) < batch_size:
            break
    if updated:
        logger.info("look-alike skeletons set on older accounts", extra={"accounts": updated})
    return updated


def _warn(kept: str, skipped: str) -> None:
    logger.warning("two accounts look alike; the second keeps no skeleton, so new "
                   "look-alikes are refused only by the first one's",
                   extra={"account": mask_email(kept), "lookalike": mask_email(skipped)})
