"""The activity page (live, filterable) and the settings page (name, sessions, log out, delete)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.ui import LIVE_MS, login_ui, wait_online
from tests.support import Client, ServerThread, register

pytestmark = pytest.mark.e2e


def test_activity_updates_live_and_filters(server: ServerThread,
                                           new_page: Callable[..., Page]) -> None:
    me = register(server.port, "watcher", "Wren Watcher")
    other = register(server.port, "actor", "Ari Actor")
    page = new_page()
    login_ui(page, server.url, me, path="/")
    page.get_by_role("link", name="Activity").click()
    expect(page.get_by_role("heading", name="Activity")).to_be_focused()
    items = page.locator(".activity-item")
    # People by name (the reader is "You"), emails on hover, no codes like user.login.
    expect(items.filter(has_text="You logged in")).to_have_count(1)
    expect(items.filter(has_text="You logged in").locator(".person")).to_have_attribute(
        "title", me.email)
    expect(items.filter(has_text="You joined WhatsEase")).to_have_count(1)
    assert "user.login" not in (page.locator(".activity-list").text_content() or "")
    assert me.email not in (page.locator(".activity-list").text_content() or "")

    # Repeated (one after another) logins read as one line.
    assert Client(server.port).post("/api/v1/auth/login", {
        "email": me.email, "password": me.password}).status == 200
    page.reload()
    wait_online(page)
    expect(items.filter(has_text="You logged in")).to_contain_text("You logged in 2 times")
    expect(items.filter(has_text="You logged in")).to_have_count(1)

    # Someone writes to me: the entry appears at the top while I watch. (My page
    # acknowledges delivery a moment later, and that entry goes on top of it.)
    res = other.client.post("/api/v1/messages", {"recipient": me.email, "content": "hello"})
    assert res.status == 201, res.body
    sent = items.filter(has_text="Ari Actor sent a message to you")
    expect(sent).to_have_count(1, timeout=LIVE_MS)
    expect(sent).to_have_attribute("data-kind", "message.sent")
    expect(sent.locator(".person").first).to_have_attribute("title", other.email)
    kinds = items.evaluate_all("els => els.map(e => e.dataset.kind)")
    assert kinds.index("message.sent") < kinds.index("user.login"), kinds

    account = page.get_by_role("button", name="Account")
    account.click()
    expect(account).to_have_attribute("aria-pressed", "true")
    expect(items.filter(has_text="sent a message")).to_have_count(0)
    expect(items.filter(has_text="logged in")).to_have_count(1)
    for kind in items.evaluate_all("els => els.map(e => e.dataset.kind)"):
        assert kind.startswith(("user.", "session.")), kind
    # A live entry of another kind does not appear under this filter...
    other.client.post("/api/v1/messages", {"recipient": me.email, "content": "again"})
    page.get_by_role("button", name="Messages").click()
    expect(items.filter(has_text="sent a message")).to_have_count(2)
    # ...but one of this kind does.
    other.client.post("/api/v1/messages", {"recipient": me.email, "content": "third"})
    expect(items.filter(has_text="sent a message")).to_have_count(3, timeout=LIVE_MS)
    expect(items.filter(has_text="logged in")).to_have_count(0)


def test_settings_rename_sessions_logout_delete(server: ServerThread,
                                                new_page: Callable[..., Page]) -> None:
    me = register(server.port, "settler", "Sett Ler")
    page = new_page()
    login_ui(page, server.url, me)
    page.get_by_role("link", name="Settings", exact=True).click()
    expect(page).to_have_url(f"{server.url}/settings")

    # Renaming: an empty name is refused beside the field; a good one is saved everywhere.
    name = page.get_by_label("Display name")
    expect(name).to_have_value("Sett Ler")
    name.fill("   ")
    page.get_by_role("button", name="Save name").click()
    expect(page.locator("#profile-name-error")).to_have_text("Display name must not be empty.")
    expect(name).to_have_attribute("aria-invalid", "true")
    name.fill("Setti Renamed")
    page.get_by_role("button", name="Save name").click()
    expect(page.locator(".form-status")).to_have_text("Saved.")
    expect(page.locator(".profile-name")).to_have_text("Setti Renamed")
    expect(page.locator("#me-avatar")).to_have_text("SR")
    assert me.client.get("/api/v1/users/me").json["user"]["name"] == "Setti Renamed"

    # Sessions: the registration's, this browser's, and logins from a phone and an iPhone.
    android = {"User-Agent": "Mozilla/5.0 (Android 14; Mobile; rv:130.0) Gecko/130.0 "
                             "Firefox/130.0"}
    iphone = {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
                            "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 "
                            "Safari/604.1"}
    tokens = []
    for headers in (android, iphone):
        res = Client(server.port, headers=headers).post(
            "/api/v1/auth/login", {"email": me.email, "password": me.password})
        assert res.status == 200, res.body
        tokens.append(res.json["access_token"])
    page.reload()
    sessions = page.locator(".session")
    expect(sessions).to_have_count(4)
    expect(sessions.first).to_contain_text("This device")
    expect(sessions.first).to_contain_text("Chrome (headless)")
    expect(sessions.first).to_contain_text("on a Linux computer")
    expect(sessions.filter(has_text="Safari 17 on an iPhone")).to_have_count(1)
    expect(sessions.first.locator(".session-meta")).to_contain_text("Active")
    expect(sessions.first.locator(".session-meta")).to_contain_text("signed in")
    sessions.filter(has_text="Firefox 130 on an Android phone").get_by_role(
        "button", name="Log out Firefox 130 on an Android phone", exact=False).click()
    expect(sessions).to_have_count(3)
    expect(page.locator("#toast")).to_contain_text("That device has been logged out.")
    assert Client(server.port, token=tokens[0]).get("/api/v1/users/me").status == 401

    # Log out all the others: only this device is left, and it still works.
    page.get_by_role("button", name="Log out all other sessions").click()
    expect(page.locator("#toast")).to_contain_text("2 other sessions have been logged out.")
    expect(sessions).to_have_count(1)
    expect(sessions.first).to_contain_text("This device")
    expect(page.get_by_role("button", name="Log out all other sessions")).to_be_hidden()
    assert Client(server.port, token=tokens[1]).get("/api/v1/users/me").status == 401
    wait_online(page)

    # Log out: back to the login page with a notice; the app is gone.
    page.get_by_role("button", name="Log out", exact=True).click()
    expect(page).to_have_url(f"{server.url}/login")
    expect(page.locator("#auth-alert")).to_contain_text("You've logged out.")
    page.goto(f"{server.url}/settings")
    expect(page).to_have_url(f"{server.url}/login?next=%2Fsettings")

    # Delete the account: it needs the word typed; afterwards the login is refused.
    login_ui(page, server.url, me, path="/settings")
    page.get_by_role("button", name="Delete account…").click()
    dialog = page.get_by_role("dialog", name="Delete your account?")
    confirm = dialog.get_by_role("button", name="Delete my account")
    expect(confirm).to_be_disabled()
    dialog.get_by_label("Type DELETE to confirm").fill("DELETE")
    confirm.click()
    expect(page).to_have_url(f"{server.url}/login")
    expect(page.locator("#auth-alert")).to_contain_text("Your account has been deleted.")
    page.get_by_label("Email").fill(me.email)
    page.get_by_label("Password").fill(me.password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#auth-alert")).to_be_visible()
    expect(page).to_have_url(f"{server.url}/login")


def test_unknown_address_says_so(server: ServerThread, new_page: Callable[..., Page]) -> None:
    me = register(server.port, "lonely", "Lo Nely")
    page = new_page()
    login_ui(page, server.url, me)
    page.goto(f"{server.url}/chat/ghost.nobody@example.com")
    expect(page.locator(".older")).to_have_text(
        "Nobody with the address ghost.nobody@example.com uses WhatsEase.")
    expect(page.get_by_role("textbox", name="Message")).to_have_attribute("aria-disabled", "true")
    expect(page.locator(".composer-reason")).to_contain_text("Nobody with the address")
    expect(page.locator(".chat-empty")).to_be_hidden()


def test_register_errors_show_beside_the_fields(server: ServerThread,
                                                new_page: Callable[..., Page]) -> None:
    taken = register(server.port, "taken", "Tay Ken")
    page = new_page()
    page.goto(f"{server.url}/register")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#auth-name-error")).to_have_text("Name is required.")
    expect(page.get_by_label("Your name")).to_be_focused()
    page.get_by_label("Your name").fill("Someone")
    page.get_by_label("Email").fill(taken.email)
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#auth-password-error")).to_have_text(
        "Password must be at least 8 characters.")
    page.get_by_label("Password").fill("long enough password")
    page.get_by_role("button", name="Create account").click()
    # The server's problem+json (409, email taken) is shown, and nothing else changes.
    expect(page.locator("#auth-email-error")).to_have_text("Email is already registered")
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    expect(page).to_have_url(f"{server.url}/register")
    page.get_by_label("Email").fill(taken.email.replace("@", "+new@"))
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(f"{server.url}/")
    wait_online(page)
