"""The assistant's language in the settings page: the choice is kept server-side and the
assistant answers in it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.bot.test_assistant import bot_reply_to, say
from tests.e2e.ui import axe_violations, login_ui
from tests.support import ServerThread, register

pytestmark = pytest.mark.e2e


def test_settings_choose_the_assistants_language(server: ServerThread,
                                                 new_page: Callable[..., Page]) -> None:
    me = register(server.port, "polyglot", "Poly Glot")
    page = new_page(bypass_csp=True)  # for axe-core's script
    login_ui(page, server.url, me)
    page.get_by_role("link", name="Settings", exact=True).click()
    select = page.get_by_label("Language the assistant speaks")
    expect(select).to_have_value("")
    expect(select.locator("option")).to_have_text(["Automatic", "English", "Español", "हिंदी"])
    select.select_option(label="Español")
    expect(page.locator(".assistant-status")).to_have_text("Saved.")
    assert me.client.get("/api/v1/bot/language").json["language"] == "es"
    reply = bot_reply_to(me, say(me, "how do I change my name?"))
    assert reply["content"].startswith("Abre Ajustes")
    # The new card passes axe-core (other parts of the page are not this test's).
    mine = [v for v in axe_violations(page)
            if any("assistant" in node for node in v["nodes"])]
    assert mine == []

    # A choice made in words shows on the next visit; Automatic clears it.
    bot_reply_to(me, say(me, "हिंदी में बात करो"))
    page.reload()
    expect(page.get_by_label("Language the assistant speaks")).to_have_value("hi")
    page.get_by_label("Language the assistant speaks").select_option(label="Automatic")
    expect(page.locator(".assistant-status")).to_have_text("Saved.")
    assert me.client.get("/api/v1/bot/language").json["language"] is None
