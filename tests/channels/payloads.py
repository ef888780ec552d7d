"""Webhook bodies in the platforms' real shapes, and their signatures.

WhatsApp Cloud API: ``{"object": "whatsapp_business_account", "entry": [{"id",
"changes": [{"field": "messages", "value": {"messaging_product", "metadata",
"contacts", "messages" | "statuses" | "errors"}}]}]}``. Telegram: one
``Update`` per request.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import secrets
import time
from typing import Any

import orjson

WABA_ID = "102290129340398"
PHONE_NUMBER_ID = "106540352242922"
DISPLAY_NUMBER = "15550783881"
_update_ids = itertools.count(int(time.time()) % 1_000_000 * 1000)


def new_number() -> str:
    """A fresh E.164 number without '+', as WhatsApp's wa_id spells it."""
    return "49151" + str(secrets.randbelow(10**8)).zfill(8)


def wamid() -> str:
    return "wamid.HBgL" + secrets.token_hex(16).upper()


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def envelope(*values: dict[str, Any]) -> dict[str, Any]:
    """One entry per value, each with one ``messages`` change (Meta may batch either way)."""
    return {"object": "whatsapp_business_account", "entry": [
        {"id": WABA_ID, "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": DISPLAY_NUMBER,
                         "phone_number_id": PHONE_NUMBER_ID}, **value}}]}
        for value in values]}


def inbound(number: str, *messages: dict[str, Any], name: str = "Sheena Nelson",
            ) -> dict[str, Any]:
    """A ``value`` with the sender's profile and their messages."""
    return {"contacts": [{"profile": {"name": name}, "wa_id": number}],
            "messages": list(messages)}


def _base(number: str, kind: str, at: int | None = None, **extra: Any) -> dict[str, Any]:
    return {"from": number, "id": wamid(), "timestamp": str(at or int(time.time())),
            "type": kind, **extra}


def text(number: str, body: str, *, at: int | None = None,
         context: str | None = None) -> dict[str, Any]:
    message = _base(number, "text", at, text={"body": body})
    if context:
        message["context"] = {"from": DISPLAY_NUMBER, "id": context}
    return message


def button_reply(number: str, button_id: str, title: str, context: str) -> dict[str, Any]:
    return _base(number, "interactive", context={"from": DISPLAY_NUMBER, "id": context},
                 interactive={"type": "button_reply",
                              "button_reply": {"id": button_id, "title": title}})


def list_reply(number: str, row_id: str, title: str, context: str) -> dict[str, Any]:
    return _base(number, "interactive", context={"from": DISPLAY_NUMBER, "id": context},
                 interactive={"type": "list_reply", "list_reply": {
                     "id": row_id, "title": title, "description": "Ships in 2 days"}})


def reaction(number: str, to: str, emoji: str) -> dict[str, Any]:
    return _base(number, "reaction", reaction={"message_id": to, "emoji": emoji})


def location(number: str) -> dict[str, Any]:
    return _base(number, "location", location={
        "latitude": 52.520008, "longitude": 13.404954, "name": "Alexanderplatz",
        "address": "Alexanderplatz 1, 10178 Berlin"})


def image(number: str, caption: str = "The broken part") -> dict[str, Any]:
    return _base(number, "image", image={
        "caption": caption, "mime_type": "image/jpeg",
        "sha256": "Qh4Lc6L1PnlO2j2Yp0oE8k4M4zY8c7a2Qa2T+8k3Ujk=", "id": "1003383421387256"})


def document(number: str) -> dict[str, Any]:
    return _base(number, "document", document={
        "filename": "invoice-0042.pdf", "mime_type": "application/pdf",
        "sha256": "n0g1bS+VmB3hQe6pq1aQxqk5n1k1k3b5Yy7N3X3gM2c=", "id": "2544839185748162"})


def audio(number: str) -> dict[str, Any]:
    """A voice note (Meta marks those ``voice``)."""
    return _base(number, "audio", audio={
        "mime_type": "audio/ogg; codecs=opus", "voice": True,
        "sha256": "bS2Wd5cA6q1Zr0nY3v9X2mQ4pT8eH1uJ7kL5oI3gF0E=", "id": "3011294745630418"})


def video(number: str) -> dict[str, Any]:
    return _base(number, "video", video={
        "caption": "It rattles like this", "mime_type": "video/mp4",
        "sha256": "Yx3Vq8mB2nC5dF7gH9jK1lZ4aS6wE0rT2yU8iO3pQ5A=", "id": "1187462095283311"})


def sticker(number: str) -> dict[str, Any]:
    return _base(number, "sticker", sticker={
        "mime_type": "image/webp", "animated": False,
        "sha256": "Kp9Lm2Nb4Vc6Xz8Aq1Ws3Ed5Rf7Tg9Yh2Uj4Ik6Ol8P=", "id": "7740213398561204"})


def template_button(number: str, payload: str, label: str, context: str) -> dict[str, Any]:
    """A press of a template message's quick-reply button."""
    return _base(number, "button", context={"from": DISPLAY_NUMBER, "id": context},
                 button={"payload": payload, "text": label})


def unsupported(number: str) -> dict[str, Any]:
    return _base(number, "unsupported", errors=[{
        "code": 131051, "title": "Message type unknown", "message": "Message type unknown",
        "error_data": {"details": "Message type is currently not supported."}}])


def status(message_id: str, number: str, state: str, *,
           error_code: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"id": message_id, "status": state,
                            "timestamp": str(int(time.time())), "recipient_id": number}
    if state != "failed":
        body["conversation"] = {"id": "8a5b0f8d1f1e4c0f9b7b3c2a1d0e9f8a",
                                "origin": {"type": "service"}}
        body["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "service"}
    if error_code is not None:
        body["errors"] = [{"code": error_code, "title": "Message undeliverable",
                           "message": "Message undeliverable",
                           "error_data": {"details": "Message could not be delivered."},
                           "href": "https://developers.facebook.com/docs/whatsapp/"
                                   "cloud-api/support/error-codes/"}]
    return {"statuses": [body]}


def platform_errors(code: int = 130429) -> dict[str, Any]:
    return {"errors": [{"code": code, "title": "Rate limit hit",
                        "message": "(#130429) Rate limit hit",
                        "error_data": {"details": "Cloud API message throughput reached."}}]}


def body_of(payload: dict[str, Any]) -> bytes:
    return orjson.dumps(payload)


# --- Telegram ------------------------------------------------------------------------------


def new_chat_id() -> int:
    return 100_000_000 + secrets.randbelow(900_000_000)


def _user(chat_id: int) -> dict[str, Any]:
    return {"id": chat_id, "is_bot": False, "first_name": "Ada", "last_name": "Lovelace",
            "username": "ada", "language_code": "en"}


def tg_text(chat_id: int, body: str, *, update_id: int | None = None,
            reply_to: int | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": secrets.randbelow(10**6), "from": _user(chat_id),
        "chat": {"id": chat_id, "first_name": "Ada", "last_name": "Lovelace",
                 "username": "ada", "type": "private"},
        "date": int(time.time()), "text": body}
    if reply_to is not None:
        message["reply_to_message"] = {"message_id": reply_to, "date": int(time.time()) - 5,
                                       "chat": message["chat"], "text": "earlier"}
    return {"update_id": update_id if update_id is not None else next(_update_ids),
            "message": message}


def tg_callback(chat_id: int, data: str, label: str, *, bot_message_id: int = 77,
                ) -> dict[str, Any]:
    return {"update_id": next(_update_ids), "callback_query": {
        "id": str(4382000000000000000 + secrets.randbelow(10**15)),
        "from": _user(chat_id), "chat_instance": "-7301296421233190012", "data": data,
        "message": {"message_id": bot_message_id,
                    "from": {"id": 1, "is_bot": True, "first_name": "Fake",
                             "username": "fake_bot"},
                    "chat": {"id": chat_id, "first_name": "Ada", "type": "private"},
                    "date": int(time.time()) - 10, "text": "Pick one",
                    "reply_markup": {"inline_keyboard": [[
                        {"text": label, "callback_data": data},
                        {"text": "Other", "callback_data": "other"}]]}}}}


def tg_location(chat_id: int) -> dict[str, Any]:
    update = tg_text(chat_id, "")
    del update["message"]["text"]
    update["message"]["location"] = {"latitude": 48.858093, "longitude": 2.294694}
    return update


def tg_photo(chat_id: int) -> dict[str, Any]:
    update = tg_text(chat_id, "")
    del update["message"]["text"]
    update["message"]["photo"] = [
        {"file_id": "AgACAgQAAxkBAAIBsmall", "file_unique_id": "AQADs", "width": 90,
         "height": 67, "file_size": 1200},
        {"file_id": "AgACAgQAAxkBAAIBlarge", "file_unique_id": "AQADl", "width": 1280,
         "height": 960, "file_size": 98000}]
    update["message"]["caption"] = "Here it is"
    return update


def tg_reaction(chat_id: int, message_id: int, emoji: str) -> dict[str, Any]:
    return {"update_id": next(_update_ids), "message_reaction": {
        "chat": {"id": chat_id, "type": "private"}, "message_id": message_id,
        "user": _user(chat_id), "date": int(time.time()),
        "old_reaction": [], "new_reaction": [{"type": "emoji", "emoji": emoji}]}}
