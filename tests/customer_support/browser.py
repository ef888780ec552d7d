"""Browser-test helpers for support: a customer's website on another origin, console login."""

from __future__ import annotations

import html
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from playwright.sync_api import Locator, Page, expect

from tests.support import User
from whatsease.timeutil import utcnow

LIVE_MS = 10_000
STYLE_NONCE = "host-page-style"


class HostSite:
    """A plain website at http://127.0.0.1:PORT (another origin than the WhatsEase server).

    ``/<key>/index.html`` and ``/<key>/other.html`` embed the widget of the org
    with that widget key, exactly as the README tells site owners to.
    """

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) != 2 or parts[1] not in ("index.html", "other.html"):
                    self.send_error(404)
                    return
                body = site.page(parts[0], parts[1]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Security-Policy", site.csp())
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> HostSite:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, key: str, page: str = "index.html") -> str:
        return f"{self.origin}/{key}/{page}"

    def csp(self) -> str:
        """A strict policy, as a careful shop would set: the widget needs only its own host."""
        ws_url = self.server_url.replace("http://", "ws://", 1)
        return (f"default-src 'none'; script-src {self.server_url}; "
                f"connect-src {self.server_url} {ws_url}; style-src 'nonce-{STYLE_NONCE}'; "
                "img-src 'self'; base-uri 'none'")

    def page(self, key: str, name: str) -> str:
        title = "Shoe shop" if name == "index.html" else "Shoe shop: delivery"
        other = "other.html" if name == "index.html" else "index.html"
        script = html.escape(f"{self.server_url}/widget.js")
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style nonce="{STYLE_NONCE}">body {{ font-family: serif; color: #222; }}
button {{ background: hotpink; }}</style>
</head><body><main><h1>{title}</h1><p>Boots, sandals and slippers.</p>
<p><a href="{other}">Another page</a></p></main>
<script src="{script}" data-org="{html.escape(key)}" async></script>
</body></html>"""


class OffsetClock:
    """Real time plus an offset the test can move forward (the server's support clock)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


def bubble(page: Page) -> Locator:
    return page.locator("[data-whatsease-widget] .bubble")


def dialog(page: Page) -> Locator:
    return page.get_by_role("dialog")


def widget_messages(page: Page) -> Locator:
    return page.locator("[data-whatsease-widget] .log .msg")


def widget_send(page: Page, text: str) -> None:
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")


def console_login(page: Page, base_url: str, user: User) -> None:
    page.goto(f"{base_url}/agent")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#conn-status")).to_have_text("(Online)", timeout=LIVE_MS)


def panel(page: Page, customer: str) -> Locator:
    return page.get_by_role("tabpanel", name=customer)
