"""Every bad input named in issue 2: the right status, a problem+json body, nothing half-written."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.api.checks import assert_problem
from tests.support import Client, ServerThread, User, register, unique_email

PASSWORD = "correct horse battery"
LIMIT_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def pair(server: ServerThread) -> tuple[User, User]:
    return register(server.port, "bada"), register(server.port, "badb")


@pytest.mark.parametrize("body", [b"{", b"{'a': 1}", b"not json", b"", b"\xff\xfe",
                                  b'{"email": "a@b.co",}'])
def test_malformed_json_is_400(server: ServerThread, body: bytes) -> None:
    res = Client(server.port).post("/api/v1/auth/register", body=body,
                                   headers={"Content-Type": "application/json"})
    assert_problem(res, 400)


@pytest.mark.parametrize("body", [b"[]", b"1", b'"text"', b"null"])
def test_json_that_is_not_an_object_is_400(server: ServerThread, body: bytes) -> None:
    res = Client(server.port).post("/api/v1/auth/login", body=body,
                                   headers={"Content-Type": "application/json"})
    assert_problem(res, 400)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "text/json", "application/jsonx"])
def test_wrong_content_type_is_415(server: ServerThread, pair: tuple[User, User],
                                   content_type: str | None) -> None:
    body = orjson.dumps({"recipient": pair[1].email, "content": "hi"})
    headers = {"Content-Type": content_type} if content_type else {}
    res = pair[0].client.post("/api/v1/messages", body=body, headers=headers)
    assert_problem(res, 415)
    # With a charset parameter the same body is fine.
    ok = pair[0].client.post("/api/v1/messages", body=body,
                             headers={"Content-Type": "application/json; charset=utf-8"})
    assert ok.status == 201, ok.body


def test_a_form_body_is_415_not_parsed_as_fields(server: ServerThread) -> None:
    body = (b"--b\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\nx@example.com\r\n"
            b"--b--\r\n")
    res = Client(server.port).post("/api/v1/auth/login", body=body,
                                   headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert_problem(res, 415)


@pytest.mark.parametrize("size", [LIMIT_BYTES + 1, 200 * 1024])
def test_body_over_64_kib_is_413(server: ServerThread, pair: tuple[User, User],
                                 size: int) -> None:
    padding = "x" * size
    for path, client in (("/api/v1/auth/register", Client(server.port)),
                         ("/api/v1/messages", pair[0].client)):
        res = client.post(path, body=orjson.dumps({"content": padding}),
                          headers={"Content-Type": "application/json"})
        assert_problem(res, 413)
    message = pair[0].client.post("/api/v1/messages",
                                  {"recipient": pair[1].email, "content": "edit me"}).json
    res = pair[0].client.patch(f"/api/v1/messages/{message['message']['message_id']}",
                               body=orjson.dumps({"content": padding}),
                               headers={"Content-Type": "application/json"})
    assert_problem(res, 413)


def test_a_body_over_the_server_cap_is_cut_off_without_harm(server: ServerThread) -> None:
    # Past 1 MiB Tornado stops reading and closes the connection before any
    # handler runs (app.MAX_BODY_BYTES); the client sees an error, the server goes on.
    try:
        res = Client(server.port).post("/api/v1/auth/register", body=b"x" * (2 * 1024 * 1024),
                                       headers={"Content-Type": "application/json"})
    except OSError:
        pass
    else:
        assert res.status in (400, 413)
    assert Client(server.port).get("/healthz").status == 200


def test_a_body_just_under_the_limit_is_read(server: ServerThread) -> None:
    body = orjson.dumps({"email": "not an email", "name": "n", "password": "p" * 10,
                         "pad": "x" * (LIMIT_BYTES - 200)})
    assert len(body) <= LIMIT_BYTES
    res = Client(server.port).post("/api/v1/auth/register", body=body,
                                   headers={"Content-Type": "application/json"})
    assert_problem(res, 422, "pad")


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "N", "password": PASSWORD}, "email"),
    ({"email": "x@example.com", "password": PASSWORD}, "name"),
    ({"email": "x@example.com", "name": "N"}, "password"),
    ({"email": "x@example.com", "name": "N", "password": PASSWORD, "role": "admin"}, "role"),
    ({"email": 5, "name": "N", "password": PASSWORD}, "email"),
    ({"email": "x@example.com", "name": ["N"], "password": PASSWORD}, "name"),
    ({"email": "x@example.com", "name": "N", "password": None}, "password"),
    ({"email": "x@example.com", "name": "N" * 81, "password": PASSWORD}, "name"),
    ({"email": "x@example.com", "name": "a\u0007b", "password": PASSWORD}, "name"),
    ({"email": "x@example.com", "name": "   ", "password": PASSWORD}, "name"),
    ({"email": "x@example.com", "name": "N", "password": "p" * 257}, "password"),
])
def test_register_missing_unknown_or_invalid_field_is_422(server: ServerThread,
                                                          body: dict[str, Any],
                                                          field: str) -> None:
    res = Client(server.port).post("/api/v1/auth/register", body)
    assert_problem(res, 422, field)


@pytest.mark.parametrize("email", ["plain", "no-at.example.com", "a@b", "a@@b.com", "a b@c.com",
                                   "a@b.c", "@example.com", "a@exa\nmple.com", "x" * 250 + "@e.co"])
def test_invalid_email_is_422(server: ServerThread, email: str) -> None:
    res = Client(server.port).post("/api/v1/auth/register",
                                   {"email": email, "name": "N", "password": PASSWORD})
    assert_problem(res, 422, "email")


def test_password_under_8_characters_is_422(server: ServerThread) -> None:
    email = unique_email("short")
    res = Client(server.port).post("/api/v1/auth/register",
                                   {"email": email, "name": "N", "password": "1234567"})
    body = assert_problem(res, 422, "password")
    assert "8" in body["detail"]
    assert server.call(server.services.store.users.get(email)) is None


def test_duplicate_email_is_409_case_insensitively(server: ServerThread) -> None:
    user = register(server.port, "twice")
    res = Client(server.port).post("/api/v1/auth/register",
                                   {"email": user.email.upper(), "name": "N",
                                    "password": PASSWORD})
    assert_problem(res, 409, "email")


@pytest.mark.parametrize(("content", "fragment"), [
    ("", "empty"), ("   ", "empty"), ("\n\t \u3000", "empty"), ("x" * 4097, "4096"),
    (" " + "x" * 4097 + " ", "4096"), (None, "string"), (42, "string"), (["hi"], "string"),
])
def test_bad_content_is_422(server: ServerThread, pair: tuple[User, User], content: Any,
                            fragment: str) -> None:
    res = pair[0].client.post("/api/v1/messages", {"recipient": pair[1].email, "content": content})
    body = assert_problem(res, 422, "content")
    assert fragment in body["detail"]


def test_content_of_exactly_4096_characters_after_trimming_is_accepted(
        pair: tuple[User, User]) -> None:
    res = pair[0].client.post("/api/v1/messages",
                              {"recipient": pair[1].email, "content": "  " + "é" * 4096 + "\n"})
    assert res.status == 201, res.body
    assert res.json["message"]["content"] == "é" * 4096


@pytest.mark.parametrize(("body", "field"), [
    ({"content": "hi"}, "recipient"),
    ({"recipient": "b@example.com"}, "content"),
    ({"recipient": "b@example.com", "content": "hi", "status": "Read"}, "status"),
    ({"recipient": "not-an-email", "content": "hi"}, "recipient"),
    ({"recipient": "bot:Bad Name", "content": "hi"}, "recipient"),
    ({"recipient": 7, "content": "hi"}, "recipient"),
    ({"recipient": "b@example.com", "content": "hi", "client_id": "has space"}, "client_id"),
    ({"recipient": "b@example.com", "content": "hi", "client_id": "x" * 65}, "client_id"),
    ({"recipient": "b@example.com", "content": "hi", "client_id": 3}, "client_id"),
])
def test_message_missing_unknown_or_invalid_field_is_422(pair: tuple[User, User],
                                                         body: dict[str, Any],
                                                         field: str) -> None:
    assert_problem(pair[0].client.post("/api/v1/messages", body), 422, field)


def test_message_to_oneself_is_422(pair: tuple[User, User]) -> None:
    res = pair[0].client.post("/api/v1/messages", {"recipient": pair[0].email, "content": "me"})
    assert_problem(res, 422, "recipient")


@pytest.mark.parametrize("recipient", ["nobody.here@example.com", "bot:nosuchbot"])
def test_unknown_recipient_is_404(pair: tuple[User, User], recipient: str) -> None:
    res = pair[0].client.post("/api/v1/messages", {"recipient": recipient, "content": "hello?"})
    assert_problem(res, 404)


@pytest.mark.parametrize(("query", "field"), [
    ("", "with"), ("?with=not-an-email", "with"), ("?with={peer}&limit=0", "limit"),
    ("?with={peer}&limit=101", "limit"), ("?with={peer}&limit=ten", "limit"),
    ("?with={peer}&before=xyz", "before"),
])
def test_bad_history_query_is_422(pair: tuple[User, User], query: str, field: str) -> None:
    res = pair[0].client.get("/api/v1/messages" + query.format(peer=pair[1].email))
    assert_problem(res, 422, field)


@pytest.mark.parametrize(("path", "field"), [
    ("/api/v1/chats?filter=everything", "filter"), ("/api/v1/chats?q=" + "q" * 101, "q"),
    ("/api/v1/users?q=" + "q" * 101, "q"), ("/api/v1/users?q=a&limit=51", "limit"),
    ("/api/v1/activity?limit=201", "limit"), ("/api/v1/activity?before=nope", "before"),
])
def test_bad_list_query_is_422(pair: tuple[User, User], path: str, field: str) -> None:
    assert_problem(pair[0].client.get(path), 422, field)


@pytest.mark.parametrize(("body", "field"), [
    ({}, "content"), ({"content": "a", "status": "Read"}, "content"),
    ({"status": "Seen"}, "status"), ({"status": 1}, "status"), ({"content": ""}, "content"),
    ({"content": "a", "extra": 1}, "extra"),
])
def test_bad_message_patch_is_422(pair: tuple[User, User], body: dict[str, Any],
                                  field: str) -> None:
    sent = pair[0].client.post("/api/v1/messages", {"recipient": pair[1].email,
                                                    "content": "patch me"}).json["message"]
    client = pair[1].client if "status" in body and "content" not in body else pair[0].client
    assert_problem(client.patch(f"/api/v1/messages/{sent['message_id']}", body), 422, field)


@pytest.mark.parametrize(("body", "field"), [
    ({}, "name"), ({"name": ""}, "name"), ({"name": "N", "email": "x@y.co"}, "email"),
    ({"name": "x" * 81}, "name"),
])
def test_bad_profile_patch_is_422(pair: tuple[User, User], body: dict[str, Any],
                                  field: str) -> None:
    assert_problem(pair[0].client.patch("/api/v1/users/me", body), 422, field)


def test_unknown_routes_and_methods_are_problems(server: ServerThread,
                                                 pair: tuple[User, User]) -> None:
    assert_problem(pair[0].client.get("/api/v1/nope"), 404)
    assert_problem(pair[0].client.get("/api/v2/messages"), 404)
    assert_problem(pair[0].client.request("PUT", "/api/v1/messages", {"a": 1}), 405)
    assert_problem(Client(server.port).get("/api/v1/auth/register"), 405)


def test_unauthenticated_requests_are_401_with_bearer_challenge(server: ServerThread) -> None:
    client = Client(server.port)
    for method, path in [("GET", "/api/v1/users/me"), ("GET", "/api/v1/users?q=a"),
                         ("GET", "/api/v1/chats"), ("POST", "/api/v1/messages"),
                         ("GET", "/api/v1/messages?with=a@b.co"),
                         ("GET", "/api/v1/messages/0123456789abcdef01234567"),
                         ("DELETE", "/api/v1/users/me"), ("GET", "/api/v1/activity"),
                         ("GET", "/api/v1/auth/sessions"), ("POST", "/api/v1/auth/logout")]:
        res = client.request(method, path, {} if method == "POST" else None)
        assert_problem(res, 401)


def test_the_server_survives_all_of_the_above(server: ServerThread) -> None:
    assert Client(server.port).get("/healthz").status == 200
