"""The embeddable widget on a website of another origin: toggle, form, bot, agent, resume, end."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.customer_support.browser import (
    LIVE_MS,
    HostSite,
    OffsetClock,
    bubble,
    console_login,
    dialog,
    panel,
    widget_messages,
    widget_send,
)
from tests.customer_support.http import make_team, platform_admin
from tests.e2e.conftest import NARROW
from tests.e2e.ui import axe_violations
from tests.support import ServerThread

pytestmark = pytest.mark.e2e


@pytest.fixture
def site(server: ServerThread) -> Iterator[HostSite]:
    host = HostSite(server.url).start()
    yield host
    host.stop()


def describe(violations: Any) -> str:
    return json.dumps(violations, indent=2)


def test_widget_form_bot_agent_and_resume(server: ServerThread, site: HostSite,
                                          new_page: Callable[..., Page]) -> None:
    root = platform_admin(server)
    team = make_team(server, root, origins=(site.origin,), greeting="Hello! Ask us anything.",
                     brand_color="#ffcc00")
    agent = team.agents[0]
    console = new_page(bypass_csp=True)  # the agent, in a browser context of their own
    console_login(console, server.url, agent)

    customer = new_page(bypass_csp=True)
    assert not site.origin.endswith(f":{server.port}"), "the site must be another origin"
    customer.goto(site.url(team.key))
    problems: dict[str, Any] = {}

    # The bubble toggles the window: click, click, then Enter and Space from the keyboard.
    toggle = bubble(customer)
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(toggle).to_have_accessible_name(re.compile(r"Open chat with Shop"))
    toggle.click()
    expect(dialog(customer)).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    toggle.click()
    expect(dialog(customer)).to_be_hidden()
    toggle.focus()
    customer.keyboard.press("Enter")
    expect(dialog(customer)).to_be_visible()
    customer.keyboard.press("Escape")
    expect(dialog(customer)).to_be_hidden()
    expect(toggle).to_be_focused()
    customer.keyboard.press(" ")
    expect(dialog(customer)).to_be_visible()
    # The host page's styles do not leak in (its buttons are hot pink).
    color = toggle.evaluate("b => getComputedStyle(b).backgroundColor")
    assert color == "rgb(255, 204, 0)", color

    # The form: validated in the page, then by the server.
    expect(customer.get_by_text("Hello! Ask us anything.")).to_be_visible()
    customer.get_by_role("button", name="Start chat").click()
    expect(customer.get_by_text("Please tell us your name.")).to_be_visible()
    expect(customer.get_by_label("Your name")).to_be_focused()
    customer.get_by_label("Your name").fill("Ann Customer")
    customer.get_by_label("Email").fill("ann@nowhere")
    customer.get_by_role("button", name="Start chat").click()
    expect(customer.get_by_text("Please enter a valid email address")).to_be_visible()
    expect(customer.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    problems["form"] = axe_violations(customer)
    customer.get_by_label("Email").fill("ann@customer.test")
    customer.get_by_role("button", name="Start chat").click()

    # The bot answers first.
    expect(customer.get_by_label("Message", exact=True)).to_be_focused()
    expect(widget_messages(customer).first).to_contain_text("Hello! Ask us anything.")
    widget_send(customer, "where is my order")
    expect(widget_messages(customer).filter(has_text="order number")).to_have_count(
        1, timeout=LIVE_MS)
    problems["chat"] = axe_violations(customer)

    # Asking for a person hands over to the online agent, whose console shows the customer.
    widget_send(customer, "I want to talk to a person")
    expect(widget_messages(customer).filter(
        has_text=f"{agent.name} joined the conversation.")).to_have_count(1, timeout=LIVE_MS)
    ann = panel(console, "Ann Customer")
    expect(ann).to_be_visible(timeout=LIVE_MS)
    expect(ann.get_by_role("heading", name="Ann Customer")).to_be_visible()
    expect(ann.get_by_text("ann@customer.test")).to_be_visible()
    expect(ann.get_by_text("I want to talk to a person")).to_be_visible()
    expect(ann.get_by_text("With you")).to_be_visible()
    customer.get_by_label("Message", exact=True).press_sequentially("is anyone")
    expect(ann.get_by_text("Ann Customer is typing…")).to_be_visible(timeout=LIVE_MS)
    reply = ann.get_by_label("Reply to Ann Customer")
    reply.fill("Hi Ann, Agent here. Let me look.")
    reply.press("Enter")
    expect(widget_messages(customer).filter(has_text="Hi Ann, Agent here.")).to_have_count(
        1, timeout=LIVE_MS)
    expect(widget_messages(customer).filter(has_text="Hi Ann, Agent here.")).to_contain_text(
        agent.name)
    problems["console"] = axe_violations(console)

    # A reload resumes the conversation; so does another page of the same site.
    customer.reload()
    bubble(customer).click()
    expect(widget_messages(customer).filter(has_text="Hi Ann, Agent here.")).to_have_count(1)
    expect(customer.get_by_label("Your name")).to_be_hidden()
    widget_send(customer, "thanks, still here after a reload")
    expect(ann.get_by_text("thanks, still here after a reload")).to_be_visible(timeout=LIVE_MS)
    customer.get_by_role("link", name="Another page").click()
    expect(customer).to_have_title("Shoe shop: delivery")
    bubble(customer).click()
    expect(widget_messages(customer).filter(has_text="still here after a reload")).to_have_count(1)

    # Two windows on one session show the same conversation live.
    second = customer.context.new_page()
    second.goto(site.url(team.key))
    bubble(second).click()
    widget_send(second, "sent from the second window")
    expect(widget_messages(customer).filter(has_text="sent from the second window")).to_have_count(
        1, timeout=LIVE_MS)
    problems["resumed"] = axe_violations(customer)
    assert not any(problems.values()), describe({k: v for k, v in problems.items() if v})


def test_widget_ends_the_session_after_the_timeout(make_server: Callable[..., ServerThread],
                                                   new_page: Callable[..., Page]) -> None:
    server = make_server()
    clock = OffsetClock()
    support = server.services.support
    assert support is not None
    support.clock = clock
    support.sweep_interval = 0.2
    site = HostSite(server.url).start()
    try:
        root = platform_admin(server)
        team = make_team(server, root, agents=0, origins=(site.origin,))
        customer = new_page()  # the site's strict CSP applies here (no bypass)
        customer.goto(site.url(team.key))
        color = bubble(customer).evaluate("b => getComputedStyle(b).backgroundColor")
        assert color == "rgb(11, 110, 79)", "the widget's styles apply under the site's CSP"
        bubble(customer).click()
        customer.get_by_label("Your name").fill("Ben")
        customer.get_by_label("Email").fill("ben@customer.test")
        customer.get_by_role("button", name="Start chat").click()
        widget_send(customer, "hello")
        greeted = widget_messages(customer).filter(has_text=re.compile(r"(Hello|Hi) Ben!"))
        expect(greeted).to_have_count(1, timeout=LIVE_MS)

        clock.advance(300)  # five minutes without messages: the server ends it by itself
        expect(customer.get_by_text(
            "This conversation ended after 5 minutes without messages.")).to_be_visible(
            timeout=LIVE_MS)
        expect(customer.get_by_label("Message", exact=True)).to_be_hidden()
        customer.reload()
        bubble(customer).click()
        expect(customer.get_by_text("Your previous conversation has ended")).to_be_hidden()
        expect(customer.get_by_label("Your name")).to_have_value("Ben")
        customer.get_by_role("button", name="Start chat").click()
        widget_send(customer, "hello again")
        stored = customer.locator("[data-whatsease-widget] .log .msg:not(.pending)")
        expect(stored.filter(has_text="hello again")).to_have_count(1)

        # A message on a session that ended meanwhile is refused, and says so.
        server.call(support.stop_sweeper())  # so the refusal comes from the send itself
        clock.advance(300)
        widget_send(customer, "are you still there?")
        expect(customer.get_by_role("alert")).to_contain_text(
            "ended after 5 minutes without messages", timeout=LIVE_MS)
        expect(customer.get_by_role("button", name="Start a new conversation")).to_be_visible()
        assert customer.get_by_label("Message", exact=True).input_value() \
            == "are you still there?"
    finally:
        site.stop()


def widget_status(page: Page) -> Locator:
    return page.locator("[data-whatsease-widget] #status")


def start_chat(page: Page, name: str, email: str) -> None:
    bubble(page).click()
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Start chat").click()
    expect(page.get_by_label("Message", exact=True)).to_be_visible()


def test_widget_names_the_agent_as_soon_as_one_joins(server: ServerThread, site: HostSite,
                                                      new_page: Callable[..., Page]) -> None:
    root = platform_admin(server)
    team = make_team(server, root, origins=(site.origin,))
    agent = team.agents[0]
    console = new_page(bypass_csp=True)
    console_login(console, server.url, agent)
    customer = new_page(bypass_csp=True)
    customer.goto(site.url(team.key))
    start_chat(customer, "Dee Customer", "dee@customer.test")
    expect(widget_status(customer)).to_have_text("Chatting with our assistant")

    widget_send(customer, "I want to talk to a person")
    # The agent has not written yet: the header already says who answers.
    expect(widget_status(customer)).to_have_text(f"Chatting with {agent.name}",
                                                 timeout=LIVE_MS)
    customer.reload()
    bubble(customer).click()
    expect(widget_status(customer)).to_have_text(re.compile(r"Chatting with "))


def test_widget_refuses_empty_messages_and_counts_near_the_limit(
        server: ServerThread, site: HostSite, new_page: Callable[..., Page]) -> None:
    root = platform_admin(server)
    team = make_team(server, root, agents=0, origins=(site.origin,))
    customer = new_page(bypass_csp=True)
    customer.goto(site.url(team.key))
    start_chat(customer, "Eve Customer", "eve@customer.test")
    box = customer.get_by_label("Message", exact=True)
    counter = customer.locator("[data-whatsease-widget] .counter")
    sent_before = widget_messages(customer).count()

    box.fill("   ")
    box.press("Enter")
    expect(customer.get_by_role("alert")).to_contain_text("empty message cannot be sent")
    expect(box).to_be_focused()
    expect(counter).to_be_hidden()

    box.fill("x" * 3700)
    expect(counter).to_have_text("396 characters left")
    pasted = "y" * 4100
    box.fill(pasted)  # nothing is cut off silently
    expect(counter).to_have_text("4 characters too many (at most 4096)")
    box.press("Enter")
    expect(customer.get_by_role("alert")).to_contain_text("4 characters too long")
    assert box.input_value() == pasted
    expect(widget_messages(customer)).to_have_count(sent_before)

    box.fill("short and sweet")
    expect(counter).to_be_hidden()
    box.press("Enter")
    expect(widget_messages(customer).filter(has_text="short and sweet")).to_have_count(1)
    expect(customer.get_by_role("alert")).to_have_count(0)


def test_widget_opens_full_screen_on_a_phone(server: ServerThread, site: HostSite,
                                             new_page: Callable[..., Page]) -> None:
    root = platform_admin(server)
    team = make_team(server, root, agents=0, origins=(site.origin,))
    phone = new_page(viewport=NARROW, bypass_csp=True)
    phone.goto(site.url(team.key))
    bubble(phone).click()
    expect(dialog(phone)).to_be_visible()
    box = dialog(phone).bounding_box()
    assert box == {"x": 0, "y": 0, "width": NARROW["width"], "height": NARROW["height"]}, box
    expect(bubble(phone)).to_be_hidden()
    phone.get_by_role("button", name="Close chat", exact=True).click()
    expect(dialog(phone)).to_be_hidden()
    expect(bubble(phone)).to_be_visible()
    expect(bubble(phone)).to_be_focused()
