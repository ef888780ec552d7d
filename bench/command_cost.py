"""What one database command costs the server's own CPU, by command and by client option.

It starts SecantusDB on 127.0.0.1 (journal on, as the embedded database runs),
builds a `Store` on it exactly as the server does (same options, indexes and
outage guard), and times, in this one process on uvloop, ``--calls``
sequential calls of each command the message path sends:

- ``insert 1`` / ``insert 8``: `insert_many` of one / eight message documents;
- ``update``: one `update_one` of a message's status by ``_id``;
- ``bulk 8``: one `bulk_write` of eight `UpdateOne` (the chat summaries' shape);
- ``find``: one `find_one` by ``_id``.

Each variant changes one client option (or runs the driver's synchronous
client on a thread, as an executor would); variants run in turn, round after
round (``--rounds``), so that a machine busy with other work slows them all
alike. Per call it prints this process's CPU (``time.process_time``: the
driver, the event loop, the outage guard; every thread), the wall time, and
the database's CPU (/proc), each the median over the rounds.

    python bench/command_cost.py --calls 1000 --rounds 3

The run is bounded and stops its database by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import uvloop
from bson import ObjectId
from pymongo import MongoClient, UpdateOne

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ws_load import proc_cpu_secs  # noqa: E402

from whatsease.storage.launcher import EmbeddedDatabase  # noqa: E402
from whatsease.storage.store import SOCKET_TIMEOUT_SECS, Store  # noqa: E402
from whatsease.timeutil import utcnow  # noqa: E402

DB_NAME = "command_cost"
MAX_CALLS = 20_000

# name -> (client options beyond the server's own, run on a thread with the sync client)
VARIANTS: dict[str, tuple[dict[str, Any], bool]] = {
    "as the server runs": ({}, False),
    "retryWrites/retryReads off": ({"retryWrites": False, "retryReads": False}, False),
    "no socket timeout": ({"socketTimeoutMS": None}, False),
    "zlib compression": ({"compressors": "zlib"}, False),
    "pool: min 4, max 4": ({"minPoolSize": 4, "maxPoolSize": 4}, False),
    "w=1 without journal sync": ({"journal": False}, False),
    "sync client on a thread": ({}, True),
}
COMMANDS = ("insert 1", "insert 8", "update", "bulk 8", "find")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls per command and round")
    parser.add_argument("--rounds", type=int, default=3, help="each variant's turns")
    parser.add_argument("--variants", default="", help="comma-separated names (default: all)")
    args = parser.parse_args(argv)
    if not 10 <= args.calls <= MAX_CALLS:
        parser.error(f"--calls must be between 10 and {MAX_CALLS}")
    if not 1 <= args.rounds <= 10:
        parser.error("--rounds must be between 1 and 10")
    return args


def message_doc(n: int) -> dict[str, Any]:
    """A document shaped like a stored message (`storage/models.py`)."""
    sender, recipient = f"u{n % 500:04d}@bench.test", f"u{(n + 1) % 500:04d}@bench.test"
    members = sorted((sender, recipient))
    return {"_id": ObjectId(), "sender": sender, "recipient": recipient,
            "content": "x" * 40, "timestamp": utcnow(), "status": "Sent",
            "is_bot_response": False, "conversation_id": "|".join(members),
            "members": members, "client_id": f"c{n}-{ObjectId()}", "rev": n}


class Variant:
    """One way of running commands: the async `Store`, or the sync client on a thread."""

    def __init__(self, uri: str, options: dict[str, Any], threaded: bool) -> None:
        self.threaded = threaded
        self.store = Store(uri, DB_NAME, **options)
        self.sync: MongoClient[dict[str, Any]] | None = None
        self.pool: ThreadPoolExecutor | None = None
        if threaded:
            self.sync = MongoClient(uri, tz_aware=True, appname="whatsease",
                                    socketTimeoutMS=int(SOCKET_TIMEOUT_SECS * 1000), **options)
            self.pool = ThreadPoolExecutor(4)

    async def call(self, command: str, n: int, ids: list[ObjectId]) -> None:
        if self.threaded:
            assert self.sync is not None
            sync = self.sync[DB_NAME]["messages"]
            await asyncio.get_running_loop().run_in_executor(
                self.pool, _sync_call, sync, command, n, ids)
            return
        messages = self.store.db["messages"]
        if command == "insert 1":
            doc = message_doc(n)
            ids.append(doc["_id"])
            await messages.insert_many([doc], ordered=False)
        elif command == "insert 8":
            docs = [message_doc(n * 8 + k) for k in range(8)]
            ids.extend(d["_id"] for d in docs)
            await messages.insert_many(docs, ordered=False)
        elif command == "update":
            await messages.update_one({"_id": ids[n % len(ids)]}, {"$set": {"status": "Read"}})
        elif command == "bulk 8":
            await messages.bulk_write([UpdateOne({"_id": ids[(n * 8 + k) % len(ids)]},
                                                 {"$inc": {"rev": 1}}) for k in range(8)],
                                      ordered=False)
        else:
            await messages.find_one({"_id": ids[n % len(ids)]})

    async def close(self) -> None:
        await self.store.close()
        if self.sync is not None:
            self.sync.close()
        if self.pool is not None:
            self.pool.shutdown()


def _sync_call(messages: Any, command: str, n: int, ids: list[ObjectId]) -> None:
    if command == "insert 1":
        doc = message_doc(n)
        ids.append(doc["_id"])
        messages.insert_many([doc], ordered=False)
    elif command == "insert 8":
        docs = [message_doc(n * 8 + k) for k in range(8)]
        ids.extend(d["_id"] for d in docs)
        messages.insert_many(docs, ordered=False)
    elif command == "update":
        messages.update_one({"_id": ids[n % len(ids)]}, {"$set": {"status": "Read"}})
    elif command == "bulk 8":
        messages.bulk_write([UpdateOne({"_id": ids[(n * 8 + k) % len(ids)]},
                                       {"$inc": {"rev": 1}}) for k in range(8)], ordered=False)
    else:
        messages.find_one({"_id": ids[n % len(ids)]})


async def timed(calls: int, db_pid: int, variant: Variant, command: str,
                ids: list[ObjectId]) -> tuple[float, float, float]:
    """Server CPU, wall and database CPU per call, in ms, of ``calls`` sequential calls."""
    cpu0, wall0, db0 = time.process_time(), time.perf_counter(), proc_cpu_secs(db_pid)
    for n in range(calls):
        await variant.call(command, n, ids)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    db = proc_cpu_secs(db_pid) - db0
    return cpu / calls * 1000, wall / calls * 1000, db / calls * 1000


async def run(args: argparse.Namespace) -> str:
    names = [n.strip() for n in args.variants.split(",") if n.strip()] or list(VARIANTS)
    unknown = set(names) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants: {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(VARIANTS)}")
    with tempfile.TemporaryDirectory(prefix="command_cost-") as tmp:
        database = EmbeddedDatabase(Path(tmp) / "db", log_path=Path(tmp) / "secantusd.log")
        uri = database.start()
        try:
            assert database.process is not None
            db_pid = database.process.pid
            setup = Store(uri, DB_NAME)
            await setup.ensure_indexes()
            await setup.close()
            results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
            ids: list[ObjectId] = []
            for round_number in range(args.rounds):
                for name in names:
                    options, threaded = VARIANTS[name]
                    variant = Variant(uri, options, threaded)
                    try:
                        await variant.call("insert 1", 0, ids)  # connect before timing
                        for command in COMMANDS:
                            results.setdefault((name, command), []).append(await timed(
                                args.calls, db_pid, variant, command, ids))
                    finally:
                        await variant.close()
                print(f"round {round_number + 1} of {args.rounds} done", file=sys.stderr,
                      flush=True)
        finally:
            database.stop()
    return table(results, names, args)


def table(results: dict[tuple[str, str], list[tuple[float, float, float]]],
          names: list[str], args: argparse.Namespace) -> str:
    lines = [f"command_cost --calls {args.calls} --rounds {args.rounds}: per call, ms, "
             "median of the rounds (server CPU / wall / database CPU)",
             "| variant | " + " | ".join(COMMANDS) + " |",
             "|---|" + "---:|" * len(COMMANDS)]
    for name in names:
        cells = []
        for command in COMMANDS:
            runs = results[(name, command)]
            cpu, wall, db = (statistics.median(r[i] for r in runs) for i in range(3))
            cells.append(f"{cpu:.3f} / {wall:.2f} / {db:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    print(uvloop.run(run(parse_args(argv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
