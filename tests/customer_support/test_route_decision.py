"""The pure routing decision: every branch from facts alone, without a database."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from whatsease.storage.support_models import SupportConversation
from whatsease.support.routing import decide_route

NOW = datetime(2026, 1, 1, tzinfo=UTC)
BASE = SupportConversation(conversation_id="c", org="o", customer_name="Ann",
                           customer_email="ann@x.test", token_hash="h", created_at=NOW,
                           last_message_at=NOW, expires_at=NOW)


def with_(**fields: object) -> SupportConversation:
    return dataclasses.replace(BASE, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("conversation", "routing", "expected"), [
    (with_(), "bot", "bot"),
    (with_(mode="bot"), "agent", "bot"),  # pinned back to the bot by a hand-back
    (with_(mode="agent"), "bot", "queue"),  # pinned to a person: not the bot
    (with_(), "agent", "queue"),
])
def test_the_bot_answers_by_the_pinned_mode_else_the_orgs_routing(
        conversation: SupportConversation, routing: str, expected: str) -> None:
    assert decide_route(conversation, routing, agent_needed=False, agent_available=False,
                        anyone_online=False) == expected


def test_an_available_agent_keeps_the_conversation() -> None:
    mine = with_(handler="agent", agent="alex@a.test")
    assert decide_route(mine, "agent", agent_needed=True, agent_available=True,
                        anyone_online=True) == "keep"
    assert decide_route(mine, "agent", agent_needed=True, agent_available=False,
                        anyone_online=True) == "assign"


def test_with_nobody_online_it_queues_once() -> None:
    fresh = with_(handler="bot")
    assert decide_route(fresh, "bot", agent_needed=True, agent_available=False,
                        anyone_online=False) == "queue"
    waiting = with_(handler="queued", agent_requested_at=NOW)
    assert decide_route(waiting, "agent", agent_needed=True, agent_available=False,
                        anyone_online=False) == "queued"
    assert decide_route(waiting, "agent", agent_needed=True, agent_available=False,
                        anyone_online=True) == "assign"
