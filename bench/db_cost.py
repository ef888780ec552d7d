"""The database CPU per message of the hot path, without sockets: what a change of the writes costs.

It starts SecantusDB on 127.0.0.1, writes ``--users`` users into it, builds the
services in this process (as ``python -m whatsease`` does, without the HTTP
server), and for ``--duration`` seconds sends ``--rate`` messages a second
between paired users through `Messaging.send`, each answered by its
recipient's ``Delivered`` receipt through `Messaging.mark`, as a browser does.
Every write of the path happens (insert, chat summary, receipt, activity),
through the same batchers and write lane. It prints the database's CPU
seconds per 1,000 messages (from /proc, so other work on the machine changes
it far less than latency) and the mean batch sizes.

    python bench/db_cost.py --users 1000 --rate 200 --duration 20

``--count`` measures no time: it counts. ``--users`` / 2 pairs each send one
message, then each recipient marks it Delivered, then Read, each step
drained before the next (chat summaries and activity entries included), and
it prints per step and collection the documents written (inserted, updated)
and the index entries touched. An insert adds one entry per key of each
index (``_id`` included); an update, on SecantusDB, removes and rewrites
every secondary index entry of the document, changed or not, so it touches
the keys of the old and of the new document. Entries are counted from
snapshots of the collections before and after each step and their indexes
(`listIndexes`), and cross-checked with serverStatus ``opcounters``.

    python bench/db_cost.py --count --users 200

The run is bounded and stops its database by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop
from prometheus_client import generate_latest
from pymongo import MongoClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ws_load import (  # noqa: E402
    DB_NAME,
    create_users,
    opcounters,
    parse_batch_sizes,
    proc_cpu_secs,
)

from whatsease.app import build_services  # noqa: E402
from whatsease.config import Config  # noqa: E402
from whatsease.services import Services  # noqa: E402
from whatsease.storage.launcher import EmbeddedDatabase  # noqa: E402
from whatsease.storage.models import new_id  # noqa: E402

MAX_USERS = 20_000
MAX_DURATION_SECS = 300
MAX_RATE = 2000
# A recipient's client answers ``delivered`` about this long after the message arrives.
RECEIPT_DELAY_SECS = 0.005


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200, help="messages per second")
    parser.add_argument("--duration", type=float, default=20, help="seconds of sending")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", action="store_true",
                        help="count documents and index entries written per message instead")
    args = parser.parse_args(argv)
    if not 2 <= args.users <= MAX_USERS or args.users % 2:
        parser.error(f"--users must be even, between 2 and {MAX_USERS}")
    if not 0 < args.duration <= MAX_DURATION_SECS or not 0 < args.rate <= MAX_RATE:
        parser.error(f"--duration in (0, {MAX_DURATION_SECS}], --rate in (0, {MAX_RATE}]")
    return args


async def start_services(users: int, uri: str) -> tuple[Services, list[str]]:
    """The services of one process on ``uri`` and ``users`` accounts written straight in."""
    config = Config(host="127.0.0.1", port=0, db_name=DB_NAME, jwt_secret="x" * 48,
                    log_level="WARNING", bot_semantic=False)
    services = await build_services(config, uri)
    emails, _ = await asyncio.to_thread(create_users, uri, DB_NAME, config.jwt_secret,
                                        users, 3600)
    return services, emails


async def run(args: argparse.Namespace, uri: str, db_pid: int) -> dict[str, float]:
    services, emails = await start_services(args.users, uri)
    messaging = services.messaging
    rng = random.Random(args.seed)
    done: list[float] = []
    tasks: set[asyncio.Task[None]] = set()

    async def one(sender: str, recipient: str, n: int) -> None:
        start = time.perf_counter()
        message = await messaging.send(sender, recipient, f"message {n} " + "x" * 30,
                                       client_id=f"c{n}")
        await asyncio.sleep(RECEIPT_DELAY_SECS)
        await messaging.mark(recipient, [message.message_id], "Delivered")
        done.append(time.perf_counter() - start)

    cpu0 = proc_cpu_secs(db_pid)
    t0 = time.perf_counter()
    sent = 0
    while (now := time.perf_counter()) < t0 + args.duration:
        due = int((now - t0) * args.rate) - sent
        for _ in range(due):
            i = rng.randrange(args.users)
            task = asyncio.create_task(one(emails[i], emails[i ^ 1], sent))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        await asyncio.sleep(0.005)
    if tasks:
        await asyncio.wait(tasks, timeout=60)
    await messaging.drain()
    await services.activity.drain()
    db_cpu = proc_cpu_secs(db_pid) - cpu0
    batches = parse_batch_sizes(generate_latest().decode())
    await services.store.close()
    done.sort()
    return {"sent": sent, "completed": len(done),
            "db_cpu_per_1k": db_cpu / max(1, len(done)) * 1000,
            "p50_ms": done[len(done) // 2] * 1000 if done else 0.0,
            **{f"batch_{k}": v for k, v in batches.items()}}


# What one message's life writes, step by step, in the collections it touches.
COUNTED = ("messages", "message_receipts", "conversations", "chat_members", "activity")
# The first message of a chat also creates its summary; "send" is every later one.
STEPS = ("first send", "send", "Delivered", "Read")
LIFE = ("send", "Delivered", "Read")


def _values(doc: Any, path: list[str]) -> list[Any]:
    """The values a dotted path reaches in ``doc``; an array is one key per element."""
    if not path:
        if isinstance(doc, list):
            return doc or [None]
        return [doc]
    if isinstance(doc, list):
        return [v for item in doc for v in _values(item, path)] or [None]
    if not isinstance(doc, dict) or path[0] not in doc:
        return [None]
    return _values(doc[path[0]], path[1:])


def _matches(doc: dict[str, Any], partial: dict[str, Any]) -> bool:
    """The partial filters our indexes use: ``{field: {"$type": ...}}`` and equality."""
    for field, cond in partial.items():
        value = _values(doc, field.split("."))[0]
        if isinstance(cond, dict) and set(cond) == {"$type"}:
            kinds = {"string": str, "date": object}
            if value is None or not isinstance(value, kinds[cond["$type"]]):
                return False
        elif isinstance(cond, dict):
            raise ValueError(f"partial filter {partial!r} is not counted")
        elif value != cond:
            return False
    return True


def index_keys(doc: dict[str, Any], indexes: list[dict[str, Any]]) -> int:
    """How many entries ``doc`` has in ``indexes`` (as `listIndexes` gives them)."""
    total = 0
    for index in indexes:
        partial = index.get("partialFilterExpression")
        if partial and not _matches(doc, partial):
            continue
        total += math.prod(len(set(map(repr, _values(doc, f.split(".")))))
                           for f in index["key"])
    return total


def snapshot(client: MongoClient[dict[str, Any]]) -> dict[str, dict[Any, dict[str, Any]]]:
    db = client[DB_NAME]
    return {name: {d["_id"]: d for d in db[name].find()} for name in COUNTED}


def count_step(client: MongoClient[dict[str, Any]],
               before: dict[str, dict[Any, dict[str, Any]]],
               after: dict[str, dict[Any, dict[str, Any]]]) -> dict[str, dict[str, int]]:
    """Per collection: documents inserted, updated, and index entries touched."""
    result = {}
    for name in COUNTED:
        indexes = [dict(i) for i in client[DB_NAME][name].list_indexes()]
        secondary = [i for i in indexes if i["name"] != "_id_"]
        old, new = before[name], after[name]
        inserted = [d for k, d in new.items() if k not in old]
        updated = [(old[k], d) for k, d in new.items() if k in old and old[k] != d]
        entries = sum(index_keys(d, indexes) for d in inserted)
        entries += sum(index_keys(o, secondary) + index_keys(n, secondary) for o, n in updated)
        result[name] = {"inserted": len(inserted), "updated": len(updated), "entries": entries}
    return result


async def count(args: argparse.Namespace, uri: str) -> dict[str, dict[str, dict[str, int]]]:
    """One message per pair through send, Delivered and Read: what each step wrote."""
    services, emails = await start_services(args.users, uri)
    messaging = services.messaging
    pairs = [(emails[i], emails[i + 1]) for i in range(0, len(emails), 2)]
    client: MongoClient[dict[str, Any]] = MongoClient(uri)
    steps: dict[str, dict[str, dict[str, int]]] = {}
    sent: list[tuple[str, str]] = []

    async def settle() -> None:
        await messaging.drain()
        await services.activity.drain()

    async def send(sender: str, recipient: str) -> None:
        message = await messaging.send(sender, recipient, "hello " + "x" * 30,
                                       client_id=new_id())
        sent.append((recipient, message.message_id))

    try:
        for step in STEPS:
            before, ops = await asyncio.to_thread(snapshot, client), opcounters(client)
            if step.endswith("send"):
                sent.clear()
                await asyncio.gather(*(send(a, b) for a, b in pairs))
            else:
                await asyncio.gather(*(messaging.mark(who, [mid], step) for who, mid in sent))
            await settle()
            after, ops_after = await asyncio.to_thread(snapshot, client), opcounters(client)
            steps[step] = count_step(client, before, after)
            steps[step]["opcounters"] = {k: ops_after[k] - ops[k] for k in ("insert", "update")}
    finally:
        client.close()
        await services.store.close()
    return steps


def print_counts(steps: dict[str, dict[str, dict[str, int]]], messages: int) -> None:
    """The table of `count`, per message."""
    print(f"per message ({messages} messages, one per pair; documents inserted + updated,"
          " index entries touched; opcounters are commands)")
    print("| step | " + " | ".join(f"{c} docs | {c} entries" for c in COUNTED)
          + " | all docs | all entries | opcounters insert / update |")
    print("|---" * (2 * len(COUNTED) + 4) + "|")
    totals = [0.0, 0.0]
    for step, per in steps.items():
        cells, docs, entries = [], 0, 0
        for name in COUNTED:
            c = per[name]
            cells += [f"{(c['inserted'] + c['updated']) / messages:.2f}",
                      f"{c['entries'] / messages:.2f}"]
            docs += c["inserted"] + c["updated"]
            entries += c["entries"]
        if step in LIFE:
            totals[0] += docs / messages
            totals[1] += entries / messages
        ops = per["opcounters"]
        print(f"| {step} | " + " | ".join(cells) + f" | {docs / messages:.2f} | "
              f"{entries / messages:.2f} | {ops['insert']} / {ops['update']} |")
    print("| a message's life (" + " + ".join(LIFE) + ") |" + " |" * (2 * len(COUNTED))
          + f" {totals[0]:.2f} | {totals[1]:.2f} | |")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="db_cost-"))
    database = EmbeddedDatabase(workdir / "db", log_path=workdir / "secantusd.log")
    uri = database.start()
    try:
        assert database.process is not None
        if args.count:
            print_counts(uvloop.run(count(args, uri)), args.users // 2)
            return 0
        result = uvloop.run(run(args, uri, database.process.pid))
    finally:
        database.stop()
    print(f"db_cost --users {args.users} --rate {args.rate:g} --duration {args.duration:g}"
          f"  (load average {os.getloadavg()[0]:.1f})")
    for key, value in result.items():
        print(f"  {key}: {value:.3f}" if isinstance(value, float) else f"  {key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
