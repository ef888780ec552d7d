"""Analytics' aggregation pipelines over the stored history, and the indexes that bound them.

Nothing here is a second store: every figure is computed from ``messages``,
``bot_turns``, ``support_conversations`` and ``support_messages`` as the
messenger and support write them.

The hot collections (``messages``, ``support_messages``, ``activity``) carry
no index for analytics: every message would pay for it when it is stored
(bench/README.md: one ``messages.timestamp`` index took the 1,000-socket
delivery p99 from 58 to 288 ms on the embedded database). Their pipelines
start with an ``_id`` range instead: a message's ``_id`` is an ObjectId made
when it is stored, so it embeds that second, and the ``_id`` index every
collection has walks a time range for free on MongoDB. (The embedded
database scans the collection for an ``_id`` range; closed buckets are
therefore computed once and kept, see `whatsease.analytics.service`.) The
colder collections (``bot_turns``, one document per assistant exchange, and
``support_conversations``, one per conversation) keep an index on each time
field they are read by.

Buckets are computed by the database with ``$dateTrunc`` in the caller's
time zone; the service maps each bucket start back to its position.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from whatsease.storage.support import CONVERSATIONS, MESSAGES

BOT_TURNS = "bot_turns"
# The support conversations' time fields that analytics reads by range. Unset
# times are stored as null and sit together at one end of each index.
_TIMES = ("created_at", "ended_at", "agent_requested_at")

# Collections written for every message: analytics adds no index to them.
HOT_COLLECTIONS = ("messages", MESSAGES, "activity")
# A message's `timestamp` is the clock's reading when it was stored, its `_id`
# is made in the same call; a channel may store the time the provider gave
# (a webhook retried later). Messages are looked up by an `_id` range this much
# wider than the range asked, then counted by `timestamp`: one stored more than
# this after (or before) its timestamp is not counted.
ID_SLACK = timedelta(hours=1)

# One entry per turn or conversation: a time never changes once set, so each
# pays for these once.
ANALYTICS_INDEXES: dict[str, list[IndexModel]] = {
    BOT_TURNS: [IndexModel([("at", ASCENDING)], name="analytics_at")],
    CONVERSATIONS: [
        *(IndexModel([(name, ASCENDING)], name=f"analytics_{name}") for name in _TIMES),
        *(IndexModel([("org", ASCENDING), (name, ASCENDING)], name=f"analytics_org_{name}")
          for name in _TIMES),
    ],
}
# Indexes earlier versions created on the hot collections: dropped at start-up.
RETIRED_ANALYTICS_INDEXES: dict[str, tuple[str, ...]] = {
    "messages": ("analytics_timestamp",),
    MESSAGES: ("analytics_timestamp", "analytics_org_timestamp"),
}

# The channel of a message or conversation: what the channel integration stored,
# else the external contact's prefix (wa:+49…, tg:…), else the default given.
_PREFIXES = (("wa:", "whatsapp"), ("tg:", "telegram"))


def _channel(*addresses: str, default: str) -> dict[str, Any]:
    branches = [{"case": {"$eq": [{"$substrCP": [{"$ifNull": [address, ""]}, 0, len(prefix)]},
                                  prefix]}, "then": name}
                for prefix, name in _PREFIXES for address in addresses]
    return {"$ifNull": ["$channel", {"$switch": {"branches": branches, "default": default}}]}


def _sample(size: int, match: dict[str, Any] | None = None) -> dict[str, Any]:
    """A facet of the newest ``size`` texts to score for sentiment (none if ``size`` is 0)."""
    if size <= 0:
        return {}
    stages: list[dict[str, Any]] = [{"$match": match}] if match else []
    stages += [{"$sort": {"_id": -1}}, {"$limit": size},
               {"$project": {"_id": 0, "text": "$content", "at": "$timestamp",
                             "language": {"$ifNull": ["$language", "en"]}}}]
    return {"sample": stages}


@dataclass(frozen=True)
class Window:
    """What to aggregate: ``[start, end)``, bucketed by ``unit`` in ``tz``, for ``org`` or all."""

    start: datetime
    end: datetime
    unit: str
    tz: str
    org: str | None = None

    def truncate(self, field: str) -> dict[str, Any]:
        spec: dict[str, Any] = {"date": field, "unit": self.unit, "timezone": self.tz}
        if self.unit == "week":
            spec["startOfWeek"] = "monday"
        return {"$dateTrunc": spec}

    def time_range(self) -> dict[str, Any]:
        return {"$gte": self.start, "$lt": self.end}

    def id_range(self) -> dict[str, Any]:
        """The `_id` range holding every message stored within `ID_SLACK` of the range."""
        return {"$gte": ObjectId.from_datetime(self.start - ID_SLACK),
                "$lt": ObjectId.from_datetime(self.end + ID_SLACK)}

    def stored_in_range(self) -> list[dict[str, Any]]:
        """The first stages of a hot collection's pipeline: `_id` range, then the exact times.

        Two stages: the first is what an index walks (the `_id` one), the
        second drops the slack.
        """
        return [{"$match": {"_id": self.id_range()}},
                {"$match": {**self.org_filter(), "timestamp": self.time_range()}}]

    def org_filter(self) -> dict[str, Any]:
        return {} if self.org is None else {"org": self.org}


@dataclass(frozen=True)
class Plan:
    """One pipeline of the page: its name, collection and stages (the bench explains these)."""

    name: str
    collection: str
    pipeline: list[dict[str, Any]]


def plans(window: Window, *, fallback_texts: list[str], sample: int,
          top: int) -> list[Plan]:
    """Every pipeline the analytics page needs for ``window``.

    The messenger's own collections count only for the whole messenger
    (``window.org`` None): person-to-person chats and the assistant belong to
    no organisation.
    """
    result: list[Plan] = []
    if window.org is None:
        result += _messenger_plans(window, sample=sample, top=top)
    result += _support_plans(window, fallback_texts=fallback_texts, sample=sample)
    return result


def _messenger_plans(window: Window, *, sample: int, top: int) -> list[Plan]:
    match = window.stored_in_range()
    direction = {"$cond": ["$is_bot_response", "out", "in"]}
    # Each message's bucket, channel and direction are worked out once, before
    # the facets share them: on the embedded database that is most of the cost.
    messages = Plan("messenger_messages", "messages", [*match, {"$project": {
        "_id": 0, "t": window.truncate("$timestamp"),
        "c": _channel("$sender", "$recipient", default="web"), "d": direction,
        "p": {"$cond": ["$is_bot_response", None, "$sender"]}}}, {"$facet": {
        "counts": [{"$group": {"_id": {"t": "$t", "c": "$c", "d": "$d"}, "n": {"$sum": 1}}}],
        "people": [{"$match": {"p": {"$type": "string"}}},
                   {"$group": {"_id": {"t": "$t", "p": "$p"}}},
                   {"$group": {"_id": "$_id.t", "n": {"$sum": 1}}}],
        "people_total": [{"$match": {"p": {"$type": "string"}}},
                         {"$group": {"_id": "$p"}}, {"$count": "n"}],
    }}])
    # What people say to a bot is what the service is asked; person-to-person
    # chats are private and are never read for their words.
    to_bots = Plan("messenger_to_bots", "messages", [
        *match, {"$match": {"recipient": {"$regex": "^bot:"}, "deleted": False}},
        {"$facet": {
            "languages": [{"$group": {"_id": {"$ifNull": ["$language", "en"]},
                                      "n": {"$sum": 1}}}],
            **_sample(sample),
        }}])
    fallback = ["fallback", "llm", "llm_error"]
    turns = Plan("bot_turns", BOT_TURNS, [
        {"$match": {"at": window.time_range()}},
        {"$facet": {
            "counts": [{"$group": {"_id": {"t": window.truncate("$at"),
                                           "fallback": {"$in": ["$source", fallback]}},
                                   "n": {"$sum": 1}}}],
            "intents": [{"$match": {"intent": {"$type": "string"}}},
                        {"$group": {"_id": "$intent", "n": {"$sum": 1}}},
                        {"$sort": {"n": -1, "_id": 1}}, {"$limit": top}],
            "fallbacks": [{"$match": {"source": {"$in": fallback}}},
                          {"$group": {"_id": {"$toLower": {"$trim": {"input": "$message"}}},
                                      "n": {"$sum": 1}, "last": {"$max": "$at"}}},
                          {"$sort": {"n": -1, "last": -1, "_id": 1}}, {"$limit": top}],
        }}])
    return [messages, to_bots, turns]


def _support_plans(window: Window, *, fallback_texts: list[str], sample: int) -> list[Plan]:
    org = window.org_filter()
    customer = {"$eq": ["$kind", "customer"]}
    messages = Plan("support_messages", MESSAGES, [
        *window.stored_in_range(),
        {"$match": {"kind": {"$in": ["customer", "bot", "agent"]}}},
        {"$facet": {
            "counts": [{"$group": {"_id": {
                "t": window.truncate("$timestamp"),
                "c": _channel("$sender", "$recipient", default="widget"),
                "d": {"$cond": [customer, "in", "out"]}}, "n": {"$sum": 1}}}],
            "bot": [{"$match": {"kind": "bot"}},
                    {"$group": {"_id": {"t": window.truncate("$timestamp"),
                                        "fallback": {"$in": ["$content", fallback_texts]}},
                                "n": {"$sum": 1}}}],
            "people": [{"$match": {"kind": "customer"}},
                       {"$group": {"_id": {"t": window.truncate("$timestamp"),
                                           "p": "$conversation_id"}}},
                       {"$group": {"_id": "$_id.t", "n": {"$sum": 1}}}],
            "people_total": [{"$match": {"kind": "customer"}},
                             {"$group": {"_id": "$conversation_id"}}, {"$count": "n"}],
            "languages": [{"$match": {"kind": "customer"}},
                          {"$group": {"_id": {"$ifNull": ["$language", "en"]},
                                      "n": {"$sum": 1}}}],
            **_sample(sample, {"kind": "customer"}),
        }}])
    channel = _channel("$customer_email", default="widget")
    started = Plan("support_started", CONVERSATIONS, [
        {"$match": {**org, "created_at": window.time_range()}},
        {"$group": {"_id": {"t": window.truncate("$created_at"), "c": channel},
                    "n": {"$sum": 1}}}])
    # Resolution: from the conversation's start to its end, for those an agent
    # answered; attributed to the agent who had it last.
    closed = Plan("support_closed", CONVERSATIONS, [
        {"$match": {**org, "ended_at": window.time_range()}},
        {"$project": {"_id": 0, "t": window.truncate("$ended_at"),
                      "agent": {"$ifNull": ["$agent", {"$arrayElemAt": ["$agents", -1]}]},
                      "secs": {"$divide": [{"$subtract": ["$ended_at", "$created_at"]}, 1000]}}}])
    # Handoffs: conversations whose customer first needed a person in the range;
    # their first response and their wait for an agent belong to the same cohort.
    handoffs = Plan("support_handoffs", CONVERSATIONS, [
        {"$match": {**org, "agent_requested_at": window.time_range()}},
        {"$project": {"_id": 0, "t": window.truncate("$agent_requested_at"),
                      "responder": "$first_responder", "first": "$first_response_secs",
                      "wait": {"$cond": [
                          {"$and": [{"$eq": [{"$type": "$assigned_at"}, "date"]},
                                    {"$gte": ["$assigned_at", "$agent_requested_at"]}]},
                          {"$divide": [{"$subtract": ["$assigned_at", "$agent_requested_at"]},
                                       1000]},
                          None]}}}])
    return [messages, started, closed, handoffs]


class AnalyticsRepo:
    """Runs the page's pipelines; one round trip each."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db

    async def run(self, plan: Plan) -> list[dict[str, Any]]:
        cursor = await self.db[plan.collection].aggregate(plan.pipeline, allowDiskUse=True)
        return await cursor.to_list()

    async def explain(self, plan: Plan) -> dict[str, Any]:
        """The database's plan for ``plan`` (which index it walks), for the bench."""
        return await self.db.command("explain", {"aggregate": plan.collection,
                                                 "pipeline": plan.pipeline, "cursor": {}})


async def ensure_indexes(db: AsyncDatabase[dict[str, Any]]) -> None:
    """Create analytics' indexes and drop retired ones (idempotent; called at start-up)."""
    for name, models in ANALYTICS_INDEXES.items():
        await db[name].create_indexes(models)
    for name, retired in RETIRED_ANALYTICS_INDEXES.items():
        present = {index["name"] async for index in await db[name].list_indexes()}
        for index in retired:
            if index in present:
                await db[name].drop_index(index)
