"""The outbound guard against real local HTTP servers, with an injected resolver for DNS."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from whatsease.net.outbound import (
    OutboundError,
    OutboundPolicy,
    OutboundRefused,
    check_url,
    post_json,
)

STRICT = OutboundPolicy()
DEV = OutboundPolicy(allow_private=True, timeout=2.0, max_response_bytes=1024)


class Recorder:
    """A local HTTP server whose answer a test chooses: ok, redirect, huge or hang."""

    def __init__(self, mode: str = "ok", location: str = "") -> None:
        self.mode = mode
        self.location = location
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                recorder.requests.append({"path": self.path, "host": self.headers["Host"]})
                if recorder.mode == "hang":
                    recorder.release.wait(10)
                    return
                if recorder.mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", recorder.location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = b"x" * 1_000_000 if recorder.mode == "huge" else b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/hook"

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.stop()


@pytest.mark.parametrize("url", [
    "http://bot.example/v1",                     # plain http
    "https://127.0.0.1/v1",
    "https://2130706433/v1",                     # 127.0.0.1 as one number
    "https://0x7f.1/v1",                         # and in hex shorthand
    "https://127.1/v1",
    "https://[::1]/v1",
    "https://[::ffff:127.0.0.1]/v1",             # IPv4-mapped IPv6
    "https://[::ffff:10.0.0.1]/v1",
    "https://[64:ff9b::a9fe:a9fe]/v1",           # NAT64 of 169.254.169.254
    "https://[2002:a00:1::]/v1",                 # 6to4 of 10.0.0.1
    "https://169.254.169.254/latest/meta-data",  # cloud metadata
    "https://[fd00:ec2::254]/",                  # the IPv6 metadata address
    "https://10.1.2.3/", "https://172.16.0.1/", "https://192.168.1.1/",
    "https://100.64.0.1/",                       # CGNAT
    "https://[fe80::1]/", "https://[fc00::1]/",
    "https://224.0.0.1/", "https://[ff02::1]/",  # multicast
    "https://0.0.0.0/", "https://[::]/", "https://240.0.0.1/",
    "https://localhost/", "https://api.localhost/",
    "https://user:pw@bot.example/",
    "ftp://bot.example/", "file:///etc/passwd",
])
def test_urls_that_reach_private_places_are_refused_before_any_dns(url: str) -> None:
    with pytest.raises(OutboundRefused):
        check_url(url, STRICT)


def test_public_https_urls_pass_the_static_check() -> None:
    target = check_url("https://Bücher.example:8443/v1/chat?x=1", STRICT)
    assert (target.scheme, target.host, target.port) == ("https", "xn--bcher-kva.example", 8443)
    assert target.path == "/v1/chat?x=1"
    assert check_url("https://93.184.216.34/", STRICT).host == "93.184.216.34"


async def test_a_name_that_resolves_to_a_private_address_is_refused() -> None:
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return {"rebind.example": ["10.0.0.7"],
                "mixed.example": ["93.184.216.34", "127.0.0.1"],
                "mapped.example": ["::ffff:169.254.169.254"]}[host]

    policy = OutboundPolicy(resolver=resolver)
    for host in ("rebind.example", "mixed.example", "mapped.example"):
        with pytest.raises(OutboundRefused, match="private or local"):
            await post_json(f"https://{host}/v1", b"{}", policy)
    assert asked == ["rebind.example", "mixed.example", "mapped.example"]


async def test_it_connects_to_the_checked_address_and_names_the_host(
        recorder: Recorder) -> None:
    # The name resolves once, to the address the guard checked; the request
    # goes there with the name in Host, so no second lookup can redirect it.
    lookups: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    policy = OutboundPolicy(allow_private=True, timeout=2.0, resolver=resolver)
    response = await post_json(recorder.url("api.tenant.test"), b"{}", policy)
    assert response.status == 200 and response.body == b'{"ok": true}'
    assert lookups == ["api.tenant.test"]
    assert recorder.requests == [{"path": "/hook", "host": f"api.tenant.test:{recorder.port}"}]


async def test_redirects_are_not_followed(recorder: Recorder) -> None:
    target = Recorder()
    try:
        recorder.mode, recorder.location = "redirect", target.url()
        with pytest.raises(OutboundError, match="redirect"):
            await post_json(recorder.url(), b"{}", DEV)
        assert len(recorder.requests) == 1
        assert target.requests == []
    finally:
        target.stop()


async def test_the_answer_size_is_bounded(recorder: Recorder) -> None:
    recorder.mode = "huge"
    with pytest.raises(OutboundError, match="larger than 1024 bytes"):
        await post_json(recorder.url(), b"{}", DEV)


async def test_the_time_is_bounded(recorder: Recorder) -> None:
    recorder.mode = "hang"
    started = time.monotonic()
    with pytest.raises(OutboundError, match="no answer"):
        await post_json(recorder.url(), b"{}", OutboundPolicy(allow_private=True, timeout=0.5))
    assert time.monotonic() - started < 3


async def test_the_development_setting_is_needed_for_loopback(recorder: Recorder) -> None:
    with pytest.raises(OutboundRefused):
        await post_json(recorder.url(), b"{}", STRICT)
    assert recorder.requests == []
