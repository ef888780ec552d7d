"""Fake chat-platform APIs as real local HTTP servers: Meta's Graph API, Telegram's
Bot API and a loopback peer.

Services outside our control, so tests talk to these over real HTTP. Each one
records every request (`Recorded`) and answers like the platform does; a test
scripts failures with `fail_next` (status codes answered in order before the
normal answer) and waits for requests with `wait_for`.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass(frozen=True)
class Raw:
    """An answer that is not JSON: a file's bytes and its content type."""

    body: bytes
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]      # names in lower case
    body: Any                    # the JSON body, or None
    at: float = 0.0              # time.monotonic() when it arrived


class FakePlatform:
    """A threaded local HTTP server that records requests and answers through ``answer``."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.failures: list[tuple[int, dict[str, Any], Callable[[Recorded], bool] | None]] = []
        # Files served by path (a platform's media downloads): path -> Raw.
        self.files: dict[str, Raw] = {}
        self.delay = 0.0
        self._lock = threading.Condition()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # One write per answer, sent at once: headers and body in separate small
            # writes would wait on delayed ACKs (40 ms each) like no real API does.
            wbufsize = 1 << 16
            disable_nagle_algorithm = True

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                record = Recorded(self.command, self.path,
                                  {k.lower(): v for k, v in self.headers.items()}, body,
                                  time.monotonic())
                if fake.delay:
                    time.sleep(fake.delay)
                status, answer = fake._next_answer(record)
                with fake._lock:
                    fake.requests.append(record)
                    fake._lock.notify_all()
                if isinstance(answer, Raw):
                    data, content_type = answer.body, answer.content_type
                else:
                    data, content_type = json.dumps(answer).encode(), "application/json"
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = _handle
            do_GET = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> Self:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def fail_next(self, *statuses: int, body: dict[str, Any] | None = None,
                  when: Callable[[Recorded], bool] | None = None) -> None:
        """Answer the next requests (those ``when`` accepts, if given) with these statuses
        (and ``body``), in order."""
        with self._lock:
            self.failures.extend((s, body or self.error_body(s), when) for s in statuses)

    def error_body(self, status: int) -> dict[str, Any]:
        return {"error": {"message": f"fake error {status}", "code": status}}

    def _next_answer(self, record: Recorded) -> tuple[int, dict[str, Any] | Raw]:
        with self._lock:
            for i, (status, body, when) in enumerate(self.failures):
                if when is None or when(record):
                    del self.failures[i]
                    return status, body
            file = self.files.get(record.path) if record.method == "GET" else None
        if file is not None:
            return 200, file
        return self.answer(record)

    def answer(self, record: Recorded) -> tuple[int, dict[str, Any]]:
        return 200, {}

    def matching(self, predicate: Callable[[Recorded], bool]) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if predicate(r)]

    def wait_for(self, predicate: Callable[[Recorded], bool], count: int = 1,
                 timeout: float = 10.0) -> list[Recorded]:
        """Block until ``count`` recorded requests satisfy ``predicate``; AssertionError after
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [r for r in self.requests if predicate(r)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} matching requests, got {len(found)}: "
                                         f"{[(r.method, r.path, r.body) for r in self.requests]}")
                self._lock.wait(left)


class FakeGraphAPI(FakePlatform):
    """Meta's Graph API for WhatsApp: ``POST /{version}/{phone_number_id}/messages`` answers
    like Meta (a ``wamid`` per message; ``{"success": true}`` for a read receipt) and
    ``GET /{version}/{media_id}`` answers a media URL."""

    version = "v21.0"

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1)
        # Message ids to answer before the counted ones (a test that must know one first).
        self.next_ids: list[str] = []
        # Media metadata answered for GET /{version}/{media_id}: media_id -> fields
        # (url, mime_type, file_size...) that replace the defaults.
        self.media_info: dict[str, dict[str, Any]] = {}

    def add_media(self, media_id: str, content: bytes, content_type: str = "image/jpeg",
                  **info: Any) -> str:
        """Serve ``content`` as media ``media_id`` (at the URL the metadata names); the path."""
        path = f"/media/{media_id}"
        self.files[path] = Raw(content, content_type)
        self.media_info[media_id] = {"mime_type": content_type, "file_size": len(content),
                                     **info}
        return path

    @property
    def graph_url(self) -> str:
        return f"{self.base_url}/{self.version}"

    def answer(self, record: Recorded) -> tuple[int, dict[str, Any]]:
        body = record.body if isinstance(record.body, dict) else {}
        if record.method == "POST" and record.path.endswith("/messages"):
            if body.get("status") == "read":
                return 200, {"success": True}
            to = str(body.get("to", ""))
            with self._lock:
                forced = self.next_ids.pop(0) if self.next_ids else None
            return 200, {"messaging_product": "whatsapp",
                         "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
                         "messages": [{"id": forced or f"wamid.FAKE{next(self._ids):08d}"}]}
        if record.method == "GET" and record.path.startswith(f"/{self.version}/"):
            media_id = record.path.rsplit("/", 1)[-1]
            return 200, {"messaging_product": "whatsapp", "id": media_id,
                         "url": f"{self.base_url}/media/{media_id}", "mime_type": "image/jpeg",
                         "sha256": "0" * 64, "file_size": 1,
                         **self.media_info.get(media_id, {})}
        return 404, self.error_body(404)

    def sent_messages(self) -> list[Recorded]:
        return self.matching(lambda r: r.path.endswith("/messages")
                             and isinstance(r.body, dict) and r.body.get("status") != "read")

    def read_receipts(self) -> list[Recorded]:
        return self.matching(lambda r: r.path.endswith("/messages")
                             and isinstance(r.body, dict) and r.body.get("status") == "read")


class FakeTelegramAPI(FakePlatform):
    """Telegram's Bot API: ``POST /bot<token>/<method>`` with Telegram's ``{"ok", "result"}``
    answers for sendMessage, answerCallbackQuery, setWebhook and getMe."""

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(100)

    @property
    def api_url(self) -> str:
        return self.base_url

    def error_body(self, status: int) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": status,
                                "description": f"fake error {status}"}
        if status == 429:
            body["parameters"] = {"retry_after": 0}
        return body

    def answer(self, record: Recorded) -> tuple[int, dict[str, Any]]:
        method = record.path.rsplit("/", 1)[-1]
        body = record.body if isinstance(record.body, dict) else {}
        if method == "sendMessage":
            return 200, {"ok": True, "result": {
                "message_id": next(self._ids), "date": int(time.time()),
                "chat": {"id": body.get("chat_id"), "type": "private"},
                "text": body.get("text", "")}}
        if method == "getFile":
            file_id = str(body.get("file_id", ""))
            return 200, {"ok": True, "result": {"file_id": file_id, "file_size": 4,
                                                "file_path": f"photos/{file_id}.jpg"}}
        if method in ("answerCallbackQuery", "setWebhook", "deleteWebhook"):
            return 200, {"ok": True, "result": True}
        if method == "getMe":
            return 200, {"ok": True, "result": {"id": 1, "is_bot": True, "first_name": "Fake",
                                                "username": "fake_bot"}}
        return 404, self.error_body(404)

    def calls(self, method: str) -> list[Recorded]:
        return self.matching(lambda r: r.path.endswith("/" + method))


class FakeLoopbackPeer(FakePlatform):
    """A loopback peer: accepts the provider's replies and answers ``{"id": ...}``."""

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1)

    @property
    def peer_url(self) -> str:
        return f"{self.base_url}/replies"

    def answer(self, record: Recorded) -> tuple[int, dict[str, Any]]:
        return 200, {"id": f"peer-{next(self._ids)}"}
