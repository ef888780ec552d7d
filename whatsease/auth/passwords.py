"""Password hashing with bcrypt, run in a thread pool so it never stalls the event loop."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from concurrent.futures import ThreadPoolExecutor

import bcrypt

# bcrypt releases the GIL; two threads match this machine's cores and keep a
# login burst from queueing every other executor job behind it.
_EXECUTOR = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bcrypt")


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
