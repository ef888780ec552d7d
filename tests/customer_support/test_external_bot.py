"""An org's external chatbot: a fake OpenAI-compatible endpoint, as a real local HTTP server."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.customer_support.http import make_team, platform_admin, start_session, widget_socket
from tests.fake_completions import FakeCompletions
from tests.support import ServerThread

TOKEN = "sk-test-external-bot-5f1e2d"


@pytest.fixture
def completions() -> Iterator[FakeCompletions]:
    fake = FakeCompletions(lambda body: f"External says: {body['messages'][-1]['content']}")
    yield fake.start()
    fake.stop()


def test_the_external_chatbot_answers_and_failures_fall_back(
        server: ServerThread, completions: FakeCompletions,
        caplog: pytest.LogCaptureFixture) -> None:
    # Everything at the levels the server logs at, and all of our own loggers at DEBUG.
    # (The MongoDB driver's DEBUG command log echoes whole documents; it is never on.)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="whatsease")
    root = platform_admin(server)
    team = make_team(server, root, agents=0, chatbot={
        "kind": "external", "url": completions.url, "token": TOKEN, "model": "tiny-1"})
    session = start_session(server, team.key, "Ann", "ann@x.test")
    widget = widget_socket(server, session["token"])
    try:
        widget.call({"type": "send", "client_id": "q1", "content": "do you sell boots?"},
                    "ack")
        reply = widget.expect("message", lambda f: f["message"]["kind"] == "bot")
        assert reply["message"]["content"] == "External says: do you sell boots?"
        request = completions.requests[-1]
        assert request["authorization"] == f"Bearer {TOKEN}"
        assert request["body"]["model"] == "tiny-1"
        roles = [m["role"] for m in request["body"]["messages"]]
        assert roles[0] == "system" and roles[-1] == "user"

        completions.mode = "error"
        widget.call({"type": "send", "client_id": "q2", "content": "and shoes?"}, "ack")
        fallback = widget.expect("message", lambda f: f["message"]["kind"] == "bot"
                                 and f["message"]["message_id"] != reply["message"]["message_id"])
        assert "talk to a person" in fallback["message"]["content"]

        # Asking for a person is recognised before the external bot is asked.
        asked = len(completions.requests)
        widget.call({"type": "send", "client_id": "q3", "content": "talk to a person"}, "ack")
        queued = widget.expect("message", lambda f: "in the queue" in f["message"]["content"])
        assert queued["message"]["kind"] == "system"
        assert len(completions.requests) == asked
    finally:
        widget.close()
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in str(record.__dict__)
