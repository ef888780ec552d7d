"""Kept quarter hours: the same figures as computing them, cut exactly at the range's edges,
and only those that can no longer change."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.analytics.conftest import PATIENT_SECS
from tests.analytics.seed import (
    END,
    START,
    _conversation,
    _message,
    at,
    oid,
    seed,
    store_messages,
)
from whatsease.analytics.memory import Kept, Memory
from whatsease.analytics.scope import Scope, fallback_replies
from whatsease.analytics.service import Analytics, get_analytics
from whatsease.analytics.slots import Piece
from whatsease.services import Services
from whatsease.storage.analytics import SLOTS
from whatsease.storage.models import Message
from whatsease.storage.support import CONVERSATIONS, MESSAGES
from whatsease.storage.support_models import SupportMessage

ACME = Scope("acme")
ALL = Scope(None)


def _customer(when: datetime, content: str, conversation: str = "c") -> dict[str, Any]:
    return SupportMessage(message_id=str(oid(when)), conversation_id=conversation, org="acme",
                          kind="customer", sender="zed@c.test", sender_name="Zed",
                          recipient="org:acme", content=content, timestamp=when).to_doc()


@pytest.mark.parametrize(("scope", "start", "end", "unit", "tz"), [
    (ALL, START, END, "day", "UTC"),
    (ALL, at(2, 9, 0, 3), at(4, 20, 0, 1), "hour", "Asia/Kolkata"),
    (ACME, START - timedelta(days=1), END, "week", "Europe/Paris"),
])
async def test_kept_quarter_hours_give_what_computing_them_gives(
        services: Services, scope: Scope, start: datetime, end: datetime, unit: str,
        tz: str) -> None:
    await seed(services)
    analytics = get_analytics(services)
    slots = services.store.db[SLOTS]
    assert await slots.count_documents({}) == 0
    cold = await analytics.report(scope, start, end, unit, tz)
    assert await slots.count_documents({}) > 0
    cold.pop("generated_at")
    # Warm: the kept quarter hours; then the whole days' figures kept beside
    # them the first time (a day that falls in one bucket is read at once).
    for _ in range(2):
        warm = await analytics.report(scope, start, end, unit, tz)
        warm.pop("generated_at")
        assert warm == cold


async def test_an_old_range_edge_counts_messages_from_the_nearest_quarter_hour(
        services: Services) -> None:
    await seed(services)
    analytics = get_analytics(services)
    # The range starts at 09:00:03 and ends at 08:01:30 the next day: messages
    # count from 09:00 (A's first customer message, at 09:00:00, is in the
    # range, and not in the previous period) to 08:00 (B's customer message,
    # 08:02, is after it); conversations and handoffs count exactly.
    start, end = at(2, 9, 0, 3), at(3, 8, 1, 30)
    for _ in range(2):
        report = await analytics.report(ACME, start, end, "day", "UTC")
        assert report["series"]["messages.widget.in"] == [2, 0]
        assert report["series"]["messages.widget.out"] == [2, 0]
        assert report["series"]["bot.fallbacks"] == [1, 0]
        assert report["series"]["handoffs"] == [1, 1]
        assert report["previous"]["totals"]["messages_in"] == 0
        # B (Mar 1, 23:00) and A (09:00:00, three seconds before the range).
        assert report["previous"]["totals"]["conversations_started"] == 2


async def test_the_open_end_reads_the_messages_of_the_chats_that_had_one(
        services: Services) -> None:
    # Recent messages are found through their chat's summary (messenger) or
    # their conversation (support), and cut exactly at the range's edges.
    await seed(services)
    now = at(4, 12, 30)
    analytics = Analytics(services, get_analytics(services).repo, clock=lambda: now,
                          wait=PATIENT_SECS, history_wait=PATIENT_SECS)
    chat = [Message(message_id=str(oid(t)), sender="fay@x.test", recipient="gus@x.test",
                    content="hi", timestamp=t, conversation_id="fay@x.test gus@x.test")
            for t in (at(4, 11, 40), at(4, 12, 10), at(4, 12, 29))]
    await services.store.db["messages"].insert_many([m.to_doc() for m in chat])
    await services.store.conversations.record_messages(chat)
    live = _conversation("acme", "hal@c.test", at(4, 12), expires_at=at(4, 12, 35))
    await services.store.db[CONVERSATIONS].insert_one(live.to_doc())
    await services.store.db[MESSAGES].insert_one(_customer(at(4, 12, 20), "hello",
                                                           live.conversation_id))
    report = await analytics.report(ALL, at(4, 12, 5), now, "hour", "UTC")
    assert report["series"]["messages.web.in"] == [2]
    assert report["series"]["messages.widget.in"] == [1]


async def test_only_quarter_hours_that_ended_an_hour_ago_are_kept(services: Services) -> None:
    await seed(services)
    now = at(4, 12, 30)
    analytics = Analytics(services, get_analytics(services).repo, clock=lambda: now,
                          wait=PATIENT_SECS, history_wait=PATIENT_SECS)
    first = await analytics.report(ACME, START, now, "day", "UTC")
    db = services.store.db
    # Late writes: into a kept quarter hour (not counted: it cannot change any
    # more), and into one that ended less than an hour before now (counted).
    live = _conversation("acme", "hal@c.test", at(4, 11, 45), expires_at=at(4, 12, 40))
    await db[CONVERSATIONS].insert_one(live.to_doc())
    await db[MESSAGES].insert_many([_customer(at(3, 15), "kept"),
                                    _customer(at(4, 11, 50), "still open",
                                              live.conversation_id)])
    second = await analytics.report(ACME, START, now, "day", "UTC")
    assert second["series"]["messages.widget.in"] == [
        first["series"]["messages.widget.in"][0], first["series"]["messages.widget.in"][1],
        first["series"]["messages.widget.in"][2] + 1]
    kept = await db[SLOTS].find_one({"_id": {"$regex": r"\|acme\|.*\|2026-03-04$"}})
    assert kept is not None and kept["made_at"] is not None
    # 11:15 to 11:30 (the day's 46th quarter hour, q45) ended exactly an hour
    # before now; from 11:30 on nothing was kept.
    assert "q45" in kept["slots"] and "q46" not in kept["slots"]


async def test_a_day_another_report_inserted_meanwhile_gets_the_quarter_hours_added(
        services: Services) -> None:
    repo = get_analytics(services).repo
    now = at(5)
    await repo.keep({"k|2026-03-02": {"q01": {"people": ["a"]}}}, set(), now)
    # Read before that insert: the day was not present, and is inserted again.
    await repo.keep({"k|2026-03-02": {"q02": {}}}, set(), now)
    assert await repo.kept(["k|2026-03-02", "k|2026-03-03"]) == {
        "k|2026-03-02": {"q01": {"people": ["a"]}, "q02": {}}}


async def test_turns_and_conversations_are_kept_by_quarter_hour_too(services: Services) -> None:
    # A warm page reads every figure from kept quarter hours: a turn or a
    # conversation written afterwards into one (which the application never
    # does) does not show, so it was not read again.
    await seed(services)
    analytics = get_analytics(services)
    first = await analytics.report(ALL, START, END, "day", "UTC")
    kept = await services.store.db[SLOTS].find({}, {"_id": 1}).to_list()
    names = {doc["_id"].split("|")[1] for doc in kept}
    assert {"bot_turns", "support_started", "support_closed", "support_handoffs",
            "messenger_messages", "support_messages"} <= names
    await services.store.db["bot_turns"].insert_one(
        {"_id": str(oid(at(3, 10))), "user": "x@x.test", "bot": "bot:whatsease",
         "message": "hi", "intent": "greeting", "source": "intent", "at": at(3, 10)})
    again = await analytics.report(ALL, START, END, "day", "UTC")
    assert again["top_intents"] == first["top_intents"] == [{"intent": "greeting", "count": 1}]
    assert again["series"] == first["series"]


async def test_a_report_waits_for_figures_being_computed_only_so_long(
        services: Services) -> None:
    # Nothing kept and no time to wait: the report comes back at once, says
    # what is still being computed, and the computation finishes on its own.
    await seed(services)
    expected = await Analytics(services, get_analytics(services).repo, wait=PATIENT_SECS,
                               history_wait=PATIENT_SECS).report(ALL, START, END, "day", "UTC")
    await services.store.db[SLOTS].drop()
    hasty = Analytics(services, get_analytics(services).repo, wait=0.0)
    first = await hasty.report(ALL, START, END, "day", "UTC")
    assert first["complete"] is False
    assert "messenger_messages" in first["computing"]
    assert first["totals"]["messages_in"] < expected["totals"]["messages_in"]
    await hasty.idle()
    second = await hasty.report(ALL, START, END, "day", "UTC")
    assert second["complete"] is True and second["computing"] == []
    for report in (expected, second):
        report.pop("generated_at")
    assert second == expected


async def test_many_conversations_are_read_as_walks_of_the_index(services: Services) -> None:
    # Past WALK_PAST conversations a read takes every conversation between
    # the first and last of a part: those with no message in the range (here
    # the old chats between them) add nothing.
    day = at(10)
    old = [_message(f"o{i:04d}@x.test", f"p{i:04d}@x.test", "old", day - timedelta(days=40))
           for i in range(0, 900, 2)]
    new = [_message(f"o{i:04d}@x.test", f"p{i:04d}@x.test", "new", day + timedelta(minutes=i))
           for i in range(1, 900, 2)]
    await store_messages(services, old + new)
    report = await get_analytics(services).report(ALL, day, day + timedelta(days=1), "day",
                                                  "UTC")
    assert report["series"]["messages.web.in"] == [450]
    assert report["totals"]["active_people"] == 450
    assert report["previous"]["totals"]["messages_in"] == 0


async def test_history_being_computed_does_not_hold_up_a_report(services: Services) -> None:
    # Nothing kept: the report answers with its open end (the last hour, read
    # at once) and without the history, which one computation per source
    # computes in the background; a report asked meanwhile does not start
    # another, and once it is kept the report is complete.
    await seed(services)
    now = at(4, 12, 30)
    patient = Analytics(services, get_analytics(services).repo, clock=lambda: now,
                        wait=PATIENT_SECS, history_wait=PATIENT_SECS)
    chat = [_message("fay@x.test", "gus@x.test", "hi", t)
            for t in (at(4, 9), at(4, 11, 40), at(4, 12, 10))]
    await store_messages(services, chat)
    expected = await patient.report(ALL, START, now, "day", "UTC")
    assert expected["series"]["messages.web.in"] == [2, 1, 3]
    await services.store.db[SLOTS].drop()
    page = Analytics(services, get_analytics(services).repo, clock=lambda: now,
                     wait=PATIENT_SECS)
    first = await page.report(ALL, START, now, "day", "UTC")
    assert first["complete"] is False
    assert set(first["computing"]) == {"messenger_messages", "support_messages", "bot_turns",
                                       "support_started", "support_closed",
                                       "support_handoffs"}
    # 11:40 and 12:10 are in the open end (from 11:30); 09:00 is history.
    assert first["series"]["messages.web.in"] == [0, 0, 2]
    # The history still being computed is one computation per source (those
    # of a small history may be done already); the second report starts none.
    history = dict(page._backfills)
    texts = await fallback_replies(page.services, ALL)
    assert set(history) <= {page.key_prefix(name, ALL, texts) for name in first["computing"]}
    await page.report(ALL, START, now, "day", "UTC")
    assert all(history.get(key) is task for key, task in page._backfills.items())
    await page.idle()
    third = await page.report(ALL, START, now, "day", "UTC")
    for report in (expected, third):
        report.pop("generated_at")
    assert third == expected


@pytest.mark.parametrize(("unit", "tz"), [("day", "UTC"), ("hour", "Asia/Kolkata")])
async def test_days_that_can_no_longer_change_are_read_from_memory(
        services: Services, unit: str, tz: str) -> None:
    # After a warm report, every day it needs is in memory (whole days, or
    # their quarter hours added up per bucket): with the kept documents
    # dropped, the same report is still complete and the same, without
    # computing anything again.
    await seed(services)
    analytics = get_analytics(services)
    reports = [await analytics.report(ALL, START, END, unit, tz) for _ in range(3)]
    await services.store.db[SLOTS].drop()
    hasty = analytics.wait, analytics.history_wait
    analytics.wait = analytics.history_wait = 0.0
    try:
        again = await analytics.report(ALL, START, END, unit, tz)
    finally:
        analytics.wait, analytics.history_wait = hasty
    assert again["complete"] is True
    for report in (reports[-1], again):
        report.pop("generated_at")
    assert again == reports[-1]
    assert await services.store.db[SLOTS].count_documents({}) == 0


def test_memory_drops_the_least_recently_used_past_its_limit() -> None:
    one = Piece(people={"a", "b"})
    memory = Memory(limit=10)
    memory.put("x", Kept(day=one))  # weight 3: one document and two people
    memory.put("y", Kept(slots={"q00": one, "q01": None}))
    memory.put("z", Kept(day=one))
    assert memory.weight == 9 and len(memory) == 3
    assert memory.get("x") is not None  # now the most recently used
    memory.put("w", Kept(day=Piece(people={"c"})))  # weight 2: over 10, y goes
    assert memory.get("y") is None and memory.get("x") is not None
    assert memory.weight == 8
    memory.put("huge", Kept(day=Piece(people={str(i) for i in range(20)})))
    assert memory.get("huge") is None and len(memory) == 3
