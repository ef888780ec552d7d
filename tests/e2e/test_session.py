"""The access token is refreshed before it expires, and after the server refuses it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.ui import LIVE_MS, login_ui, wait_online
from tests.support import Client, ServerThread, register

pytestmark = pytest.mark.e2e


def stored_session(page: Page) -> dict[str, Any]:
    value = page.evaluate("JSON.parse(localStorage.getItem('whatsease.session'))")
    assert isinstance(value, dict)
    return value


def test_token_refresh_before_expiry_and_on_refusal(server: ServerThread,
                                                    new_page: Callable[..., Page]) -> None:
    me = register(server.port, "fresh", "Fay Fresh")
    page = new_page()
    # A fake clock: fifteen minutes pass in an instant, real requests still go out.
    page.clock.install()
    login_ui(page, server.url, me)
    first = stored_session(page)
    lifetime = server.services.config.access_token_ttl

    # Just before the access token expires, the client swaps the pair by itself.
    page.clock.run_for((lifetime - 30) * 1000)
    page.wait_for_function("(old) => JSON.parse(localStorage.getItem('whatsease.session'))"
                           ".refresh_token !== old", arg=first["refresh_token"])
    second = stored_session(page)
    assert second["access_token"] != first["access_token"]
    page.clock.resume()

    # A token the server refuses (here: garbage) is refreshed once and the call retried.
    page.evaluate("""() => {
        const s = JSON.parse(localStorage.getItem('whatsease.session'));
        s.access_token = 'not-a-token';
        localStorage.setItem('whatsease.session', JSON.stringify(s));
    }""")
    page.reload()
    wait_online(page)
    page.get_by_role("link", name="Activity").click()
    expect(page.locator(".activity-item").first).to_be_visible()
    third = stored_session(page)
    assert third["access_token"] not in ("not-a-token", second["access_token"])
    expect(page.locator("#me-avatar")).to_have_text("FF")

    # Revoked from another device: the page is told at once and goes to the login.
    other = Client(server.port, token=me.access_token)
    sessions = other.get("/api/v1/auth/sessions").json["sessions"]
    browser_session = max((s for s in sessions if not s["current"]), key=lambda s: s["last_used"])
    assert other.delete(f"/api/v1/auth/sessions/{browser_session['id']}").status == 204
    expect(page).to_have_url(f"{server.url}/login?next=%2Factivity", timeout=LIVE_MS)
    expect(page.locator("#auth-alert")).to_contain_text("Your session has ended")

    # The first refresh token was rotated away: replaying it fails (and, as reuse of a
    # stolen token would, ends the session, so this check comes last).
    old = Client(server.port).post("/api/v1/auth/refresh",
                                   {"refresh_token": first["refresh_token"]})
    assert old.status == 401
