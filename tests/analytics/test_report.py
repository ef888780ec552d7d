"""Exact figures from a known history: buckets, range edges, time zones, scopes and the cache."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

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
from whatsease.analytics.scope import Scope
from whatsease.analytics.service import get_analytics, plans_for
from whatsease.errors import Unprocessable
from whatsease.services import Services
from whatsease.storage.analytics import HOT_COLLECTIONS, Window
from whatsease.storage.support import CONVERSATIONS, MESSAGES
from whatsease.storage.support_models import SupportMessage

ACME = Scope("acme")
ALL = Scope(None)


async def test_an_organisation_sees_its_support_figures_exactly(services: Services) -> None:
    await seed(services)
    report = await get_analytics(services).report(ACME, START, END, "day", "UTC")
    s = report["series"]
    assert report["buckets"] == ["2026-03-02T00:00:00.000Z", "2026-03-03T00:00:00.000Z",
                                 "2026-03-04T00:00:00.000Z"]
    # B started before the range, E exactly at its (exclusive) end.
    assert s["conversations.started"] == [1, 0, 1]
    assert s["conversations.closed"] == [1, 0, 1]
    assert s["messages.widget.in"] == [2, 1, 1]
    # The system note is no message in or out.
    assert s["messages.widget.out"] == [2, 0, 1]
    assert s["messages.web.in"] == [0, 0, 0]
    assert s["people.active"] == [1, 1, 1]
    assert s["bot.replies"] == [0, 0, 1]
    assert s["bot.fallbacks"] == [1, 0, 0]
    assert s["handoffs"] == [1, 1, 0]
    assert s["first_response.median"] == [240.0, 60.0, None]
    assert s["queue_wait.median"] == [120.0, 30.0, None]
    assert s["resolution.median"] == [3600.0, None, 219600.0]
    t = report["totals"]
    assert t == {"conversations_started": 2, "conversations_closed": 2, "messages_in": 4,
                 "messages_out": 3, "active_people": 3, "bot_turns": 2,
                 "bot_answer_rate": 0.5, "bot_fallback_rate": 0.5, "handoffs": 2,
                 "first_response_median": 150.0, "resolution_median": 111600.0,
                 "queue_wait_median": 75.0}
    times = report["response_times"]
    assert times["first_response"] == {"count": 2, "median": 150.0, "p90": 222.0}
    assert times["queue_wait"] == {"count": 2, "median": 75.0, "p90": 111.0}
    assert [a["agent"] for a in report["agents"]] == ["agent1@acme.test", "agent2@acme.test"]
    assert report["agents"][0]["first_response"] == {"count": 1, "median": 240.0, "p90": 240.0}
    assert report["agents"][1]["resolution"] == {"count": 1, "median": 219600.0,
                                                 "p90": 219600.0}
    # The assistant's turns belong to no organisation.
    assert report["top_intents"] == [] and report["top_fallbacks"] == []
    assert report["languages"] == [{"language": "en", "count": 4}]
    sentiment = report["sentiment"]
    assert sentiment["scored"] == 4 and sentiment["unscored"] == 0
    assert sentiment["positive"] >= 1  # "thanks, great help!"
    # The previous period (Feb 27 - Mar 2) holds B's start only.
    assert report["previous"]["from"] == "2026-02-27T00:00:00.000Z"
    assert report["previous"]["totals"]["conversations_started"] == 1
    assert report["previous"]["totals"]["messages_in"] == 0


async def test_the_whole_messenger_adds_people_the_assistant_and_every_org(
        services: Services) -> None:
    await seed(services)
    report = await get_analytics(services).report(ALL, START, END, "day", "UTC")
    s = report["series"]
    assert s["messages.web.in"] == [2, 1, 1]
    assert s["messages.web.out"] == [0, 1, 0]
    assert s["messages.whatsapp.in"] == [0, 1, 0]
    assert s["messages.widget.in"] == [2, 2, 1]
    assert s["conversations.started"] == [1, 1, 1]
    assert s["conversations.closed"] == [1, 1, 1]
    assert s["bot.replies"] == [0, 1, 1]
    assert s["bot.fallbacks"] == [1, 1, 2]
    # Messenger people (alice+bob, alice+wa, carol) and support customers (A, B+D, C).
    assert s["people.active"] == [3, 4, 2]
    assert report["totals"]["active_people"] == 8
    assert report["totals"]["bot_fallback_rate"] == round(4 / 6, 4)
    assert report["top_intents"] == [{"intent": "greeting", "count": 1}]
    assert [(f["message"], f["count"]) for f in report["top_fallbacks"]] == [
        ("where is my parcel?", 2), ("i hate waiting, this is terrible", 1)]
    # Five support customers' messages, and the assistant's four turns in the
    # range (their language: seeded turns have none, which reads as English).
    assert report["languages"] == [{"language": "en", "count": 9}]


async def test_languages_read_the_language_each_turn_was_answered_in(
        services: Services) -> None:
    await seed(services)
    turns = services.store.db["bot_turns"]
    for when, lang in ((at(3, 9), "es"), (at(3, 9, 5), "es"), (at(4, 9), "hi")):
        await turns.insert_one({"_id": str(oid(when)), "user": "eva@x.test",
                                "bot": "bot:whatsease", "message": "hola", "intent": "greeting",
                                "source": "intent", "at": when, "lang": lang})
    report = await get_analytics(services).report(ALL, START, END, "day", "UTC")
    assert report["languages"] == [{"language": "en", "count": 9},
                                   {"language": "es", "count": 2},
                                   {"language": "hi", "count": 1}]


async def test_buckets_follow_the_time_zone(services: Services) -> None:
    await seed(services)
    paris = "Europe/Paris"
    start = datetime(2026, 3, 1, 23, tzinfo=UTC)  # Mar 2, 00:00 in Paris
    report = await get_analytics(services).report(ACME, start, start + timedelta(days=3),
                                                  "day", paris)
    assert report["buckets"][0] == "2026-03-01T23:00:00.000Z"
    # B started at 00:00 Paris time on the first day; C at 21:00 on the third.
    assert report["series"]["conversations.started"] == [2, 0, 1]


async def test_an_hour_bucket_over_a_dst_change_and_an_empty_range(services: Services) -> None:
    start = datetime(2026, 3, 28, 23, tzinfo=UTC)  # Mar 29 in Paris: 23 hours long
    report = await get_analytics(services).report(ALL, start, datetime(2026, 3, 29, 22,
                                                                       tzinfo=UTC),
                                                  "hour", "Europe/Paris")
    assert len(report["buckets"]) == 23
    assert set(report["series"]["messages.web.in"]) == {0}
    assert report["totals"]["bot_answer_rate"] is None
    assert report["response_times"]["first_response"] == {"count": 0, "median": None,
                                                          "p90": None}
    week = await get_analytics(services).report(ALL, START, START + timedelta(days=14),
                                                "week", "UTC")
    # 2026-03-02 is a Monday: two whole weeks.
    assert week["buckets"] == ["2026-03-02T00:00:00.000Z", "2026-03-09T00:00:00.000Z"]


@pytest.mark.parametrize(("days", "unit", "limit"), [(367, "week", "366 days"),
                                                     (84, "hour", "2000")])
async def test_ranges_over_the_limits_are_refused(services: Services, days: int, unit: str,
                                                  limit: str) -> None:
    with pytest.raises(Unprocessable) as caught:
        await get_analytics(services).report(ALL, START, START + timedelta(days=days), unit,
                                             "UTC")
    assert limit in caught.value.detail
    await get_analytics(services).report(ALL, START, START + timedelta(days=83), "hour", "UTC")


async def test_a_closed_range_is_cached_and_an_open_one_is_not(services: Services) -> None:
    await seed(services)
    analytics = get_analytics(services)
    before = await analytics.report(ACME, START, END, "day", "UTC")
    late = at(3, 15)
    await services.store.db[MESSAGES].insert_one(SupportMessage(
        message_id=str(oid(late)), conversation_id="c", org="acme", kind="customer",
        sender="zed@c.test", sender_name="Zed", recipient="org:acme", content="late write",
        timestamp=late).to_doc())
    again = await analytics.report(ACME, START, END, "day", "UTC")
    assert again["totals"]["messages_in"] == before["totals"]["messages_in"] == 4
    now = datetime.now(UTC)
    open_start = START
    first = await analytics.report(ACME, open_start, now + timedelta(hours=1), "week", "UTC")
    live = _conversation("acme", "zed@c.test", now, expires_at=now + timedelta(minutes=5))
    await services.store.db[CONVERSATIONS].insert_one(live.to_doc())
    await services.store.db[MESSAGES].insert_one(SupportMessage(
        message_id=str(oid(now)), conversation_id=live.conversation_id, org="acme",
        kind="customer",
        sender="zed@c.test", sender_name="Zed", recipient="org:acme", content="now",
        timestamp=now).to_doc())
    second = await analytics.report(ACME, open_start, now + timedelta(hours=1), "week", "UTC")
    assert second["totals"]["messages_in"] == first["totals"]["messages_in"] + 1


def _scans(node: Any) -> list[str]:
    """Index names and COLLSCANs in an explain document's winning plans."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("stage") == "COLLSCAN":
            found.append("COLLSCAN")
        if isinstance(node.get("indexName"), str):
            found.append(node["indexName"])
        for key, value in node.items():
            if key != "rejectedPlans":
                found += _scans(value)
    elif isinstance(node, list):
        for value in node:
            found += _scans(value)
    return found


@pytest.mark.parametrize("org", [None, "acme"])
async def test_every_pipeline_walks_an_index(services: Services, org: str | None) -> None:
    """Colder collections walk a time index; hot ones their conversations' messages.

    The embedded database decodes the whole collection for anything no index
    serves (an `_id` range too): no pipeline may ask for that.
    """
    await seed(services)
    analytics = get_analytics(services)
    window = Window(start=START, end=END, unit="day", tz="UTC", org=org)
    for plan in plans_for(window, conversations=("alice@x.test bob@x.test", "c")):
        if plan.collection in HOT_COLLECTIONS:
            assert plan.find is not None and next(iter(plan.find)) == "conversation_id", plan.name
        used = _scans(await analytics.repo.explain(plan))
        assert used and "COLLSCAN" not in used, (plan.name, used)
    # Listing the conversations that had a message walks indexes too.
    for query in ({"status": "active", "expires_at": {"$gt": START}},
                  {"org": "acme", "ended_at": {"$gte": START, "$lt": END}}):
        explained = await services.store.db.command(
            "explain", {"find": CONVERSATIONS, "filter": query})
        assert "COLLSCAN" not in _scans(explained), query
    explained = await services.store.db.command(
        "explain", {"find": "chat_members", "filter": {"active_at": {"$gte": START,
                                                                       "$lt": END}}})
    assert _scans(explained) == ["analytics_active_at"]


async def test_telegram_and_whatsapp_contacts_count_by_their_channel(services: Services) -> None:
    # The channels' contacts are addresses wa:<phone> and tg:<chat id>; a
    # message that stored its channel is counted by that instead.
    day = datetime(2026, 4, 6, tzinfo=UTC)
    await store_messages(services, [
        _message("tg:123456789", "bot:whatsease", "hola", day),
        _message("bot:whatsease", "tg:123456789", "¡Hola!", day + timedelta(seconds=1), bot=True),
        _message("wa:+34600000000", "bot:whatsease", "hi", day + timedelta(minutes=1)),
        {**_message("ann@x.test", "bot:whatsease", "hi", day + timedelta(minutes=2)),
         "channel": "telegram"},
    ])
    report = await get_analytics(services).report(ALL, day, day + timedelta(days=1), "day",
                                                  "UTC")
    s = report["series"]
    assert (s["messages.telegram.in"], s["messages.telegram.out"]) == ([2], [1])
    assert s["messages.whatsapp.in"] == [1]
    assert s["messages.web.in"] == [0]
