"""Steps the browser tests share: signing up and in through the UI, finding chats, reading ticks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect

from tests.support import User, unique_email

PASSWORD = "correct horse battery"
AXE_JS = Path(__file__).parent / ".axe" / "node_modules" / "axe-core" / "axe.min.js"
# Long enough for a round trip through the server and the other browser.
LIVE_MS = 10_000


def register_ui(page: Page, base_url: str, name: str, prefix: str = "user") -> str:
    """Create an account through the registration form; returns the email. Ends on the inbox."""
    email = unique_email(prefix)
    page.goto(f"{base_url}/register")
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(f"{base_url}/")
    expect(page.locator("#chat-list")).to_have_attribute("aria-busy", "false")
    return email


def login_ui(page: Page, base_url: str, user: User, path: str = "/") -> None:
    """Log in through the form (the page may already be on /login)."""
    if "/login" not in page.url:
        page.goto(f"{base_url}/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base_url}{path}")
    wait_online(page)


def wait_online(page: Page, timeout: float = LIVE_MS) -> None:
    """Wait until the socket is authenticated and the first sync has been asked for."""
    expect(page.locator("#app")).to_have_attribute("data-connection", "online", timeout=timeout)
    expect(page.locator("#chat-list")).to_have_attribute("aria-busy", "false")


def chat_row(page: Page, name: str) -> Locator:
    return page.locator("#chat-list .chat-row", has_text=name)


def open_chat(page: Page, name: str) -> None:
    chat_row(page, name).click()
    expect(page.locator(".chat-title")).to_have_text(name)


def bubbles(page: Page, text: str | re.Pattern[str] | None = None) -> Locator:
    found = page.locator(".msg-list .msg:not(.skeleton)")
    return found.filter(has_text=text) if text is not None else found


def send(page: Page, text: str) -> None:
    composer = page.get_by_role("textbox", name="Message")
    composer.fill(text)
    composer.press("Enter")
    expect(bubbles(page, text).last).to_be_visible()


def tick_state(page: Page, text: str) -> Locator:
    """The tick icon of my message containing ``text`` (aria-label Sending/Sent/Delivered/Read)."""
    return bubbles(page, text).last.locator(".ticks [role=img]")


def axe_violations(page: Page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[Any]:
    """Run axe-core on the page; the violations at the given impacts."""
    assert AXE_JS.exists(), (f"{AXE_JS} is missing: run "
                             "`npm install --prefix tests/e2e/.axe axe-core@4` (scripts/test does)")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + n.failureSummary)}));
    }""")
    return [v for v in result if v["impact"] in impacts]
