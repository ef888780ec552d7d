"""The OpenAPI document matches the router exactly: every route documented, nothing invented."""

from __future__ import annotations

import re
import secrets
import urllib.parse
from typing import Any

import jsonschema_rs
import pytest
import tornado.web
from tornado.routing import URLSpec

from tests.customer_support.http import platform_admin
from tests.support import Client, ServerThread
from whatsease import validation
from whatsease.api.base import NotFoundHandler
from whatsease.api.openapi import content_schema, email_schema, name_schema
from whatsease.app import AppShellHandler, make_app
from whatsease.errors import Unprocessable
from whatsease.services import Services

HTTP_METHODS = ("get", "post", "put", "patch", "delete", "head", "options")


def _implemented(handler: type[tornado.web.RequestHandler]) -> set[str]:
    """The HTTP methods a handler class overrides (RequestHandler's defaults answer 405)."""
    return {m for m in HTTP_METHODS
            if getattr(handler, m) is not getattr(tornado.web.RequestHandler, m)}


def _served(app: tornado.web.Application) -> set[tuple[str, str]]:
    served = set()
    for rule in app.wildcard_router.rules:
        handler = rule.target
        # By design undocumented: the client's app shell, static files and the
        # problem+json 404 for unknown API paths.
        if handler in (AppShellHandler, tornado.web.StaticFileHandler, NotFoundHandler):
            continue
        if issubclass(handler, tornado.web.StaticFileHandler):
            continue
        assert isinstance(rule, URLSpec), rule
        assert rule.name, f"{rule.regex.pattern} has no template name"
        for method in _implemented(handler):
            served.add((rule.name, method))
    return served


def _documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, operations in document["paths"].items()
            for method in operations if method in HTTP_METHODS}


async def test_the_document_lists_exactly_the_served_routes(services: Services) -> None:
    from whatsease.api.openapi import build_document

    served = _served(make_app(services))
    documented = _documented(build_document())
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"
    assert ("/api/v1/messages/{message_id}", "patch") in served


def test_the_document_is_served_and_well_formed(server: ServerThread) -> None:
    res = Client(server.port).get("/api/openapi.json")
    assert res.status == 200
    document = res.json
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"] and document["info"]["version"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), (path, method)
            assert operation.get("responses"), (path, method)
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    assert "{" + parameter["name"] + "}" in path, (path, parameter)
    # Every $ref points at something that exists.
    text = res.body.decode()
    for ref in set(re.findall(r'"\$ref":"#/components/(\w+)/(\w+)"', text)):
        assert ref[1] in document["components"][ref[0]], ref


# What the contract run (test_schemathesis.py) found, pinned one by one.

def _token(client: Client) -> str:
    res = client.post("/api/v1/auth/register", {
        "email": f"doc-{secrets.token_hex(5)}@example.com", "name": "Doc",
        "password": "correct horse battery"})
    assert res.status == 201, res.body
    token: str = res.json["access_token"]
    return token


def test_register_quotes_the_address_in_location(server: ServerThread) -> None:
    # An address beyond Latin-1 cannot travel raw in a header: the server
    # answered 500 after the account had been made.
    email = f"用户{secrets.token_hex(3)}@例子.公司"
    res = Client(server.port).post("/api/v1/auth/register", {
        "email": email, "name": "Doc", "password": "correct horse battery"})
    assert res.status == 201, res.body
    stored = res.json["user"]["email"]  # canonical: the domain in its IDNA form
    assert stored.endswith("@xn--fsqu00a.xn--55qx5d")
    location = res.header("Location")
    assert location == "/api/v1/users/" + urllib.parse.quote(stored, safe="@")
    assert location.isascii()
    token = res.json["access_token"]
    assert Client(server.port).get(location, token=token).json["user"]["email"] == stored


def test_an_address_with_control_characters_is_refused(server: ServerThread) -> None:
    res = Client(server.port).post("/api/v1/auth/register", {
        "email": "a\x03b@example.com", "name": "Doc", "password": "correct horse battery"})
    assert res.status == 422, res.body
    assert [e["field"] for e in res.json["errors"]] == ["email"]
    assert "control" in res.json["errors"][0]["message"]


def test_a_query_parameter_given_twice_or_an_empty_limit_is_refused(
        server: ServerThread) -> None:
    client = Client(server.port)
    token = _token(client)
    res = client.get("/api/v1/activity?limit=5&limit=junk", token=token)
    assert res.status == 422, res.body
    assert res.json["errors"][0]["field"] == "limit"
    assert client.get("/api/v1/bot/history?limit=", token=token).status == 422
    # The document says kind may repeat, and it may.
    assert client.get("/api/v1/activity?kind=a&kind=b", token=token).status == 200


def test_a_405_says_which_methods_are_allowed(server: ServerThread) -> None:
    client = Client(server.port)
    res = client.request("PUT", "/api/v1/users/me")
    assert res.status == 405
    assert res.header("Allow") == "GET, DELETE, PATCH"
    assert (res.header("Content-Type") or "").startswith("application/problem+json")
    for path in ("/ws", "/widget/ws", "/support/ws"):
        res = client.request("POST", path)
        assert res.status == 405, path
        assert res.header("Allow") == "GET", path


def test_every_secured_operation_documents_401_and_every_body_413_415_400_422() -> None:
    from whatsease.api.openapi import build_document

    document = build_document()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            if operation.get("security", document["security"]):
                assert "401" in statuses, (path, method)
            if "requestBody" in operation:
                assert {"400", "413", "415", "422"} <= statuses, (path, method)
            for status in {"429", "503"} & statuses:
                response = operation["responses"][status]
                name = response["$ref"].rsplit("/", 1)[-1]
                headers = document["components"]["responses"][name].get("headers", {})
                probe = path in ("/healthz", "/readyz")  # the platform decides when to ask again
                assert "Retry-After" in headers or probe, (path, method, status)


def test_org_settings_that_are_not_an_object_are_refused(server: ServerThread) -> None:
    # `false`, `0` and `""` used to be taken for "no settings".
    root = platform_admin(server)
    refused: tuple[object, ...] = (False, 0, "", [])
    for settings in refused:
        res = root.client.post("/api/v1/orgs", {"name": "Shop", "settings": settings})
        assert res.status == 422, (settings, res.body)
        assert res.json["errors"][0]["field"] == "settings"


def test_a_whole_number_written_with_a_point_is_a_whole_number(server: ServerThread) -> None:
    # JSON Schema's "integer" admits 60.0; the server refused it.
    root = platform_admin(server)
    res = root.client.post("/api/v1/orgs", {"name": "Shop",
                                            "settings": {"session_timeout": 60.0}})
    assert res.status == 201, res.body
    assert res.json["org"]["settings"]["session_timeout"] == 60


def test_a_final_newline_does_not_slip_past_a_pattern(server: ServerThread) -> None:
    # Python's `$` matches before a final newline; the document's patterns do not.
    client = Client(server.port)
    token = _token(client)
    res = client.post("/api/v1/messages", {"recipient": "bot:whatsease", "content": "hi",
                                           "client_id": "c-1\n"}, token=token)
    assert res.status == 422, res.body
    assert res.json["errors"][0]["field"] == "client_id"
    root = platform_admin(server)
    for settings, field in (({"brand_color": "#0b6e4f\n"}, "brand_color"),
                            ({"allowed_origins": ["https://shop.example:٨٠"]},
                             "allowed_origins")):
        res = root.client.post("/api/v1/orgs", {"name": "Shop", "settings": settings})
        assert res.status == 422, (settings, res.body)
        assert res.json["errors"][0]["field"] == field
    res = root.client.post("/api/v1/orgs", {"name": "Shop", "id": "shop\n"})
    assert res.status == 422, res.body


def test_a_name_counts_what_was_sent(server: ServerThread) -> None:
    # The document's maxLength counts the characters sent; the server counted
    # them after collapsing runs of whitespace.
    client = Client(server.port)
    token = _token(client)
    res = client.patch("/api/v1/users/me", {"name": "A" + " " * 80 + "B"}, token=token)
    assert res.status == 422, res.body
    res = client.patch("/api/v1/users/me", {"name": "  Ann   Lee "}, token=token)
    assert res.status == 200, res.body
    assert res.json["user"]["name"] == "Ann Lee"


def _refused(check: Any, value: str) -> bool:
    try:
        check(value)
    except Unprocessable:
        return True
    return False


@pytest.mark.parametrize("char", [
    "\u200b",  # zero-width space (Cf)
    "\u00ad",  # soft hyphen (Cf)
    "\u202e",  # right-to-left override (Cf)
    "\U000e0001",  # language tag (Cf, astral)
    "\ue000",  # private use (Co)
    "\U000f0001",  # supplementary private use (Co, astral)
    "\u3000",  # ideographic space (Zs)
    "\u2028",  # line separator (Zl)
    "\x85",  # next line (Cc)
    "\u2800",  # braille blank
    "\uff20",  # full-width @: folds to a second @
])
def test_the_email_pattern_refuses_what_validation_email_refuses(char: str) -> None:
    schema = jsonschema_rs.validator_for(email_schema())
    address = f"an{char}na@example.com"
    assert not schema.is_valid(address)
    assert _refused(validation.email, address)
    assert schema.is_valid("anna.zoë@example.com")
    assert not _refused(validation.email, "anna.zoë@example.com")


@pytest.mark.parametrize(("text", "accepted"), [
    ("tab\there", True), ("two\nlines", True), ("old\r\nstyle", True),
    ("nul\x00", False), ("bell\x07", False), ("vt\x0b", False), ("ff\x0c", False),
    ("esc\x1b", False), ("del\x7f", False), ("c1\x85", False), ("c1\x9f", False),
    ("\u202e\u2066 \n", False),  # only bidi controls (removed) and whitespace
    ("\u202eevil", True),  # the override is removed, the text stays
])
def test_the_content_pattern_refuses_what_validation_content_refuses(text: str,
                                                                    accepted: bool) -> None:
    assert jsonschema_rs.validator_for(content_schema()).is_valid(text) is accepted
    assert _refused(validation.content, text) is not accepted


@pytest.mark.parametrize(("name", "accepted"), [
    ("Anna", True), ("😀", True), ("\u200dAnna", True),  # joiners stay inside a name
    ("\u200b\u200c", False),  # only zero-width characters
    ("\u0301 \u20dd", False),  # only combining marks
    ("\u3164", False),  # a Hangul filler: a blank letter
    ("Ann\u202ea", False),  # a bidi override
    ("   ", False), ("bell\x07", False),
])
def test_the_name_pattern_refuses_what_validation_name_refuses(name: str,
                                                              accepted: bool) -> None:
    assert jsonschema_rs.validator_for(name_schema()).is_valid(name) is accepted
    assert _refused(validation.name, name) is not accepted
