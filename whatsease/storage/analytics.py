"""Analytics' aggregation pipelines over the stored history, and the indexes that bound them.

Nothing here is a second store: every figure is computed from ``messages``,
``bot_turns``, ``support_conversations`` and ``support_messages`` as the
messenger and support write them.

The hot collections (``messages``, ``support_messages``, ``activity``) carry
no index for analytics: every message would pay for it when it is stored
(bench/README.md: one ``messages.timestamp`` index took the 1,000-socket
delivery p99 from 58 to 288 ms on the embedded database). Their pipelines
start with the conversations that had a message (`AnalyticsRepo.active`,
from the chats' memberships and support conversations' times), whose messages
the ``(conversation_id, _id)`` index every hot collection has walks: the
embedded database answers an ``_id`` range, or anything no index serves,
by decoding the whole collection (docs/analytics.md). The colder collections
(``bot_turns``, one document per assistant exchange, and
``support_conversations``, one per conversation) keep an index on each time
field they are read by.

Every pipeline groups by UTC quarter hour (every time zone's offset is a
whole number of them); the service folds quarter hours into the caller's
buckets and keeps those that can no longer change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from whatsease.storage.conversations import MEMBERS as CHAT_MEMBERS
from whatsease.storage.conversations import active_slot
from whatsease.storage.support import CONVERSATIONS, MESSAGES

BOT_TURNS = "bot_turns"
# The support conversations' time fields that analytics reads by range. Unset
# times are stored as null and sit together at one end of each index.
_TIMES = ("created_at", "ended_at", "agent_requested_at")

# Collections written for every message: analytics adds no index to them.
HOT_COLLECTIONS = ("messages", "message_receipts", MESSAGES, "activity")
# A message's `timestamp` is the clock's reading when it was stored; a channel
# may store the time the provider gave (a webhook retried later). A quarter
# hour of messages is kept once it ended this long ago: a message stored more
# than this after its timestamp is not counted.
ID_SLACK = timedelta(hours=1)

# The hot collections' figures are computed and kept per quarter hour: every
# time zone's offset is a whole number of quarter hours, so any zone's hours,
# days and weeks are made of them.
SLOT = timedelta(minutes=15)
SLOT_MS = int(SLOT.total_seconds() * 1000)
# One document per UTC day, scope and pipeline, holding the quarter hours computed.
SLOTS = "analytics_slots"
# A kept quarter hour is recomputed after this long (nothing else expires it):
# longer than the oldest one a report reads, a 366-day range's previous period.
SLOT_TTL = timedelta(days=800)
# History walked by the first query listing the conversations that had a
# message (on the embedded database an index walk holds it for everyone while
# it runs); later ones adapt to how many each finds.
WINDOW = timedelta(days=1)
MIN_WINDOW, MAX_WINDOW = timedelta(minutes=15), timedelta(days=64)
PER_WINDOW = 1000
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)
# Days per lookup or write of kept quarter hours (a report reads at most 733):
# the embedded database holds its lock while it fetches them, so a few at a
# time lets the chat path in between.
KEYS_PER_QUERY = 100
DUPLICATE_KEY = 11000
# Messages per reply of a read by conversation: each further batch is a round trip.
MESSAGES_PER_BATCH = 10_000


# One entry per turn or conversation: a time never changes once set, so each
# pays for these once.
ANALYTICS_INDEXES: dict[str, list[IndexModel]] = {
    BOT_TURNS: [IndexModel([("at", ASCENDING)], name="analytics_at")],
    CONVERSATIONS: [
        *(IndexModel([(name, ASCENDING)], name=f"analytics_{name}") for name in _TIMES),
        *(IndexModel([("org", ASCENDING), (name, ASCENDING)], name=f"analytics_org_{name}")
          for name in _TIMES),
    ],
    # A chat's membership: which chats had a message since a moment (the open
    # end of a report), by the quarter hour of their last message. Its entry
    # moves once per quarter hour of a chat, not with every message.
    CHAT_MEMBERS: [IndexModel([("active_at", ASCENDING)], name="analytics_active_at")],
    SLOTS: [IndexModel([("made_at", ASCENDING)], name="analytics_made_at",
                       expireAfterSeconds=int(SLOT_TTL.total_seconds()))],
}
# Indexes earlier versions created on the hot collections: dropped at start-up.
RETIRED_ANALYTICS_INDEXES: dict[str, tuple[str, ...]] = {
    "messages": ("analytics_timestamp",),
    # Moved with every chat summary's update: `CHAT_MEMBERS` answers instead.
    "conversations": ("analytics_updated_at",),
    MESSAGES: ("analytics_timestamp", "analytics_org_timestamp"),
}

# The channel of a message or conversation: what the channel integration stored,
# else the external contact's prefix (wa:+49…, tg:…), else the default given.
CHANNEL_PREFIXES = (("wa:", "whatsapp"), ("tg:", "telegram"))


@dataclass(frozen=True)
class Window:
    """What to aggregate: ``[start, end)``, bucketed by ``unit`` in ``tz``, for ``org`` or all."""

    start: datetime
    end: datetime
    unit: str
    tz: str
    org: str | None = None



@dataclass(frozen=True)
class Spans:
    """Time ranges of the hot collections read in one pipeline, grouped by quarter hour.

    ``ranges`` are disjoint ``[start, end)`` pairs in order; ``split`` is where
    the current period starts: a quarter hour that holds it is read as two
    pieces, told apart by the ``n`` ("now") key of each row.
    """

    ranges: tuple[tuple[datetime, datetime], ...]
    split: datetime
    org: str | None = None
    # The hot collections' pipelines read the messages of these conversations
    # (an index walk on every database): some of those that had a message in
    # ``ranges`` (`AnalyticsRepo.active`).
    conversations: tuple[str, ...] = ()
    # Or: every conversation from the first of these to the last (one walk of
    # the index, for a backfill that reads most of them; those that had no
    # message in ``ranges`` contribute nothing).
    between: tuple[str, str] | None = None

    def find_filter(self) -> dict[str, Any]:
        """A find of the messages of the conversations (what the index walks), and
        nothing else: the embedded database's planner turns any further condition
        (a time range, the org) into a scan of the whole collection, and reading
        a conversation reads its whole history anyway. What is outside the
        ranges, or of another org, is dropped by the reader (`analytics.fold`)."""
        if self.between is not None:
            return {"conversation_id": {"$gte": self.between[0], "$lte": self.between[1]}}
        return {"conversation_id": {"$in": list(self.conversations)}}

    def indexed(self, field: str) -> list[dict[str, Any]]:
        """The first stages on a collection with an index on ``field`` (after ``org``):
        one range over all the ranges (what the index walks), then the exact ranges."""
        org = {} if self.org is None else {"org": self.org}
        low, high = self.ranges[0][0], self.ranges[-1][1]
        stages: list[dict[str, Any]] = [{"$match": {**org, field: {"$gte": low, "$lt": high}}}]
        if len(self.ranges) > 1:
            stages.append({"$match": {"$or": [{field: {"$gte": start, "$lt": end}}
                                              for start, end in self.ranges]}})
        return stages

    def key(self, **fields: Any) -> dict[str, Any]:
        """A row's group key: its quarter hour, its side of ``split``, and ``fields``."""
        return {"s": "$s", "n": "$n", **fields}

    def slot_fields(self, field: str = "$timestamp") -> dict[str, Any]:
        return {"s": {"$subtract": [field, {"$mod": [{"$toLong": field}, SLOT_MS]}]},
                "n": {"$gte": [field, self.split]}}


@dataclass(frozen=True)
class Plan:
    """One pipeline of the page: its name, collection and stages (the bench explains these)."""

    name: str
    collection: str
    pipeline: list[dict[str, Any]]
    # A hot collection's messages are found instead (`AnalyticsRepo.messages`),
    # and added up in this process.
    find: dict[str, Any] | None = None


def slot_plans(spans: Spans, *, fallback_texts: list[str], sample: int) -> list[Plan]:
    """Every query of the page for ``spans``: finds for the messages and the assistant's
    turns, pipelines for support conversations, each grouped by quarter hour.

    The messages (by conversation) and the turns (by time) are the bulk of the
    history and are added up in this process (`analytics.fold`: counts by
    channel and direction, the distinct people, bots' replies and fallbacks,
    intents, fallback messages, languages, and the newest ``sample`` texts
    to score for sentiment). Support conversations' pipelines give rows per
    quarter hour (``s``) and side of the split (``n``): their starts, ends
    and handoffs (with the times each median is taken of). Person-to-person
    chats and the assistant's turns count only for the whole messenger
    (``spans.org`` None).
    """
    result: list[Plan] = []
    if spans.org is None:
        result.append(_messenger_plan(spans))
    result.append(_support_plan(spans))
    if spans.org is None:
        result.append(_turns_plan(spans))
    result += _conversation_plans(spans)
    return result


def plan_names(org: str | None) -> list[str]:
    """The names of `slot_plans`' pipelines for an organisation (or, None, everything)."""
    names = ["support_messages", "support_started", "support_closed", "support_handoffs"]
    return names if org is not None else ["messenger_messages", *names[:1], "bot_turns",
                                          *names[1:]]


def slot_plan(name: str, spans: Spans, *, fallback_texts: list[str], sample: int) -> Plan:
    """The one pipeline of `slot_plans` called ``name``."""
    if name == "messenger_messages":
        return _messenger_plan(spans)
    if name == "support_messages":
        return _support_plan(spans)
    if name == "bot_turns":
        return _turns_plan(spans)
    return next(p for p in _conversation_plans(spans) if p.name == name)


def _messenger_plan(spans: Spans) -> Plan:
    # Read as a find and added up in `analytics.fold` (see there why).
    return Plan("messenger_messages", "messages", [], find=spans.find_filter())


def _support_plan(spans: Spans) -> Plan:
    return Plan("support_messages", MESSAGES, [], find=spans.find_filter())


def _turns_plan(spans: Spans) -> Plan:
    # One range over all the ranges on the `at` index (an index walk); added up
    # in `analytics.fold`, which keeps only what falls in the exact ranges.
    return Plan("bot_turns", BOT_TURNS, [], find={
        "at": {"$gte": spans.ranges[0][0], "$lt": spans.ranges[-1][1]}})


def _conversation_plans(spans: Spans) -> list[Plan]:
    started = Plan("support_started", CONVERSATIONS, [
        *spans.indexed("created_at"),
        {"$project": {"_id": 0, **spans.slot_fields("$created_at")}},
        {"$facet": {"started": [{"$group": {"_id": spans.key(), "n": {"$sum": 1}}}]}}])
    # Resolution: from the conversation's start to its end, for those an agent
    # answered; attributed to the agent who had it last.
    closed = Plan("support_closed", CONVERSATIONS, [
        *spans.indexed("ended_at"),
        {"$project": {"_id": 0, **spans.slot_fields("$ended_at"),
                      "a": {"$ifNull": ["$agent", {"$arrayElemAt": ["$agents", -1]}]},
                      "v": {"$divide": [{"$subtract": ["$ended_at", "$created_at"]}, 1000]}}},
        {"$facet": {"closed": [{"$group": {"_id": spans.key(),
                                           "rows": {"$push": {"a": "$a", "v": "$v"}}}}]}}])
    # Handoffs: conversations whose customer first needed a person in the range;
    # their first response and their wait for an agent belong to the same cohort.
    handoffs = Plan("support_handoffs", CONVERSATIONS, [
        *spans.indexed("agent_requested_at"),
        {"$project": {"_id": 0, **spans.slot_fields("$agent_requested_at"),
                      "r": "$first_responder", "f": "$first_response_secs",
                      "w": {"$cond": [
                          {"$and": [{"$eq": [{"$type": "$assigned_at"}, "date"]},
                                    {"$gte": ["$assigned_at", "$agent_requested_at"]}]},
                          {"$divide": [{"$subtract": ["$assigned_at", "$agent_requested_at"]},
                                       1000]},
                          None]}}},
        {"$facet": {"handoffs": [{"$group": {"_id": spans.key(),
                                             "rows": {"$push": {"r": "$r", "f": "$f",
                                                                "w": "$w"}}}}]}}])
    return [started, closed, handoffs]


class AnalyticsRepo:
    """Runs the page's pipelines (one round trip each) and keeps closed quarter hours."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db

    async def run(self, plan: Plan) -> list[dict[str, Any]]:
        """The pipeline's rows, or (a hot collection's plan) the messages it finds."""
        if plan.find is not None:
            found = self.db[plan.collection].find(plan.find, batch_size=MESSAGES_PER_BATCH)
            return await found.to_list()
        cursor = await self.db[plan.collection].aggregate(plan.pipeline, allowDiskUse=True)
        return await cursor.to_list()

    async def active(self, collection: str, org: str | None, since: datetime,
                     until: datetime) -> AsyncIterator[list[str]]:
        """The conversations of ``collection`` that may hold a message stored since
        ``since``, in batches (index walks of at most `WINDOW` of history each).

        A chat's membership has the quarter hour of its last message
        (``active_at``, written before its summary); a support message is
        written only while its conversation is active and not expired, and
        each customer, bot or agent message moves the expiry on, so one
        stored since ``since`` is in a conversation still active
        and expiring after it, or in one that ended since. ``until`` is the
        moment the reading began: what changes later is read next time.
        """
        seen: set[str] = set()

        def fresh(ids: list[str]) -> list[str]:
            new = [i for i in ids if i not in seen]
            seen.update(new)
            return new

        if collection == MESSAGES:
            cursor = self.db[CONVERSATIONS].find(
                {"status": "active", "expires_at": {"$gt": since, "$lt": FAR_FUTURE}},
                {"_id": 1, "org": 1})
            yield fresh([str(doc["_id"]) async for doc in cursor
                         if org is None or doc.get("org") == org])
        field, name = (("active_at", CHAT_MEMBERS) if collection == "messages"
                       else ("ended_at", CONVERSATIONS))
        by_org: dict[str, Any] = {} if org is None or collection == "messages" else {"org": org}
        # A membership's time is the start of a quarter hour.
        low, size = (active_slot(since) if collection == "messages" else since), WINDOW
        while True:
            # The last window reaches far past ``until``: a chat written to
            # meanwhile has its membership moved on past it. (An upper bound is
            # always given: on the embedded database a lower bound alone on
            # an index after ``org`` also returned documents without the field.)
            high = low + size if low + size <= until else FAR_FUTURE
            cursor = self.db[name].find({**by_org, field: {"$gte": low, "$lt": high}},
                                        {"_id": 1})
            ids = [str(doc["_id"]) async for doc in cursor]
            yield fresh(ids)
            if high == FAR_FUTURE:
                return
            low = high
            # Quiet stretches of history are walked in longer windows, busy
            # ones in shorter: each walk lists about `PER_WINDOW` conversations.
            if len(ids) < PER_WINDOW // 4:
                size = min(size * 2, MAX_WINDOW)
            elif len(ids) > PER_WINDOW:
                size = max(size / 2, MIN_WINDOW)

    async def kept(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The kept days of quarter hours among ``keys``, by key (primary-key lookups only)."""
        found: dict[str, dict[str, Any]] = {}
        for i in range(0, len(keys), KEYS_PER_QUERY):
            cursor = self.db[SLOTS].find({"_id": {"$in": keys[i:i + KEYS_PER_QUERY]}})
            async for doc in cursor:
                # A whole day's figures (`keep_day`) come as {"day": figures}.
                found[doc["_id"]] = doc["slots"] if "slots" in doc else {"day": doc.get("day")}
        return found

    async def keep_day(self, days: dict[str, dict[str, Any]], now: datetime) -> None:
        """Keep whole days' figures, each in a document of its own (``{key: figures}``)."""
        writes = [UpdateOne({"_id": key}, {"$set": {"made_at": now, "day": figures}},
                            upsert=True) for key, figures in days.items()]
        for i in range(0, len(writes), KEYS_PER_QUERY):
            await self.db[SLOTS].bulk_write(writes[i:i + KEYS_PER_QUERY], ordered=False)

    async def keep(self, days: dict[str, dict[str, Any]], present: set[str],
                   now: datetime) -> None:
        """Add computed quarter hours (``{key: {slot name: figures}}``) to their days.

        Days not ``present`` when read are inserted whole (the embedded
        database inserts a document far faster than it applies a ``$set`` of
        ninety-six fields); a day another report inserted meanwhile, and days
        that were present, get the quarter hours added. Idempotent: a quarter
        hour computed twice gets the same figures again.
        """
        fresh = [{"_id": key, "made_at": now, "slots": slots}
                 for key, slots in days.items() if slots and key not in present]
        update = [key for key, slots in days.items() if slots and key in present]
        for i in range(0, len(fresh), KEYS_PER_QUERY):
            try:
                await self.db[SLOTS].insert_many(fresh[i:i + KEYS_PER_QUERY], ordered=False)
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if not errors or any(e.get("code") != DUPLICATE_KEY for e in errors):
                    raise
                update += [str(e["op"]["_id"]) for e in errors]
        writes = [UpdateOne({"_id": key}, {"$set": {"made_at": now, **{
            f"slots.{name}": figures for name, figures in days[key].items()}}}, upsert=True)
            for key in update]
        for i in range(0, len(writes), KEYS_PER_QUERY):
            await self.db[SLOTS].bulk_write(writes[i:i + KEYS_PER_QUERY], ordered=False)

    async def explain(self, plan: Plan) -> dict[str, Any]:
        """The database's plan for ``plan`` (which index it walks), for the bench."""
        if plan.find is not None:
            return await self.db.command("explain", {"find": plan.collection,
                                                     "filter": plan.find})
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
