"""A fake OpenAI-compatible chat-completions service, as a real local HTTP server.

For the language-model fallback and organisations' external chatbots: services
outside our control, so tests talk to this instead, over real HTTP.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeCompletions:
    """Answers ``POST .../chat/completions``; ``mode`` is "ok", "slow" (hangs) or "error" (500).

    ``answer`` turns the request body into the reply text. Every request is
    kept in ``requests`` as {"path", "body", "authorization"}.
    """

    def __init__(self, answer: Callable[[dict[str, Any]], str] | None = None) -> None:
        self.mode = "ok"
        self.answer = answer or (lambda body: "From the model: Lima.")
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "body": body,
                                      "authorization": self.headers.get("Authorization")})
                if fake.mode == "slow":
                    fake.release.wait(10)
                if fake.mode == "error":
                    self.send_response(500)
                    self.end_headers()
                    return
                reply = {"choices": [{"message": {"role": "assistant",
                                                  "content": fake.answer(body)}}]}
                data = json.dumps(reply).encode()
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

    def start(self) -> FakeCompletions:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
