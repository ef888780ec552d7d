"""Assertions shared by the API tests: problem+json bodies and token forging."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import jwt
import orjson

from tests.support import Response

PROBLEM_TYPE = "application/problem+json"


def assert_problem(res: Response, status: int, field: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with ``status``; if ``field`` is given, it is named."""
    assert res.status == status, (res.status, res.body)
    content_type = res.header("Content-Type") or ""
    assert content_type.startswith(PROBLEM_TYPE), content_type
    body = res.json
    assert isinstance(body, dict), body
    for key in ("type", "title", "status", "detail"):
        assert body.get(key), (key, body)
    assert body["status"] == status
    if status == 401:
        assert (res.header("WWW-Authenticate") or "").startswith("Bearer"), res.headers
    if field is not None:
        fields = [e["field"] for e in body.get("errors", [])]
        assert field in fields, (field, body)
        assert field in body["detail"], body
    return body


def session_id(access_token: str) -> str:
    """The ``sid`` claim of an access token (read without verifying: the test made it)."""
    claims = jwt.decode(access_token, options={"verify_signature": False})
    return str(claims["sid"])


def claims_for(access_token: str, **changes: Any) -> dict[str, Any]:
    """A real token's claims with some replaced, for forging variants of it."""
    claims = jwt.decode(access_token, options={"verify_signature": False})
    claims.update(changes)
    return dict(claims)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hmac_signed(header: dict[str, Any], claims: dict[str, Any], secret: str) -> str:
    """A JWT with any header, HMAC-SHA256-signed with ``secret`` (pyjwt refuses some headers)."""
    signing_input = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def expired_claims(access_token: str) -> dict[str, Any]:
    now = int(time.time())
    return claims_for(access_token, iat=now - 3600, exp=now - 600)
