"""External channels' HTTP side: the platforms' webhooks, the WhatsApp link with its QR code,
and what the agent console reads of a channel conversation (delivery states, attachments).

``/channels/{channel}/webhook`` (``whatsapp``, ``telegram``, ``loopback``):
``GET`` answers a platform's subscription check; ``POST`` verifies the
signature or secret on the raw body *before* anything is parsed (401, nothing
stored, one log line), parses it into events, queues them and answers 200 at
once: the bot runs after (whatsease/channels/service.py).

``/api/v1/channels/conversations/{id}`` lists a support conversation's
attachments and delivery states, and ``/api/v1/channels/media/{message_id}``
serves one attachment, to agents of the conversation's organisation only (404
for anyone else). The file is served as a download (images inline) under a
sandboxing Content-Security-Policy with ``nosniff``, so it can never run as a page.
"""

from __future__ import annotations

import io
import logging
import mimetypes
from typing import Any
from urllib.parse import quote

import segno
from tornado.routing import URLSpec

from whatsease.api.base import BaseHandler, route
from whatsease.api.openapi import OBJECT, problem, shape
from whatsease.channels import metrics
from whatsease.channels.base import (
    MAX_WEBHOOK_BYTES,
    MediaUnavailable,
    ParseError,
    WebhookRequest,
)
from whatsease.channels.service import Channel, ChannelService
from whatsease.channels.whatsapp import WhatsAppCloudProvider
from whatsease.cluster.routing import org_route
from whatsease.errors import (
    AppError,
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    invalid,
)
from whatsease.services import Services
from whatsease.storage.models import is_object_id

logger = logging.getLogger(__name__)

MAX_LINK_TEXT_CHARS = 500
QR_SCALE = 4


def _channels(services: Services) -> ChannelService:
    if services.channels is None:
        raise NotFound("No channel is configured on this server.")
    return services.channels


class WebhookHandler(BaseHandler):
    """One platform's webhook: its verification handshake and its event deliveries."""

    def prepare(self) -> None:
        # Platforms batch events: allow more than the API's 64 KiB, still bounded.
        size = len(self.request.body or b"")
        if size > MAX_WEBHOOK_BYTES:
            raise PayloadTooLarge(f"The body is {size} bytes; the limit is {MAX_WEBHOOK_BYTES}.")

    def _serve_on_owner(self, found: Channel) -> None:
        # Clustering: an org-bound channel's conversations join the org's live
        # state (agents, assignment), which lives on the org's owner.
        if found.bound_to_org:
            self.replay_to_owner(org_route(found.org_id))

    def get(self, channel: str) -> None:
        found = _channels(self.services).channel(channel)
        self._serve_on_owner(found)
        query = {name: self.get_query_argument(name, "") or ""
                 for name in ("hub.mode", "hub.verify_token", "hub.challenge")}
        challenge = found.provider.handshake(query)
        if challenge is None:
            logger.warning("%s webhook verification refused", found.name)
            raise Forbidden("The verification token does not match.", code="verification_failed")
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(challenge)

    def post(self, channel: str) -> None:
        service = _channels(self.services)
        found = service.channel(channel)
        self._serve_on_owner(found)
        request = WebhookRequest(
            "POST", {k.lower(): v for k, v in self.request.headers.get_all()}, {},
            self.request.body or b"")
        verdict = found.provider.verify(request)
        if not verdict.ok:
            metrics.WEBHOOK_REFUSED.labels(found.name).inc()
            # The reason only: never the body, a header's value or a secret.
            logger.warning("%s webhook refused: %s", found.name, verdict.reason,
                           extra={"ip": self.client_ip()})
            raise Unauthorized(f"Webhook refused: {verdict.reason}.", code="bad_signature")
        try:
            events = found.provider.parse(request.body)
        except ParseError as exc:
            raise BadRequest(f"The body is not a {found.name} webhook: {exc}",
                             code="malformed_webhook") from None
        service.accept(found, events)
        self.write_json({"accepted": len(events)})


class MediaUnavailableError(AppError):
    """An attachment cannot be fetched from its platform (the reason says why)."""

    status, code, title = 502, "media_unavailable", "Media unavailable"


class ConversationChannelHandler(BaseHandler):
    """A support conversation's attachments and delivery states, for its org's agents."""

    async def get(self, conversation_id: str) -> None:
        principal = await self.authenticate()
        if not is_object_id(conversation_id):
            raise NotFound("No such conversation.")
        info = await _channels(self.services).console.info(principal.user, conversation_id)
        self.write_json(info)


class MediaHandler(BaseHandler):
    """One attachment's bytes, for the agents who may see its conversation."""

    async def get(self, message_id: str) -> None:
        principal = await self.authenticate()
        if not is_object_id(message_id):
            raise NotFound("No such attachment.")
        try:
            file = await _channels(self.services).console.media(principal.user, message_id)
        except MediaUnavailable as exc:
            raise MediaUnavailableError(f"Media unavailable: {exc.reason}.") from None
        self.set_header("Content-Type", file.content_type)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", "default-src 'none'; sandbox")
        self.set_header("Cache-Control", "private, max-age=3600")
        name = _download_name(file.filename, file.content_type)
        disposition = "inline" if file.is_image else "attachment"
        self.set_header("Content-Disposition",
                        f"{disposition}; filename=\"{name}\"; filename*=UTF-8''{quote(name)}")
        self.finish(file.content)


def _download_name(filename: str, content_type: str) -> str:
    """A file name safe in a header: printable ASCII without quotes or separators."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "._- ") else "_"
                      for c in filename.strip())[:100].strip(" .")
    if cleaned:
        return cleaned
    return "attachment" + (mimetypes.guess_extension(content_type) or "")


class WhatsAppLinkHandler(BaseHandler):
    """A wa.me link to the business number, and its QR code, for people to start a chat."""

    async def post(self) -> None:
        await self.authenticate()
        body = self.json_body() if self.request.body else {}
        unknown = set(body) - {"text"}
        if unknown:
            raise invalid(sorted(unknown)[0], "is not a field of this request")
        text = body.get("text", "")
        if not isinstance(text, str) or len(text) > MAX_LINK_TEXT_CHARS:
            raise invalid("text", f"must be a string of at most {MAX_LINK_TEXT_CHARS} characters")
        service = _channels(self.services)
        channel = service.channels.get("whatsapp")
        provider = channel.provider if channel is not None else None
        if not isinstance(provider, WhatsAppCloudProvider):
            raise NotFound("The WhatsApp channel is not configured on this server.")
        try:
            link = provider.wa_link(text.strip())
        except ValueError:
            raise NotFound("The WhatsApp number is not configured "
                           "(WHATSEASE_WHATSAPP_NUMBER).") from None
        svg = io.BytesIO()
        segno.make(link, error="m").save(svg, kind="svg", scale=QR_SCALE, xmldecl=False,
                                         svgns=True, title="WhatsApp chat link")
        self.write_json({"link": link, "number": "+" + link.split("/")[3].split("?")[0],
                         "binding": channel.binding if channel else "",
                         "qr_svg": svg.getvalue().decode()})


def routes(services: Services) -> list[URLSpec]:
    return [
        route("/channels/{channel}/webhook", WebhookHandler, services),
        route("/api/v1/channels/whatsapp/link", WhatsAppLinkHandler, services),
        route("/api/v1/channels/conversations/{conversation_id}", ConversationChannelHandler,
              services),
        route("/api/v1/channels/media/{message_id}", MediaHandler, services),
    ]


_CHANNEL = {"name": "channel", "in": "path", "required": True,
            "description": "The channel: whatsapp, telegram or loopback",
            "schema": {"type": "string"}}
_WEBHOOK_QUERY = [{"name": name, "in": "query", "description": text, "schema": {"type": "string"}}
                  for name, text in (("hub.mode", "subscribe"),
                                     ("hub.verify_token", "The verify token you chose"),
                                     ("hub.challenge", "Echoed back when the token matches"))]

OPENAPI: dict[str, dict[str, Any]] = {
    "/channels/{channel}/webhook": {
        "get": {"summary": "A platform verifies the webhook (WhatsApp: hub.mode=subscribe, "
                           "hub.verify_token; the challenge is echoed)",
                "tags": ["channels"], "security": [], "parameters": [_CHANNEL, *_WEBHOOK_QUERY],
                "responses": {"200": {"description": "The challenge, as plain text",
                                      "content": {"text/plain": {"schema": {"type": "string"}}}},
                              "403": problem("Forbidden"), "404": problem("NotFound")}},
        "post": {"summary": "A platform delivers events: verified on the raw body "
                            "(X-Hub-Signature-256, X-Telegram-Bot-Api-Secret-Token), "
                            "queued, answered at once",
                 "tags": ["channels"], "security": [], "parameters": [_CHANNEL],
                 "requestBody": {"required": True, "content": {
                     "application/json": {"schema": OBJECT}}},
                 "responses": {"200": {"description": "Accepted",
                                       "content": shape(accepted={"type": "integer"})},
                               "400": problem("BadRequest"), "401": problem("Unauthorized"),
                               "404": problem("NotFound"), "413": problem("PayloadTooLarge"),
                               "503": problem("Unavailable")}}},
    "/api/v1/channels/whatsapp/link": {"post": {
        "summary": "A wa.me link that opens a WhatsApp chat with the business, and its QR "
                   "code (SVG)", "tags": ["channels"],
        "requestBody": {"required": False, "content": {"application/json": {"schema": {
            "type": "object", "additionalProperties": False, "properties": {
                "text": {"type": "string", "maxLength": MAX_LINK_TEXT_CHARS,
                         "description": "The message the chat opens with"}}}}}},
        "responses": {"200": {"description": "The link and its QR code", "content": shape(
            link={"type": "string"}, number={"type": "string"}, binding={"type": "string"},
            qr_svg={"type": "string"})},
            "400": problem("BadRequest"), "401": problem("Unauthorized"),
            "404": problem("NotFound"), "415": problem("UnsupportedMediaType"),
            "422": problem("Unprocessable")}}},
    "/api/v1/channels/conversations/{conversation_id}": {"get": {
        "summary": "A support conversation's attachments and delivery states (WhatsApp, "
                   "Telegram), for the agents of its organisation",
        "tags": ["channels"],
        "parameters": [{"name": "conversation_id", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {"200": {"description": "Attachments and delivery states, newest first",
                              "content": shape(conversation_id={"type": "string"},
                                               media={"type": "array", "items": OBJECT},
                                               deliveries={"type": "array", "items": OBJECT})},
                      "401": problem("Unauthorized"), "404": problem("NotFound")}}},
    "/api/v1/channels/media/{message_id}": {"get": {
        "summary": "One attachment a WhatsApp or Telegram contact sent, fetched from the "
                   "platform (bounded in size, checked in type); images inline, other files "
                   "as downloads",
        "tags": ["channels"],
        "parameters": [{"name": "message_id", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {"200": {"description": "The file",
                              "content": {"application/octet-stream": {
                                  "schema": {"type": "string", "format": "binary"}}}},
                      "401": problem("Unauthorized"), "404": problem("NotFound"),
                      "502": problem("Problem")}}},
}
