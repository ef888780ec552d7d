"""Benchmark: the analytics page over a year of seeded history on the embedded database.

Seeds ``--messages`` messenger messages (between people and their few
contacts; a third of them to or from the assistant, with its turns), their
chats' summaries, and ``--conversations`` support conversations (four
messages each, a third handed to agents) spread over the last 365 days, in
bulk and before the application's indexes exist (then builds them), into a
SecantusDB it starts in a temporary directory. Then, for the whole messenger
and for one organisation:

- the cold start: a year's report with nothing kept, which comes back at
  once and computes the history in the background; timed until complete,
  with one document written and read back by `_id` every 100 ms meanwhile
  (what the chat path does per message, in small) against the same before;
- for the last 1, 30 and 365 days (by hour, day and week): the page warm (the
  same range again) and refreshed (the range moved on 30 s, as the page's
  refresh asks), and each query a warm page runs (the kept quarter hours
  read by key; each source's open end, the messages by the conversations
  that had one), p50/p99, with the index each walks (from ``explain``); and
  each indexed source computed afresh over the whole range (what keeping
  saves), once.

Prints markdown tables. Talks only to 127.0.0.1, stops by itself, and skips
what is left once ``--budget`` seconds have passed.

    python bench/analytics.py [--messages 1000000] [--conversations 50000] [--repeat 5]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bson import ObjectId
from pymongo import AsyncMongoClient

from whatsease.analytics import slots
from whatsease.analytics.scope import Scope, fallback_replies
from whatsease.analytics.service import HOT, Analytics, plans_for
from whatsease.app import build_services
from whatsease.config import Config
from whatsease.storage.analytics import SLOTS, AnalyticsRepo, Spans, Window, slot_plans
from whatsease.storage.analytics import ensure_indexes as ensure_analytics_indexes
from whatsease.storage.launcher import EmbeddedDatabase
from whatsease.storage.store import INDEXES
from whatsease.storage.support import CONVERSATIONS, MESSAGES, ORGS, SUPPORT_INDEXES
from whatsease.storage.support_models import Org

TARGET_PAGE_MS_30D = 500.0
# What the budget keeps for the warm pages after a cold start.
RESERVE_SECS = 150.0
BATCH = 10_000
PEOPLE = 5_000
CONTACTS = 8  # each person writes to a few people, as people do
ORG_COUNT = 20
AGENTS_PER_ORG = 5
RANGES = ((30, "day"), (1, "hour"), (365, "week"))
WORDS = ("order", "late", "thanks", "great", "refund", "where", "is", "my", "parcel", "help",
         "terrible", "love", "cancel", "please", "account", "password", "today", "why")


def _oid(moment: datetime) -> ObjectId:
    return ObjectId(ObjectId.from_datetime(moment).binary[:4] + os.urandom(8))


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8)))


async def _insert(collection: Any, docs: list[dict[str, Any]]) -> None:
    for i in range(0, len(docs), BATCH):
        await collection.insert_many(docs[i:i + BATCH], ordered=False)


async def seed(db: Any, now: datetime, messages: int, conversations: int,
               rng: random.Random) -> None:
    """Insert the history in batches, oldest first, as the application would have."""
    span = 365 * 86400
    start = now - timedelta(seconds=span)
    people = [f"person{i}@bench.test" for i in range(PEOPLE)]
    contacts = {p: rng.sample(people, CONTACTS) for p in people}
    chats: dict[str, dict[str, Any]] = {}
    chunk = 100_000
    done = 0
    while done < messages:
        n = min(chunk, messages - done)
        moments = sorted(start + timedelta(seconds=rng.random() * span) for _ in range(n))
        docs, turns = [], []
        for when in moments:
            sender = rng.choice(people)
            kind = rng.random()
            if kind < 0.66:
                recipient, bot = rng.choice(contacts[sender]), False
            elif kind < 0.83:
                recipient, bot = "bot:whatsease", False
            else:
                sender, recipient, bot = "bot:whatsease", sender, True
            oid = _oid(when)
            members = sorted({sender, recipient})
            chat, content = " ".join(members), _text(rng)
            docs.append({"_id": oid, "sender": sender, "recipient": recipient,
                         "content": content, "timestamp": when, "status": "Read",
                         "is_bot_response": bot, "conversation_id": chat,
                         "members": members, "rev": oid, "deleted": False})
            # The chat's summary, as the messenger keeps it (its last message).
            chats[chat] = {
                "_id": chat, "members": members, "updated_at": when,
                "unread": {"0": 0, "1": 0},
                "last_message": {"message_id": str(oid), "sender": sender,
                                 "content": content, "timestamp": when, "status": "Read",
                                 "deleted": False, "is_bot_response": bot}}
            if recipient == "bot:whatsease":
                matched = rng.random() < 0.8
                turns.append({"_id": str(_oid(when)), "user": sender, "bot": "bot:whatsease",
                              "message_id": str(oid), "message": content,
                              "intent": f"intent{rng.randint(1, 40)}" if matched else None,
                              "confidence": 0.9, "reply": "ok", "reply_message_id": str(oid),
                              "source": "intent" if matched else "fallback", "at": when})
        await _insert(db["messages"], docs)
        await _insert(db["bot_turns"], turns)
        done += n
        print(f"  messages: {done:,}", flush=True)
    await _insert(db["conversations"], list(chats.values()))
    print(f"  chats: {len(chats):,}", flush=True)
    orgs = [f"org{i}" for i in range(ORG_COUNT)]
    await db[ORGS].insert_many([Org(o, o, f"key-{o}").to_doc() for o in orgs])
    convs, msgs = [], []
    for _ in range(conversations):
        created = start + timedelta(seconds=rng.random() * span)
        org = rng.choice(orgs)
        email = f"customer{rng.randint(0, 99_999)}@c.test"
        cid = _oid(created)
        ended = created + timedelta(minutes=rng.randint(2, 90))
        doc: dict[str, Any] = {
            "_id": cid, "org": org, "customer_name": "C", "customer_email": email,
            "token_hash": "x", "created_at": created, "last_message_at": created,
            "expires_at": created + timedelta(minutes=5), "status": "ended",
            "handler": "bot", "mode": "auto", "agent": None,
            "ended_at": ended, "end_reason": "timeout", "assigned_at": None,
            "agent_requested_at": None, "first_response_at": None,
            "first_response_secs": None, "first_responder": None,
            "unread": 0, "message_count": 4, "last_message": None, "bot_state": {},
            "agents": []}
        if ended > now:  # still going on: active, expiring after its last message
            doc.update(status="active", ended_at=None, end_reason=None,
                       expires_at=now + timedelta(minutes=5))
        if rng.random() < 0.33:
            agent = f"agent{rng.randint(0, AGENTS_PER_ORG - 1)}@{org}.test"
            requested = created + timedelta(seconds=rng.randint(5, 120))
            assigned = requested + timedelta(seconds=rng.randint(0, 600))
            first = assigned + timedelta(seconds=rng.randint(5, 300))
            doc.update(handler="agent", agent=agent, agents=[agent],
                       agent_requested_at=requested, assigned_at=assigned,
                       first_response_at=first, first_responder=agent,
                       first_response_secs=(first - requested).total_seconds())
            if doc["status"] == "ended":
                doc["end_reason"] = "closed"
        convs.append(doc)
        for k, role in enumerate(("customer", "bot", "customer", "agent" if doc["agent"]
                                  else "bot")):
            when = min(created + timedelta(seconds=10 * k), now)
            msgs.append({"_id": _oid(when), "conversation_id": str(cid), "org": org,
                         "kind": role, "sender": email if role == "customer" else "x",
                         "sender_name": "", "recipient": f"org:{org}" if role == "customer"
                         else email, "content": _text(rng), "timestamp": when})
    await _insert(db[CONVERSATIONS], convs)
    await _insert(db[MESSAGES], msgs)
    print(f"  support: {conversations:,} conversations, {len(msgs):,} messages", flush=True)


def _index_used(explained: Any) -> str:
    """The index names (or COLLSCAN) found anywhere in an explain document."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "rejectedPlans" in node:
                node = {k: v for k, v in node.items() if k != "rejectedPlans"}
            if node.get("stage") == "COLLSCAN":
                found.append("COLLSCAN")
            if isinstance(node.get("indexName"), str):
                found.append(node["indexName"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(explained)
    return ",".join(dict.fromkeys(found)) or "?"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Budget:
    """Wall-clock budget of the run: stages after it are skipped, and say so."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> bool:
        return time.monotonic() < self.deadline

    def remaining(self, reserve: float) -> float:
        return max(1.0, self.deadline - reserve - time.monotonic())


class Clock:
    """The analytics' clock: the seeded "now", moved on by the refreshes."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def _timed(coro: Any, incomplete: list[int] | None = None) -> float:
    """How long ``coro`` took, in ms; a report's answer that was not complete is counted
    in ``incomplete``."""
    began = time.perf_counter()
    result = await coro
    took = (time.perf_counter() - began) * 1000
    if incomplete is not None and isinstance(result, dict) and not result.get("complete"):
        incomplete.append(1)
    return took


async def _probe(db: Any, stop: asyncio.Event, times: list[float]) -> None:
    """What the chat path does per message, in small: store one document and read it back
    by `_id`, every 100 ms until ``stop``."""
    probes = db["bench_probe"]
    while not stop.is_set():
        began = time.perf_counter()
        oid = ObjectId()
        await probes.insert_one({"_id": oid, "at": datetime.now(UTC)})
        await probes.find_one({"_id": oid})
        times.append((time.perf_counter() - began) * 1000)
        await asyncio.sleep(0.1)


async def _probed(db: Any, work: Any) -> list[float]:
    stop, times = asyncio.Event(), list[float]()
    probe = asyncio.create_task(_probe(db, stop, times))
    try:
        await work
    finally:
        stop.set()
        await probe
    return times


async def _until_idle(analytics: Analytics, budget: Budget) -> bool:
    """Wait for the background computations, at most until `RESERVE_SECS` before the budget
    ends; whether they finished."""
    try:
        await asyncio.wait_for(asyncio.shield(analytics.idle()), budget.remaining(RESERVE_SECS))
    except TimeoutError:
        return False
    return True


async def cold_start(analytics: Analytics, scope: Scope, clock: Clock, budget: Budget) -> None:
    """A year's report with nothing kept: how soon it answers, how long until complete, and
    what a write and read of one document cost meanwhile (against before)."""
    db = analytics.repo.db
    idle = await _probed(db, asyncio.sleep(3))
    began = time.perf_counter()
    first = await analytics.report(scope, clock.now - timedelta(days=365), clock.now, "week",
                                   "UTC")
    answered = (time.perf_counter() - began) * 1000
    finished: list[bool] = []

    async def wait() -> None:
        finished.append(await _until_idle(analytics, budget))

    busy = await _probed(db, wait())
    complete = time.perf_counter() - began
    print(f"| cold start (nothing kept), year by week | first answer | {answered:.0f} ms, "
          f"complete: {first['complete']}, computing: {', '.join(first['computing']) or '-'} |")
    print(f"| | history computed and kept | {complete:.1f} s" + (
        "" if finished[0] else " and NOT finished (stopped waiting: --budget)") + " |")
    print(f"| | one insert + read by `_id`, before | p50 {_pct(idle, 0.5):.1f} ms, "
          f"p99 {_pct(idle, 0.99):.1f} ms |")
    print(f"| | the same while the history is computed | p50 {_pct(busy, 0.5):.1f} ms, "
          f"p99 {_pct(busy, 0.99):.1f} ms, max {max(busy):.0f} ms ({len(busy)} probes) |",
          flush=True)


async def measure(analytics: Analytics, clock: Clock, repeat: int, org: str | None,
                  budget: Budget) -> None:
    label = org or "whole messenger"
    scope = Scope(org)
    print(f"\n### {label}, {os.getloadavg()[0]:.1f} load average\n")
    print("| what | | |\n|---|---|---|")
    await cold_start(analytics, scope, clock, budget)
    print("\n| range | query | index | p50 ms | p99 ms |")
    print("|---|---|---|---:|---:|")
    for days, unit in RANGES:
        if not budget.left():
            print(f"| {days} d | (skipped: over --budget) | | | |", flush=True)
            continue
        start, end = clock.now - timedelta(days=days), clock.now
        # A year's page takes seconds on the embedded database: twice is enough.
        rounds = repeat if days < 365 else min(repeat, 2)
        # The queries of a warm page: each source's kept quarter hours by key
        # (the range and its previous period), and its open end.
        fallback_texts = await fallback_replies(analytics.services, scope)
        names = [p.name for p in slot_plans(Spans(((start, end),), split=start, org=org),
                                            fallback_texts=[], sample=0)]
        day_keys = sorted({slots.day_and_name(s)[0] for s in slots.whole_slots(
            start - (end - start), start, end, end)})
        open_from = slots.floor(end - timedelta(hours=1, minutes=15))
        for name in names:
            keys = [analytics.key_prefix(name, scope, fallback_texts) + day
                    for day in day_keys]
            times = [await _timed(analytics.repo.kept(keys)) for _ in range(rounds)]
            print(f"| {days} d | {name}: kept quarter hours from the database ({len(keys)} days "
                  "by key; a warm page holds them in memory) | _id_ | "
                  f"{_pct(times, 0.5):.0f} | {_pct(times, 0.99):.0f} |", flush=True)
            times = [await _timed(analytics._read(name, scope, [(open_from, end)], start,
                                                  fallback_texts, end)) for _ in range(rounds)]
            spans = Spans(((open_from, end),), split=start, org=org)
            if name in HOT:
                ids: list[str] = []
                async for batch in analytics.repo.active(HOT[name], org, open_from, end):
                    ids += batch
                spans = Spans(((open_from, end),), split=start, org=org,
                              conversations=tuple(ids[:100]))
            plan = next(p for p in slot_plans(spans, fallback_texts=[], sample=0)
                        if p.name == name)
            index = _index_used(await analytics.repo.explain(plan))
            print(f"| {days} d | {name}: open end (last 75 min) | {index} | "
                  f"{_pct(times, 0.5):.0f} | {_pct(times, 0.99):.0f} |", flush=True)
        # What keeping saves: each indexed source computed afresh over the
        # range (a year's only when the budget allows).
        if days <= 30:
            window = Window(start=start, end=end, unit=unit, tz="UTC", org=org)
            for plan in plans_for(window):
                if plan.name in HOT:
                    continue
                one = await _timed(analytics.repo.run(plan))
                index = _index_used(await analytics.repo.explain(plan))
                print(f"| {days} d | {plan.name}: whole range afresh (not kept) | {index} | "
                      f"{one:.0f} | {one:.0f} |", flush=True)
        warm: list[float] = []
        moved: list[float] = []
        partial: dict[str, list[int]] = {"warm": [], "moved": []}
        seeded = clock.now
        for k in range(rounds):
            await _until_idle(analytics, budget)
            warm.append(await _timed(analytics.report(scope, start, end, unit, "UTC"),
                                     partial["warm"]))
            clock.now = seeded + timedelta(seconds=30 * (k + 1))
            moved.append(await _timed(analytics.report(
                scope, start + (clock.now - seeded), clock.now, unit, "UTC"), partial["moved"]))
            await _until_idle(analytics, budget)
        clock.now = seeded
        for name, page, short in (("whole page, warm", warm, partial["warm"]),
                                  ("whole page, refreshed 30 s later", moved, partial["moved"])):
            verdict = ""
            if short:
                # Answered at once while history was still being computed.
                name += f" ({len(short)} of {len(page)} incomplete)"
            if days == 30:
                verdict = (" (target < 500 ms: met)" if _pct(page, 0.5) < TARGET_PAGE_MS_30D
                           else " (target < 500 ms: NOT met)")
            print(f"| {days} d | **{name}**{verdict} | | {_pct(page, 0.5):.0f} | "
                  f"{_pct(page, 0.99):.0f} |", flush=True)


async def run(args: argparse.Namespace) -> None:
    budget = Budget(args.budget)
    with tempfile.TemporaryDirectory(prefix="whatsease-bench-") as root:
        database = EmbeddedDatabase(Path(root) / "db", log_path=Path(root) / "secantusd.log")
        uri = database.start()
        try:
            now = datetime.now(UTC)
            rng = random.Random(args.seed)
            began = time.perf_counter()
            print(f"seeding {args.messages:,} messages and {args.conversations:,} support "
                  "conversations...", flush=True)
            # Written before any index exists (an index costs every insert an
            # entry: several times the insert itself on the embedded database),
            # then every index the application creates at start-up is built.
            # The application's client gives up on a reply after 30 s; building
            # an index over a million documents takes longer: the bench uses a
            # client that waits.
            patient: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
                uri, tz_aware=True, socketTimeoutMS=0)
            db = patient["bench"]
            await seed(db, now, args.messages, args.conversations, rng)
            seeded = time.perf_counter()
            print(f"seeded in {seeded - began:.0f} s", flush=True)
            for indexes in (INDEXES, SUPPORT_INDEXES):
                for name, models in indexes.items():
                    if models:
                        await db[name].create_indexes(models)
            await ensure_analytics_indexes(db)
            print(f"indexes built in {time.perf_counter() - seeded:.0f} s", flush=True)
            config = Config(host="127.0.0.1", port=0, db_name="bench", log_level="WARNING",
                            jwt_secret=os.urandom(32).hex(), bot_semantic=False)
            services = await build_services(config, uri)
            clock = Clock(now)
            analytics = Analytics(services, AnalyticsRepo(db), clock=clock)
            services.analytics = analytics
            await db[SLOTS].drop()
            await measure(analytics, clock, args.repeat, None, budget)
            if budget.left():
                await measure(analytics, clock, args.repeat, "org0", budget)
            else:
                print("\norg0: skipped (over --budget)")
            print(f"\nwall time {time.perf_counter() - began:.0f} s, load average "
                  f"{os.getloadavg()[0]:.1f} at the end", flush=True)
            await patient.close()
            await services.store.close()
        finally:
            database.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--conversations", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--budget", type=float, default=840.0,
                        help="seconds after which the remaining stages are skipped")
    args = parser.parse_args()
    if not (0 < args.messages <= 5_000_000 and 0 <= args.conversations <= 500_000
            and 1 <= args.repeat <= 50 and 0 < args.budget <= 7200):
        parser.error("keep --messages ≤ 5,000,000, --conversations ≤ 500,000, --repeat 1..50, "
                     "--budget ≤ 7200")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
