"""The WhatsApp Cloud API provider (Meta's official Business Platform).

Incoming: Meta calls the webhook with ``GET`` once to verify the subscription
(``hub.mode=subscribe``, ``hub.verify_token``, echo ``hub.challenge``) and then
``POST``s batches (``entry[].changes[].value``) of ``messages``, ``statuses``
and ``errors``, each signed with ``X-Hub-Signature-256: sha256=<hex>``, the
HMAC-SHA256 of the raw body keyed with the app secret.

Outgoing: ``POST {graph_url}/{phone_number_id}/messages`` with the bearer
token, for text, interactive buttons and lists, and read receipts.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from whatsease.channels.base import (
    MAX_BUTTON_TITLE_CHARS,
    MAX_EVENTS_PER_WEBHOOK,
    MAX_LIST_ROW_TITLE_CHARS,
    MAX_TEXT_CHARS,
    ChannelProvider,
    ConfigField,
    Event,
    InboundMessage,
    Location,
    Media,
    MessageKind,
    OutboundMessage,
    ParseError,
    PlatformError,
    SendResult,
    StatusUpdate,
    Verdict,
    WebhookRequest,
    constant_time_equal,
    json_object,
)
from whatsease.channels.http import call_json
from whatsease.channels.loopback import verify_signature
from whatsease.channels.media import (
    MediaFile,
    MediaUnavailable,
    checked_file,
    fetch,
    fetch_json,
    media_policy,
    safe_id,
    same_origin,
    strict_policy,
)

SIGNATURE_HEADER = "X-Hub-Signature-256"
DEFAULT_GRAPH_URL = "https://graph.facebook.com/v23.0"
# Meta lets a business answer freely for 24 hours after the person's last message.
SERVICE_WINDOW = timedelta(hours=24)
# The Graph API's error for a message outside that window ("re-engagement message").
OUTSIDE_WINDOW_ERROR = 131047
_MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
_STATUSES = ("sent", "delivered", "read", "failed")


def _timestamp(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.now(UTC)


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ParseError(f"{where} must be an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ParseError(f"{where} must be a list")
    return value


def _text(value: Any, limit: int = MAX_TEXT_CHARS) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _errors(value: Any) -> list[Mapping[str, Any]]:
    return [e for e in _list(value, "errors") if isinstance(e, Mapping)]


def _error_detail(error: Mapping[str, Any]) -> str:
    data = error.get("error_data")
    details = data.get("details") if isinstance(data, Mapping) else None
    return _text(details or error.get("message"), 500)


class WhatsAppCloudProvider(ChannelProvider):
    name: ClassVar[str] = "whatsapp_cloud"
    contact_prefix: ClassVar[str] = "wa"
    service_window: ClassVar[timedelta | None] = SERVICE_WINDOW
    config_fields: ClassVar[tuple[ConfigField, ...]] = (
        ConfigField("app_secret", "secret", required=True,
                    help="The Meta app's secret: signs every webhook (X-Hub-Signature-256)."),
        ConfigField("verify_token", "secret", required=True,
                    help="Any string you choose; Meta echoes it in the verification request."),
        ConfigField("token", "secret", required=True,
                    help="A system-user access token with whatsapp_business_messaging."),
        ConfigField("phone_number_id", "str", required=True, max_chars=64,
                    help="The business number's id (not the number itself)."),
        ConfigField("graph_url", "url", default=DEFAULT_GRAPH_URL,
                    help="The versioned Graph API base URL."),
        ConfigField("display_number", "str", default="", max_chars=32,
                    help="The number in E.164 (for wa.me links), e.g. +4915112345678."),
    )

    # -- addresses: contacts are wa:+<E.164>, the platform speaks digits only
    def contact(self, platform_id: str) -> str:
        return f"wa:+{platform_id.lstrip('+')}"

    def platform_id(self, contact: str) -> str:
        number = super().platform_id(contact).lstrip("+")
        if not number.isdigit() or not 6 <= len(number) <= 15:
            raise ValueError(f"{contact!r} is not a WhatsApp number in E.164")
        return number

    # -- incoming
    def handshake(self, query: Mapping[str, str]) -> str | None:
        if query.get("hub.mode") != "subscribe":
            return None
        token = query.get("hub.verify_token", "")
        if not token or not constant_time_equal(token, self.config["verify_token"]):
            return None
        challenge = query.get("hub.challenge", "")
        return challenge[:256] if challenge else None

    def verify(self, request: WebhookRequest) -> Verdict:
        return verify_signature(self.config["app_secret"], request.body,
                                request.header(SIGNATURE_HEADER))

    def parse(self, body: bytes) -> list[Event]:
        data = json_object(body)
        if data.get("object") != "whatsapp_business_account":
            raise ParseError("object must be whatsapp_business_account")
        events: list[Event] = []
        for entry in _list(data.get("entry"), "entry"):
            for change in _list(_obj(entry, "entry").get("changes"), "changes"):
                change = _obj(change, "change")
                if change.get("field") != "messages":
                    continue     # account updates, templates, quality: not ours
                events.extend(self._parse_value(_obj(change.get("value"), "value")))
                if len(events) > MAX_EVENTS_PER_WEBHOOK:
                    raise ParseError("too many events in one request")
        return events

    def _parse_value(self, value: Mapping[str, Any]) -> list[Event]:
        metadata = value.get("metadata")
        account = str(metadata.get("phone_number_id", "")) if isinstance(metadata, Mapping) else ""
        names: dict[str, str] = {}
        for contact in _list(value.get("contacts"), "contacts"):
            if isinstance(contact, Mapping) and isinstance(contact.get("profile"), Mapping):
                names[str(contact.get("wa_id"))] = _text(contact["profile"].get("name"), 128)
        events: list[Event] = []
        for message in _list(value.get("messages"), "messages"):
            events.append(self._parse_message(_obj(message, "message"), account, names))
        for status in _list(value.get("statuses"), "statuses"):
            parsed = self._parse_status(_obj(status, "status"))
            if parsed is not None:
                events.append(parsed)
        for error in _errors(value.get("errors")):
            code = error.get("code")
            events.append(PlatformError(self.name, code if isinstance(code, int) else None,
                                        _text(error.get("title"), 200), _error_detail(error)))
        return events

    def _parse_message(self, m: Mapping[str, Any], account: str,
                       names: Mapping[str, str]) -> InboundMessage:
        sender = m.get("from")
        message_id = m.get("id")
        if not isinstance(sender, str) or not sender.isdigit() or not isinstance(message_id, str) \
                or not message_id:
            raise ParseError("a message needs from (digits) and id")
        kind: MessageKind = "unsupported"
        text = ""
        extra: dict[str, Any] = {}
        mtype = m.get("type")
        if mtype == "text":
            kind, text = "text", _text(_obj(m.get("text"), "text").get("body"))
        elif mtype == "interactive":
            interactive = _obj(m.get("interactive"), "interactive")
            itype = interactive.get("type")
            if itype in ("button_reply", "list_reply"):
                reply = _obj(interactive.get(itype), itype)
                kind = "button_reply" if itype == "button_reply" else "list_reply"
                text = _text(reply.get("title"), 256)
                extra["choice_id"] = _text(reply.get("id"), 256)
        elif mtype == "button":      # a template's quick-reply button
            button = _obj(m.get("button"), "button")
            kind, text = "button_reply", _text(button.get("text"), 256)
            extra["choice_id"] = _text(button.get("payload"), 256)
        elif mtype == "reaction":
            reaction = _obj(m.get("reaction"), "reaction")
            kind = "reaction"
            extra["reaction_to"] = _text(reaction.get("message_id"), 256)
            extra["emoji"] = _text(reaction.get("emoji"), 16)
            text = extra["emoji"] or "(reaction removed)"
        elif mtype == "location":
            loc = _obj(m.get("location"), "location")
            try:
                location = Location(float(loc["latitude"]), float(loc["longitude"]),
                                    _text(loc.get("name"), 256), _text(loc.get("address"), 512))
            except (KeyError, TypeError, ValueError):
                raise ParseError("a location needs latitude and longitude") from None
            kind = "location"
            extra["location"] = location
            text = " ".join(p for p in ("Location:", location.name, location.address,
                                        f"({location.latitude}, {location.longitude})") if p)
        elif mtype in _MEDIA_TYPES:
            media = _obj(m.get(mtype), mtype)
            media_id = media.get("id")
            if not isinstance(media_id, str) or not media_id:
                raise ParseError(f"{mtype} needs an id")
            kind = "media"
            extra["media"] = Media(media_id, str(mtype), _text(media.get("mime_type"), 128),
                                   _text(media.get("caption"), 1024),
                                   _text(media.get("filename"), 256),
                                   _text(media.get("sha256"), 128))
            text = extra["media"].caption or f"({mtype})"
        if kind == "unsupported":
            errors = _errors(m.get("errors"))
            title = _text(errors[0].get("title"), 200) if errors else ""
            text = f"(unsupported message: {title or mtype})"
        context = m.get("context")
        if isinstance(context, Mapping) and isinstance(context.get("id"), str):
            extra["reply_to"] = context["id"][:256]
        return InboundMessage(channel=self.name, message_id=message_id[:256],
                              sender=self.contact(sender), kind=kind, text=text or "(empty)",
                              timestamp=_timestamp(m.get("timestamp")),
                              sender_name=names.get(sender, ""), account=account, **extra)

    def _parse_status(self, s: Mapping[str, Any]) -> StatusUpdate | None:
        status = s.get("status")
        if status not in _STATUSES:
            return None          # "deleted", "warning", "played": not tracked
        message_id, recipient = s.get("id"), s.get("recipient_id")
        if not isinstance(message_id, str) or not isinstance(recipient, str):
            raise ParseError("a status needs id and recipient_id")
        errors = _errors(s.get("errors"))
        code = errors[0].get("code") if errors else None
        return StatusUpdate(channel=self.name, message_id=message_id[:256],
                            recipient=self.contact(recipient),
                            status=status,  # one of _STATUSES
                            timestamp=_timestamp(s.get("timestamp")),
                            error_code=code if isinstance(code, int) else None,
                            error_title=_text(errors[0].get("title"), 200) if errors else "")

    # -- outgoing
    @property
    def _messages_url(self) -> str:
        return f"{self.config['graph_url'].rstrip('/')}/{self.config['phone_number_id']}/messages"

    @property
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config['token']}"}

    def render(self, message: OutboundMessage, to: str) -> dict[str, Any]:
        """The Graph API body for ``message``."""
        body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual",
                                "to": to}
        if message.reply_to:
            body["context"] = {"message_id": message.reply_to}
        if message.buttons:
            body["type"] = "interactive"
            body["interactive"] = {
                "type": "button", "body": {"text": message.text[:1024]},
                "action": {"buttons": [
                    {"type": "reply", "reply": {"id": b.id[:256],
                                                "title": b.title[:MAX_BUTTON_TITLE_CHARS]}}
                    for b in message.buttons]}}
        elif message.sections:
            body["type"] = "interactive"
            body["interactive"] = {
                "type": "list", "body": {"text": message.text[:4096]},
                "action": {"button": message.list_button[:MAX_BUTTON_TITLE_CHARS],
                           "sections": [{"title": s.title[:24], "rows": [
                               {"id": r.id[:200], "title": r.title[:MAX_LIST_ROW_TITLE_CHARS],
                                **({"description": r.description[:72]} if r.description
                                   else {})} for r in s.rows]} for s in message.sections]}}
        else:
            body["type"] = "text"
            body["text"] = {"preview_url": False, "body": message.text}
        return body

    async def send(self, message: OutboundMessage) -> SendResult:
        try:
            to = self.platform_id(message.to)
        except ValueError as exc:
            return SendResult(ok=False, error=str(exc))
        answer = await call_json(self.name, "send", self._messages_url,
                                 self.render(message, to), self.context.policy, self._auth)
        if not answer.result.ok:
            return answer.result
        messages = answer.body.get("messages")
        message_id = ""
        if isinstance(messages, list) and messages and isinstance(messages[0], Mapping):
            message_id = _text(messages[0].get("id"), 256)
        return SendResult(ok=True, message_id=message_id, status_code=answer.result.status_code)

    async def mark_read(self, message: InboundMessage) -> SendResult:
        payload = {"messaging_product": "whatsapp", "status": "read",
                   "message_id": message.message_id}
        answer = await call_json(self.name, "mark_read", self._messages_url, payload,
                                 self.context.policy, self._auth)
        return answer.result

    async def fetch_media(self, media: Media, max_bytes: int) -> MediaFile:
        """``GET {graph_url}/{media_id}`` for the file's URL, then that URL with the token.

        The URL is Meta's (lookaside.fbsbx.com today): unless it is on the
        configured Graph host it must be https to a public address, so a forged
        or misrouted answer cannot point the server at its own network.
        """
        graph = self.config["graph_url"].rstrip("/")
        details = await fetch_json(self.name, f"{graph}/{safe_id(media.media_id)}",
                                   media_policy(self.context.policy, max_bytes),
                                   headers=self._auth)
        url, size = details.get("url"), details.get("file_size")
        if not isinstance(url, str) or not url:
            raise MediaUnavailable("the Graph API gave no URL for the media")
        if isinstance(size, int) and not isinstance(size, bool) and size > max_bytes:
            raise MediaUnavailable(f"the file is larger than {max_bytes} bytes", final=True)
        policy = (media_policy(self.context.policy, max_bytes) if same_origin(url, graph)
                  else strict_policy(self.context.policy, max_bytes))
        response = await fetch(self.name, url, policy, headers=self._auth)
        declared = str(details.get("mime_type") or media.mime_type)
        return checked_file(response, declared=declared, filename=media.filename,
                            max_bytes=max_bytes)

    def wa_link(self, text: str = "") -> str:
        """A ``https://wa.me/<number>`` link that opens a chat with the business."""
        from urllib.parse import quote

        number = str(self.config.get("display_number") or "").lstrip("+")
        if not number.isdigit():
            raise ValueError("display_number is not set")
        return f"https://wa.me/{number}" + (f"?text={quote(text)}" if text else "")
