"""WebSocket load test: N paired users each sending a message every P ms for D seconds.

By default it starts everything itself on 127.0.0.1: a SecantusDB process, the
users (written in bulk straight into the database: users with one precomputed
bcrypt hash, sessions, and access tokens minted with the server's JWT secret,
exactly as a login would leave them), and ``python -m whatsease`` as a
subprocess. It then runs the same load against bench/relay_baseline.py, so
every run states the full path's CPU per message as a ratio to the bare
transport. It opens N authenticated sockets (ramped), pairs them, and each
sends a message to its partner every P ms (jittered start) while acting like a
real client: a received message is answered with ``delivered``.

    python bench/ws_load.py --users 1000 --interval-ms 5000 --duration 60

Server CPU comes from /proc/PID/stat (utime+stime) over the sending window and
its memory from /proc/PID/status (VmRSS) before and after the ramp. Every
socket talks to 127.0.0.1; the run is bounded in time and stops by itself.

``--idle`` opens the sockets and sends nothing for ``--duration`` seconds: what
the server spends per second on sockets that only stay connected (keep-alive
pings and their pongs, timers, the collector), printed as CPU milliseconds per
second per 1,000 sockets for each target.

    python bench/ws_load.py --users 10000 --duration 60 --idle --client-procs 2

``--senders N`` lets only N of the sockets (whole pairs, spread evenly over
them) send while the others stay connected and silent: the same messages over
more sockets, so that what the extra sockets cost per message shows apart from
what a different message pattern costs.

    python bench/ws_load.py --users 10000 --senders 1000 --interval-ms 5000 --client-procs 2

``--client-procs N`` spreads the sockets over N load-client processes (this
script again, ``--client-worker``), whole pairs each, and merges what they
measured; the table names each process's own worst event-loop lag.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import http.client
import itertools
import os
import random
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import orjson
import uvloop
from pymongo import MongoClient
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent
sys.path.insert(0, str(ROOT))

from whatsease.auth import tokens  # noqa: E402
from whatsease.auth.passwords import hash_password  # noqa: E402
from whatsease.storage.launcher import EmbeddedDatabase  # noqa: E402
from whatsease.storage.models import Session, User, new_id  # noqa: E402
from whatsease.timeutil import utcnow  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
PASSWORD = "bench password 1"
DB_NAME = "bench"
START_TIMEOUT_SECS = 60.0
# Handshakes in flight at once during the ramp (Tornado's listen backlog is 128).
RAMP_CONCURRENCY = 100
# After the sending window, how long to wait for the last acks and deliveries.
DRAIN_SECS = 15.0
SETTLE_SECS = 2.0
# py-spy's samples per second (--spy-server), and how long it may take to write them.
SPY_RATE_HZ = 200
SPY_WRITE_SECS = 30.0
# Hard ceilings so a typo cannot start an unbounded run.
MAX_USERS = 15_000
MAX_DURATION_SECS = 600
# Load-client processes at most (--client-procs): the machine has few cores.
MAX_CLIENT_PROCS = 8
# How long a load-client process may take to open its sockets beyond the ramp's
# own length, and to report once the drain is over, before the run gives up.
CLIENT_PROC_SLACK_SECS = 120.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000, help="sockets (one per user)")
    parser.add_argument("--interval-ms", type=int, default=5000,
                        help="each user sends one message every this many ms")
    parser.add_argument("--duration", type=float, default=60, help="seconds of sending")
    parser.add_argument("--url", default="",
                        help="ws:// URL of a server already running (default: start one); "
                             "with --target whatsease it needs --mongodb-uri and "
                             "--jwt-secret to create users")
    parser.add_argument("--server-root", default=str(ROOT), metavar="DIR",
                        help="a checkout of WhatsEase whose server to start (default: this one): "
                             "to compare another commit under the same load client and database")
    parser.add_argument("--mongodb-uri", default="", help="the running server's database")
    parser.add_argument("--jwt-secret", default="", help="the running server's JWT secret")
    parser.add_argument("--target", choices=("whatsease", "relay", "both"), default="both",
                        help="what to load; 'both' runs whatsease, then the relay baseline")
    parser.add_argument("--ramp-rate", type=float, default=1000,
                        help="new sockets per second during the ramp")
    parser.add_argument("--content-chars", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeline", action="store_true",
                        help="also print delivery latency second by second (finds stalls)")
    parser.add_argument("--profile-server", default="", metavar="FILE",
                        help="run the whatsease server under cProfile, writing FILE")
    parser.add_argument("--gc-trace", default="", metavar="FILE",
                        help="write every collection of the whatsease server to FILE "
                             "(bench/gc_trace.py; read it back with gc_trace.py FILE --summary)")
    parser.add_argument("--spy-server", default="", metavar="PREFIX",
                        help="sample each server with py-spy over the sending window (its "
                             "own process, not inside the server), writing collapsed stacks "
                             "to PREFIX.<target>.txt; see bench/spy_summary.py")
    parser.add_argument("--idle", action="store_true",
                        help="open the sockets and send nothing for --duration s; print the "
                             "server's CPU ms per second per 1,000 sockets")
    parser.add_argument("--senders", type=int, default=None,
                        help="only this many sockets send (whole pairs, spread evenly); the "
                             "rest stay connected and silent (default: all)")
    parser.add_argument("--find-ceiling", action="store_true",
                        help="step the message rate up at --users sockets until delivery p99 "
                             "passes --ceiling-p99-ms or anything is lost; print each "
                             "target's ceiling and their ratio")
    parser.add_argument("--ceiling-start", type=float, default=100,
                        help="first step's messages per second (all sockets together)")
    parser.add_argument("--ceiling-factor", type=float, default=1.25,
                        help="each step's rate is the previous one's times this")
    parser.add_argument("--ceiling-max", type=float, default=6000,
                        help="stop stepping at this rate (the load client's own limit)")
    parser.add_argument("--ceiling-p99-ms", type=float, default=100.0)
    parser.add_argument("--step-secs", type=float, default=10.0,
                        help="seconds of sending per step")
    parser.add_argument("--ceiling-retries", type=int, default=1, choices=range(4),
                        help="a step that fails is run again this many times before the "
                             "search stops (one stall on a shared machine is not a ceiling)")
    parser.add_argument("--client-procs", type=int, default=1,
                        help="spread the sockets over this many load-client processes (each "
                             "pair in one), so that one client loop's lag is not counted as "
                             "the server's latency; each process's own lag is reported")
    parser.add_argument("--client-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client_worker:
        return args
    if args.senders is None:
        args.senders = 0 if args.idle else args.users
    elif args.idle and args.senders:
        parser.error("--idle sends nothing: leave out --senders")
    if not 2 <= args.users <= MAX_USERS or args.users % 2:
        parser.error(f"--users must be even, between 2 and {MAX_USERS}")
    if not 0 < args.duration <= MAX_DURATION_SECS:
        parser.error(f"--duration must be in (0, {MAX_DURATION_SECS}]")
    if args.find_ceiling and not (0 < args.ceiling_start <= args.ceiling_max
                                  and args.ceiling_factor > 1
                                  and 0 < args.step_secs <= MAX_DURATION_SECS
                                  and args.users / args.ceiling_max >= 0.01):
        parser.error("--find-ceiling needs 0 < --ceiling-start <= --ceiling-max, "
                     "--ceiling-factor > 1, a --step-secs within bounds, and at most "
                     "one message per socket every 10 ms")
    if args.interval_ms < 10:
        parser.error("--interval-ms must be at least 10")
    if not 1 <= args.client_procs <= min(MAX_CLIENT_PROCS, args.users // 2):
        parser.error(f"--client-procs must be between 1 and {MAX_CLIENT_PROCS}, and at most "
                     "one per pair of --users")
    if not (0 <= args.senders <= args.users and args.senders % 2 == 0
            and (not args.senders or (args.users // 2) % (args.senders // 2) == 0)):
        parser.error("--senders must be an even number of sockets whose pairs divide "
                     "--users' pairs evenly")
    if args.senders < args.users and args.find_ceiling:
        parser.error("--find-ceiling loads every socket: leave out --idle and --senders")
    if args.idle and args.find_ceiling:
        parser.error("--idle sends nothing: it has no ceiling to find")
    if args.client_procs > 1 and args.find_ceiling:
        parser.error("--find-ceiling runs in one load-client process (--client-procs 1)")
    if args.url and not args.url.startswith(("ws://127.", "ws://localhost")):
        parser.error("--url must point at this machine (ws://127.0.0.1:PORT/ws)")
    return args


# --- processes -----------------------------------------------------------------------------


def raise_fd_limit() -> int:
    """Raise the open-files limit to the hard limit; child processes inherit it."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_cpu_secs(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found.append(int(child))
                found.extend(descendants(int(child)))
    return found


def wait_http(port: int, path: str, timeout: float = START_TIMEOUT_SECS) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing answered on 127.0.0.1:{port}{path} in {timeout} s")
        time.sleep(0.1)


@dataclass
class Target:
    """A running server to load, and the PIDs whose CPU and memory count."""

    name: str
    url: str
    tokens: list[str]
    emails: list[str]
    server_pid: int | None = None
    db_pid: int | None = None
    stop: Any = None
    mongodb_uri: str = ""  # the database to read operation counters from


def start_relay(users: int) -> Target:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "relay_baseline.py"),
                                "--port", str(port)], stdout=subprocess.DEVNULL)
    wait_for_port(port)
    emails = [f"load{i:05d}@bench.test" for i in range(users)]

    def stop() -> None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()

    return Target("relay", f"ws://127.0.0.1:{port}/ws", list(emails), emails,
                  server_pid=process.pid, stop=stop)


def wait_for_port(port: int, timeout: float = START_TIMEOUT_SECS) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listening on 127.0.0.1:{port}")
        time.sleep(0.1)


# One bcrypt hash (cost 4) shared by every load user, computed once at start.
PASSWORD_HASH = asyncio.run(hash_password(PASSWORD, 4))


def create_users(mongodb_uri: str, db_name: str, jwt_secret: str, users: int,
                 ttl_secs: int) -> tuple[list[str], list[str]]:
    """Insert users and sessions in bulk; returns their emails and minted access tokens.

    This leaves the database as N logins would (a user with a bcrypt hash, a
    session with a hashed refresh token, an access token signed with the
    server's secret) in two bulk inserts per 1,000 users instead of N bcrypt
    checks and N single inserts.
    """
    password_hash = PASSWORD_HASH
    now = utcnow()
    emails = [f"load{i:05d}@bench.test" for i in range(users)]
    access: list[str] = []
    user_docs, session_docs = [], []
    for email in emails:
        user_docs.append(User(email=email, name=f"Load {email[4:9]}",
                              password_hash=password_hash, created_at=now,
                              last_seen=now).to_doc())
        sid = new_id()
        _refresh, refresh_hash = tokens.new_refresh_token(sid)
        session_docs.append(Session(session_id=sid, user=email, refresh_hash=refresh_hash,
                                    created_at=now, last_used=now,
                                    expires_at=now + timedelta(days=1),
                                    user_agent="bench/ws_load").to_doc())
        access.append(tokens.issue_access_token(jwt_secret, email, sid, ttl_secs))
    client: MongoClient[dict[str, Any]] = MongoClient(mongodb_uri)
    try:
        db = client[db_name]
        for start in range(0, users, 1000):
            db["users"].insert_many(user_docs[start:start + 1000], ordered=False)
            db["sessions"].insert_many(session_docs[start:start + 1000], ordered=False)
    finally:
        client.close()
    return emails, access


def start_whatsease(users: int, duration: float, profile: str = "",
                    gc_trace: str = "", server_root: Path = ROOT) -> Target:
    workdir = Path(tempfile.mkdtemp(prefix="ws_load-"))
    database = EmbeddedDatabase(workdir / "db", log_path=workdir / "secantusd.log")
    uri = database.start()
    port = free_port()
    secret = secrets.token_urlsafe(48)
    ttl = int(duration) + 3600
    env = dict(os.environ, WHATSEASE_HOST="127.0.0.1", WHATSEASE_PORT=str(port),
               WHATSEASE_MONGODB_URI=uri, WHATSEASE_DB_NAME=DB_NAME,
               WHATSEASE_DATA_DIR=str(workdir / "data"), WHATSEASE_JWT_SECRET=secret,
               WHATSEASE_BCRYPT_ROUNDS="4", WHATSEASE_ACCESS_TOKEN_TTL=str(min(ttl, 86400)),
               WHATSEASE_LOG_LEVEL="WARNING", WHATSEASE_WS_SEND_RATE="1000",
               WHATSEASE_WS_SEND_BURST="1000", WHATSEASE_DEMO_USERS="false",
               PYTHONPATH=str(server_root))
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 (closed in stop())
    command = [sys.executable, "-m", "whatsease"]
    if profile:
        command[1:1] = ["-m", "cProfile", "-o", profile]
    elif gc_trace:
        command[1:1] = [str(ROOT / "bench" / "gc_trace.py"), str(Path(gc_trace).resolve())]
    process = subprocess.Popen(command, cwd=server_root, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(port, "/readyz")
        emails, access = create_users(uri, DB_NAME, secret, users, min(ttl, 86400))
    except BaseException:
        process.kill()
        database.stop()
        raise
    assert database.process is not None

    def stop() -> None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(90)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        database.stop()
        tail = (workdir / "server.log").read_text(errors="replace").splitlines()[-5:]
        errors = [line for line in tail if "ERROR" in line or "Traceback" in line]
        if errors:
            print("server log:", *errors, sep="\n  ", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)

    return Target("whatsease", f"ws://127.0.0.1:{port}/ws", access, emails,
                  server_pid=process.pid, db_pid=database.process.pid, stop=stop,
                  mongodb_uri=uri)


# --- the load ------------------------------------------------------------------------------


@dataclass
class Stats:
    connected: int = 0
    failed_connects: int = 0
    sent: int = 0
    acked: int = 0
    delivered: int = 0
    duplicated: int = 0
    closed_early: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    close_codes: dict[str, int] = field(default_factory=dict)
    connect_errors: dict[str, int] = field(default_factory=dict)
    frames_in: dict[str, int] = field(default_factory=dict)
    ack_ms: list[float] = field(default_factory=list)
    delivery_ms: list[float] = field(default_factory=list)
    delivery_at: list[float] = field(default_factory=list)  # send time of each delivery_ms
    send_times: dict[str, float] = field(default_factory=dict)
    acked_ids: set[str] = field(default_factory=set)
    sent_ids: dict[str, float] = field(default_factory=dict)  # acked, no Delivered yet
    statuses: int = 0
    pings: int = 0  # the server's keep-alive pings the clients answered (from the window on)
    early_statuses: dict[str, float] = field(default_factory=dict)
    status_ms: list[float] = field(default_factory=list)
    delivered_ids: set[str] = field(default_factory=set)


class LoadSocket:
    def __init__(self, index: int, email: str, token: str, peer: str, stats: Stats) -> None:
        self.index = index
        self.email = email
        self.token = token
        self.peer = peer
        self.stats = stats
        self.conn: WebSocketClientConnection | None = None
        self.seen: set[str] = set()
        self.reader: asyncio.Task[None] | None = None
        self.sending = False

    async def connect(self, url: str) -> bool:
        try:
            self.conn = await asyncio.wait_for(websocket_connect(HTTPRequest(url)), 30)
            assert self.conn.protocol is not None
            self.conn.protocol.set_nodelay(True)  # as browsers do
            await self.conn.write_message(orjson.dumps({"type": "auth",
                                                        "token": self.token}).decode())
            raw = await asyncio.wait_for(self.conn.read_message(), 30)
        except Exception as exc:  # refused, reset, timed out: count it and go on
            self.stats.failed_connects += 1
            kind = type(exc).__name__
            self.stats.connect_errors[kind] = self.stats.connect_errors.get(kind, 0) + 1
            return False
        if raw is None or orjson.loads(raw).get("type") != "ready":
            self.stats.failed_connects += 1
            kind = f"close {self.conn.close_code}" if raw is None else "no ready"
            self.stats.connect_errors[kind] = self.stats.connect_errors.get(kind, 0) + 1
            return False
        self.stats.connected += 1
        # Tornado's client answers a ping itself and then calls this hook.
        self.conn.on_ping = self._pinged  # type: ignore[method-assign]
        self.reader = asyncio.get_running_loop().create_task(self._read())
        return True

    def _pinged(self, data: bytes) -> None:
        self.stats.pings += 1

    async def _read(self) -> None:
        assert self.conn is not None
        while True:
            raw = await self.conn.read_message()
            stats = self.stats  # --find-ceiling gives each step its own
            if raw is None:
                if self.sending:
                    stats.closed_early += 1
                    code = str(self.conn.close_code)
                    stats.close_codes[code] = stats.close_codes.get(code, 0) + 1
                return
            now = time.perf_counter()
            frame = orjson.loads(raw)
            kind = frame.get("type", "?")
            stats.frames_in[kind] = stats.frames_in.get(kind, 0) + 1
            if kind == "message":
                message = frame["message"]
                if message["recipient"] != self.email:
                    continue
                mid = message["message_id"]
                if mid in self.seen:
                    stats.duplicated += 1
                    continue
                self.seen.add(mid)
                client_id = message.get("client_id")
                started = stats.send_times.get(client_id or "")
                if started is not None and client_id not in stats.delivered_ids:
                    stats.delivered_ids.add(client_id)
                    stats.delivered += 1
                    stats.delivery_ms.append((now - started) * 1000)
                    stats.delivery_at.append(started)
                self.conn.write_message(orjson.dumps({"type": "delivered",
                                                      "message_ids": [mid]}).decode())
            elif kind == "ack":
                client_id = frame["client_id"]
                started = stats.send_times.get(client_id)
                if started is not None and client_id not in stats.acked_ids:
                    stats.acked_ids.add(client_id)
                    stats.acked += 1
                    stats.ack_ms.append((now - started) * 1000)
                    mid = frame["message"]["message_id"]
                    arrived = stats.early_statuses.pop(mid, None)
                    if arrived is None:
                        stats.sent_ids[mid] = started
                    else:  # the Delivered status overtook the ack
                        stats.statuses += 1
                        stats.status_ms.append((arrived - started) * 1000)
            elif kind == "status" and frame.get("status") == "Delivered":
                # The sender learns its message was delivered: the whole round.
                started = stats.sent_ids.pop(frame["message_id"], None)
                if started is not None:
                    stats.statuses += 1
                    stats.status_ms.append((now - started) * 1000)
                else:
                    stats.early_statuses[frame["message_id"]] = now
            elif kind == "error":
                code = frame.get("code", "?")
                stats.errors[code] = stats.errors.get(code, 0) + 1

    async def send_loop(self, interval: float, until: float, content: str,
                        tag: str = "") -> None:
        """Send every ``interval`` s until ``until``; ``tag`` keeps client ids unique."""
        assert self.conn is not None
        await asyncio.sleep(random.uniform(0, interval))
        seq = itertools.count()
        next_at = time.perf_counter()
        while next_at < until:
            client_id = f"{tag}{self.index}-{next(seq)}"
            self.stats.send_times[client_id] = time.perf_counter()
            self.stats.sent += 1
            try:
                self.conn.write_message(orjson.dumps({
                    "type": "send", "client_id": client_id, "recipient": self.peer,
                    "content": content}).decode())
            except Exception:
                self.stats.closed_early += 1
                return
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        if self.reader is not None:
            self.reader.cancel()


class LagProbe:
    """The load client's own event-loop lag: if it is high, latencies include client delay.

    It also samples, second by second, the server's and the database's CPU
    use and the client's worst lag, for ``--timeline``.
    """

    def __init__(self, server_pid: int | None = None, db_pids: list[int] | None = None) -> None:
        self.worst = 0.0
        self.server_pid = server_pid
        self.db_pids = db_pids or []
        self.seconds: list[tuple[float, float, float]] = []  # server %, database %, lag ms
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def _cpu(self) -> tuple[float, float]:
        server = cpu_of(self.server_pid) if self.server_pid else 0.0
        return server, sum(cpu_of(p) for p in self.db_pids)

    async def _run(self) -> None:
        second_started = time.perf_counter()
        cpu_then = self._cpu()
        worst_this_second = 0.0
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.05)
            now = time.perf_counter()
            lag = now - started - 0.05
            self.worst = max(self.worst, lag)
            worst_this_second = max(worst_this_second, lag)
            if now - second_started >= 1.0:
                cpu_now = self._cpu()
                span = now - second_started
                self.seconds.append(((cpu_now[0] - cpu_then[0]) / span * 100,
                                     (cpu_now[1] - cpu_then[1]) / span * 100,
                                     worst_this_second * 1000))
                second_started, cpu_then, worst_this_second = now, cpu_now, 0.0

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def rss_of(target: Target) -> int:
    return proc_rss_kib(target.server_pid) if target.server_pid else 0


def cpu_of(pid: int | None) -> float:
    return proc_cpu_secs(pid) if pid else 0.0


def db_pids(target: Target) -> list[int]:
    if target.db_pid is None:
        return []
    return [target.db_pid, *descendants(target.db_pid)]


async def connect_all(url: str, sockets: list[LoadSocket], ramp_rate: float) -> float:
    """Open every socket, ``ramp_rate`` new ones a second; returns the ramp's seconds."""
    semaphore = asyncio.Semaphore(RAMP_CONCURRENCY)
    ramp_start = time.perf_counter()

    async def ramp_one(sock: LoadSocket) -> None:
        await asyncio.sleep(sock.index / ramp_rate)
        async with semaphore:
            await sock.connect(url)

    await asyncio.gather(*(ramp_one(s) for s in sockets))
    return time.perf_counter() - ramp_start


async def drain(stats: Stats) -> None:
    """Wait up to DRAIN_SECS for the acks, deliveries and Delivered statuses still due."""
    deadline = time.perf_counter() + DRAIN_SECS
    while time.perf_counter() < deadline and (stats.acked < stats.sent  # noqa: ASYNC110
                                              or stats.delivered < stats.sent
                                              or stats.statuses < stats.sent):
        await asyncio.sleep(0.05)  # polling counters the readers update


async def find_ceiling(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    """Step the total message rate up until a step's delivery p99 passes the limit or
    anything of it is lost (or an error frame comes back, or a socket closes).

    One ramp, then one unscored step at the starting rate (every pair's first
    messages create their conversations and chat summaries, which later steps
    do not pay for again), then steps of ``--step-secs`` each with its own
    counters; every message of a step must be delivered (and its Delivered
    status back) within the drain. The ceiling is the last rate that passed; a
    failed step is tried again ``--ceiling-retries`` times before the search stops.
    """
    n = args.users
    stats = Stats()
    sockets = load_sockets(target.emails, target.tokens, 0, stats)
    await connect_all(target.url, sockets, args.ramp_rate)
    gc.collect()
    gc.freeze()
    await asyncio.sleep(SETTLE_SECS)
    live = [s for s in sockets if s.conn is not None]
    steps: list[dict[str, Any]] = []
    ceiling: float | None = None
    rate = args.ceiling_start
    failures = 0  # of the current rate
    if len(live) == n:
        warmup = await ceiling_step(target, sockets, live, rate, args, "w.")
        print(f"  {target.name} warm-up: {rate:.0f} msg/s, p99 {warmup['p99']:.1f} ms, "
              f"lost {warmup['lost']} (not scored)", file=sys.stderr, flush=True)
    for number in itertools.count():
        if rate > args.ceiling_max or len(live) < n:
            break
        step = await ceiling_step(target, sockets, live, rate, args, f"c{number}.")
        steps.append(step)
        print(f"  {target.name} step {number + 1}: {rate:.0f} msg/s, p99 {step['p99']:.1f} ms, "
              f"lost {step['lost']}, {'pass' if step['passed'] else 'STOP'}",
              file=sys.stderr, flush=True)
        if not step["passed"]:
            failures += 1
            if failures > args.ceiling_retries:
                break
            continue  # the same rate once more
        failures = 0
        ceiling = rate
        rate = round(rate * args.ceiling_factor)
    for sock in sockets:
        sock.close()
    gc.unfreeze()
    return {"target": target.name, "ceiling": ceiling, "steps": steps,
            "capped": bool(steps) and steps[-1]["passed"], "sockets": stats.connected}


async def ceiling_step(target: Target, sockets: list[LoadSocket], live: list[LoadSocket],
                       rate: float, args: argparse.Namespace, tag: str) -> dict[str, Any]:
    """One step of `find_ceiling`: ``--step-secs`` of sending at ``rate`` msg/s in all, the
    drain, and what it measured (``passed``: nothing lost or late, p99 within the limit)."""
    n = len(sockets)
    step = Stats()
    for sock in sockets:
        sock.stats = step
        sock.sending = True
    probe = LagProbe(target.server_pid, db_pids(target))
    probe.start()
    cpu0 = cpu_of(target.server_pid)
    db0 = sum(cpu_of(p) for p in db_pids(target))
    t0 = time.perf_counter()
    until = t0 + args.step_secs
    content = "x" * args.content_chars
    await asyncio.gather(*(s.send_loop(n / rate, until, content, tag=tag) for s in live))
    await drain(step)
    cpu = cpu_of(target.server_pid) - cpu0
    db_cpu = sum(cpu_of(p) for p in db_pids(target)) - db0
    probe.stop()
    for sock in sockets:
        sock.sending = False
    lost = step.sent - step.delivered
    p99 = percentile(step.delivery_ms, 99) if step.delivery_ms else float("inf")
    passed = (lost == 0 and step.statuses == step.sent and not step.errors
              and not step.closed_early and p99 <= args.ceiling_p99_ms)
    delivered = max(step.delivered, 1)
    return {
        "rate": rate, "sent": step.sent, "lost": lost, "duplicated": step.duplicated,
        "p50": percentile(step.delivery_ms, 50) if step.delivery_ms else float("inf"),
        "p99": p99, "achieved": step.delivered / args.step_secs,
        "cpu_per_1k": cpu / delivered * 1000,
        "db_cpu_per_1k": db_cpu / delivered * 1000 if target.db_pid else None,
        "client_lag_ms": probe.worst * 1000, "passed": passed,
        "errors": dict(step.errors), "closed_early": step.closed_early}


def ceiling_report(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [f"ws_load --find-ceiling --users {args.users} --step-secs {args.step_secs:g} "
             f"(p99 limit {args.ceiling_p99_ms:g} ms, {os.cpu_count()} cores)"]
    for r in results:
        lines += [f"\n{r['target']}: {r['sockets']} sockets",
                  "| msg/s asked | delivered/s | sent | lost | p50 ms | p99 ms "
                  "| server CPU s / 1,000 | database CPU s / 1,000 | client lag ms | step |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for s in r["steps"]:
            db = "-" if s["db_cpu_per_1k"] is None else f"{s['db_cpu_per_1k']:.3f}"
            lines.append(f"| {s['rate']:.0f} | {s['achieved']:.0f} | {s['sent']} | {s['lost']} "
                         f"| {s['p50']:.1f} | {s['p99']:.1f} | {s['cpu_per_1k']:.3f} | {db} "
                         f"| {s['client_lag_ms']:.0f} | {'pass' if s['passed'] else 'over'} |")
    lines.append("")
    by_name = {r["target"]: r for r in results}
    for name, r in by_name.items():
        value = "none (the first step failed)" if r["ceiling"] is None else (
            f"{r['ceiling']:.0f} msg/s" + (" (not reached: --ceiling-max)" if r["capped"] else ""))
        lines.append(f"ceiling {name}: {value}")
    ours, relay = by_name.get("whatsease"), by_name.get("relay")
    if ours and relay and ours["ceiling"] and relay["ceiling"]:
        lines.append(f"ceiling ratio relay / whatsease: {relay['ceiling'] / ours['ceiling']:.1f}x"
                     + (" (at least: the relay was not pushed to its limit)"
                        if relay["capped"] else ""))
    return "\n".join(lines)


async def run_load(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    clients: Clients = (ClientProcs(target, args) if args.client_procs > 1
                        else LocalClients(target, args))
    try:
        return await measure_load(target, args, clients)
    finally:
        await clients.close()


async def measure_load(target: Target, args: argparse.Namespace,
                       clients: Clients) -> dict[str, Any]:
    """Ramp, send for ``--duration`` and drain through ``clients``, measuring the server."""
    result: dict[str, Any] = {"target": target.name}
    gc.collect()
    rss_before = rss_of(target)
    cpu_before_ramp = cpu_of(target.server_pid)
    ramp_secs = await clients.ramp()
    cpu_ramp = cpu_of(target.server_pid) - cpu_before_ramp
    gc.collect()
    gc.freeze()
    await asyncio.sleep(SETTLE_SECS)
    rss_after = rss_of(target)
    probe = LagProbe(target.server_pid, db_pids(target))
    probe.start()
    gc0 = gc_counts(target.url) if target.name == "whatsease" else None
    cpu0 = cpu_of(target.server_pid)
    db0 = sum(cpu_of(p) for p in db_pids(target))
    ops0 = db_operations(target.mongodb_uri)
    t0 = time.perf_counter()
    spy = start_spy(target, args.spy_server, args.duration)
    sent = await clients.send(t0 + args.duration)
    stop_spy(spy)
    window = time.perf_counter() - t0
    cpu = cpu_of(target.server_pid) - cpu0
    db_cpu = sum(cpu_of(p) for p in db_pids(target)) - db0
    ops1 = db_operations(target.mongodb_uri)
    rss_end = rss_of(target)
    probe.stop()
    stats = sent.stats
    result["db_ops"] = {k: (ops1[k] - ops0.get(k, 0)) / max(1, stats.delivered)
                        for k in ("insert", "update", "query", "command") if k in ops1}
    result["batches"] = batch_sizes(target.url) if target.name == "whatsease" else {}
    if gc0 is not None:
        gc1 = gc_counts(target.url)
        result["gc"] = gc_pauses(gc1)
        result["gc_window"] = gc_pauses(gc1, gc0)
        result["gc_generations"] = gc_generations(gc1, gc0)
    delivered = max(stats.delivered, 1)
    result.update({
        "sockets": stats.connected, "failed": stats.failed_connects,
        "ramp_secs": ramp_secs, "ramp_cpu_ms_per_socket": cpu_ramp * 1000 / max(1, stats.connected),
        "sent": stats.sent, "acked": stats.acked, "delivered": stats.delivered,
        "lost": stats.sent - stats.delivered, "duplicated": stats.duplicated,
        "closed_early": stats.closed_early, "errors": dict(stats.errors),
        "close_codes": dict(stats.close_codes), "connect_errors": dict(stats.connect_errors),
        "ack_ms": stats.ack_ms, "delivery_ms": stats.delivery_ms,
        "delivery_at": [at - t0 for at in stats.delivery_at],
        "statuses": stats.statuses, "status_ms": stats.status_ms,
        "msgs_per_sec": stats.delivered / args.duration,
        "window_secs": window,
        "rss_before_mib": rss_before / 1024, "rss_after_mib": rss_after / 1024,
        "rss_end_mib": rss_end / 1024,
        "kib_per_socket": (rss_after - rss_before) / max(1, stats.connected),
        "cpu_secs": cpu, "cpu_per_1k": cpu / delivered * 1000,
        "cpu_ms_per_sec_per_1k_sockets": cpu * 1000 / window * 1000 / max(1, stats.connected),
        "db_cpu_ms_per_sec": db_cpu * 1000 / window if target.db_pid else None,
        "db_cpu_per_1k": db_cpu / delivered * 1000 if target.db_pid else None,
        "client_cpu_per_1k": sent.cpu_secs / delivered * 1000,
        "client_lag_ms": max(sent.lag_ms),
        "client_lags_ms": sent.lag_ms,
        "seconds": with_client_lag(probe.seconds, sent.lag_by_second),
        "frames_in": dict(stats.frames_in),
        "pings_per_sec": stats.pings / window,
    })
    gc.unfreeze()
    return result


def with_client_lag(seconds: list[tuple[float, float, float]],
                    lag_by_second: list[float] | None) -> list[tuple[float, float, float]]:
    """The per-second CPU samples with the load clients' worst lag in each second (when the
    clients ran in processes of their own, their lag, not this process's)."""
    if lag_by_second is None:
        return seconds
    return [(server, database, lag_by_second[i] if i < len(lag_by_second) else 0.0)
            for i, (server, database, _lag) in enumerate(seconds)]


# --- the load clients: in this process, or spread over several (--client-procs) -------------


@dataclass
class Sent:
    """What the load clients measured over the sending window and the drain."""

    stats: Stats
    lag_ms: list[float]  # each load-client process's worst loop lag
    cpu_secs: float  # the load clients' own CPU over the window
    lag_by_second: list[float] | None = None  # the worst lag of any process, second by second


class Clients(Protocol):
    async def ramp(self) -> float:
        """Open every socket; returns the ramp's seconds."""

    async def send(self, until: float) -> Sent:
        """Send until ``until`` (`time.perf_counter`), then drain."""

    async def close(self) -> None:
        """Close every socket (and stop every client process)."""


def is_sender(index: int, users: int, senders: int) -> bool:
    """Whether socket ``index`` of ``users`` sends when only ``senders`` do: every k-th pair."""
    if senders >= users:
        return True
    return senders > 0 and (index // 2) % ((users // 2) // (senders // 2)) == 0


def load_sockets(emails: list[str], tokens: list[str], first: int,
                 stats: Stats) -> list[LoadSocket]:
    """Sockets ``first``, ``first + 1``, ... of the run; socket i's partner is i ^ 1."""
    return [LoadSocket(first + k, emails[k], tokens[k], emails[((first + k) ^ 1) - first], stats)
            for k in range(len(emails))]


class LocalClients:
    """Every socket in this process, on this event loop."""

    def __init__(self, target: Target, args: argparse.Namespace, first: int = 0) -> None:
        self.url = target.url
        self.stats = Stats()
        self.sockets = load_sockets(target.emails, target.tokens, first, self.stats)
        self.ramp_rate = args.ramp_rate
        self.interval = args.interval_ms / 1000
        self.content = "x" * args.content_chars
        self.users = args.users
        self.senders = args.senders
        self.probe: LagProbe | None = None

    async def ramp(self) -> float:
        return await connect_all(self.url, self.sockets, self.ramp_rate)

    async def send(self, until: float) -> Sent:
        probe = LagProbe()
        probe.start()
        self0 = resource.getrusage(resource.RUSAGE_SELF)
        live = [s for s in self.sockets if s.conn is not None]
        for sock in live:
            sock.sending = True
        self.stats.pings = 0
        talking = [s for s in live if is_sender(s.index, self.users, self.senders)]
        # The others stay connected and silent: they answer the server's pings only.
        if talking:
            await asyncio.gather(*(s.send_loop(self.interval, until, self.content)
                                   for s in talking))
            await drain(self.stats)
        else:
            await asyncio.sleep(max(0.0, until - time.perf_counter()))
        self1 = resource.getrusage(resource.RUSAGE_SELF)
        probe.stop()
        cpu = self1.ru_utime + self1.ru_stime - self0.ru_utime - self0.ru_stime
        return Sent(self.stats, [probe.worst * 1000], cpu,
                    [lag for _server, _database, lag in probe.seconds])

    async def close(self) -> None:
        for sock in self.sockets:
            sock.sending = False
            sock.close()


class ClientProcs:
    """The sockets spread over ``--client-procs`` processes of this script (``--client-worker``).

    Each process holds whole pairs, so it times its own messages from send to
    delivery; the clocks agree (`time.perf_counter` is the system's monotonic
    clock). They talk to this one in JSON lines: the sockets to open; "ramped";
    the moment to stop sending; what they measured; close.
    """

    def __init__(self, target: Target, args: argparse.Namespace) -> None:
        self.target = target
        self.args = args
        self.procs: list[asyncio.subprocess.Process] = []

    async def ramp(self) -> float:
        args = self.args
        for part in split_pairs(len(self.target.emails), args.client_procs):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(SCRIPT), "--client-worker",
                "--ramp-rate", str(args.ramp_rate), "--interval-ms", str(args.interval_ms),
                "--content-chars", str(args.content_chars),
                "--seed", str(args.seed + len(self.procs)),
                "--users", str(args.users), "--senders", str(args.senders),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, limit=WORKER_LINE_BYTES)
            self.procs.append(proc)
            await self._tell(proc, {"url": self.target.url, "first": part.start,
                                    "emails": self.target.emails[part.start:part.stop],
                                    "tokens": self.target.tokens[part.start:part.stop]})
        bound = len(self.target.emails) / args.ramp_rate + CLIENT_PROC_SLACK_SECS
        ramped = await self._hear_all("ramped", bound)
        return max(r["ramp_secs"] for r in ramped)

    async def send(self, until: float) -> Sent:
        for proc in self.procs:
            await self._tell(proc, {"until": until})
        bound = until - time.perf_counter() + DRAIN_SECS + CLIENT_PROC_SLACK_SECS
        parts = await self._hear_all("done", bound)
        seconds = max(len(p["lag_by_second"]) for p in parts)
        return Sent(merge_stats([stats_of(p["stats"]) for p in parts]),
                    [p["lag_ms"] for p in parts], sum(p["cpu_secs"] for p in parts),
                    [max(p["lag_by_second"][i] for p in parts if i < len(p["lag_by_second"]))
                     for i in range(seconds)])

    async def close(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                with contextlib.suppress(OSError):
                    await self._tell(proc, {"close": True})
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    @staticmethod
    async def _tell(proc: asyncio.subprocess.Process, message: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write(orjson.dumps(message) + b"\n")
        await proc.stdin.drain()

    async def _hear_all(self, event: str, within_secs: float) -> list[dict[str, Any]]:
        async def hear(proc: asyncio.subprocess.Process) -> dict[str, Any]:
            assert proc.stdout is not None
            line = await proc.stdout.readline()
            if not line:
                raise RuntimeError(f"a load-client process ended before '{event}' "
                                   f"(exit code {await proc.wait()})")
            message: dict[str, Any] = orjson.loads(line)
            if message.get("event") != event:
                raise RuntimeError(f"a load-client process said {message.get('event')!r}, "
                                   f"expected {event!r}")
            return message

        return list(await asyncio.wait_for(asyncio.gather(*(hear(p) for p in self.procs)),
                                           within_secs))


# A load-client process's report carries every latency it measured: one line.
WORKER_LINE_BYTES = 64 * 1024 * 1024


def split_pairs(users: int, procs: int) -> list[range]:
    """Socket indexes per load-client process: as even as can be, each a whole number of
    pairs (socket i talks to i ^ 1)."""
    pairs = users // 2
    bounds = [2 * (pairs * k // procs) for k in range(procs + 1)]
    return [range(bounds[k], bounds[k + 1]) for k in range(procs)]


# What a load-client process reports of its `Stats` (the rest is bookkeeping of the run).
_STATS_REPORTED = ("connected", "failed_connects", "sent", "acked", "delivered", "duplicated",
                   "closed_early", "statuses", "pings", "errors", "close_codes", "connect_errors",
                   "frames_in", "ack_ms", "delivery_ms", "delivery_at", "status_ms")


def stats_report(stats: Stats) -> dict[str, Any]:
    return {name: getattr(stats, name) for name in _STATS_REPORTED}


def stats_of(report: dict[str, Any]) -> Stats:
    return Stats(**{name: report[name] for name in _STATS_REPORTED})


def merge_stats(parts: list[Stats]) -> Stats:
    """One `Stats` of several processes': counts and per-kind counts added, latencies joined."""
    merged = Stats()
    for part in parts:
        for name in _STATS_REPORTED:
            mine, theirs = getattr(merged, name), getattr(part, name)
            if isinstance(mine, int):
                setattr(merged, name, mine + theirs)
            elif isinstance(mine, list):
                mine.extend(theirs)
            else:
                for key, count in theirs.items():
                    mine[key] = mine.get(key, 0) + count
    return merged


async def client_worker(args: argparse.Namespace) -> None:
    """One load-client process of `ClientProcs`: its sockets, on its own event loop."""
    loop = asyncio.get_running_loop()

    async def hear() -> dict[str, Any]:
        line = await loop.run_in_executor(None, sys.stdin.buffer.readline)
        if not line:
            raise SystemExit(0)  # the parent is gone
        message: dict[str, Any] = orjson.loads(line)
        return message

    def tell(message: dict[str, Any]) -> None:
        sys.stdout.buffer.write(orjson.dumps(message) + b"\n")
        sys.stdout.buffer.flush()

    random.seed(args.seed)
    spec = await hear()
    target = Target("worker", spec["url"], spec["tokens"], spec["emails"])
    clients = LocalClients(target, args, first=spec["first"])
    try:
        ramp_secs = await clients.ramp()
        gc.collect()
        gc.freeze()
        tell({"event": "ramped", "ramp_secs": ramp_secs})
        go = await hear()
        if "until" not in go:
            return  # closed before sending: the run failed elsewhere
        sent = await clients.send(go["until"])
        tell({"event": "done", "stats": stats_report(sent.stats), "lag_ms": sent.lag_ms[0],
              "cpu_secs": sent.cpu_secs, "lag_by_second": sent.lag_by_second})
        await hear()  # close
    finally:
        await clients.close()


def start_spy(target: Target, prefix: str, seconds: float) -> subprocess.Popen[bytes] | None:
    """Start ``py-spy record`` on the target's server for ``seconds`` (None if not asked for).

    Non-blocking sampling: the server is never paused, and py-spy's own CPU is
    its process's, not the server's (on a 2-core machine it still competes).
    """
    if not prefix or target.server_pid is None:
        return None
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out = f"{prefix}.{target.name}.txt"
    return subprocess.Popen([spy, "record", "--pid", str(target.server_pid), "--nonblocking",
                             "--threads", "--rate", str(SPY_RATE_HZ), "--format", "raw",
                             "--output", out,
                             "--duration", str(max(1, int(seconds)))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_spy(spy: subprocess.Popen[bytes] | None) -> None:
    """Wait for py-spy to write its stacks (it stops by itself after its duration)."""
    if spy is None:
        return
    try:
        spy.wait(SPY_WRITE_SECS)
    except subprocess.TimeoutExpired:
        spy.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
        try:
            spy.wait(SPY_WRITE_SECS)
        except subprocess.TimeoutExpired:
            spy.kill()


def opcounters(client: MongoClient[dict[str, Any]]) -> dict[str, int]:
    """The database's operation counters so far, by kind (serverStatus ``opcounters``)."""
    return {k: int(v) for k, v in client.admin.command("serverStatus")["opcounters"].items()}


def db_operations(mongodb_uri: str) -> dict[str, int]:
    """`opcounters` of the database at ``mongodb_uri`` ({} without a URI)."""
    if not mongodb_uri:
        return {}
    client: MongoClient[dict[str, Any]] = MongoClient(mongodb_uri)
    try:
        return opcounters(client)
    finally:
        client.close()


def fetch_metrics(ws_url: str) -> str:
    """The server's /metrics text ('' if it cannot be read)."""
    if not ws_url.startswith("ws://127.0.0.1:"):
        return ""
    port = int(ws_url.split(":")[2].split("/")[0])
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        if response.status != 200:
            return ""
        return response.read().decode()
    except OSError:
        return ""


def batch_sizes(ws_url: str) -> dict[str, float]:
    """Mean items per batched database write, by kind, from the server's /metrics."""
    return parse_batch_sizes(fetch_metrics(ws_url))


def parse_batch_sizes(text: str) -> dict[str, float]:
    """Mean items per batched database write, by kind, from metrics ``text``."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for line in text.splitlines():
        for suffix, into in (("_sum", sums), ("_count", counts)):
            prefix = f"whatsease_db_batch_size{suffix}{{kind=\""
            if line.startswith(prefix):
                kind = line[len(prefix):].split('"')[0]
                into[kind] = float(line.split()[-1])
    return {k: sums[k] / counts[k] for k in sums if counts.get(k)}


# Histogram bounds (seconds) the pauses are counted over; the server's GC
# histogram has these among its buckets (the issue wants none over 20 ms: 25
# is the nearest bound, 10 the one below it).
GC_PAUSE_BOUNDS = (0.01, 0.025, 0.05)


def gc_counts(ws_url: str) -> dict[str, float]:
    """The server's garbage-collector pauses so far, from /metrics: count, total and how many
    took longer than each of `GC_PAUSE_BOUNDS` (all generations together)."""
    return parse_gc_counts(fetch_metrics(ws_url))


def parse_gc_counts(text: str) -> dict[str, float]:
    """`gc_counts` from the text of /metrics."""
    counts = {"count": 0.0, "sum": 0.0, **{f"le={b}": 0.0 for b in GC_PAUSE_BOUNDS}}
    for line in text.splitlines():
        if not line.startswith("whatsease_gc_pause_seconds"):
            continue
        value = float(line.split()[-1])
        generation = line.partition('generation="')[2][:1]
        if line.startswith("whatsease_gc_pause_seconds_count"):
            counts["count"] += value
            counts[f"g{generation}"] = counts.get(f"g{generation}", 0.0) + value
        elif line.startswith("whatsease_gc_pause_seconds_sum"):
            counts["sum"] += value
        else:
            for bound in GC_PAUSE_BOUNDS:
                if f'le="{bound}"' in line:
                    counts[f"le={bound}"] += value
                    key = f"g{generation}:le={bound}"
                    counts[key] = counts.get(key, 0.0) + value
    return counts


def gc_generations(counts: dict[str, float], before: dict[str, float] | None = None) -> str:
    """Collections per generation (less ``before``) and, per generation, how many took
    longer than 25 ms: which generation the long pauses come from."""
    base = before or {}
    bound = GC_PAUSE_BOUNDS[1]

    def delta(key: str) -> float:
        return counts.get(key, 0.0) - base.get(key, 0.0)

    total = [delta(f"g{g}") for g in range(3)]
    over = [total[g] - delta(f"g{g}:le={bound}") for g in range(3)]
    if not any(total):
        return "-"
    return (" / ".join(f"{t:.0f}" for t in total) + f", over {bound * 1000:.0f} ms: "
            + " / ".join(f"{o:.0f}" for o in over))


def gc_pauses(counts: dict[str, float], before: dict[str, float] | None = None) -> str:
    """``counts`` (less ``before``) as "N, T ms in all, over 10 / 25 / 50 ms: a / b / c"."""
    base = before or {}
    count = counts["count"] - base.get("count", 0.0)
    if not count:
        return "-"
    total = counts["sum"] - base.get("sum", 0.0)
    over = [count - (counts[f"le={b}"] - base.get(f"le={b}", 0.0)) for b in GC_PAUSE_BOUNDS]
    bounds = " / ".join(f"{b * 1000:.0f}" for b in GC_PAUSE_BOUNDS)
    return (f"{count:.0f}, {total * 1000:.0f} ms in all, over {bounds} ms: "
            + " / ".join(f"{o:.0f}" for o in over))


# --- report --------------------------------------------------------------------------------


def fmt_ms(values: list[float], p: float | None) -> str:
    if not values:
        return "-"
    value = max(values) if p is None else percentile(values, p)
    return f"{value:.1f}"


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    names = [r["target"] for r in results]
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, render: Any) -> None:
        rows.append((label, [render(r) for r in results]))

    row("sockets connected", lambda r: f"{r['sockets']} (failed {r['failed']})")
    row("ramp: seconds", lambda r: f"{r['ramp_secs']:.1f}")
    row("ramp: server CPU ms per socket", lambda r: f"{r['ramp_cpu_ms_per_socket']:.2f}")
    row("messages sent", lambda r: str(r["sent"]))
    row("acked", lambda r: str(r["acked"]))
    row("delivered", lambda r: str(r["delivered"]))
    row("Delivered statuses back to sender", lambda r: str(r["statuses"]))
    row("lost", lambda r: str(r["lost"]))
    row("duplicated", lambda r: str(r["duplicated"]))
    row("connect failures by cause", lambda r: ", ".join(
        f"{k}={v}" for k, v in r["connect_errors"].items()) or "0")
    row("sockets closed early", lambda r: str(r["closed_early"]) + "".join(
        f" {k}={v}" for k, v in r["close_codes"].items()))
    row("error frames", lambda r: ", ".join(f"{k}={v}" for k, v in r["errors"].items()) or "0")
    for p, label in ((50, "p50"), (95, "p95"), (99, "p99"), (None, "max")):
        row(f"ack latency {label} ms", lambda r, p=p: fmt_ms(r["ack_ms"], p))
    for p, label in ((50, "p50"), (95, "p95"), (99, "p99"), (None, "max")):
        row(f"delivery latency {label} ms", lambda r, p=p: fmt_ms(r["delivery_ms"], p))
    for p, label in ((50, "p50"), (99, "p99"), (None, "max")):
        row(f"send -> Delivered status {label} ms", lambda r, p=p: fmt_ms(r["status_ms"], p))
    row("messages/s delivered", lambda r: f"{r['msgs_per_sec']:.1f}")
    row("keep-alive pings answered per second", lambda r: f"{r['pings_per_sec']:.0f}")
    row("server RSS before ramp MiB", lambda r: f"{r['rss_before_mib']:.1f}")
    row("server RSS after ramp MiB", lambda r: f"{r['rss_after_mib']:.1f}")
    row("server RSS at end MiB", lambda r: f"{r['rss_end_mib']:.1f}")
    row("memory per socket KiB", lambda r: f"{r['kib_per_socket']:.2f}")
    row("server CPU ms per second per 1,000 sockets",
        lambda r: f"{r['cpu_ms_per_sec_per_1k_sockets']:.2f}")
    row("database CPU ms per second",
        lambda r: "-" if r["db_cpu_ms_per_sec"] is None else f"{r['db_cpu_ms_per_sec']:.1f}")
    row("server CPU s per 1,000 msgs", lambda r: f"{r['cpu_per_1k']:.3f}")
    row("database CPU s per 1,000 msgs",
        lambda r: "-" if r["db_cpu_per_1k"] is None else f"{r['db_cpu_per_1k']:.3f}")
    row("database commands per message (insert / update / query / other)", lambda r: " / ".join(
        f"{r['db_ops'][k]:.2f}" for k in ("insert", "update", "query", "command")
        if k in r["db_ops"]) if r.get("db_ops") else "-")
    row("load client CPU s per 1,000 msgs", lambda r: f"{r['client_cpu_per_1k']:.3f}")
    row("load client worst loop lag ms (per process)",
        lambda r: " / ".join(f"{lag:.0f}" for lag in r["client_lags_ms"]))
    row("mean database batch sizes", lambda r: " ".join(
        f"{k}={v:.1f}" for k, v in sorted(r.get("batches", {}).items())) or "-")
    row("server GC pauses (whole run)", lambda r: r.get("gc", "-"))
    row("server GC pauses (sending)", lambda r: r.get("gc_window", "-"))
    row("GC collections gen 0 / 1 / 2 (sending)", lambda r: r.get("gc_generations", "-"))
    width = max(len(label) for label, _ in rows)
    cols = [max(len(n), *(len(v[i]) for _, v in rows)) for i, n in enumerate(names)]
    quiet = (" --idle" if args.idle
             else f" --senders {args.senders}" if args.senders < args.users else "")
    lines = [f"ws_load --users {args.users} --interval-ms {args.interval_ms} "
             f"--duration {args.duration:g}{quiet}  "
             f"({os.cpu_count()} cores)",
             "| " + "metric".ljust(width) + " | "
             + " | ".join(n.rjust(c) for n, c in zip(names, cols, strict=True)) + " |",
             "|" + "-" * (width + 2) + "|" + "|".join("-" * (c + 2) for c in cols) + "|"]
    for label, values in rows:
        lines.append("| " + label.ljust(width) + " | "
                     + " | ".join(v.rjust(c) for v, c in zip(values, cols, strict=True)) + " |")
    by_name = {r["target"]: r for r in results}
    if "whatsease" in by_name and "relay" in by_name and args.idle:
        ours, relay = (by_name[name]["cpu_ms_per_sec_per_1k_sockets"]
                       for name in ("whatsease", "relay"))
        lines.append(f"\nidle server CPU per second per 1,000 sockets: whatsease {ours:.2f} ms, "
                     f"relay {relay:.2f} ms, difference {ours - relay:.2f} ms")
    elif "whatsease" in by_name and "relay" in by_name:
        ratio = by_name["whatsease"]["cpu_per_1k"] / max(by_name["relay"]["cpu_per_1k"], 1e-9)
        lines.append(f"\nserver CPU per message, whatsease / relay baseline: {ratio:.1f}x")
    return "\n".join(lines)


def timeline(result: dict[str, Any]) -> str:
    """Delivery latency by the second the message was sent in, beside CPU use then."""
    by_second: dict[int, list[float]] = {}
    for at, ms in zip(result["delivery_at"], result["delivery_ms"], strict=True):
        by_second.setdefault(int(at), []).append(ms)
    lines = [f"\n{result['target']}: delivery latency by second of sending",
             "| second | messages | p50 ms | p99 ms | max ms | server CPU % | database CPU % "
             "| client lag ms |", "|---|---|---|---|---|---|---|---|"]
    samples = result["seconds"]
    for second in sorted(by_second):
        values = by_second[second]
        server, database, lag = (samples[second] if second < len(samples)
                                 else (float("nan"),) * 3)
        lines.append(f"| {second} | {len(values)} | {fmt_ms(values, 50)} | "
                     f"{fmt_ms(values, 99)} | {fmt_ms(values, None)} | {server:.0f} | "
                     f"{database:.0f} | {lag:.0f} |")
    return "\n".join(lines)


async def run_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    random.seed(args.seed)
    targets = ["whatsease", "relay"] if args.target == "both" else [args.target]
    results = []
    for name in targets:
        if args.url:
            if name == "whatsease":
                if not (args.mongodb_uri and args.jwt_secret):
                    raise SystemExit("--url with whatsease needs --mongodb-uri and --jwt-secret")
                emails, access = create_users(args.mongodb_uri, DB_NAME, args.jwt_secret,
                                              args.users, 86400)
            else:
                emails = [f"load{i:05d}@bench.test" for i in range(args.users)]
                access = list(emails)
            target = Target(name, args.url, access, emails)
        else:
            print(f"starting {name} ...", file=sys.stderr, flush=True)
            target = (start_whatsease(args.users, args.duration, args.profile_server,
                                       args.gc_trace, Path(args.server_root))
                      if name == "whatsease"
                      else start_relay(args.users))
        try:
            print(f"loading {name}: {args.users} sockets ...", file=sys.stderr, flush=True)
            results.append(await (find_ceiling(target, args) if args.find_ceiling
                                  else run_load(target, args)))
        finally:
            if target.stop is not None:
                target.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    limit = raise_fd_limit()
    if args.client_worker:
        uvloop.run(client_worker(args))
        return 0
    if limit < args.users + 100:
        print(f"open-files limit {limit} is too low for {args.users} sockets", file=sys.stderr)
        return 2
    results = uvloop.run(run_all(args))
    if args.find_ceiling:
        print(ceiling_report(results, args))
        return 0
    print(report(results, args))
    if args.timeline:
        for r in results:
            print(timeline(r))
    lat = [r for r in results if r["target"] == "whatsease"]
    if lat and lat[0]["delivery_ms"]:
        print(f"whatsease delivery latency mean {statistics.fmean(lat[0]['delivery_ms']):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
