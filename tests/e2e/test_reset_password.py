"""The password-reset page in a real browser: a weak password is explained, a good one works."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.support import Client, ServerThread, register
from whatsease.auth.cli import reset_link

pytestmark = pytest.mark.e2e


def test_a_reset_link_sets_a_new_password(server: ServerThread, mongo_uri: str,
                                          new_page: Callable[..., Page]) -> None:
    me = register(server.port, "resetui", "Rae Reset")
    link = server.call(reset_link(server.config, mongo_uri, me.email, out=lambda _: None))
    page = new_page()
    page.goto(f"{server.url}/reset-password#{link.split('#', 1)[1]}")
    # The token leaves the address bar at once.
    expect(page).to_have_url(f"{server.url}/reset-password")
    page.get_by_label("New password", exact=True).fill("password")
    page.get_by_label("New password, again").fill("password")
    page.get_by_role("button", name="Set the new password").click()
    expect(page.locator("#reset-password-error")).to_contain_text("too easy to guess")
    page.get_by_label("New password", exact=True).fill("tangerine kayak umbrella")
    page.get_by_label("New password, again").fill("tangerine kayak umbrella")
    page.get_by_role("button", name="Set the new password").click()
    expect(page.get_by_role("heading", name="Password changed")).to_be_visible()
    res = Client(server.port).post("/api/v1/auth/login", {
        "email": me.email, "password": "tangerine kayak umbrella"})
    assert res.status == 200, res.body


def test_without_a_link_the_page_says_whom_to_ask(server: ServerThread,
                                                  new_page: Callable[..., Page]) -> None:
    page = new_page()
    page.goto(f"{server.url}/reset-password")
    expect(page.get_by_role("heading", name="Forgot your password?")).to_be_visible()
    expect(page.locator("#reset-lead")).to_contain_text("Ask the person who runs")


def test_the_login_page_links_to_the_reset_page(server: ServerThread,
                                               new_page: Callable[..., Page]) -> None:
    page = new_page()
    page.goto(f"{server.url}/login")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page).to_have_url(f"{server.url}/reset-password")
    expect(page.get_by_role("heading", name="Forgot your password?")).to_be_visible()
    page.goto(f"{server.url}/register")  # registering needs no reset link
    expect(page.get_by_role("link", name="Forgot your password?")).to_be_hidden()
