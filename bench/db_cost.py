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

The run is bounded and stops its database by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import uvloop
from prometheus_client import generate_latest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ws_load import DB_NAME, create_users, parse_batch_sizes, proc_cpu_secs  # noqa: E402

from whatsease.app import build_services  # noqa: E402
from whatsease.config import Config  # noqa: E402
from whatsease.storage.launcher import EmbeddedDatabase  # noqa: E402

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
    args = parser.parse_args(argv)
    if not 2 <= args.users <= MAX_USERS or args.users % 2:
        parser.error(f"--users must be even, between 2 and {MAX_USERS}")
    if not 0 < args.duration <= MAX_DURATION_SECS or not 0 < args.rate <= MAX_RATE:
        parser.error(f"--duration in (0, {MAX_DURATION_SECS}], --rate in (0, {MAX_RATE}]")
    return args


async def run(args: argparse.Namespace, uri: str, db_pid: int) -> dict[str, float]:
    config = Config(host="127.0.0.1", port=0, db_name=DB_NAME, jwt_secret="x" * 48,
                    log_level="WARNING", bot_semantic=False)
    services = await build_services(config, uri)
    emails, _ = await asyncio.to_thread(create_users, uri, DB_NAME, config.jwt_secret,
                                        args.users, 3600)
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="db_cost-"))
    database = EmbeddedDatabase(workdir / "db", log_path=workdir / "secantusd.log")
    uri = database.start()
    try:
        assert database.process is not None
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
