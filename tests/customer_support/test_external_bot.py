"""An org's external chatbot: a fake OpenAI-compatible endpoint, as a real local HTTP server."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.customer_support.http import make_team, platform_admin, start_session, widget_socket
from tests.support import ServerThread

TOKEN = "sk-test-external-bot-5f1e2d"


class FakeCompletions:
    """Answers POST /v1/chat/completions like an OpenAI-compatible server, or fails on demand."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "body": body,
                                      "authorization": self.headers.get("Authorization")})
                if fake.fail:
                    self.send_response(500)
                    self.end_headers()
                    return
                last = body["messages"][-1]["content"]
                answer = {"choices": [{"message": {"role": "assistant",
                                                   "content": f"External says: {last}"}}]}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1/chat/completions"


@pytest.fixture
def completions() -> Iterator[FakeCompletions]:
    fake = FakeCompletions()
    fake.thread.start()
    yield fake
    fake.httpd.shutdown()
    fake.httpd.server_close()


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

        completions.fail = True
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
