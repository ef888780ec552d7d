"""The agent console: a panel per customer (side by side; tabs when narrow), actions, admin."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import APIResponse, Page, Route, expect

from tests.customer_support.browser import LIVE_MS, console_login, panel
from tests.customer_support.http import make_team, platform_admin, start_session, widget_socket
from tests.e2e.conftest import NARROW
from tests.e2e.ui import axe_violations
from tests.support import ServerThread

pytestmark = pytest.mark.e2e


def describe(violations: Any) -> str:
    return json.dumps(violations, indent=2)


def test_panels_side_by_side_tabs_when_narrow_and_the_agent_actions(
        server: ServerThread, new_page: Callable[..., Page]) -> None:
    root = platform_admin(server)
    team = make_team(server, root, agents=2, routing="agent")
    alex, bea = team.agents
    problems: dict[str, Any] = {}
    # Narrow: each customer behind a tab, one panel at a time, with unread counts.
    narrow = new_page(viewport=NARROW, bypass_csp=True)
    console_login(narrow, server.url, alex)
    ann = start_session(server, team.key, "Ann Ames", "ann@customer.test")
    ben = start_session(server, team.key, "Ben Bell", "ben@customer.test")
    tabs = narrow.get_by_role("tab")
    expect(tabs).to_have_count(2, timeout=LIVE_MS)
    tabs.filter(has_text="Ann Ames").click()
    expect(panel(narrow, "Ann Ames")).to_be_visible()
    expect(panel(narrow, "Ben Bell")).to_be_hidden()
    ben_socket = widget_socket(server, ben["token"], origin="http://shop.example")
    try:
        ben_socket.call({"type": "send", "client_id": "b1", "content": "Ben needs help"}, "ack")
        ben_tab = narrow.get_by_role("tab", name=re.compile("Ben Bell"))
        expect(ben_tab).to_contain_text("1 unread", timeout=LIVE_MS)
        expect(narrow.locator("#list-mine .conv", has_text="Ben Bell")).to_contain_text(
            "1 unread")
        problems["narrow"] = axe_violations(narrow)
        ben_tab.click()
        expect(panel(narrow, "Ben Bell")).to_be_visible()
        expect(panel(narrow, "Ben Bell").get_by_text("Ben needs help")).to_be_visible()
        expect(ben_tab).not_to_contain_text("unread", timeout=LIVE_MS)
        expect(panel(narrow, "Ann Ames")).to_be_hidden()

        # Wide: the same customers in panels by name, side by side.
        wide = new_page(bypass_csp=True)
        console_login(wide, server.url, alex)
        ann_panel, ben_panel = panel(wide, "Ann Ames"), panel(wide, "Ben Bell")
        expect(ann_panel).to_be_visible(timeout=LIVE_MS)
        expect(ben_panel).to_be_visible(timeout=LIVE_MS)
        expect(ann_panel.get_by_text("ann@customer.test")).to_be_visible()
        expect(ben_panel.get_by_text("Ben needs help")).to_be_visible()
        first, second = ann_panel.bounding_box(), ben_panel.bounding_box()
        assert first and second and abs(first["y"] - second["y"]) < 5
        assert first["x"] != second["x"]
        expect(wide.locator("#list-mine .conv")).to_have_count(2)
        problems["wide"] = axe_violations(wide)

        # Reply, then transfer Ben to Bea, who is online in a console of her own.
        reply = ben_panel.get_by_label("Reply to Ben Bell")
        reply.fill("Alex here, one moment")
        reply.press("Enter")
        assert ben_socket.expect("message", lambda f: f["message"]["kind"] == "agent")[
            "message"]["content"] == "Alex here, one moment"
        bea_console = new_page(bypass_csp=True)
        console_login(bea_console, server.url, bea)
        ben_panel.get_by_label("Transfer to").select_option(bea.email)
        ben_panel.get_by_role("button", name="Transfer", exact=True).click()
        expect(ben_panel.get_by_text(f"With {bea.name}")).to_be_visible(timeout=LIVE_MS)
        expect(ben_panel.get_by_label("Reply to Ben Bell")).to_be_disabled()
        expect(panel(bea_console, "Ben Bell")).to_be_visible(timeout=LIVE_MS)
        expect(panel(bea_console, "Ben Bell").get_by_text("Alex here, one moment")).to_be_visible()
    finally:
        ben_socket.close()

    # Hand Ann back to the bot, take her over again, then close the conversation.
    ann_panel.get_by_role("button", name="Hand back to bot").click()
    expect(ann_panel.get_by_text("With the bot")).to_be_visible(timeout=LIVE_MS)
    expect(wide.locator("#list-bot .conv", has_text="Ann Ames")).to_have_count(1)
    ann_panel.get_by_role("button", name="Take over").click()
    expect(ann_panel.get_by_text("With you")).to_be_visible(timeout=LIVE_MS)
    expect(ann_panel.get_by_text(f"{alex.name} joined the conversation.").last).to_be_visible()
    ann_panel.get_by_role("button", name="Close conversation").click()
    expect(ann_panel.get_by_text("Ended (closed)")).to_be_visible(timeout=LIVE_MS)
    expect(wide.locator("#list-ended .conv", has_text="Ann Ames")).to_have_count(1)
    assert ann["session"]["id"]
    assert not any(problems.values()), describe({k: v for k, v in problems.items() if v})


def test_admin_dashboard_and_settings(server: ServerThread,
                                      new_page: Callable[..., Page]) -> None:
    root = platform_admin(server)
    team = make_team(server, root, agents=1, routing="agent")
    agent = team.agents[0]
    problems: dict[str, Any] = {}
    agent_page = new_page(bypass_csp=True)
    console_login(agent_page, server.url, agent)
    admin = new_page(bypass_csp=True)
    console_login(admin, server.url, team.admin)
    admin.get_by_role("link", name="Dashboard").click()
    expect(admin).to_have_url(f"{server.url}/agent/dashboard")
    row = admin.locator("#agents-table tbody tr", has_text=agent.email)
    expect(row).to_contain_text("Online")
    start_session(server, team.key, "Cleo Cole", "cleo@customer.test")
    # Live: the load and the conversation appear without a reload.
    expect(row.locator("td").nth(2)).to_have_text("1", timeout=LIVE_MS)
    expect(admin.locator("#active-table tbody")).to_contain_text("Cleo Cole")
    problems["dashboard"] = axe_violations(admin)

    admin.get_by_role("link", name="Settings").click()
    expect(admin.get_by_label("To live agents")).to_be_checked()
    expect(admin.locator("#embed-snippet")).to_contain_text(f'data-org="{team.key}"')
    admin.get_by_label("To the chatbot").check()
    admin.get_by_label("Greeting").fill("Welcome to Cleo's favourite shop")
    admin.get_by_role("button", name="Save settings").click()
    expect(admin.get_by_text(re.compile("Saved at"))).to_be_visible()
    settings = team.admin.client.get(f"/api/v1/orgs/{team.org_id}").json["org"]["settings"]
    assert settings["routing"] == "bot"
    assert settings["greeting"] == "Welcome to Cleo's favourite shop"
    admin.get_by_label("Session timeout (seconds)").fill("5")
    admin.get_by_role("button", name="Save settings").click()
    expect(admin.get_by_role("alert")).to_contain_text("session_timeout")
    problems["settings"] = axe_violations(admin)

    # Agents see neither page.
    expect(agent_page.get_by_role("link", name="Settings")).to_be_hidden()
    agent_page.goto(f"{server.url}/agent/settings")
    expect(agent_page.locator("#view-settings")).to_be_hidden()
    expect(agent_page.locator("#view-conversations")).to_be_visible()
    assert not any(problems.values()), describe({k: v for k, v in problems.items() if v})


def test_a_message_arriving_while_a_panels_history_loads_stays(
        server: ServerThread, new_page: Callable[..., Page]) -> None:
    # The history is read before the customer's message is stored, and its answer
    # reaches the page after the message came live: the late answer must not wipe
    # it. (Under load the console lost a WhatsApp image this way.) The route holds
    # the answer until the message is on screen, so the order is certain.
    root = platform_admin(server)
    team = make_team(server, root, agents=1, routing="agent")
    page = new_page(bypass_csp=True)
    console_login(page, server.url, team.agents[0])
    held: list[tuple[Route, APIResponse]] = []

    def hold(route: Route) -> None:
        if route.request.method != "GET":
            route.continue_()
            return
        held.append((route, route.fetch()))

    history = re.compile(r"/api/v1/support/conversations/[^/?]+$")
    page.route(history, hold)
    session = start_session(server, team.key, "Cleo Late", "cleo@customer.test")
    cleo = panel(page, "Cleo Late")
    expect(cleo).to_be_visible(timeout=LIVE_MS)
    for _ in range(400):  # the panel asks for its history once it is open
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the panel never asked for its history"
    customer = widget_socket(server, session["token"])
    try:
        customer.call({"type": "send", "client_id": "c1",
                       "content": "Sent while the history loads"}, "ack")
        live = cleo.get_by_text("Sent while the history loads")
        expect(live).to_be_visible(timeout=LIVE_MS)
        before = [m["content"] for m in held[0][1].json()["messages"]]
        assert "Sent while the history loads" not in before and before, before
        for route, response in held:
            route.fulfill(response=response)
        page.unroute(history)
        expect(cleo.get_by_text(before[0])).to_be_visible(timeout=LIVE_MS)  # rendered
        expect(live).to_be_visible()
    finally:
        customer.close()
