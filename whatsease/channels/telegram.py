"""The Telegram Bot API provider.

Incoming: Telegram POSTs one ``Update`` per webhook request, with the
``secret_token`` given to ``setWebhook`` in ``X-Telegram-Bot-Api-Secret-Token``
(Telegram does not sign bodies; the secret is compared in constant time).
Updates carry ``message`` (text, photo, document, voice, location, reply
context), ``callback_query`` (an inline-keyboard button was pressed) or
``message_reaction``; each has an ``update_id``, the de-duplication key.

Outgoing: ``POST {api_url}/bot<token>/sendMessage`` with inline keyboards for
buttons and lists; ``answerCallbackQuery`` acknowledges a pressed button.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote

from whatsease.channels.base import (
    MAX_TEXT_CHARS,
    ChannelProvider,
    ConfigError,
    ConfigField,
    Event,
    InboundMessage,
    Location,
    Media,
    MessageKind,
    OutboundMessage,
    ParseError,
    ProviderContext,
    SendResult,
    Verdict,
    WebhookRequest,
    constant_time_equal,
    json_object,
)
from whatsease.channels.http import call_json
from whatsease.channels.media import MediaFile, MediaUnavailable, checked_file, fetch, media_policy

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
DEFAULT_API_URL = "https://api.telegram.org"
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
# callback_data is at most 64 bytes.
MAX_CALLBACK_DATA_BYTES = 64
_MEDIA_KEYS = ("document", "voice", "audio", "video", "sticker", "video_note", "animation")


def _timestamp(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.now(UTC)


def _text(value: Any, limit: int = MAX_TEXT_CHARS) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _id(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParseError(f"{where} must be an integer")
    return str(value)


def _name(user: Any) -> str:
    if not isinstance(user, Mapping):
        return ""
    parts = [_text(user.get("first_name"), 64), _text(user.get("last_name"), 64)]
    return " ".join(p for p in parts if p) or _text(user.get("username"), 64)


class TelegramProvider(ChannelProvider):
    name: ClassVar[str] = "telegram"
    contact_prefix: ClassVar[str] = "tg"
    config_fields: ClassVar[tuple[ConfigField, ...]] = (
        ConfigField("token", "secret", required=True, help="The bot token from @BotFather."),
        ConfigField("secret_token", "secret", required=True,
                    help="The setWebhook secret_token (1-256 of A-Z a-z 0-9 _ -)."),
        ConfigField("api_url", "url", default=DEFAULT_API_URL, help="The Bot API base URL."),
    )
    # No read receipts: `mark_read` acknowledges each pressed button on its own.
    read_covers_earlier: ClassVar[bool] = False

    def __init__(self, config: Mapping[str, Any], context: ProviderContext) -> None:
        if not _SECRET_TOKEN.fullmatch(str(config.get("secret_token") or "")):
            raise ConfigError("secret_token", "must be 1-256 of A-Z a-z 0-9 _ -")
        if not re.fullmatch(r"[0-9]{1,20}:[A-Za-z0-9_-]{20,100}", str(config.get("token") or "")):
            raise ConfigError("token", "must look like <bot id>:<secret> as @BotFather gives it")
        super().__init__(config, context)

    def platform_id(self, contact: str) -> str:
        chat = super().platform_id(contact)
        if not re.fullmatch(r"-?[0-9]{1,20}", chat):
            raise ValueError(f"{contact!r} is not a Telegram chat id")
        return chat

    # -- incoming
    def verify(self, request: WebhookRequest) -> Verdict:
        given = request.header(SECRET_HEADER)
        if not given:
            return Verdict.refuse("secret token missing")
        if not constant_time_equal(given, self.config["secret_token"]):
            return Verdict.refuse("secret token does not match")
        return Verdict.accept()

    def parse(self, body: bytes) -> list[Event]:
        update = json_object(body, "an update")
        update_id = _id(update.get("update_id"), "update_id")
        message = update.get("message")
        if isinstance(message, Mapping):
            return [self._parse_message(update_id, message)]
        callback = update.get("callback_query")
        if isinstance(callback, Mapping):
            return [self._parse_callback(update_id, callback)]
        reaction = update.get("message_reaction")
        if isinstance(reaction, Mapping):
            return [self._parse_reaction(update_id, reaction)]
        return []   # edited messages, channel posts, polls...: not handled

    def _chat(self, message: Mapping[str, Any]) -> tuple[str, bool]:
        chat = message.get("chat")
        if not isinstance(chat, Mapping):
            raise ParseError("a message needs a chat")
        return _id(chat.get("id"), "chat.id"), chat.get("type") != "private"

    def _parse_message(self, update_id: str, m: Mapping[str, Any]) -> InboundMessage:
        chat_id, is_group = self._chat(m)
        user = m.get("from")
        sender = _id(user.get("id"), "from.id") if isinstance(user, Mapping) else chat_id
        kind: MessageKind = "unsupported"
        text = ""
        extra: dict[str, Any] = {}
        if isinstance(m.get("text"), str):
            kind, text = "text", _text(m["text"])
        elif isinstance(m.get("location"), Mapping):
            loc = m["location"]
            try:
                location = Location(float(loc["latitude"]), float(loc["longitude"]))
            except (KeyError, TypeError, ValueError):
                raise ParseError("a location needs latitude and longitude") from None
            venue = m.get("venue")
            if isinstance(venue, Mapping):
                location = Location(location.latitude, location.longitude,
                                    _text(venue.get("title"), 256),
                                    _text(venue.get("address"), 512))
            kind, extra["location"] = "location", location
            text = " ".join(p for p in ("Location:", location.name, location.address,
                                        f"({location.latitude}, {location.longitude})") if p)
        elif isinstance(m.get("photo"), list) and m["photo"]:
            largest = m["photo"][-1]    # sizes come smallest first
            if not isinstance(largest, Mapping):
                raise ParseError("photo sizes must be objects")
            kind = "media"
            extra["media"] = Media(_text(largest.get("file_id"), 256), "image",
                                   caption=_text(m.get("caption"), 1024))
        else:
            for key in _MEDIA_KEYS:
                item = m.get(key)
                if isinstance(item, Mapping):
                    kind = "media"
                    extra["media"] = Media(_text(item.get("file_id"), 256), key,
                                           _text(item.get("mime_type"), 128),
                                           _text(m.get("caption"), 1024),
                                           _text(item.get("file_name"), 256))
                    break
        if kind == "media":
            if not extra["media"].media_id:
                raise ParseError("media needs a file_id")
            text = extra["media"].caption or f"({extra['media'].media_type})"
        if kind == "unsupported":
            text = "(unsupported message)"
        reply = m.get("reply_to_message")
        if isinstance(reply, Mapping) and isinstance(reply.get("message_id"), int):
            extra["reply_to"] = str(reply["message_id"])
        return InboundMessage(
            channel=self.name, message_id=update_id, sender=self.contact(sender), kind=kind,
            text=text or "(empty)", timestamp=_timestamp(m.get("date")),
            sender_name=_name(user), chat_id=self.contact(chat_id) if is_group else "",
            is_group=is_group, platform_ref=str(m.get("message_id", "")), **extra)

    def _parse_callback(self, update_id: str, q: Mapping[str, Any]) -> InboundMessage:
        user = q.get("from")
        if not isinstance(user, Mapping):
            raise ParseError("a callback query needs from")
        sender = _id(user.get("id"), "from.id")
        message = q.get("message")
        chat_id, is_group = self._chat(message) if isinstance(message, Mapping) else (sender,
                                                                                       False)
        data = _text(q.get("data"), 256)
        title = data
        if isinstance(message, Mapping):
            # The pressed button's label, found in the keyboard the message carried.
            markup = message.get("reply_markup")
            rows = markup.get("inline_keyboard") if isinstance(markup, Mapping) else None
            for row in rows if isinstance(rows, list) else []:
                for button in row if isinstance(row, list) else []:
                    if isinstance(button, Mapping) and button.get("callback_data") == data:
                        title = _text(button.get("text"), 256) or data
        return InboundMessage(
            channel=self.name, message_id=update_id, sender=self.contact(sender),
            kind="button_reply", text=title or "(button)", timestamp=datetime.now(UTC),
            sender_name=_name(user), choice_id=data,
            reply_to=str(message.get("message_id", "")) if isinstance(message, Mapping) else "",
            chat_id=self.contact(chat_id) if is_group else "", is_group=is_group,
            platform_ref=_text(q.get("id"), 256))

    def _parse_reaction(self, update_id: str, r: Mapping[str, Any]) -> InboundMessage:
        chat_id, is_group = self._chat(r)
        user = r.get("user")
        sender = _id(user.get("id"), "user.id") if isinstance(user, Mapping) else chat_id
        emoji = ""
        new = r.get("new_reaction")
        for item in new if isinstance(new, list) else []:
            if isinstance(item, Mapping) and item.get("type") == "emoji":
                emoji = _text(item.get("emoji"), 16)
                break
        return InboundMessage(
            channel=self.name, message_id=update_id, sender=self.contact(sender),
            kind="reaction", text=emoji or "(reaction removed)",
            timestamp=_timestamp(r.get("date")), sender_name=_name(user),
            reaction_to=str(r.get("message_id", "")), emoji=emoji,
            chat_id=self.contact(chat_id) if is_group else "", is_group=is_group)

    # -- outgoing
    def _url(self, method: str) -> str:
        return f"{self.config['api_url'].rstrip('/')}/bot{self.config['token']}/{method}"

    def render(self, message: OutboundMessage, chat_id: str) -> dict[str, Any]:
        """The sendMessage body for ``message``: buttons and list rows become an inline
        keyboard (one button per row for lists)."""
        body: dict[str, Any] = {"chat_id": int(chat_id), "text": message.text}
        keyboard: list[list[dict[str, str]]] = []
        if message.buttons:
            keyboard = [[{"text": b.title, "callback_data": _callback(b.id)}
                         for b in message.buttons]]
        elif message.sections:
            keyboard = [[{"text": r.title, "callback_data": _callback(r.id)}]
                        for s in message.sections for r in s.rows]
        if keyboard:
            body["reply_markup"] = {"inline_keyboard": keyboard}
        if message.reply_to.isdigit():
            body["reply_parameters"] = {"message_id": int(message.reply_to),
                                        "allow_sending_without_reply": True}
        return body

    async def send(self, message: OutboundMessage) -> SendResult:
        try:
            chat_id = self.platform_id(message.to)
        except ValueError as exc:
            return SendResult(ok=False, error=str(exc))
        answer = await call_json(self.name, "send", self._url("sendMessage"),
                                 self.render(message, chat_id), self.context.policy)
        if not answer.result.ok:
            return answer.result
        result = answer.body.get("result")
        message_id = ""
        if isinstance(result, Mapping) and isinstance(result.get("message_id"), int):
            message_id = f"{chat_id}:{result['message_id']}"
        return SendResult(ok=True, message_id=message_id, status_code=answer.result.status_code)

    async def mark_read(self, message: InboundMessage) -> SendResult:
        """Telegram has no read receipts for bots; a pressed button is acknowledged
        (answerCallbackQuery) so the client stops showing its progress."""
        if message.kind != "button_reply" or not message.platform_ref:
            return SendResult(ok=True)
        answer = await call_json(self.name, "answer_callback", self._url("answerCallbackQuery"),
                                 {"callback_query_id": message.platform_ref},
                                 self.context.policy)
        return answer.result

    async def fetch_media(self, media: Media, max_bytes: int) -> MediaFile:
        """``getFile`` for the file's path, then ``{api_url}/file/bot<token>/<path>``.

        Both URLs are on the configured API host. Telegram answers files as
        ``application/octet-stream``, so the type the message announced (or the
        path's extension) decides, and images must carry their magic bytes.
        """
        answer = await call_json(self.name, "media", self._url("getFile"),
                                 {"file_id": media.media_id}, self.context.policy)
        result = answer.body.get("result") if answer.result.ok else None
        if not isinstance(result, Mapping) or not isinstance(result.get("file_path"), str):
            raise MediaUnavailable("Telegram did not give the file "
                                   f"({answer.result.error or 'no file_path'})",
                                   final=answer.result.status_code == 400)
        size = result.get("file_size")
        if isinstance(size, int) and not isinstance(size, bool) and size > max_bytes:
            raise MediaUnavailable(f"the file is larger than {max_bytes} bytes", final=True)
        path = result["file_path"]
        if ".." in path or path.startswith("/") or len(path) > 512:
            raise MediaUnavailable("Telegram gave a malformed file path", final=True)
        base = self.config["api_url"].rstrip("/")
        url = f"{base}/file/bot{self.config['token']}/{quote(path)}"
        response = await fetch(self.name, url, media_policy(self.context.policy, max_bytes))
        declared = media.mime_type or ("image/jpeg" if media.media_type == "image" else "")
        return checked_file(response, declared=declared,
                            filename=media.filename or path.rsplit("/", 1)[-1],
                            max_bytes=max_bytes)

    async def set_webhook(self, url: str) -> SendResult:
        """Point Telegram at ``url`` with the secret token (operators run this once)."""
        answer = await call_json(self.name, "set_webhook", self._url("setWebhook"),
                                 {"url": url, "secret_token": self.config["secret_token"],
                                  "allowed_updates": ["message", "callback_query",
                                                      "message_reaction"]},
                                 self.context.policy)
        return answer.result


def _callback(value: str) -> str:
    data = value.encode()[:MAX_CALLBACK_DATA_BYTES]
    return data.decode(errors="ignore")
