"""Benchmark: the analytics page's queries over a year of seeded history on the embedded database.

Seeds ``--messages`` messenger messages (a third of them to or from the
assistant, with its turns) and ``--conversations`` support conversations
(four messages each, a third handed to agents) spread over the last 365 days,
in bulk and before the application's indexes exist (then builds them), into a
SecantusDB it starts in a temporary directory. Then, for the last 1, 30 and
365 days (bucketed by hour, day and week), it times every pipeline of the
page computed live, and the whole report: cold (nothing kept), warm (the same
range again) and refreshed (the range moved on by 30 s, as the page's
refresh asks), and prints p50/p99 per query and the index each one walks.
Talks only to 127.0.0.1 and stops by itself.

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

from whatsease.analytics.service import Analytics, Scope, get_analytics, plans_for
from whatsease.app import build_services
from whatsease.config import Config
from whatsease.storage.analytics import SLOTS, AnalyticsRepo, Plan, Window
from whatsease.storage.analytics import ensure_indexes as ensure_analytics_indexes
from whatsease.storage.launcher import EmbeddedDatabase
from whatsease.storage.store import INDEXES
from whatsease.storage.support import CONVERSATIONS, MESSAGES, ORGS, SUPPORT_INDEXES
from whatsease.storage.support_models import Org

TARGET_PAGE_MS_30D = 500.0
HOT = ("messenger_messages", "support_messages")
BATCH = 10_000
PEOPLE = 5_000
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
    chunk = 100_000
    done = 0
    while done < messages:
        n = min(chunk, messages - done)
        docs, turns = [], []
        for _ in range(n):
            when = start + timedelta(seconds=rng.random() * span)
            sender = rng.choice(people)
            kind = rng.random()
            if kind < 0.66:
                recipient, bot = rng.choice(people), False
            elif kind < 0.83:
                recipient, bot = "bot:whatsease", False
            else:
                sender, recipient, bot = "bot:whatsease", sender, True
            oid = _oid(when)
            docs.append({"_id": oid, "sender": sender, "recipient": recipient,
                         "content": _text(rng), "timestamp": when, "status": "Read",
                         "is_bot_response": bot, "conversation_id": " ".join(
                             sorted((sender, recipient))),
                         "members": sorted({sender, recipient}), "rev": oid, "deleted": False})
            if recipient == "bot:whatsease":
                matched = rng.random() < 0.8
                turns.append({"_id": str(_oid(when)), "user": sender, "bot": "bot:whatsease",
                              "message_id": str(oid), "message": docs[-1]["content"],
                              "intent": f"intent{rng.randint(1, 40)}" if matched else None,
                              "confidence": 0.9, "reply": "ok", "reply_message_id": str(oid),
                              "source": "intent" if matched else "fallback", "at": when})
        await _insert(db["messages"], docs)
        await _insert(db["bot_turns"], turns)
        done += n
        print(f"  messages: {done:,}", flush=True)
    orgs = [f"org{i}" for i in range(ORG_COUNT)]
    await db[ORGS].insert_many([Org(o, o, f"key-{o}").to_doc() for o in orgs])
    convs, msgs = [], []
    for _ in range(conversations):
        created = start + timedelta(seconds=rng.random() * span)
        org = rng.choice(orgs)
        email = f"customer{rng.randint(0, 99_999)}@c.test"
        cid = _oid(created)
        doc: dict[str, Any] = {
            "_id": cid, "org": org, "customer_name": "C", "customer_email": email,
            "token_hash": "x", "created_at": created, "last_message_at": created,
            "expires_at": created + timedelta(minutes=5), "status": "ended",
            "handler": "bot", "mode": "auto", "agent": None,
            "ended_at": created + timedelta(minutes=rng.randint(2, 90)),
            "end_reason": "timeout", "assigned_at": None, "agent_requested_at": None,
            "first_response_at": None, "first_response_secs": None, "first_responder": None,
            "unread": 0, "message_count": 4, "last_message": None, "bot_state": {},
            "agents": []}
        if rng.random() < 0.33:
            agent = f"agent{rng.randint(0, AGENTS_PER_ORG - 1)}@{org}.test"
            requested = created + timedelta(seconds=rng.randint(5, 120))
            assigned = requested + timedelta(seconds=rng.randint(0, 600))
            first = assigned + timedelta(seconds=rng.randint(5, 300))
            doc.update(handler="agent", agent=agent, agents=[agent], end_reason="closed",
                       agent_requested_at=requested, assigned_at=assigned,
                       first_response_at=first, first_responder=agent,
                       first_response_secs=(first - requested).total_seconds())
        convs.append(doc)
        for k, role in enumerate(("customer", "bot", "customer", "agent" if doc["agent"]
                                  else "bot")):
            when = created + timedelta(seconds=10 * k)
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


async def measure(services: Any, now: datetime, repeat: int, org: str | None,
                  ranges: tuple[tuple[int, str], ...]) -> None:
    analytics = get_analytics(services)
    label = org or "whole messenger"
    print(f"\n### {label}, {os.getloadavg()[0]:.1f} load average\n")
    print("| range | query | index | p50 ms | p99 ms |")
    print("|---|---|---|---:|---:|")
    for days, unit in ranges:
        # A year's queries take long on the embedded database: once is enough.
        rounds = 1 if days == 365 else repeat
        window = Window(start=now - timedelta(days=days), end=now, unit=unit, tz="UTC", org=org)
        todo: list[Plan] = plans_for(window)
        for plan in todo:
            # The hot collections' pipelines scan on the embedded database:
            # once each (a report runs them only for what is not kept), and a
            # year's not at all: the cold page below computes exactly that.
            if plan.name in HOT and days == 365:
                print(f"| {days} d | {plan.name} (live) | see the cold page | | |")
                continue
            times = []
            for _ in range(1 if plan.name in HOT else rounds):
                began = time.perf_counter()
                await analytics.repo.run(plan)
                times.append((time.perf_counter() - began) * 1000)
            index = _index_used(await analytics.repo.explain(plan))
            print(f"| {days} d | {plan.name} (live) | {index} | {_pct(times, 0.5):.0f} | "
                  f"{_pct(times, 0.99):.0f} |", flush=True)
        cold: list[float] = []
        warm: list[float] = []
        moved: list[float] = []
        for k in range(rounds):
            # Cold: nothing kept. Warm: the same range again. Refreshed: the
            # range moved on by 30 s, as the page's refresh asks. The seeded
            # "now" has passed: the clock stays a moment before it, so the
            # range is open, as the page's own range (ending now) is.
            await services.store.db[SLOTS].drop()
            fresh = Analytics(services, analytics.repo, clock=lambda: now - timedelta(seconds=1))
            shift = timedelta(seconds=30 * (k + 1))
            for times, (start, end) in ((cold, (window.start, window.end)),
                                        (warm, (window.start, window.end)),
                                        (moved, (window.start + shift, window.end + shift))):
                began = time.perf_counter()
                await fresh.report(Scope(org), start, end, unit, "UTC")
                times.append((time.perf_counter() - began) * 1000)
            # A round can take minutes on the embedded database: say each.
            print(f"  round {k + 1}: cold {cold[-1]:.0f} ms, warm {warm[-1]:.0f} ms, "
                  f"refreshed {moved[-1]:.0f} ms", file=sys.stderr, flush=True)
        for name, page in (("whole page, cold", cold), ("whole page, warm", warm),
                           ("whole page, refreshed 30 s later", moved)):
            verdict = ""
            if days == 30:
                verdict = (" (target < 500 ms: met)" if _pct(page, 0.5) < TARGET_PAGE_MS_30D
                           else " (target < 500 ms: NOT met)")
            print(f"| {days} d | **{name}**{verdict} | | {_pct(page, 0.5):.0f} | "
                  f"{_pct(page, 0.99):.0f} |", flush=True)


async def run(args: argparse.Namespace) -> None:
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
            # an index over a million documents, or a year computed live on the
            # embedded database, takes longer: the bench uses a client that waits.
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
            services.analytics = Analytics(services, AnalyticsRepo(db))
            await measure(services, now, args.repeat, None, RANGES[:2])
            await measure(services, now, args.repeat, "org0", RANGES)
            await measure(services, now, args.repeat, None, RANGES[2:])
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
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args()
    if not (0 < args.messages <= 5_000_000 and 0 <= args.conversations <= 500_000
            and 1 <= args.repeat <= 50):
        parser.error("keep --messages ≤ 5,000,000, --conversations ≤ 500,000, --repeat 1..50")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
