"""Passwords: bcrypt hashing and the strength check, run off the event loop."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from concurrent.futures import ThreadPoolExecutor

import bcrypt

from whatsease.errors import invalid

# bcrypt releases the GIL; two threads match this machine's cores and keep a
# login burst from queueing every other executor job behind it.
_EXECUTOR = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bcrypt")
# zxcvbn's score runs 0-4; 3 is "safely unguessable" against an online attack
# and a slowed-down offline one (bcrypt), the level its authors recommend.
MIN_STRENGTH_SCORE = 3
# zxcvbn's time grows with length, and from version 4.5 it raises ValueError
# for anything longer than 72 characters (its own bound against that cost):
# only this many leading characters are estimated, the rest still counts in
# the hash. A password whose first 72 characters are strong is strong.
STRENGTH_CHECK_CHARS = 72


def _weakness(password: str, user_inputs: list[str]) -> str | None:
    # Imported on the first check, on the executor: its word lists take ~12 MiB of a
    # process that may never be asked to check a password (~25 ms to import).
    from zxcvbn import zxcvbn

    result = zxcvbn(password[:STRENGTH_CHECK_CHARS], user_inputs=user_inputs)
    if result["score"] >= MIN_STRENGTH_SCORE:
        return None
    feedback = result.get("feedback") or {}
    advice = [feedback.get("warning") or "", *(feedback.get("suggestions") or [])]
    said = " ".join(a.strip() for a in advice if a and a.strip())
    return "is too easy to guess" + (f": {said}" if said else "") + (
        " A few uncommon words together make a strong password that is easy to remember.")


def _prehash(password: str) -> bytes:
    # bcrypt reads at most 72 bytes; hashing first keeps every character significant.
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


def _hash(password: str, rounds: int) -> str:
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode("ascii")


def _verify(password: str, hashed: str) -> bool:
    try:
        return bcrypt.checkpw(_prehash(password), hashed.encode("ascii"))
    except ValueError:
        return False


async def hash_password(password: str, rounds: int) -> str:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_EXECUTOR, _hash, password, rounds)


async def verify_password(password: str, hashed: str) -> bool:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_EXECUTOR, _verify, password, hashed)


async def check_strength(password: str, user_inputs: list[str], field: str = "password") -> None:
    """Refuse (422 naming ``field``) a common or guessable password.

    ``user_inputs`` (the email, the name) count as guessable words too.
    """
    loop = asyncio.get_running_loop()
    weakness = await loop.run_in_executor(_EXECUTOR, _weakness, password, user_inputs)
    if weakness:
        raise invalid(field, weakness)
