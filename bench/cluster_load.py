"""Cluster load test: N instances behind the front, users paired mostly across instances.

    python bench/cluster_load.py --instances 3 --users 1500 --interval-ms 5000 --duration 60
    python bench/cluster_load.py --instances 3 --users 1500 --interval-ms 5000 --duration 60 --chaos

It starts everything itself on 127.0.0.1 with `whatsease.cluster.local`: one
SecantusDB, N instances (static membership) and the front (the development
stand-in for Fly's proxy), and writes the users in bulk with
bench/ws_load.py's `create_users`. Every socket goes through the front and
carries the user's routing key when this version of the server has them
(``?route=``), as the web client does. After the ramp the users are paired
from where their sockets landed (the front's ``X-Front-Instance``): a few
pairs on one instance, most across instances (``--same-fraction``). Each user
sends its partner a message every ``--interval-ms`` and acts like the web
client: it answers ``delivered``, syncs after every ``ready``, re-sends what
was not acked with the same ``client_id`` after a reconnect, and reconnects
with jitter when its socket closes.

Then the same load runs on one instance (``WHATSEASE_CLUSTER=off``, as one
machine is deployed; also behind the front), so every run prints the
single-instance figures beside the cluster's. ``--instances 1`` runs only that.

``--chaos`` kills one instance with SIGKILL a third of the way in and has a
new one join two thirds in, and prints how long it took until every affected
user (one whose socket was closed by the event) had a message it sent after
reconnecting delivered live again (that includes the wait for its next
message, up to ``--interval-ms``), and how long until its socket was ready
again and its sync answered. The new instance is started before the
load and waits unlisted; at two thirds it is listed (members file and front),
as a new Fly machine appears in the private DNS: the join is then at a known
moment rather than whenever a start on a busy machine ends.

At the end every user syncs once more. A message is *lost* if the server
acknowledged it and its recipient never got it, live or by sync; *duplicated*
if its recipient got two stored messages for one ``client_id``. One the
server never acknowledged by the end (an overloaded run) is counted apart: the
client still holds it and would send it again. Latency counts live deliveries only, split by
whether sender and recipient were on the same instance at delivery.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib
import itertools
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import uvloop
from pymongo import MongoClient
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import ws_load  # noqa: E402  (bench/ws_load.py: bulk users, token minting, /proc readings)

from whatsease.cluster.front import INSTANCE_HEADER  # noqa: E402
from whatsease.cluster.local import Instance, LocalCluster  # noqa: E402

DB_NAME = "bench"
MAX_USERS = 6000
MAX_DURATION_SECS = 300
MAX_INSTANCES = 8
RAMP_CONCURRENCY = 50
# After the sending window, wait for the last acks and deliveries while they
# still come (at most this long without progress, and this long in all).
DRAIN_STALL_SECS = 15.0
DRAIN_MAX_SECS = 120.0
SETTLE_SECS = 2.0
# After the final sync, how long to wait for every user's last synced page.
FINAL_SYNC_SECS = 30.0
# A reconnect waits a random delay up to this, doubling per failed try up to the cap.
RECONNECT_JITTER_SECS = 0.5
RECONNECT_CAP_SECS = 5.0
# Close codes that mean "reconnect at once": moved to another instance, restarting.
PROMPT_CLOSE_CODES = {4012, 1012}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--users", type=int, default=1500, help="sockets (one per user)")
    parser.add_argument("--interval-ms", type=int, default=5000,
                        help="each user sends one message every this many ms")
    parser.add_argument("--duration", type=float, default=60, help="seconds of sending")
    parser.add_argument("--chaos", action="store_true",
                        help="kill -9 one instance at 1/3 and start a new one at 2/3")
    parser.add_argument("--same-fraction", type=float, default=0.2,
                        help="share of pairs put on one instance (the rest cross instances)")
    parser.add_argument("--no-single", action="store_true",
                        help="skip the single-instance run of the same load")
    parser.add_argument("--heartbeat-timeout", type=float, default=3.0,
                        help="WHATSEASE_CLUSTER_HEARTBEAT_TIMEOUT of the instances")
    parser.add_argument("--ramp-rate", type=float, default=500,
                        help="new sockets per second during the ramp")
    parser.add_argument("--content-chars", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", metavar="DIR", default="",
                        help="keep the database, the instances' and the front's logs in DIR "
                             "(one sub-directory per run) instead of a deleted temporary one")
    parser.add_argument("--log-level", default="WARNING",
                        help="WHATSEASE_LOG_LEVEL of the instances (INFO shows ring changes)")
    parser.add_argument("--phases", action="store_true",
                        help="print the database's CPU and commands per phase of the run "
                             "(before the kill, until the join, after it, the drain)")
    parser.add_argument("--timeline", action="store_true",
                        help="print, per second of the run, acks, live deliveries, "
                             "reconnects, failed connects and closes")
    args = parser.parse_args(argv)
    if not 2 <= args.users <= MAX_USERS or args.users % 2:
        parser.error(f"--users must be even, between 2 and {MAX_USERS}")
    if not 1 <= args.instances <= MAX_INSTANCES:
        parser.error(f"--instances must be 1-{MAX_INSTANCES}")
    if not 0 < args.duration <= MAX_DURATION_SECS:
        parser.error(f"--duration must be in (0, {MAX_DURATION_SECS}]")
    if args.interval_ms < 50:
        parser.error("--interval-ms must be at least 50")
    if not 0 <= args.same_fraction <= 1:
        parser.error("--same-fraction must be in [0, 1]")
    return args


def routing_key_function() -> Callable[[str], str] | None:
    """The server's ``user_route(email)`` if this version has routing keys, else None."""
    try:
        module = importlib.import_module("whatsease.cluster.routing")
    except ImportError:
        return None
    function = getattr(module, "user_route", None)
    return function if callable(function) else None


# --- the clients ---------------------------------------------------------------------------


@dataclass
class Tally:
    """Everything the users saw, shared by all of them."""

    started: float = 0.0
    sent: int = 0
    written: int = 0
    acked: int = 0
    live: int = 0
    by_sync: int = 0
    ack_ms: list[float] = field(default_factory=list)
    same_ms: list[float] = field(default_factory=list)
    cross_ms: list[float] = field(default_factory=list)
    # client_id -> the message ids its recipient got for it (two: stored twice).
    received: dict[str, set[str]] = field(default_factory=dict)
    sent_ids: set[str] = field(default_factory=set)
    connect_errors: dict[str, int] = field(default_factory=dict)
    close_codes: dict[str, int] = field(default_factory=dict)
    error_frames: dict[str, int] = field(default_factory=dict)
    reconnects: int = 0
    events: list[tuple[str, float]] = field(default_factory=list)
    # Second of the run -> what happened in it (--timeline).
    timeline: dict[int, dict[str, int]] = field(default_factory=dict)

    def count(self, table: dict[str, int], key: str) -> None:
        table[key] = table.get(key, 0) + 1

    def tick(self, what: str) -> None:
        """Note ``what`` in the current second of the sending window and the drain."""
        if self.started:
            second = self.timeline.setdefault(int(time.perf_counter() - self.started), {})
            second[what] = second.get(what, 0) + 1


class User:
    """One user with one socket through the front, acting like the web client."""

    def __init__(self, index: int, email: str, token: str, route: str, url: str,
                 tally: Tally, users: list[User]) -> None:
        self.index = index
        self.email = email
        self.token = token
        self.url = f"{url}?route={route}" if route else url
        self.tally = tally
        self.users = users
        self.peer: User | None = None
        self.conn: WebSocketClientConnection | None = None
        self.instance = ""
        self.ready = asyncio.Event()
        self.cursor: str | None = None
        self.syncing = False
        self.synced_once = asyncio.Event()
        self.pending: dict[str, str] = {}  # client_id -> content, not acked yet
        self.written_at: dict[str, float] = {}  # client_id -> first write
        self.seen: set[str] = set()
        self.running = True
        self.failures = 0
        self.reader: asyncio.Task[None] | None = None
        self.reconnecting: asyncio.Task[None] | None = None
        # Chaos: the events that closed this user's socket -> when it delivered again.
        self.affected: dict[int, float | None] = {}
        # The same events -> when its socket was ready again and the sync after it done.
        self.online_again: dict[int, float | None] = {}
        self.back_at = 0.0

    async def connect(self) -> bool:
        tally = self.tally
        try:
            conn = await asyncio.wait_for(websocket_connect(HTTPRequest(
                self.url, connect_timeout=10, request_timeout=10)), 15)
        except Exception as exc:  # refused, replay failed (502), timed out: count and retry
            tally.count(tally.connect_errors, _describe(exc))
            tally.tick("failed")
            return False
        assert conn.protocol is not None
        conn.protocol.set_nodelay(True)
        self.conn = conn
        self.instance = (conn.headers.get(INSTANCE_HEADER, "?") if conn.headers else "?")
        await conn.write_message(orjson.dumps({"type": "auth", "token": self.token}).decode())
        self.reader = asyncio.get_running_loop().create_task(self._read(conn))
        try:
            await asyncio.wait_for(self.ready.wait(), 15)
        except TimeoutError:
            tally.count(tally.connect_errors, "no ready")
            conn.close()
            return False
        return True

    def _write(self, frame: dict[str, Any]) -> bool:
        if self.conn is None or not self.ready.is_set():
            return False
        try:
            self.conn.write_message(orjson.dumps(frame).decode())
        except Exception:
            return False
        return True

    def _on_ready(self) -> None:
        self.tally.tick("ready")
        self.ready.set()
        self.failures = 0
        self.back_at = time.perf_counter()
        self._write({"type": "sync", "after": self.cursor})
        self.syncing = True
        for client_id, content in list(self.pending.items()):
            self._send_frame(client_id, content)

    def _send_frame(self, client_id: str, content: str) -> None:
        assert self.peer is not None
        if self._write({"type": "send", "client_id": client_id, "recipient": self.peer.email,
                        "content": content}) and client_id not in self.written_at:
            self.written_at[client_id] = time.perf_counter()
            self.tally.written += 1

    async def _read(self, conn: WebSocketClientConnection) -> None:
        tally = self.tally
        was_ready = False
        while True:
            raw = await conn.read_message()
            if raw is None:
                break
            now = time.perf_counter()
            frame = orjson.loads(raw)
            kind = frame.get("type")
            if kind == "ready":
                was_ready = True
                self._on_ready()
            elif kind == "message":
                self._receive(frame["message"], now, live=True)
            elif kind == "ack":
                client_id = frame["client_id"]
                if self.pending.pop(client_id, None) is not None:
                    tally.acked += 1
                    tally.tick("acked")
                    written = self.written_at.get(client_id)
                    if written is not None:
                        tally.ack_ms.append((now - written) * 1000)
            elif kind == "synced":
                for message in frame.get("messages", []):
                    self._receive(message, now, live=False)
                self.cursor = frame.get("cursor") or self.cursor
                if frame.get("more"):
                    self._write({"type": "sync", "after": self.cursor})
                else:
                    self.syncing = False
                    self.synced_once.set()
                    for event, back in self.online_again.items():
                        if back is None:
                            self.online_again[event] = now
            elif kind == "error":
                tally.count(tally.error_frames, str(frame.get("code", "?")))
        if self.conn is conn:
            self.ready.clear()
            self.conn = None
        code = conn.close_code
        # A socket that never got ready is retried by whoever opened it.
        if self.running and was_ready:
            tally.count(tally.close_codes, str(code))
            tally.tick("closed")
            if tally.events and time.perf_counter() - tally.events[-1][1] < 30:
                self.affected.setdefault(len(tally.events) - 1, None)
                self.online_again.setdefault(len(tally.events) - 1, None)
            self.reconnecting = asyncio.get_running_loop().create_task(self._reconnect(code))

    def _receive(self, message: dict[str, Any], now: float, *, live: bool) -> None:
        if message.get("recipient") != self.email:
            return
        mid = message["message_id"]
        if mid in self.seen:
            return  # the same stored message again (a sync page repeats): shown once
        self.seen.add(mid)
        client_id = message.get("client_id") or ""
        tally = self.tally
        got = tally.received.setdefault(client_id, set())
        got.add(mid)
        if len(got) > 1:
            return  # a second stored message for one send: counted as duplicated
        sender = self.users[int(client_id.split("-", 1)[0])] if client_id else None
        if live:
            tally.live += 1
            tally.tick("live")
            written = sender.written_at.get(client_id) if sender else None
            if written is not None:
                same = sender is not None and sender.instance == self.instance
                (tally.same_ms if same else tally.cross_ms).append((now - written) * 1000)
            if sender is not None and written is not None and written >= sender.back_at:
                for event, recovered in sender.affected.items():
                    if recovered is None:
                        sender.affected[event] = now
        else:
            tally.by_sync += 1
            tally.tick("synced")
        self._write({"type": "delivered", "message_ids": [mid]})

    async def _reconnect(self, code: int | None) -> None:
        self.tally.reconnects += 1
        while self.running:
            cap = min(RECONNECT_CAP_SECS, RECONNECT_JITTER_SECS * 2 ** self.failures)
            if code in PROMPT_CLOSE_CODES and self.failures == 0:
                cap = 0.3
            await asyncio.sleep(random.uniform(0.05, cap))
            if await self.connect():
                return
            self.failures += 1

    async def send_loop(self, interval: float, until: float, content: str) -> None:
        await asyncio.sleep(random.uniform(0, interval))
        seq = 0
        next_at = time.perf_counter()
        while next_at < until and self.running:
            client_id = f"{self.index}-{seq}"
            seq += 1
            self.tally.sent += 1
            self.tally.sent_ids.add(client_id)
            self.pending[client_id] = content
            self._send_frame(client_id, content)  # else it goes out after the reconnect
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    async def final_sync(self) -> None:
        self.synced_once.clear()
        if self._write({"type": "sync", "after": self.cursor}):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.synced_once.wait(), FINAL_SYNC_SECS)

    def close(self) -> None:
        self.running = False
        if self.reconnecting is not None:
            self.reconnecting.cancel()
        if self.conn is not None:
            self.conn.close()


def _describe(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    return f"{type(exc).__name__} {code}" if code else type(exc).__name__


def pair_users(users: list[User], same_fraction: float, rng: random.Random) -> tuple[int, int]:
    """Pair users from where their sockets are: ``same_fraction`` of pairs on one instance.

    Returns (same-instance pairs, cross-instance pairs).
    """
    groups: dict[str, list[User]] = {}
    for user in users:
        groups.setdefault(user.instance, []).append(user)
    for group in groups.values():
        rng.shuffle(group)
    same = cross = 0
    wanted_same = round(len(users) / 2 * same_fraction) if len(groups) > 1 else len(users) // 2
    while same < wanted_same:
        group = max(groups.values(), key=len)
        if len(group) < 2:
            break
        a, b = group.pop(), group.pop()
        a.peer, b.peer = b, a
        same += 1
    while True:
        ordered = sorted((g for g in groups.values() if g), key=len, reverse=True)
        if len(ordered) >= 2:
            a, b = ordered[0].pop(), ordered[1].pop()
            cross += 1
        elif ordered and len(ordered[0]) >= 2:
            a, b = ordered[0].pop(), ordered[0].pop()
            same += 1
        else:
            break
        a.peer, b.peer = b, a
    return same, cross


# --- one run -------------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    instances: int
    result: dict[str, Any] = field(default_factory=dict)


class CpuMeter:
    """CPU seconds of a set of processes, read every second; a dead one keeps its last reading."""

    def __init__(self) -> None:
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.pids: dict[str, list[int]] = {}
        self._task: asyncio.Task[None] | None = None

    def watch(self, name: str, pids: list[int]) -> None:
        self.pids[name] = pids
        self._read(name)

    def _read(self, name: str) -> None:
        total = 0.0
        for pid in self.pids[name]:
            try:
                total += ws_load.proc_cpu_secs(pid)
            except (OSError, IndexError, ValueError):
                return
        self.first.setdefault(name, total)
        self.last[name] = total

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for name in list(self.pids):
                self._read(name)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> dict[str, float]:
        for name in list(self.pids):
            self._read(name)
        if self._task is not None:
            self._task.cancel()
        return {name: self.last[name] - self.first[name] for name in self.first}


class PhaseMeter:
    """The database's CPU seconds and command counters (serverStatus ``opcounters``), read
    every second (``--phases``)."""

    def __init__(self, mongodb_uri: str, pids: list[int]) -> None:
        self.client: MongoClient[dict[str, Any]] = MongoClient(mongodb_uri)
        self.pids = pids
        # (perf_counter, CPU seconds, opcounters) per reading.
        self.readings: list[tuple[float, float, dict[str, int]]] = []
        self._task: asyncio.Task[None] | None = None

    def _read(self) -> tuple[float, float, dict[str, int]]:
        cpu = 0.0
        for pid in self.pids:
            with contextlib.suppress(OSError, IndexError, ValueError):
                cpu += ws_load.proc_cpu_secs(pid)
        return time.perf_counter(), cpu, ws_load.opcounters(self.client)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self.readings.append(await loop.run_in_executor(None, self._read))
            await asyncio.sleep(1.0)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.readings.append(await asyncio.get_running_loop().run_in_executor(None, self._read))
        self.client.close()

    def phases(self, bounds: list[tuple[str, float]], tally: Tally) -> list[dict[str, Any]]:
        """Per phase (from each bound to the next): seconds, acks, database CPU and commands."""
        rows = []
        for (label, start), (_, end) in itertools.pairwise(bounds):
            inside = [r for r in self.readings if start <= r[0] <= end]
            if len(inside) < 2:
                continue
            (t_a, cpu_a, ops_a), (t_b, cpu_b, ops_b) = inside[0], inside[-1]
            acked = sum(counts.get("acked", 0) for second, counts in tally.timeline.items()
                        if t_a <= tally.started + second < t_b)
            rows.append({"phase": label, "secs": t_b - t_a, "acked": acked,
                         "cpu": cpu_b - cpu_a,
                         "ops": {k: ops_b[k] - ops_a.get(k, 0) for k in ops_b}})
        return rows


async def run_load(cluster: LocalCluster, args: argparse.Namespace, name: str) -> dict[str, Any]:
    rng = random.Random(args.seed)
    loop = asyncio.get_running_loop()
    standby = None
    if args.chaos:  # started now, listed two thirds in (see the module's docstring)
        standby = await loop.run_in_executor(None, functools.partial(cluster.add, listed=False))
    ttl = min(86400, int(args.duration) + 3600)
    assert cluster.database is not None
    emails, tokens = await loop.run_in_executor(None, ws_load.create_users, cluster.mongodb_uri,
                                                DB_NAME, cluster.jwt_secret, args.users, ttl)
    route_of = routing_key_function()
    tally = Tally()
    users: list[User] = []
    url = cluster.front_url.replace("http://", "ws://") + "/ws"
    for i, (email, token) in enumerate(zip(emails, tokens, strict=True)):
        users.append(User(i, email, token, route_of(email) if route_of else "", url, tally, users))
    semaphore = asyncio.Semaphore(RAMP_CONCURRENCY)
    ramp_start = time.perf_counter()

    async def ramp_one(user: User) -> None:
        await asyncio.sleep(user.index / args.ramp_rate)
        async with semaphore:
            for _ in range(5):
                if await user.connect():
                    return
                await asyncio.sleep(random.uniform(0.1, 0.5))

    await asyncio.gather(*(ramp_one(u) for u in users))
    ramp_secs = time.perf_counter() - ramp_start
    first_syncs = (u.synced_once.wait() for u in users if u.ready.is_set())
    await asyncio.wait_for(asyncio.gather(*first_syncs), 60)
    connected = [u for u in users if u.ready.is_set()]
    per_instance: dict[str, int] = {}
    for user in connected:
        per_instance[user.instance] = per_instance.get(user.instance, 0) + 1
    same_pairs, cross_pairs = pair_users(users, args.same_fraction, rng)
    await asyncio.sleep(SETTLE_SECS)
    meter = CpuMeter()
    for instance_id, pid in cluster.pids.items():
        meter.watch(instance_id, [pid])
    if cluster.front_pid:
        meter.watch("front", [cluster.front_pid])
    if cluster.database is not None and cluster.database.process is not None:
        db_pid = cluster.database.process.pid
        meter.watch("database", [db_pid, *ws_load.descendants(db_pid)])
    meter.start()
    phases: PhaseMeter | None = None
    if args.phases and cluster.database is not None and cluster.database.process is not None:
        phases = PhaseMeter(cluster.mongodb_uri, meter.pids["database"])
        phases.start()
    probe = ws_load.LagProbe()
    probe.start()
    content = "x" * args.content_chars
    interval = args.interval_ms / 1000
    t0 = time.perf_counter()
    tally.started = t0
    until = t0 + args.duration
    chaos: asyncio.Task[None] | None = None
    if args.chaos:
        chaos = loop.create_task(run_chaos(cluster, args, tally, meter, t0, standby))
    await asyncio.gather(*(u.send_loop(interval, until, content) for u in users if u.peer))
    if chaos is not None:
        await chaos
    drain_started = time.perf_counter()
    progress, progress_at = -1, drain_started
    while (tally.acked < tally.sent or tally.live + tally.by_sync < tally.sent) \
            and time.perf_counter() - progress_at < DRAIN_STALL_SECS \
            and time.perf_counter() - drain_started < DRAIN_MAX_SECS:
        if tally.acked + tally.live + tally.by_sync != progress:
            progress, progress_at = tally.acked + tally.live + tally.by_sync, time.perf_counter()
        await asyncio.sleep(0.1)
    drain_secs = time.perf_counter() - drain_started
    window = time.perf_counter() - t0
    phase_rows: list[dict[str, Any]] = []
    if phases is not None:
        await phases.stop()
        phase_rows = phases.phases([("before the kill" if args.chaos else "sending", t0),
                                    *tally.events, ("drain", drain_started),
                                    ("end", time.perf_counter())], tally)
    cpu = meter.stop()
    probe.stop()
    link = await loop.run_in_executor(None, link_latency, list(cluster.urls.values()))
    counters = await loop.run_in_executor(None, sync_counters, list(cluster.urls.values()))
    await asyncio.gather(*(u.final_sync() for u in users))
    for user in users:
        user.close()
    received = tally.received
    # Never confirmed: the client still holds them and would send them again.
    unconfirmed = {c for u in users for c in u.pending}
    lost = sorted(c for c in tally.sent_ids if c not in received and c not in unconfirmed)
    duplicated = sum(1 for got in received.values() if len(got) > 1)
    never_written = sum(1 for u in users for c in u.pending if c not in u.written_at)
    recovery: dict[str, list[float]] = {}
    unrecovered: dict[str, int] = {}
    online_again: dict[str, list[float]] = {}
    for user in users:
        for index, back in user.online_again.items():
            if back is not None:
                event, at = tally.events[index]
                online_again.setdefault(event, []).append(back - at)

        for index, recovered in user.affected.items():
            event, at = tally.events[index]
            if recovered is None:
                unrecovered[event] = unrecovered.get(event, 0) + 1
            else:
                recovery.setdefault(event, []).append(recovered - at)
    delivered = max(1, tally.live + tally.by_sync)
    counts = list(per_instance.values())
    return {
        "name": name, "instances": len(cluster.ids), "sockets": len(connected),
        "per_instance": per_instance,
        "max_mean": (max(counts) / statistics.fmean(counts)) if counts else float("nan"),
        "ramp_secs": ramp_secs, "pairs": (same_pairs, cross_pairs),
        "sent": tally.sent, "written": tally.written, "acked": tally.acked, "live": tally.live,
        "by_sync": tally.by_sync, "lost": len(lost), "lost_examples": lost[:5],
        "never_written": never_written, "duplicated": duplicated,
        "unconfirmed": len(unconfirmed - received.keys()), "drain_secs": drain_secs,
        "client_lag_ms": probe.worst * 1000,
        "ack_ms": tally.ack_ms, "same_ms": tally.same_ms, "cross_ms": tally.cross_ms,
        "cpu": cpu, "cpu_per_1k": {k: v / delivered * 1000 for k, v in cpu.items()},
        "window": window, "reconnects": tally.reconnects,
        "connect_errors": tally.connect_errors, "close_codes": tally.close_codes,
        "error_frames": tally.error_frames, "events": tally.events,
        "recovery": recovery, "unrecovered": unrecovered, "online_again": online_again,
        "timeline": tally.timeline, "link": link, "counters": counters,
        "phases": phase_rows,
        "event_seconds": [(event, at - t0) for event, at in tally.events],
    }


async def run_chaos(cluster: LocalCluster, args: argparse.Namespace, tally: Tally,
                    meter: CpuMeter, t0: float, standby: Instance | None) -> None:
    """kill -9 one instance a third of the way in; a new one joins two thirds in."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, t0 + args.duration / 3 - time.perf_counter()))
    victim = sorted(cluster.ids)[0]
    tally.events.append((f"kill -9 {victim}", time.perf_counter()))
    await loop.run_in_executor(None, cluster.kill, victim)
    print(f"  chaos: killed {victim} at {time.perf_counter() - t0:.1f} s",
          file=sys.stderr, flush=True)
    if standby is None:
        return
    await asyncio.sleep(max(0.0, t0 + 2 * args.duration / 3 - time.perf_counter()))
    tally.events.append((f"join {standby.id}", time.perf_counter()))
    cluster.join(standby.id)
    meter.watch(standby.id, [standby.pid])
    print(f"  chaos: {standby.id} joined at {time.perf_counter() - t0:.1f} s",
          file=sys.stderr, flush=True)


# Counters of the instances still running at the end (a killed one's are gone).
SYNC_COUNTERS = ("whatsease_cluster_restamps_total", "whatsease_cluster_restamps_given_up_total",
                 "whatsease_cluster_catch_up_told_total")


def metric_lines(urls: list[str]) -> Iterator[str]:
    """Every line of ``urls``' ``/metrics`` pages; an instance that does not answer adds none."""
    for url in urls:
        try:
            with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
                text = response.read().decode()
        except OSError:
            continue
        yield from text.splitlines()


def sync_counters(urls: list[str]) -> dict[str, float]:
    """`SYNC_COUNTERS` summed over ``urls``' ``/metrics``: how often writes were overdue
    (restamped, given up) and how many users the catch-up after a lost member told to sync."""
    totals = dict.fromkeys(SYNC_COUNTERS, 0.0)
    for line in metric_lines(urls):
        name, _, value = line.partition(" ")
        if name in totals:
            totals[name] += float(value)
    return totals


def link_latency(urls: list[str]) -> tuple[float, float, float, float]:
    """The internal link's one-way time, from the receivers' ``whatsease_cluster_forward_seconds``
    histograms summed over ``urls``: batches, mean ms, share within 5 ms and within 25 ms."""
    count = total = within_5 = within_25 = 0.0
    for line in metric_lines(urls):
        if not line.startswith("whatsease_cluster_forward_seconds"):
            continue
        name, value = line.rsplit(" ", 1)
        if name.endswith("_count"):
            count += float(value)
        elif name.endswith("_sum"):
            total += float(value)
        elif 'le="0.005"' in name:
            within_5 += float(value)
        elif 'le="0.025"' in name:
            within_25 += float(value)
    if not count:
        return 0.0, 0.0, 0.0, 0.0
    return count, total / count * 1000, within_5 / count, within_25 / count


def _workdir(keep: str, name: str) -> Path:
    """A fresh directory for one run: under ``keep`` (kept), or a temporary one."""
    if not keep:
        return Path(tempfile.mkdtemp(prefix="cluster_load-"))
    workdir = Path(keep).resolve() / name.replace(" ", "-")
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    return workdir


async def run_one(args: argparse.Namespace, instances: int, name: str) -> dict[str, Any]:
    workdir = await asyncio.get_running_loop().run_in_executor(None, _workdir, args.keep, name)
    env = {"WHATSEASE_LOG_LEVEL": args.log_level, "WHATSEASE_WS_SEND_RATE": "1000",
           "WHATSEASE_WS_SEND_BURST": "1000", "WHATSEASE_DEMO_USERS": "false",
           "WHATSEASE_BOT_SEMANTIC": "false",
           "WHATSEASE_ACCESS_TOKEN_TTL": str(min(86400, int(args.duration) + 3600)),
           "WHATSEASE_CLUSTER_HEARTBEAT_TIMEOUT": f"{args.heartbeat_timeout:g}",
           "WHATSEASE_CLUSTER_POLL_INTERVAL": "1"}
    if instances == 1:  # one process as deployed alone: no cluster code at all
        env["WHATSEASE_CLUSTER"] = "off"
    cluster = LocalCluster(workdir, instances, bcrypt_rounds=4, env=env, db_name=DB_NAME,
                           jwt_secret=secrets.token_urlsafe(48))
    loop = asyncio.get_running_loop()
    print(f"starting {name}: {instances} instance(s) and the front ...", file=sys.stderr,
          flush=True)
    await loop.run_in_executor(None, cluster.start)
    try:
        await loop.run_in_executor(None, cluster.start_front)
        print(f"loading {name}: {args.users} sockets ...", file=sys.stderr, flush=True)
        return await run_load(cluster, args, name)
    finally:
        stopping = time.perf_counter()
        await loop.run_in_executor(None, cluster.stop)
        print(f"stopped {name} in {time.perf_counter() - stopping:.1f} s", file=sys.stderr,
              flush=True)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


# --- report --------------------------------------------------------------------------------


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    fmt = ws_load.fmt_ms
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, render: Callable[[dict[str, Any]], str]) -> None:
        rows.append((label, [render(r) for r in results]))

    row("instances", lambda r: str(r["instances"]))
    row("sockets connected", lambda r: str(r["sockets"]))
    row("sockets per instance", lambda r: " ".join(
        f"{k}={v}" for k, v in sorted(r["per_instance"].items())))
    row("sockets per instance max/mean", lambda r: f"{r['max_mean']:.2f}")
    row("pairs same / cross instance", lambda r: f"{r['pairs'][0]} / {r['pairs'][1]}")
    row("messages sent", lambda r: str(r["sent"]))
    row("acked", lambda r: str(r["acked"]))
    row("delivered live", lambda r: str(r["live"]))
    row("delivered only by sync", lambda r: str(r["by_sync"]))
    row("lost", lambda r: str(r["lost"]))
    row("duplicated", lambda r: str(r["duplicated"]))
    row("never confirmed by the end (still in the outbox)", lambda r: str(r["unconfirmed"]))
    row("  of which never written (no socket)", lambda r: str(r["never_written"]))
    row("drain after the window s", lambda r: f"{r['drain_secs']:.1f}")
    def latency(key: str, point: float | None) -> Callable[[dict[str, Any]], str]:
        return lambda r: fmt(r[key], point)

    points: list[tuple[float | None, str]] = [(50, "p50"), (99, "p99"), (None, "max")]
    for point, label in points[:2]:
        row(f"ack latency {label} ms", latency("ack_ms", point))
    for point, label in points:
        row(f"same-instance delivery {label} ms", latency("same_ms", point))
    for point, label in points:
        row(f"cross-instance delivery {label} ms", latency("cross_ms", point))
    row("live deliveries same / cross", lambda r: f"{len(r['same_ms'])} / {len(r['cross_ms'])}")
    row("server CPU s per 1,000 msgs, per instance", lambda r: " ".join(
        f"{k}={v:.3f}" for k, v in sorted(r["cpu_per_1k"].items())
        if k not in ("front", "database")))
    row("server CPU s per 1,000 msgs, all instances", lambda r: "{:.3f}".format(sum(
        v for k, v in r["cpu_per_1k"].items() if k not in ("front", "database"))))
    row("front CPU s per 1,000 msgs", lambda r: f"{r['cpu_per_1k'].get('front', 0):.3f}")
    row("database CPU s per 1,000 msgs", lambda r: f"{r['cpu_per_1k'].get('database', 0):.3f}")
    row("link one-way: batches, mean ms, share within 5 / 25 ms", lambda r: (
        f"{r['link'][0]:.0f}, {r['link'][1]:.1f}, {r['link'][2]:.1%} / {r['link'][3]:.1%}"
        if r["link"][0] else "-"))
    row("overdue writes restamped / given up; told to sync by the catch-up",
        lambda r: "{:.0f} / {:.0f}; {:.0f}".format(*(r["counters"][n] for n in SYNC_COUNTERS)))
    row("load client worst loop lag ms", lambda r: f"{r['client_lag_ms']:.0f}")
    row("reconnects", lambda r: str(r["reconnects"]))
    row("connect failures", lambda r: ", ".join(
        f"{k}={v}" for k, v in sorted(r["connect_errors"].items())) or "0")
    row("close codes", lambda r: ", ".join(
        f"{k}={v}" for k, v in sorted(r["close_codes"].items())) or "-")
    row("error frames", lambda r: ", ".join(
        f"{k}={v}" for k, v in sorted(r["error_frames"].items())) or "0")
    names = [r["name"] for r in results]
    width = max(len(label) for label, _ in rows)
    cols = [max(len(n), *(len(v[i]) for _, v in rows)) for i, n in enumerate(names)]
    lines = [f"cluster_load --instances {args.instances} --users {args.users} --interval-ms "
             f"{args.interval_ms} --duration {args.duration:g}{' --chaos' if args.chaos else ''}"
             f"  ({os.cpu_count()} cores, heartbeat timeout {args.heartbeat_timeout:g} s)",
             "| " + "metric".ljust(width) + " | "
             + " | ".join(n.rjust(c) for n, c in zip(names, cols, strict=True)) + " |",
             "|" + "-" * (width + 2) + "|" + "|".join("-" * (c + 2) for c in cols) + "|"]
    for label, values in rows:
        lines.append("| " + label.ljust(width) + " | "
                     + " | ".join(v.rjust(c) for v, c in zip(values, cols, strict=True)) + " |")
    for r in results:
        if r["same_ms"] and r["cross_ms"]:
            gap = ws_load.percentile(r["cross_ms"], 99) - ws_load.percentile(r["same_ms"], 99)
            lines.append(f"\n{r['name']}: cross-instance p99 - same-instance p99 = {gap:+.1f} ms")
        for event, _at in r["events"]:
            times = r["recovery"].get(event, [])
            left = r["unrecovered"].get(event, 0)
            worst = f"{max(times):.1f} s" if times else "-"
            median = f"{statistics.median(times):.1f} s" if times else "-"
            lines.append(f"{r['name']}: {event}: {len(times) + left} users affected; "
                         + (f"{len(times)} delivering live again after at most {worst} "
                            f"(median {median})" if times else "none delivering live again")
                         + (f"; {left} never delivered live again before the end" if left
                            else ""))
            back = r["online_again"].get(event, [])
            if back:
                lines.append(f"{r['name']}: {event}: {len(back)} users back online (socket "
                             f"ready, sync answered) after at most {max(back):.1f} s "
                             f"(median {statistics.median(back):.1f} s)")
        if r["phases"]:
            lines.append(phases_table(r))
        if args.timeline and r["timeline"]:
            lines.append(timeline_table(r))
        if r["lost_examples"]:
            lines.append(f"{r['name']}: lost client_ids, e.g. {', '.join(r['lost_examples'])}")
    return "\n".join(lines)


TIMELINE_COLUMNS = ("acked", "live", "synced", "closed", "failed", "ready")


def phases_table(result: dict[str, Any]) -> str:
    """The database per phase of the run (``--phases``): CPU, and commands per 1,000 acks."""
    kinds = ("insert", "query", "update", "getmore", "command")
    lines = [f"\n{result['name']}: the database per phase",
             "| phase | s | acks/s | database CPU % of a core | per 1,000 acks: CPU s | "
             + " | ".join(kinds) + " |", "|---" * (5 + len(kinds)) + "|"]
    for row in result["phases"]:
        per = 1000 / row["acked"] if row["acked"] else float("nan")
        lines.append(f"| {row['phase']} | {row['secs']:.1f} | {row['acked'] / row['secs']:.0f} | "
                     f"{100 * row['cpu'] / row['secs']:.0f} | {row['cpu'] * per:.3f} | "
                     + " | ".join(f"{row['ops'].get(k, 0) * per:.0f}" for k in kinds) + " |")
    return "\n".join(lines)


def timeline_table(result: dict[str, Any]) -> str:
    """One line per second of the run: what the users saw (``--timeline``)."""
    marks: dict[int, str] = {}
    for event, at in result["event_seconds"]:
        marks[int(at)] = event
    timeline: dict[int, dict[str, int]] = result["timeline"]
    lines = [f"\n{result['name']}: per second  " + " ".join(f"{c:>6}" for c in TIMELINE_COLUMNS)]
    for second in range(max(timeline) + 1):
        counts = timeline.get(second, {})
        lines.append(f"  {second:>4} s" + " " * 10
                     + " ".join(f"{counts.get(c, 0):>6}" for c in TIMELINE_COLUMNS)
                     + (f"  <- {marks[second]}" if second in marks else ""))
    return "\n".join(lines)


async def run_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    random.seed(args.seed)
    if args.instances == 1:
        return [await run_one(args, 1, "single instance")]
    results = [await run_one(args, args.instances, f"cluster of {args.instances}")]
    if not args.no_single:
        single = argparse.Namespace(**{**vars(args), "chaos": False})
        results.append(await run_one(single, 1, "single instance"))
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    limit = ws_load.raise_fd_limit()
    if limit < 3 * args.users + 200:
        print(f"open-files limit {limit} is too low for {args.users} sockets through the front",
              file=sys.stderr)
        return 2
    results = uvloop.run(run_all(args))
    print(report(results, args))
    failed = any(r["lost"] or r["duplicated"] or r["unconfirmed"] for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
