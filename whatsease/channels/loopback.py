"""The loopback provider: a local test peer (an HTTP endpoint the operator runs).

For operators trying channels out without a platform account. The peer posts
webhooks to ``/channels/loopback/webhook`` signed like WhatsApp's
(``X-Loopback-Signature: sha256=<hex HMAC-SHA256 of the raw body>``) with a
body ``{"messages": [{"id", "from", "text", "timestamp"?, "choice_id"?,
"reply_to"?, "name"?}], "statuses": [{"id", "recipient", "status",
"timestamp"?, "error_code"?}]}``; replies are POSTed, signed the same way, to
``peer_url`` as ``{"id", "to", "text", "buttons": [{"id", "title"}],
"sections": [...], "reply_to"}``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson

from whatsease.channels.base import (
    MAX_EVENTS_PER_WEBHOOK,
    MAX_TEXT_CHARS,
    ChannelProvider,
    ConfigField,
    Event,
    InboundMessage,
    OutboundMessage,
    ParseError,
    SendResult,
    StatusUpdate,
    Verdict,
    WebhookRequest,
    json_object,
)
from whatsease.channels.http import call_json

SIGNATURE_HEADER = "X-Loopback-Signature"
_STATUSES = ("sent", "delivered", "read", "failed")


def sign(secret: str, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=<hex>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str) -> Verdict:
    """Constant-time check of a ``sha256=<hex>`` HMAC header on the raw body."""
    if not header:
        return Verdict.refuse("signature missing")
    if not header.startswith("sha256="):
        return Verdict.refuse("signature malformed")
    if not hmac.compare_digest(sign(secret, body).encode(), header.strip().encode()):
        return Verdict.refuse("signature does not match")
    return Verdict.accept()


def _timestamp(value: Any) -> datetime:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, str) and value.isdigit():
        return datetime.fromtimestamp(int(value), UTC)
    return datetime.now(UTC)


def _str(item: Mapping[str, Any], key: str, limit: int = 256) -> str:
    value = item.get(key, "")
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ParseError(f"{key} must be a string")
    return str(value)[:limit]


class LoopbackProvider(ChannelProvider):
    name: ClassVar[str] = "loopback"
    contact_prefix: ClassVar[str] = "lb"
    config_fields: ClassVar[tuple[ConfigField, ...]] = (
        ConfigField("peer_url", "url", required=True,
                    help="Where replies are POSTed (the local test peer)."),
        ConfigField("secret", "secret", required=True,
                    help="Shared HMAC key that signs both directions."),
    )

    def verify(self, request: WebhookRequest) -> Verdict:
        return verify_signature(self.config["secret"], request.body,
                                request.header(SIGNATURE_HEADER))

    def parse(self, body: bytes) -> list[Event]:
        data = json_object(body)
        events: list[Event] = []
        for item in _items(data, "messages"):
            sender = _str(item, "from", 128)
            message_id = _str(item, "id", 128)
            text = _str(item, "text", MAX_TEXT_CHARS)
            if not sender or not message_id or not text:
                raise ParseError("a message needs id, from and text")
            choice = _str(item, "choice_id", 256) if "choice_id" in item else ""
            events.append(InboundMessage(
                channel=self.name, message_id=message_id, sender=self.contact(sender),
                kind="button_reply" if choice else "text", text=text,
                timestamp=_timestamp(item.get("timestamp")),
                sender_name=_str(item, "name", 128) if "name" in item else "",
                reply_to=_str(item, "reply_to", 128) if "reply_to" in item else "",
                choice_id=choice))
        for item in _items(data, "statuses"):
            status = _str(item, "status", 16)
            if status not in _STATUSES:
                raise ParseError(f"unknown status {status!r}")
            code = item.get("error_code")
            events.append(StatusUpdate(
                channel=self.name, message_id=_str(item, "id", 128),
                recipient=self.contact(_str(item, "recipient", 128)),
                status=status,  # type: ignore[arg-type]  # checked against _STATUSES above
                timestamp=_timestamp(item.get("timestamp")),
                error_code=code if isinstance(code, int) and not isinstance(code, bool) else None))
        if len(events) > MAX_EVENTS_PER_WEBHOOK:
            raise ParseError("too many events in one request")
        return events

    async def send(self, message: OutboundMessage) -> SendResult:
        try:
            to = self.platform_id(message.to)
        except ValueError as exc:
            return SendResult(ok=False, error=str(exc))
        message_id = "lb-" + secrets.token_hex(8)
        payload = {
            "id": message_id, "to": to, "text": message.text,
            "buttons": [{"id": b.id, "title": b.title} for b in message.buttons],
            "sections": [{"title": s.title,
                          "rows": [{"id": r.id, "title": r.title, "description": r.description}
                                   for r in s.rows]} for s in message.sections],
            "reply_to": message.reply_to,
        }
        body = orjson.dumps(payload)
        answer = await call_json(self.name, "send", self.config["peer_url"], payload,
                                 self.context.policy,
                                 headers={SIGNATURE_HEADER: sign(self.config["secret"], body)})
        if not answer.result.ok:
            return answer.result
        peer_id = answer.body.get("id")
        return SendResult(ok=True, status_code=answer.result.status_code,
                          message_id=peer_id if isinstance(peer_id, str) and peer_id
                          else message_id)


def _items(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ParseError(f"{key} must be a list of objects")
    return value
