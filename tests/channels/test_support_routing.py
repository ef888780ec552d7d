"""External contacts go through support's routing like widget customers: bot, handoff,
agent, transfer; replies reach the platform, receipts come back."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.channels import payloads
from tests.channels.conftest import (
    Platforms,
    channel_config,
    channels,
    outbox,
    post_telegram,
    post_whatsapp,
    run,
    settle,
)
from tests.customer_support.http import console_socket, platform_admin
from tests.fakes.platforms import Recorded
from tests.support import ServerThread, User, register
from tests.support import test_config as config_for_tests

ORG_ID = "acme-" + secrets.token_hex(3)
MESSAGES_PATH = f"/{payloads.PHONE_NUMBER_ID}/messages"


@pytest.fixture(scope="module")
def org_server(mongo_uri: str, platforms: Platforms) -> Iterator[ServerThread]:
    thread = ServerThread(config_for_tests(**channel_config(
        platforms, whatsapp_binding=f"org:{ORG_ID}", telegram_binding=f"org:{ORG_ID}")),
        mongo_uri).start()
    channels(thread).retry_backoff = 0.01
    yield thread
    thread.stop()


@pytest.fixture(scope="module")
def team(org_server: ServerThread) -> dict[str, Any]:
    root = platform_admin(org_server)
    admin = register(org_server.port, "boss", name="Boss")
    res = root.client.post("/api/v1/orgs", {
        "name": "Acme", "id": ORG_ID, "admin": admin.email,
        "settings": {"greeting": "Welcome to Acme!", "routing": "bot"}})
    assert res.status == 201, res.body
    agent = register(org_server.port, "agent", name="Alex Agent")
    added = admin.client.post(f"/api/v1/orgs/{ORG_ID}/agents", {"email": agent.email})
    assert added.status == 201, added.body
    return {"admin": admin, "agent": agent}


def _to(number: str) -> Any:
    def match(r: Recorded) -> bool:
        return (r.path.endswith(MESSAGES_PATH) and isinstance(r.body, dict)
                and r.body.get("to") == number and r.body.get("status") != "read")
    return match


def _texts(platforms: Platforms, number: str) -> list[str]:
    return [r.body["text"]["body"] for r in platforms.graph.matching(_to(number))]


def _conversation(server: ServerThread, contact: str) -> dict[str, Any]:
    doc = run(server, channels(server).store.contact(contact))
    assert doc is not None and doc.get("conversation_id")
    support = server.services.support
    assert support is not None
    conversation = run(server, support.store.conversations.get(doc["conversation_id"]))
    assert conversation is not None
    return conversation.to_agent_json()


def test_bot_then_handoff_to_an_agent_whose_reply_reaches_whatsapp(
        org_server: ServerThread, platforms: Platforms, team: dict[str, User]) -> None:
    agent = team["agent"]
    console = console_socket(org_server, agent)
    number = payloads.new_number()
    contact = f"wa:+{number}"
    post_whatsapp(org_server, payloads.envelope(payloads.inbound(
        number, payloads.text(number, "hello"), name="Wanda Customer")))
    # The greeting and the org's bot answer the customer on WhatsApp.
    platforms.graph.wait_for(_to(number), count=2)
    settle(org_server)
    texts = _texts(platforms, number)
    assert texts[0] == "Welcome to Acme!"
    conversation = _conversation(org_server, contact)
    assert conversation["customer"] == {"name": "Wanda Customer", "email": contact}
    assert conversation["handler"] == "bot" and conversation["org"] == ORG_ID
    # The console sees the conversation and the customer's message live, channel and all.
    console.expect("message", lambda f: f["message"]["sender"] == contact
                   and f["message"]["content"] == "hello")

    post_whatsapp(org_server, payloads.envelope(payloads.inbound(
        number, payloads.text(number, "talk to a person"))))
    joined = platforms.graph.wait_for(
        lambda r: _to(number)(r) and "joined the conversation" in r.body["text"]["body"])
    assert "Alex Agent" in joined[0].body["text"]["body"]
    settle(org_server)
    conversation = _conversation(org_server, contact)
    assert conversation["handler"] == "agent" and conversation["agent"] == agent.email

    res = agent.client.post(
        f"/api/v1/support/conversations/{conversation['id']}/messages",
        {"content": "Hi Wanda, Alex here. How can I help?", "client_id": "a1"})
    assert res.status == 201, res.body
    platforms.graph.wait_for(
        lambda r: _to(number)(r) and r.body["text"]["body"] == "Hi Wanda, Alex here. "
                                                               "How can I help?")
    settle(org_server)
    record = next(r for r in outbox(org_server, contact) if r["_id"] == res.json["message"][
        "message_id"])
    assert record["status"] == "Sent"
    post_whatsapp(org_server, payloads.envelope(payloads.status(record["platform_id"], number,
                                                                "read")))
    settle(org_server)
    again = next(r for r in outbox(org_server, contact) if r["_id"] == record["_id"])
    assert again["status"] == "Read"
    # The customer's next message goes to the agent, not the bot.
    before = len(_texts(platforms, number))
    post_whatsapp(org_server, payloads.envelope(payloads.inbound(
        number, payloads.text(number, "my order is late"))))
    console.expect("message", lambda f: f["message"]["content"] == "my order is late")
    settle(org_server)
    assert len(_texts(platforms, number)) == before
    console.close()


def test_telegram_contact_is_a_support_customer_too(
        org_server: ServerThread, platforms: Platforms, team: dict[str, User]) -> None:
    chat = payloads.new_chat_id()
    post_telegram(org_server, payloads.tg_text(chat, "hello"))
    platforms.telegram.wait_for(lambda r: r.path.endswith("/sendMessage")
                                and isinstance(r.body, dict) and r.body.get("chat_id") == chat,
                                count=2)
    settle(org_server)
    conversation = _conversation(org_server, f"tg:{chat}")
    assert conversation["customer"] == {"name": "Ada Lovelace", "email": f"tg:{chat}"}


def test_activity_log_shows_the_external_contact(org_server: ServerThread,
                                                 team: dict[str, User]) -> None:
    number = payloads.new_number()
    post_whatsapp(org_server, payloads.envelope(payloads.inbound(
        number, payloads.text(number, "hello"), name="Vic")))
    settle(org_server)
    org_server.call(org_server.services.activity.drain())
    res = team["admin"].client.get("/api/v1/activity?limit=50")
    assert res.status == 200, res.body
    assert any(f"wa:+{number}" in str(entry) for entry in res.json["entries"]), res.json


def test_after_a_conversation_is_closed_the_next_message_opens_a_new_one(
        org_server: ServerThread, platforms: Platforms, team: dict[str, User]) -> None:
    number = payloads.new_number()
    contact = f"wa:+{number}"
    post_whatsapp(org_server, payloads.envelope(payloads.inbound(
        number, payloads.text(number, "hello"))))
    settle(org_server)
    first = _conversation(org_server, contact)
    closed = team["admin"].client.post(f"/api/v1/support/conversations/{first['id']}/close")
    assert closed.status == 200, closed.body
    post_whatsapp(org_server, payloads.envelope(payloads.inbound(
        number, payloads.text(number, "me again"))))
    settle(org_server)
    second = _conversation(org_server, contact)
    assert second["id"] != first["id"] and second["status"] == "active"
    assert second["customer"]["email"] == contact and second["message_count"] >= 1
    # The console's history lookup finds both by the contact's address (not an email).
    found = team["admin"].client.get(
        f"/api/v1/support/conversations?customer={contact.replace('+', '%2B')}&limit=20")
    assert found.status == 200, found.body
    assert {c["id"] for c in found.json["conversations"]} == {first["id"], second["id"]}
    assert team["admin"].client.get(
        "/api/v1/support/conversations?customer=wa:%2B1%20x").status == 422


def test_a_whatsapp_customer_transferred_to_another_agent_is_answered_by_them(
        org_server: ServerThread, platforms: Platforms, team: dict[str, User]) -> None:
    bea = register(org_server.port, "bea", name="Bea Agent")
    added = team["admin"].client.post(f"/api/v1/orgs/{ORG_ID}/agents", {"email": bea.email})
    assert added.status == 201, added.body
    agents = {team["agent"].email: team["agent"], bea.email: bea}
    consoles = {email: console_socket(org_server, agent) for email, agent in agents.items()}
    number = payloads.new_number()
    contact = f"wa:+{number}"
    post_whatsapp(org_server, payloads.envelope(payloads.inbound(
        number, payloads.text(number, "talk to a person"), name="Tom Transfer")))
    platforms.graph.wait_for(
        lambda r: _to(number)(r) and "joined the conversation" in r.body["text"]["body"])
    settle(org_server)
    conversation = _conversation(org_server, contact)
    first = agents[conversation["agent"]]
    (second,) = (a for email, a in agents.items() if email != first.email)

    moved = first.client.post(f"/api/v1/support/conversations/{conversation['id']}/transfer",
                              {"agent": second.email})
    assert moved.status == 200, moved.body
    assert moved.json["conversation"]["agent"] == second.email
    res = second.client.post(f"/api/v1/support/conversations/{conversation['id']}/messages",
                             {"content": "Bea or Alex here, after the transfer.",
                              "client_id": "t1"})
    assert res.status == 201, res.body
    platforms.graph.wait_for(lambda r: _to(number)(r) and r.body["text"]["body"]
                             == "Bea or Alex here, after the transfer.")
    # The customer's next message reaches the new agent's console.
    post_whatsapp(org_server, payloads.envelope(payloads.inbound(
        number, payloads.text(number, "thanks, new person"))))
    consoles[second.email].expect(
        "message", lambda f: f["message"]["content"] == "thanks, new person")
    settle(org_server)
    assert _conversation(org_server, contact)["agent"] == second.email
    for console in consoles.values():
        console.close()
