"""Passwords (issue 16 item 4): strength, change, and one-time reset links (CLI and email)."""

from __future__ import annotations

import email.policy
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.api.checks import assert_problem
from tests.support import Client, ServerThread, User, register, unique_email, wait_for
from whatsease.auth.cli import reset_link
from whatsease.auth.service import AuthService
from whatsease.services import Services
from whatsease.timeutil import utcnow

NEW_PASSWORD = "purple otter vending machine"
ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.parametrize(("password", "said"), [
    ("password", "common password"),
    ("        ", "Repeats"),
    ("12345678", "common password"),
    ("qwertyuiop", "sequence"),
])
def test_common_and_guessable_passwords_are_refused(server: ServerThread, password: str,
                                                    said: str) -> None:
    res = Client(server.port).post("/api/v1/auth/register", {
        "email": unique_email("weak"), "name": "Weak", "password": password})
    problem = assert_problem(res, 422, "password")
    assert "too easy to guess" in problem["detail"]
    assert said.lower() in problem["detail"].lower() or "guess" in problem["detail"]


def test_a_password_made_of_the_account_name_is_refused(server: ServerThread) -> None:
    email = unique_email("margarethe")
    res = Client(server.port).post("/api/v1/auth/register", {
        "email": email, "name": "Margarethe Vandersloot",
        "password": "MargaretheVandersloot"})
    assert_problem(res, 422, "password")


@pytest.mark.parametrize("length", [73, 100, 256])
def test_a_long_password_is_estimated_not_a_500(server: ServerThread, length: int) -> None:
    # zxcvbn raises on input over 72 characters; a password of up to 256 is ours to accept.
    strong = ("purple otter vending machine " * 10)[:length]
    client = Client(server.port)
    res = client.post("/api/v1/auth/register", {
        "email": unique_email("long"), "name": "Long", "password": strong})
    assert res.status == 201, res.body
    weak = client.post("/api/v1/auth/register", {
        "email": unique_email("long"), "name": "Long", "password": "a" * length})
    assert_problem(weak, 422, "password")
    me = Client(server.port, token=res.json["access_token"])
    changed = me.post("/api/v1/auth/password", {"current_password": strong,
                                                "new_password": strong[::-1]})
    assert changed.status == 204, changed.body


def _login(server: ServerThread, user: User, password: str) -> Any:
    return Client(server.port).post("/api/v1/auth/login",
                                    {"email": user.email, "password": password})


def test_a_password_change_ends_the_other_sessions(server: ServerThread) -> None:
    me = register(server.port, "changer")
    other = _login(server, me, me.password)
    assert other.status == 200
    path = "/api/v1/auth/password"
    wrong = me.client.post(path, {"current_password": "not it at all",
                                  "new_password": NEW_PASSWORD})
    assert_problem(wrong, 422, "current_password")
    weak = me.client.post(path, {"current_password": me.password, "new_password": "password1"})
    assert_problem(weak, 422, "new_password")
    res = me.client.post(path, {"current_password": me.password, "new_password": NEW_PASSWORD})
    assert res.status == 204, res.body
    # This session goes on; the other one has ended.
    assert me.client.get("/api/v1/users/me").status == 200
    assert_problem(Client(server.port, token=other.json["access_token"]).get(
        "/api/v1/users/me"), 401)
    assert_problem(Client(server.port).post("/api/v1/auth/refresh", {
        "refresh_token": other.json["refresh_token"]}), 401)
    assert _login(server, me, me.password).status == 401
    assert _login(server, me, NEW_PASSWORD).status == 200


def test_a_password_change_needs_a_session(server: ServerThread) -> None:
    res = Client(server.port).post("/api/v1/auth/password", {
        "current_password": "x" * 10, "new_password": NEW_PASSWORD})
    assert_problem(res, 401)


def _token(link: str) -> str:
    assert "#" in link, link
    return link.split("#", 1)[1]


def test_an_operator_reset_link_works_once(server: ServerThread, mongo_uri: str) -> None:
    me = register(server.port, "forgetful")
    lines: list[str] = []
    link = server.call(reset_link(server.config, mongo_uri, me.email, out=lines.append))
    assert link in lines
    assert link.startswith(f"http://localhost:{server.config.port}/reset-password#")
    confirm = "/api/v1/auth/password-reset/confirm"
    weak = Client(server.port).post(confirm, {"token": _token(link), "password": "password"})
    assert_problem(weak, 422, "password")
    res = Client(server.port).post(confirm, {"token": _token(link), "password": NEW_PASSWORD})
    assert res.status == 204, res.body
    assert_problem(me.client.get("/api/v1/users/me"), 401)  # every session ended
    assert _login(server, me, NEW_PASSWORD).status == 200
    again = Client(server.port).post(confirm, {"token": _token(link),
                                               "password": "another fine password"})
    assert_problem(again, 422, "token")
    forged = Client(server.port).post(confirm, {"token": "A" * 43, "password": NEW_PASSWORD})
    assert_problem(forged, 422, "token")


def test_a_newer_link_voids_the_older_one(server: ServerThread, mongo_uri: str) -> None:
    me = register(server.port, "twice")
    first = server.call(reset_link(server.config, mongo_uri, me.email, out=lambda _: None))
    second = server.call(reset_link(server.config, mongo_uri, me.email, out=lambda _: None))
    confirm = "/api/v1/auth/password-reset/confirm"
    assert_problem(Client(server.port).post(confirm, {"token": _token(first),
                                                      "password": NEW_PASSWORD}), 422, "token")
    assert Client(server.port).post(confirm, {"token": _token(second),
                                              "password": NEW_PASSWORD}).status == 204


async def test_an_expired_link_is_refused(services: Services) -> None:
    await services.auth.register("late@reset.example", "Late", NEW_PASSWORD)
    long_ago = utcnow() - timedelta(days=1)
    past = AuthService(services.config, services.store, services.activity, services.hub,
                       clock=lambda: long_ago)
    link = await past.resets.issue("late@reset.example")
    with pytest.raises(Exception, match="expired"):
        await services.auth.resets.redeem(_token(link), "another fine password")


def test_the_cli_prints_a_link(server: ServerThread, mongo_uri: str) -> None:
    me = register(server.port, "clireset")
    env = {**os.environ, "WHATSEASE_MONGODB_URI": mongo_uri,
           "WHATSEASE_DB_NAME": server.config.db_name,
           "WHATSEASE_PUBLIC_URL": "https://chat.example.test"}
    done = subprocess.run([sys.executable, "-m", "whatsease", "user", "reset-link", me.email],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    link = done.stdout.strip().splitlines()[-1]
    assert link.startswith("https://chat.example.test/reset-password#")
    res = Client(server.port).post("/api/v1/auth/password-reset/confirm",
                                   {"token": _token(link), "password": NEW_PASSWORD})
    assert res.status == 204, res.body
    missing = subprocess.run(
        [sys.executable, "-m", "whatsease", "user", "reset-link", "nobody@nowhere.example"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "No account" in missing.stderr


class Inbox:
    """What a real (local) SMTP server received."""

    def __init__(self) -> None:
        self.mails: list[dict[str, str]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        body = message.get_body(("plain",))
        assert body is not None
        with self.lock:
            self.mails.append({"to": ",".join(envelope.rcpt_tos),
                               "subject": str(message["Subject"]),
                               "body": body.get_content()})
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    box = Inbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def test_people_can_ask_for_a_link_by_email(make_server: Callable[..., ServerThread],
                                            inbox: tuple[Inbox, int]) -> None:
    box, port = inbox
    mailing = make_server(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none",
                          smtp_from="noreply@whatsease.test",
                          public_url="https://chat.example.test")
    me = register(mailing.port, "mailme")
    path = "/api/v1/auth/password-reset"
    res = Client(mailing.port).post(path, {"email": me.email.upper()})
    assert res.status == 202, res.body
    mail = wait_for(lambda: box.mails[0] if box.mails else None, timeout=15)
    assert mail["to"] == me.email
    link = next(w for w in mail["body"].split() if w.startswith("https://"))
    assert link.startswith("https://chat.example.test/reset-password#")
    assert Client(mailing.port).post(f"{path}/confirm", {
        "token": _token(link), "password": NEW_PASSWORD}).status == 204

    # An unknown address is answered the same, and no mail goes out.
    unknown = Client(mailing.port).post(path, {"email": "nobody@nowhere.example"})
    assert unknown.status == 202
    mailing.call(mailing.services.auth.resets.drain())
    assert len(box.mails) == 1
    # A mailbox cannot be flooded.
    statuses = [Client(mailing.port).post(path, {"email": me.email}).status for _ in range(4)]
    assert statuses[-1] == 429


def test_without_smtp_people_are_told_to_ask_the_operator(server: ServerThread) -> None:
    res = Client(server.port).post("/api/v1/auth/password-reset", {"email": "a@b.example"})
    problem = assert_problem(res, 404)
    assert "operator" in problem["detail"]
    page = Client(server.port).get("/reset-password")
    assert page.status == 200 and b"reset.js" in page.body
    assert page.header("Referrer-Policy") == "no-referrer"
    assert "connect-src 'self'" in (page.header("Content-Security-Policy") or "")


def test_the_strength_estimator_is_read_at_the_first_check_not_at_start_up() -> None:
    # Its word lists are ~12 MiB that an idle server does without.
    probe = ("import sys, whatsease.app\n"
             "from whatsease.auth.passwords import _weakness\n"
             "assert 'zxcvbn' not in sys.modules, 'read at start-up'\n"
             "assert _weakness('password1', []) is not None\n"
             "assert _weakness('purple otter vending machine', []) is None\n"
             "assert 'zxcvbn' in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
