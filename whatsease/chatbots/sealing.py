"""Provider secrets sealed at rest: AES-GCM with a key derived from the server's JWT secret.

API keys and tokens in provider configs are write-only. They are stored only
sealed (``nonce || ciphertext``, base64), bound to their instance by the
associated data, so a sealed blob copied onto another instance does not open.
The key is HKDF-SHA256 of ``WHATSEASE_JWT_SECRET`` with a purpose label, so
the same server secret never serves two purposes directly; rotating the JWT
secret makes stored keys unreadable (operators then send them again).
"""

from __future__ import annotations

import base64
import os
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
NONCE_BYTES = 12
_SALT = b"whatsease/chatbots"
_INFO = b"provider secrets v1"


class SealBroken(Exception):
    """A sealed blob does not open with this server's secret (changed, or tampered with)."""


class Sealer:
    """Seals and opens small dicts of secrets for one server secret."""

    def __init__(self, server_secret: str) -> None:
        # Without a server secret (a tool that builds the services without one)
        # nothing can be sealed or opened: `SealBroken` says so when it matters.
        self._aead: AESGCM | None = None
        if server_secret:
            key = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=_SALT,
                       info=_INFO).derive(server_secret.encode())
            self._aead = AESGCM(key)

    def seal(self, secrets: dict[str, Any], bound_to: str) -> str:
        """``secrets`` as an opaque string that only `open` with the same ``bound_to`` reads.

        Raises `SealBroken` when the server has no secret to seal with.
        """
        if self._aead is None:
            raise SealBroken("the server has no secret to seal provider keys with")
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, orjson.dumps(secrets), bound_to.encode())
        return base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, blob: str, bound_to: str) -> dict[str, Any]:
        """The secrets sealed in ``blob``; raises `SealBroken` if it does not open."""
        if self._aead is None:
            raise SealBroken("the server has no secret to open provider keys with")
        try:
            raw = base64.b64decode(blob.encode("ascii"), validate=True)
            data = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], bound_to.encode())
            value = orjson.loads(data)
        except (ValueError, InvalidTag, orjson.JSONDecodeError):
            raise SealBroken("the provider secrets do not open with this server's "
                             "secret") from None
        if not isinstance(value, dict):
            raise SealBroken("the provider secrets are not a mapping")
        return value
