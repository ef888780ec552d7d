"""REST load generator: bulk registration, then concurrent logins, message posts and history reads.

By default it starts its own server (``python -m whatsease`` on the embedded
database, in a temporary data dir) and stops it afterwards; ``--url`` points it
at a server already running on this machine. Traffic only ever goes to the
loopback interface, and every phase is bounded in count or time.

    python bench/rest_load.py --users 50 --concurrency 20 --duration 20
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import math
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import orjson

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_USERS = 10_000
MAX_CONCURRENCY = 500
MAX_DURATION_SECS = 600.0
SERVER_START_SECS = 60.0
REQUEST_TIMEOUT_SECS = 30.0
PASSWORD = "bench password 123"
# Relative weights of the operations in the mixed phase.
DEFAULT_MIX = "login=1,send=6,history=3"
OPERATIONS = ("login", "send", "history")


@dataclass
class Account:
    email: str
    token: str = ""


@dataclass
class Results:
    """Latencies (seconds) and error counts per operation; shared by the worker threads."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)
    first_error: dict[str, str] = field(default_factory=dict)

    def record(self, op: str, seconds: float, ok: bool, detail: str = "") -> None:
        with self.lock:
            if ok:
                self.latencies[op].append(seconds)
            else:
                self.errors[op] += 1
                self.first_error.setdefault(op, detail)


class Connection:
    """One keep-alive HTTP/1.1 connection; reopened after a failure."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: Any = None,
                token: str = "") -> tuple[int, Any]:
        headers = {"Connection": "keep-alive"}
        data = None
        if body is not None:
            data = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port,
                                                   timeout=REQUEST_TIMEOUT_SECS)
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        return response.status, (orjson.loads(raw) if raw else None)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    if not values:
        return float("nan")
    index = min(len(values) - 1, max(0, math.ceil(fraction * len(values)) - 1))
    return values[index]


def parse_mix(text: str) -> dict[str, int]:
    mix: dict[str, int] = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        if name.strip() not in OPERATIONS or not weight.strip().isdigit():
            raise argparse.ArgumentTypeError(f"bad --mix entry {part!r}; "
                                             f"expected e.g. {DEFAULT_MIX}")
        mix[name.strip()] = int(weight)
    if not any(mix.values()):
        raise argparse.ArgumentTypeError("--mix needs at least one non-zero weight")
    return mix


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def own_server(bcrypt_rounds: int, log_level: str) -> Iterator[tuple[str, int]]:
    """``python -m whatsease`` on the embedded database in a temporary dir; stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="whatsease-bench-") as tmp:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("WHATSEASE_")}
        env.update(WHATSEASE_DATA_DIR=str(Path(tmp) / "data"), WHATSEASE_PORT=str(port),
                   WHATSEASE_HOST="127.0.0.1", WHATSEASE_BCRYPT_ROUNDS=str(bcrypt_rounds),
                   WHATSEASE_LOG_LEVEL=log_level)
        log_path = Path(tmp) / "server.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "whatsease"], cwd=ROOT, env=env,
                                       stdout=subprocess.DEVNULL, stderr=log)
        try:
            deadline = time.monotonic() + SERVER_START_SECS
            probe = Connection("127.0.0.1", port)
            while True:
                if process.poll() is not None:
                    raise SystemExit("the server exited:\n" + log_path.read_text()[-2000:])
                with contextlib.suppress(OSError, http.client.HTTPException):
                    if probe.request("GET", "/healthz")[0] == 200:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not answer /healthz in time")
                time.sleep(0.1)
            probe.close()
            yield "127.0.0.1", port
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def register_all(host: str, port: int, users: int, concurrency: int,
                 results: Results) -> tuple[list[Account], float]:
    """Register ``users`` fresh accounts with ``concurrency`` workers; returns them and the time."""
    tag = secrets.token_hex(3)
    accounts = [Account(f"bench{i}.{tag}@example.com") for i in range(users)]
    local = threading.local()

    def register(account: Account) -> None:
        if not hasattr(local, "conn"):
            local.conn = Connection(host, port)
        started = time.perf_counter()
        try:
            status, body = local.conn.request(
                "POST", "/api/v1/auth/register",
                {"email": account.email, "name": account.email.split("@")[0],
                 "password": PASSWORD})
        except (OSError, http.client.HTTPException) as exc:
            results.record("register", 0, False, repr(exc))
            return
        ok = status == 201
        results.record("register", time.perf_counter() - started, ok, f"HTTP {status}")
        if ok:
            account.token = body["access_token"]

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(register, accounts))
    return [a for a in accounts if a.token], time.perf_counter() - started


def run_mixed(host: str, port: int, accounts: list[Account], concurrency: int,
              duration: float, mix: dict[str, int], results: Results) -> float:
    """Each worker loops over weighted random operations until ``duration`` passes."""
    names = [op for op in OPERATIONS if mix.get(op)]
    weights = [mix[op] for op in names]
    deadline = time.monotonic() + duration

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        conn = Connection(host, port)
        try:
            while time.monotonic() < deadline:
                op = rng.choices(names, weights)[0]
                me, peer = rng.sample(accounts, 2)
                started = time.perf_counter()
                try:
                    if op == "login":
                        status, body = conn.request("POST", "/api/v1/auth/login",
                                                    {"email": me.email, "password": PASSWORD})
                        ok = status == 200
                        if ok:
                            me.token = body["access_token"]
                    elif op == "send":
                        status, _ = conn.request(
                            "POST", "/api/v1/messages",
                            {"recipient": peer.email,
                             "content": f"load test message {rng.random():.6f}"},
                            token=me.token)
                        ok = status == 201
                    else:
                        status, _ = conn.request(
                            "GET", f"/api/v1/messages?with={quote(peer.email)}&limit=50",
                            token=me.token)
                        ok = status == 200
                except (OSError, http.client.HTTPException) as exc:
                    results.record(op, 0, False, repr(exc))
                    continue
                results.record(op, time.perf_counter() - started, ok, f"HTTP {status}")
        finally:
            conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration + REQUEST_TIMEOUT_SECS + 5)
    return time.perf_counter() - started


def table(results: Results, elapsed: dict[str, float]) -> str:
    rows = ["| operation | count | errors | p50 ms | p99 ms | requests/s |",
            "|---|---:|---:|---:|---:|---:|"]
    total_count = total_errors = 0
    mixed: list[float] = []
    for op in ("register", *OPERATIONS):
        values = sorted(results.latencies.get(op, []))
        errors = results.errors.get(op, 0)
        if not values and not errors:
            continue
        seconds = elapsed["register" if op == "register" else "mixed"]
        rows.append(f"| {op} | {len(values)} | {errors} | {percentile(values, 0.5) * 1000:.1f} "
                    f"| {percentile(values, 0.99) * 1000:.1f} | {len(values) / seconds:.1f} |")
        if op != "register":
            total_count += len(values)
            total_errors += errors
            mixed.extend(values)
    mixed.sort()
    rows.append(f"| **mixed total** | {total_count} | {total_errors} | "
                f"{percentile(mixed, 0.5) * 1000:.1f} | {percentile(mixed, 0.99) * 1000:.1f} | "
                f"{total_count / elapsed['mixed']:.1f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server on this machine, e.g. "
                        "http://127.0.0.1:8080 (default: start one on the embedded database)")
    parser.add_argument("--users", type=int, default=50, help="accounts to register (default 50)")
    parser.add_argument("--concurrency", type=int, default=20,
                        help="parallel connections (default 20)")
    parser.add_argument("--duration", type=float, default=20.0,
                        help="seconds of mixed load (default 20)")
    parser.add_argument("--mix", type=parse_mix, default=parse_mix(DEFAULT_MIX),
                        help=f"operation weights (default {DEFAULT_MIX})")
    parser.add_argument("--bcrypt-rounds", type=int, default=12,
                        help="bcrypt cost of a self-started server (default 12, production's)")
    parser.add_argument("--log-level", default="INFO",
                        help="log level of a self-started server (default INFO, production's)")
    args = parser.parse_args(argv)
    if not 2 <= args.users <= MAX_USERS:
        parser.error(f"--users must be between 2 and {MAX_USERS}")
    if not 1 <= args.concurrency <= MAX_CONCURRENCY:
        parser.error(f"--concurrency must be between 1 and {MAX_CONCURRENCY}")
    if not 0 < args.duration <= MAX_DURATION_SECS:
        parser.error(f"--duration must be between 0 and {MAX_DURATION_SECS:.0f} seconds")

    with contextlib.ExitStack() as stack:
        if args.url:
            parts = urlsplit(args.url)
            if parts.scheme != "http" or parts.hostname not in LOOPBACK:
                parser.error("--url must be http:// on this machine (127.0.0.1 or localhost)")
            host, port = parts.hostname or "127.0.0.1", parts.port or 80
            where = args.url
        else:
            host, port = stack.enter_context(own_server(args.bcrypt_rounds, args.log_level))
            where = (f"own server on 127.0.0.1:{port} (embedded SecantusDB, bcrypt cost "
                     f"{args.bcrypt_rounds}, log level {args.log_level})")
        results = Results()
        print(f"server: {where}", flush=True)
        print(f"registering {args.users} users with {args.concurrency} workers ...", flush=True)
        accounts, register_secs = register_all(host, port, args.users, args.concurrency,
                                               results)
        if len(accounts) < 2:
            print(f"registration failed: {dict(results.first_error)}", file=sys.stderr)
            return 1
        print(f"mixed load for {args.duration:.0f} s, {args.concurrency} connections, "
              f"mix {args.mix} ...", flush=True)
        mixed_secs = run_mixed(host, port, accounts, args.concurrency, args.duration,
                               args.mix, results)
    print()
    print(table(results, {"register": register_secs, "mixed": mixed_secs}))
    if results.first_error:
        print(f"\nfirst error per operation: {dict(results.first_error)}")
    return 0 if not any(results.errors.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
