"""The OpenAPI 3.1 document, assembled from every route module's ``OPENAPI`` paths."""

from __future__ import annotations

import sys
import unicodedata
from typing import Any

from tornado.routing import URLSpec

from whatsease import __version__, validation
from whatsease.api.base import BaseHandler, route
from whatsease.services import Services

_STR = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}

# The characters Python's str.split(), str.strip() and re's \s treat as whitespace,
# spelled out because JSON Schema's \s (ECMAScript) is a different set.
WHITESPACE = ("\\t\\n\\x0b\\x0c\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029"
          "\\u202f\\u205f\\u3000")
# validation.name's control characters, less those its whitespace collapsing removes first.
_CONTROL = "\\x00-\\x08\\x0e-\\x1b\\x7f"
# validation.content's control characters: C0 and C1 and DEL, except tab, newline and
# carriage return (which becomes a newline).
_CONTENT_CONTROL = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f"
# validation.BIDI_CONTROLS: removed from content, so they do not count as its text.
_BIDI = "\\u202a-\\u202e\\u2066-\\u2069"


def _class_members(code_points: list[int]) -> str:
    """Code points as the inside of a pattern's [...]: ranges, BMP ones as four-digit \\u escapes.

    Astral code points are written as themselves: ECMAScript (with the u flag),
    Python and Rust read a literal the same way, while their escapes for it differ.
    """
    spans: list[tuple[int, int]] = []
    for cp in sorted(code_points):
        if spans and cp == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], cp)
        else:
            spans.append((cp, cp))

    def one(cp: int) -> str:
        return f"\\u{cp:04x}" if cp <= 0xFFFF else chr(cp)

    return "".join(one(a) if a == b else f"{one(a)}-{one(b)}" for a, b in spans)


def _scan() -> tuple[str, str]:
    """What validation.email refuses anywhere in an address, and what
    validation.is_invisible calls invisible, each as the inside of a pattern's
    [...], from one pass over the code points.

    The email's: controls, format characters (zero-width, bidi), separators and
    private-use code points (categories fixed by Unicode's stability policy), the
    blank letters, and the full-width @ (width folding makes it a second @).
    Unassigned code points are refused too, but which those are depends on the
    server's Unicode version: the email schema's description says so instead.
    Surrogates are left out of both: no JSON text or URL carries one alone.
    """
    email_categories = validation.EMAIL_REFUSED_CATEGORIES - {"Cn", "Cs"}
    refused: list[int] = []
    invisible: list[int] = []
    invisible_categories = validation.INVISIBLE_CATEGORIES
    category = unicodedata.category
    for cp in range(sys.maxunicode + 1):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        # One lookup per code point: this runs once, at import, over all 1.1 million.
        of = category(chr(cp))
        if of in email_categories:
            refused.append(cp)
        if of in invisible_categories:
            invisible.append(cp)
    blank = [ord(ch) for ch in validation.BLANK_LETTERS]
    refused += [*blank, 0xFF20]
    invisible += blank
    return _class_members(refused), _class_members(invisible)


_REFUSED_IN_EMAIL, _INVISIBLE = _scan()

# validation.email, as a pattern: one @, none of the refused characters, a dot in the
# domain.
_NOT_IN_EMAIL = "@" + _REFUSED_IN_EMAIL
EMAIL_PATTERN = f"^[^{_NOT_IN_EMAIL}]+@[^{_NOT_IN_EMAIL}]+\\.[^{_NOT_IN_EMAIL}.]{{2,}}$"
BOT_PATTERN = "^bot:[a-z0-9_-]{1,40}$"
OBJECT_ID_PATTERN = "^[0-9a-fA-F]{24}$"
# The rules of validation.email no pattern states; a 422 naming the field follows.
EMAIL_RULES = ("The address is stored in one canonical form: the local part width-folded, "
               "NFC-normalised and case-folded, the domain in its ASCII (IDNA, UTS #46) form. "
               "Refused with 422 besides what the pattern says: code points unassigned in "
               "the server's Unicode version, a non-ASCII domain that is not a valid "
               "internationalised domain name, and an address whose canonical form is not "
               "one (over 254 characters, or no dot left in the domain).")


def email_schema(**extra: Any) -> dict[str, Any]:
    """A string that validation.email accepts, as far as a pattern can say (EMAIL_RULES)."""
    return {"type": "string", "maxLength": 254, "pattern": EMAIL_PATTERN,
            "description": EMAIL_RULES, **extra}


def recipient_schema(**extra: Any) -> dict[str, Any]:
    """An email or a bot id (validation.recipient)."""
    return {"type": "string", "maxLength": 254,
            "description": f"A bot id such as bot:whatsease, or an email. {EMAIL_RULES}",
            "anyOf": [{"pattern": BOT_PATTERN},
                      {"pattern": EMAIL_PATTERN, "not": {"pattern": "^bot:"}}], **extra}


def name_schema(max_chars: int = 80) -> dict[str, Any]:
    """validation.name: some visible text (not only spaces, format characters, combining
    marks or blank letters), no control or bidi override characters, at most max_chars."""
    refused = f"{_CONTROL}{_BIDI}"
    return {"type": "string", "minLength": 1, "maxLength": max_chars,
            "pattern": f"^[^{refused}]*[^{WHITESPACE}{refused}{_INVISIBLE}][^{refused}]*$"}


def content_schema() -> dict[str, Any]:
    """validation.content: no control characters but tab and newline (a carriage return
    becomes a newline), something besides whitespace and bidi controls, at most 4096
    characters."""
    return {"type": "string", "minLength": 1, "maxLength": 4096,
            "pattern": f"^[^{_CONTENT_CONTROL}]*[^{WHITESPACE}{_BIDI}{_CONTENT_CONTROL}]"
                       f"[^{_CONTENT_CONTROL}]*$",
            "description": "Bidirectional embedding, override and isolate controls "
                           "(U+202A-U+202E, U+2066-U+2069) are removed, then the text is "
                           "trimmed."}


CLIENT_ID_SCHEMA = {"type": ["string", "null"], "minLength": 1, "maxLength": 64,
                    "pattern": "^[A-Za-z0-9_.:-]+$",
                    "description": "The sender's own id for the message, echoed back, so a "
                                   "resend is not stored twice"}


# Tornado turns these into spaces in query values, then trims the value.
_QUERY_TRIMMED = f"{WHITESPACE}\\x00-\\x08\\x0e-\\x1f"


def cursor(description: str = "A page's next_before: the last id of the previous page") -> (
        dict[str, Any]):
    """A ``before`` query parameter; empty is the same as absent."""
    return {"name": "before", "in": "query", "description": description,
            "schema": {"type": "string", "pattern": f"^[{_QUERY_TRIMMED}]*([0-9a-fA-F]{{24}})?"
                                                    f"[{_QUERY_TRIMMED}]*$"}}


def limit(maximum: int, default: int) -> dict[str, Any]:
    """A ``limit`` query parameter between 1 and ``maximum``."""
    return {"name": "limit", "in": "query", "description": f"Page size (default {default})",
            "schema": {"type": "integer", "minimum": 1, "maximum": maximum}}


def _any_case(word: str) -> str:
    return "^" + "".join(f"[{c.upper()}{c.lower()}]" for c in word) + "$"


# What Tornado requires of a WebSocket opening handshake (RFC 6455, section 4.1).
WEBSOCKET_HEADERS: list[dict[str, Any]] = [
    {"name": "Upgrade", "in": "header", "required": True,
     "schema": {"type": "string", "pattern": _any_case("websocket")}},
    {"name": "Connection", "in": "header", "required": True,
     "schema": {"type": "string", "pattern": _any_case("upgrade")}},
    {"name": "Sec-WebSocket-Key", "in": "header", "required": True,
     "schema": {"type": "string", "pattern": "[^ \\t]"}},
    {"name": "Sec-WebSocket-Version", "in": "header", "required": True,
     "schema": {"enum": ["13"]}},
    {"name": "route", "in": "query", "required": False,
     "schema": {"type": "string", "pattern": "^([uo][0-9a-f]{20})?$"},
     "description": "The routing key from the login (route, org_route) or widget answer; "
                    "empty is the same as none (the socket is served where it lands). "
                    "In a cluster an instance that does not own it answers 307 with "
                    "fly-replay: instance=OWNER instead of upgrading; the first frame's "
                    "token must match it (close 4011)."},
]
WEBSOCKET_RESPONSES: dict[str, Any] = {
    "101": {"description": "Switching protocols: the WebSocket is open"},
    "307": {"description": "Clustered: another instance owns the route; Fly's proxy replays "
                           "the upgrade there (fly-replay header)", "headers": {
        "fly-replay": {"required": True, "schema": {"type": "string"},
                       "description": "instance=MEMBER_ID"}}},
    "400": {"description": "Not a WebSocket upgrade request (a missing or wrong header)"},
    "426": {"description": "Unsupported WebSocket version", "headers": {
        "Sec-WebSocket-Version": {"required": True, "schema": {"type": "string"},
                                  "description": "The versions this server speaks"}}},
}


def shape(**properties: dict[str, Any]) -> dict[str, Any]:
    """A JSON response body: an object with (at least) these required members."""
    return {"application/json": {"schema": {"type": "object", "required": list(properties),
                                            "properties": properties}}}


OBJECT: dict[str, Any] = {"type": "object"}
LIST: dict[str, Any] = {"type": "array", "items": {"type": "object"}}
CURSOR: dict[str, Any] = {"type": ["string", "null"]}


def problem(name: str) -> dict[str, str]:
    """A reference to one of the problem+json responses in the components."""
    return {"$ref": f"#/components/responses/{name}"}


def problems(*statuses: str) -> dict[str, dict[str, str]]:
    """The problem responses for ``statuses`` ("404", "409", ...), by status."""
    return {status: problem(PROBLEMS[status]) for status in statuses}


def _problem_response(description: str, **headers: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    if headers:
        response["headers"] = headers
    return response


def unprocessable(*rules: str) -> dict[str, Any]:
    """A 422 problem response that also states the rules no schema can (``rules``)."""
    return _problem_response(" ".join(("A field is missing, unknown or invalid; errors[] "
                                       "names each.", *rules)))


EMAIL_422 = ("Schema-valid addresses are refused too when their rules in the email's "
             "description say so.")


_RETRY_AFTER = {"description": "Seconds to wait before trying again", "required": True,
                "schema": {"type": "integer", "minimum": 1}}
# The problem responses by status, referred to as problem(name) from the route modules.
PROBLEMS: dict[str, str] = {
    "400": "BadRequest", "401": "Unauthorized", "403": "Forbidden", "404": "NotFound",
    "409": "Conflict", "410": "Gone", "413": "PayloadTooLarge", "415": "UnsupportedMediaType",
    "422": "Unprocessable", "429": "TooManyRequests", "503": "Unavailable",
}

COMPONENTS: dict[str, Any] = {
    "securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                   "description": "An access token from login, register or refresh"},
        "widgetSession": {"type": "http", "scheme": "bearer",
                          "description": "The widget session token from "
                                         "POST /widget/v1/{key}/sessions"}},
    "responses": {
        "Problem": _problem_response("An RFC 9457 problem"),
        "BadRequest": _problem_response("The body is not a JSON object (malformed_json)"),
        "Unauthorized": _problem_response(
            "No token, or a token that is expired, revoked or not ours",
            **{"WWW-Authenticate": {"required": True, "schema": {"type": "string"},
                                    "description": "Bearer realm=\"whatsease\""}}),
        "Forbidden": _problem_response("Authenticated, but not allowed"),
        "NotFound": _problem_response("No such thing, or not yours"),
        "Conflict": _problem_response("The current state does not allow it"),
        "Gone": _problem_response("The conversation or session has ended"),
        "PayloadTooLarge": _problem_response("The body is over 64 KiB"),
        "UnsupportedMediaType": _problem_response("The body is not application/json"),
        "Unprocessable": _problem_response("A field is missing, unknown or invalid; "
                                           "errors[] names each"),
        "TooManyRequests": _problem_response("Rate-limited", **{"Retry-After": _RETRY_AFTER}),
        "Unavailable": _problem_response("The database cannot be reached right now",
                                         **{"Retry-After": _RETRY_AFTER}),
    },
    "schemas": {
        "Problem": {"type": "object", "required": ["type", "title", "status", "detail"],
                    "properties": {"type": {"type": "string", "format": "uri"}, "title": _STR,
                                   "status": {"type": "integer", "minimum": 400,
                                              "maximum": 599},
                                   "detail": _STR, "instance": _STR,
                                   "ref": {"type": "string",
                                           "description": "Server errors: quote it to the "
                                                          "operator"},
                                   "errors": {"type": "array", "items": {
                                       "type": "object", "required": ["field", "message"],
                                       "properties": {"field": _STR, "message": _STR}}}}},
        "Registration": {"type": "object", "required": ["email", "name", "password"],
                         "additionalProperties": False,
                         "properties": {"email": email_schema(),
                                        "name": name_schema(),
                                        "password": {"type": "string", "minLength": 8,
                                                     "maxLength": 256}}},
        "Credentials": {"type": "object", "required": ["email", "password"],
                        "additionalProperties": False,
                        "properties": {"email": email_schema(),
                                       "password": {"type": "string", "maxLength": 256}}},
        "TokenPair": {"type": "object", "required": [
            "user", "access_token", "refresh_token", "expires_in", "token_type"], "properties": {
            "user": {"$ref": "#/components/schemas/User"}, "access_token": _STR,
            "refresh_token": _STR, "expires_in": {"type": "integer"},
            "token_type": {"const": "Bearer"},
            "route": {"type": "string", "pattern": "^u[0-9a-f]{20}$", "description":
                      "Clustered only: the messenger socket's routing key, "
                                     "open /ws?route=ROUTE"},
            "org_route": {"type": "string", "pattern": "^o[0-9a-f]{20}$", "description":
                          "Clustered only: an agent's console socket routing "
                                         "key, /support/ws?route=..."}}},
        "User": {"type": "object", "required": ["email", "name", "role"], "properties": {
            "email": _STR, "name": _STR, "role": {"enum": ["user", "agent", "admin", "bot"]},
            "last_seen": {"type": ["string", "null"], "format": "date-time"},
            "online": {"type": "boolean"}}},
        "Session": {"type": "object", "properties": {
            "id": _STR, "created_at": _TIME, "last_used": _TIME, "expires_at": _TIME,
            "user_agent": _STR, "current": {"type": "boolean"},
            "device": _STR, "browser": _STR, "last_active": _TIME,
            "place": {"type": ["string", "null"],
                      "description": "Approximate place, for this device behind a trusted "
                                     "proxy that sends location headers; else null"}}},
        "NewMessage": {"type": "object", "required": ["recipient", "content"],
                       "additionalProperties": False, "properties": {
                           "recipient": recipient_schema(), "content": content_schema(),
                           "client_id": CLIENT_ID_SCHEMA}},
        "Message": {"type": "object", "required": [
            "message_id", "sender", "recipient", "content", "timestamp", "status",
            "is_bot_response"], "properties": {
            "message_id": _STR, "sender": _STR, "recipient": _STR, "content": _STR,
            "timestamp": _TIME, "status": {"enum": ["Sent", "Delivered", "Read"]},
            "is_bot_response": {"type": "boolean"}, "conversation_id": _STR,
            "client_id": {"type": ["string", "null"]},
            "edited_at": {"type": ["string", "null"], "format": "date-time"},
            "deleted": {"type": "boolean"}}},
        "Chat": {"type": "object", "properties": {
            "peer": _STR, "name": _STR, "is_bot": {"type": "boolean"},
            "online": {"type": "boolean"}, "unread_count": {"type": "integer"},
            "last_message": {"type": ["object", "null"]}, "updated_at": _TIME}},
        "BotInteraction": {"type": "object", "properties": {
            "id": _STR, "message_id": _STR, "message": _STR,
            "intent": {"type": ["string", "null"]}, "confidence": {"type": "number"},
            "reply": _STR, "reply_message_id": _STR,
            "source": {"enum": ["intent", "fallback", "llm", "llm_error"]}, "at": _TIME,
            "lang": {"type": ["string", "null"]}}},
        "ActivityEntry": {"type": "object", "properties": {
            "id": _STR, "kind": _STR, "actor": _STR, "target": {"type": ["string", "null"]},
            "message_id": {"type": ["string", "null"]}, "text": _STR, "time": _TIME}},
    },
}


# Operations that answer without the database; every other one may send 503.
WITHOUT_DATABASE = frozenset({
    ("/healthz", "get"), ("/readyz", "get"), ("/metrics", "get"), ("/api/openapi.json", "get"),
    ("/widget.js", "get"), ("/agent", "get"), ("/ws", "get"), ("/widget/ws", "get"),
    ("/support/ws", "get"), ("/analytics", "get"), ("/reset-password", "get")})
_BODY_METHODS = frozenset({"post", "put", "patch"})


def complete_operation(path: str, method: str, operation: dict[str, Any]) -> dict[str, Any]:
    """``operation`` with the problem responses every handler of its kind can send.

    BaseHandler answers 413 to any POST/PUT/PATCH body over 64 KiB; ``json_body``
    answers 415 and 400; the validators 422; a secured operation 401 (with
    WWW-Authenticate); a path parameter that names nothing 404; and a store that
    cannot be reached 503. The route modules document the rest themselves.
    """
    operation = dict(operation)
    responses = dict(operation["responses"])
    added: list[str] = []
    if operation.get("security", [{"bearer": []}]):
        added.append("401")
    if method in _BODY_METHODS:
        added.append("413")
    if "requestBody" in operation:
        added += ["400", "415", "422"]
    if any(p["in"] == "path" for p in operation.get("parameters", [])):
        added.append("404")
    if any(p["in"] == "query" for p in operation.get("parameters", [])):
        added.append("422")
    if (path, method) not in WITHOUT_DATABASE:
        added.append("503")
    for status in added:
        responses.setdefault(status, problem(PROBLEMS[status]))
    operation["responses"] = dict(sorted(responses.items()))
    return operation


def build_document() -> dict[str, Any]:
    """The whole document, from every route module in registry order."""
    from whatsease.api.registry import route_modules

    paths: dict[str, Any] = {}
    for module in route_modules():
        for path, operations in getattr(module, "OPENAPI", {}).items():
            completed = {method: complete_operation(path, method, operation)
                         for method, operation in operations.items()}
            paths.setdefault(path, {}).update(completed)
    return {
        "openapi": "3.1.0",
        "info": {"title": "WhatsEase API", "version": __version__,
                 "description": "REST API of WhatsEase. Errors are application/problem+json "
                                "(RFC 9457). Real-time traffic uses the WebSocket at /ws."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": dict(sorted(paths.items())),
        "components": COMPONENTS,
    }


class OpenApiHandler(BaseHandler):
    def get(self) -> None:
        self.set_header("Cache-Control", "public, max-age=300")
        self.write_json(build_document())

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")


def routes(services: Services) -> list[URLSpec]:
    return [route("/api/openapi.json", OpenApiHandler, services)]


OPENAPI: dict[str, dict[str, Any]] = {
    "/api/openapi.json": {"get": {"summary": "This document", "tags": ["operations"],
                                  "security": [],
                                  "responses": {"200": {"description": "OpenAPI 3.1",
                                                        "content": shape(
                                                            openapi={"type": "string"},
                                                            paths=OBJECT)}}}},
}
