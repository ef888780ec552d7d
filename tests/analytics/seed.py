"""A known history, stored in the documents the messenger, the assistant and support write.

Every figure the tests expect is worked out by hand in the comments below;
the range is 2026-03-02T00:00Z .. 2026-03-05T00:00Z (three UTC days).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from whatsease.bot.catalogue import load_catalogue
from whatsease.services import Services
from whatsease.storage.models import Message
from whatsease.storage.support import CONVERSATIONS, MESSAGES, ORGS
from whatsease.storage.support_models import Org, SupportConversation, SupportMessage
from whatsease.support.chatbot import DEFAULT_SUPPORT_CATALOGUE

START = datetime(2026, 3, 2, tzinfo=UTC)
END = datetime(2026, 3, 5, tzinfo=UTC)
FALLBACK = load_catalogue(DEFAULT_SUPPORT_CATALOGUE).bot.fallback[0]


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0, ms: int = 0) -> datetime:
    """A moment on March ``day`` 2026, UTC."""
    return datetime(2026, 3, day, hour, minute, second, ms * 1000, tzinfo=UTC)


def oid(moment: datetime) -> ObjectId:
    """A fresh ObjectId made at ``moment`` (as the application's new_id() would be)."""
    return ObjectId(ObjectId.from_datetime(moment).binary[:4] + os.urandom(8))


def _message(sender: str, recipient: str, content: str, when: datetime,
             bot: bool = False) -> dict[str, Any]:
    return Message(message_id=str(oid(when)), sender=sender, recipient=recipient,
                   content=content, timestamp=when, is_bot_response=bot).to_doc()


async def store_messages(services: Services, docs: list[dict[str, Any]]) -> None:
    """Store messenger messages and their chats' summaries, as the messenger does."""
    await services.store.db["messages"].insert_many(docs)
    await services.store.conversations.record_messages([Message.from_doc(d) for d in docs])


def _turn(user: str, message: str, intent: str | None, source: str,
          when: datetime) -> dict[str, Any]:
    return {"_id": str(oid(when)), "user": user, "bot": "bot:whatsease",
            "message_id": str(oid(when)), "message": message, "intent": intent,
            "confidence": 0.9 if intent else 0.1, "reply": "...",
            "reply_message_id": str(oid(when)), "source": source, "at": when}


def _conversation(org: str, email: str, created: datetime, **fields: Any) -> SupportConversation:
    fields.setdefault("expires_at", created + timedelta(minutes=5))
    return SupportConversation(
        conversation_id=str(oid(created)), org=org, customer_name=email.split("@")[0].title(),
        customer_email=email, token_hash="x", created_at=created, last_message_at=created,
        **fields)


def _support(conversation: SupportConversation, kind: str, content: str,
             when: datetime, agent: str = "") -> dict[str, Any]:
    sender = {"customer": conversation.customer_email, "bot": f"bot:{conversation.org}",
              "agent": agent, "system": f"org:{conversation.org}"}[kind]
    recipient = (f"org:{conversation.org}" if kind == "customer"
                 else conversation.customer_email)
    return SupportMessage(message_id=str(oid(when)), conversation_id=conversation.conversation_id,
                          org=conversation.org, kind=kind, sender=sender,
                          sender_name=kind, recipient=recipient, content=content,
                          timestamp=when).to_doc()


async def seed(services: Services, org: str = "acme", other: str = "other",
               agents: tuple[str, str] = ("agent1@acme.test", "agent2@acme.test")) -> None:
    """Store the known history (see the module docstring and tests/analytics/test_report.py)."""
    db = services.store.db
    for org_id in (org, other):
        if await db[ORGS].find_one({"_id": org_id}) is None:
            await db[ORGS].insert_one(Org(org_id, org_id.title(), f"key-{org_id}").to_doc())
    wa = "wa:+4915112345678"
    await store_messages(services, [
        _message("alice@x.test", "bob@x.test", "before the range", at(1, 23, 59, 59)),
        _message("alice@x.test", "bob@x.test", "on the first edge", at(2)),
        _message("bob@x.test", "alice@x.test", "hi alice", at(2, 12)),
        _message("alice@x.test", "bot:whatsease", "hello there", at(3, 10)),
        _message("bot:whatsease", "alice@x.test", "Hi Alice!", at(3, 10, 0, 1), bot=True),
        _message(wa, "bot:whatsease", "Where is my parcel?", at(3, 11)),
        _message("carol@x.test", "bot:whatsease", "I hate waiting, this is terrible",
                 at(4, 23, 59, 59, 999)),
        _message("bot:whatsease", "carol@x.test", "Sorry", at(5), bot=True),
    ])
    await db["bot_turns"].insert_many([
        _turn("alice@x.test", "hello there", "greeting", "intent", at(3, 10, 0, 1)),
        _turn(wa, "Where is my parcel?", None, "fallback", at(3, 11, 0, 1)),
        _turn("carol@x.test", "I hate waiting, this is terrible", None, "fallback",
              at(4, 23, 59, 59, 999)),
        _turn("dave@x.test", " where is my PARCEL? ", None, "llm", at(4, 8)),
        _turn("dave@x.test", "too late", None, "fallback", at(5)),
    ])
    first, second = agents
    a = _conversation(org, "ann@c.test", at(2, 9), status="ended", handler="agent",
                      agent=first, agents=[first], agent_requested_at=at(2, 9, 1),
                      assigned_at=at(2, 9, 3), first_response_at=at(2, 9, 5),
                      first_response_secs=240.0, first_responder=first,
                      ended_at=at(2, 10), end_reason="closed")
    b = _conversation(org, "ben@c.test", at(1, 23), status="ended", handler="agent",
                      agent=second, agents=[second], agent_requested_at=at(3, 8),
                      assigned_at=at(3, 8, 0, 30), first_response_at=at(3, 8, 1),
                      first_response_secs=60.0, first_responder=second,
                      ended_at=at(4, 12), end_reason="closed")
    c = _conversation(org, "cat@c.test", at(4, 20))
    d = _conversation(other, "dan@c.test", at(3, 12), status="ended", ended_at=at(3, 13),
                      end_reason="timeout")
    e = _conversation(org, "eve@c.test", at(5))
    await db[CONVERSATIONS].insert_many([x.to_doc() for x in (a, b, c, d, e)])
    await db[MESSAGES].insert_many([
        _support(a, "customer", "Hi, my order is late", at(2, 9)),
        _support(a, "bot", FALLBACK, at(2, 9, 0, 5)),
        _support(a, "customer", "I want a person", at(2, 9, 1)),
        _support(a, "system", "Agent joined the conversation.", at(2, 9, 3)),
        _support(a, "agent", "Hello Ann", at(2, 9, 5), agent=first),
        _support(b, "customer", "thanks, great help!", at(3, 8, 2)),
        _support(c, "customer", "hello", at(4, 20)),
        _support(c, "bot", "Hi there!", at(4, 20, 0, 2)),
        _support(d, "customer", "other org", at(3, 12)),
        _support(e, "customer", "after the range", at(5)),
    ])
