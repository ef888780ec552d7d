"""WhatsApp webhook load: signed webhooks at increasing rates against one server and a fake
Graph API (a real local HTTP server).

It starts the fake Graph API and its own server (``python -m whatsease`` on the
embedded database, in a temporary data dir, with the WhatsApp channel bound to
bot:whatsease), then for each rate sends signed text-message webhooks at that
rate for ``--seconds`` (open loop: sends are scheduled, not waiting for
answers), a share of them delivered twice as Meta does on retries. It prints,
per rate: webhooks accepted per second, the webhook response time (p50, p99:
the answer comes before the bot runs), the end-to-end reply time (webhook sent
→ the bot's reply reaches the Graph API), and how many messages were lost
(no reply) or answered twice. Traffic only goes to 127.0.0.1 and every step is
bounded in time.

    python bench/channel_load.py --rates 50,100,200 --seconds 5
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import http.client
import itertools
import os
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
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.platforms import FakeGraphAPI, Recorded  # noqa: E402

SERVER_START_SECS = 90.0
MAX_RATE = 2000
MAX_SECONDS = 60.0
# How long to wait for the last replies of a step, in seconds.
DRAIN_SECS = 30.0
APP_SECRET = secrets.token_hex(16)
PHONE_NUMBER_ID = "106540352242922"
SENDERS_PER_STEP = 200
CLIENT_THREADS = 32


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@contextlib.contextmanager
def own_server(graph_url: str) -> Iterator[int]:
    """``python -m whatsease`` with the WhatsApp channel pointed at ``graph_url``."""
    with tempfile.TemporaryDirectory(prefix="whatsease-channel-bench-") as tmp:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("WHATSEASE_")}
        env.update(WHATSEASE_DATA_DIR=str(Path(tmp) / "data"), WHATSEASE_PORT=str(port),
                   WHATSEASE_HOST="127.0.0.1", WHATSEASE_LOG_LEVEL="ERROR",
                   WHATSEASE_BOT_SEMANTIC="false", WHATSEASE_OUTBOUND_ALLOW_PRIVATE="true",
                   WHATSEASE_WHATSAPP_APP_SECRET=APP_SECRET,
                   WHATSEASE_WHATSAPP_VERIFY_TOKEN="bench-verify",
                   WHATSEASE_WHATSAPP_TOKEN="bench-token-" + secrets.token_hex(8),
                   WHATSEASE_WHATSAPP_PHONE_NUMBER_ID=PHONE_NUMBER_ID,
                   WHATSEASE_WHATSAPP_GRAPH_URL=graph_url)
        log_path = Path(tmp) / "server.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "whatsease"], cwd=ROOT, env=env,
                                       stdout=subprocess.DEVNULL, stderr=log)
        try:
            deadline = time.monotonic() + SERVER_START_SECS
            while True:
                if process.poll() is not None:
                    raise SystemExit("the server exited:\n" + log_path.read_text()[-2000:])
                with contextlib.suppress(OSError, http.client.HTTPException):
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    conn.request("GET", "/readyz")
                    if conn.getresponse().status == 200:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit("the server was not ready in time")
                time.sleep(0.2)
            yield port
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def webhook(number: str, text: str) -> tuple[bytes, str]:
    """A signed WhatsApp text-message webhook body, and its X-Hub-Signature-256."""
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398",
               "changes": [{"field": "messages", "value": {
                   "messaging_product": "whatsapp",
                   "metadata": {"display_phone_number": "15550783881",
                                "phone_number_id": PHONE_NUMBER_ID},
                   "contacts": [{"profile": {"name": "Load Test"}, "wa_id": number}],
                   "messages": [{"from": number, "id": "wamid." + secrets.token_hex(16),
                                 "timestamp": str(int(time.time())), "type": "text",
                                 "text": {"body": text}}]}}]}]}
    body = orjson.dumps(payload)
    return body, "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()


class Sender:
    """Keep-alive connections, one per client thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.local = threading.local()

    def post(self, body: bytes, signature: str) -> tuple[int, float]:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                                timeout=30)
        started = time.perf_counter()
        try:
            conn.request("POST", "/channels/whatsapp/webhook", body=body, headers={
                "Content-Type": "application/json", "X-Hub-Signature-256": signature})
            response = conn.getresponse()
            response.read()
            return response.status, time.perf_counter() - started
        except (OSError, http.client.HTTPException):
            conn.close()
            self.local.conn = None
            return 0, time.perf_counter() - started


def run_step(sender: Sender, graph: FakeGraphAPI, rate: int, seconds: float,
             duplicate_share: float, step: int) -> dict[str, object]:
    count = max(1, int(rate * seconds))
    numbers = [f"4917{step:02d}{i:07d}" for i in range(min(SENDERS_PER_STEP, count))]
    plan = [(numbers[i % len(numbers)], f"hello {i}") for i in range(count)]
    sent_at: dict[str, list[float]] = defaultdict(list)
    latencies: list[float] = []
    statuses: dict[int, int] = defaultdict(int)
    lock = threading.Lock()
    redeliveries = 0

    def one(number: str, text: str, at: float, again: bool) -> None:
        body, signature = webhook(number, text)
        delay = at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        with lock:
            sent_at[number].append(time.monotonic())
        status, seconds_taken = sender.post(body, signature)
        if again:     # Meta retries: the same body, the same signature
            sender.post(body, signature)
        with lock:
            statuses[status] += 1
            latencies.append(seconds_taken)

    start = time.monotonic() + 0.2
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        for i, (number, text) in enumerate(plan):
            again = (i * duplicate_share) % 1 + duplicate_share >= 1 and duplicate_share > 0
            redeliveries += again
            pool.submit(one, number, text, start + i / rate, again)
    elapsed = time.monotonic() - start
    expected = {n: len(times) for n, times in sent_at.items()}
    prefix = f"4917{step:02d}"

    def replies() -> dict[str, list[Recorded]]:
        found: dict[str, list[Recorded]] = defaultdict(list)
        for r in graph.matching(lambda r: isinstance(r.body, dict)
                                and str(r.body.get("to", "")).startswith(prefix)
                                and r.body.get("type") == "text"):
            found[r.body["to"]].append(r)
        return found

    deadline = time.monotonic() + DRAIN_SECS
    while time.monotonic() < deadline:
        got = replies()
        if all(len(got.get(n, [])) >= k for n, k in expected.items()):
            break
        time.sleep(0.2)
    time.sleep(1.0)   # anything answered twice would arrive now
    got = replies()
    lost = sum(max(0, k - len(got.get(n, []))) for n, k in expected.items())
    twice = sum(max(0, len(got.get(n, [])) - k) for n, k in expected.items())
    end_to_end = [r.at - sent for n, times in sent_at.items()
                  for sent, r in zip(sorted(times), sorted(got.get(n, []), key=lambda r: r.at),
                                     strict=False)]
    accepted = statuses.get(200, 0)
    return {"rate": rate, "sent": count, "redelivered": redeliveries,
            "accepted_per_s": accepted / elapsed if elapsed else 0.0,
            "non_200": sum(v for k, v in statuses.items() if k != 200),
            "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000,
            "e2e_p50_ms": percentile(end_to_end, 50) * 1000,
            "e2e_p99_ms": percentile(end_to_end, 99) * 1000, "lost": lost, "twice": twice}


def server_metrics(port: int) -> dict[str, float]:
    """The server's channel metrics that explain a step: Graph API calls and their mean time."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("whatsease_channel_api_seconds_") and 'channel="whatsapp_cloud"' in line:
            name, value = line.rsplit(" ", 1)
            kind = name.split("{")[0].rsplit("_", 1)[1]
            operation = name.split('operation="')[1].split('"')[0]
            if kind in ("sum", "count"):
                found[f"{operation}_{kind}"] = float(value)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="50,100,200",
                        help="webhooks per second, one step each (default 50,100,200)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each step")
    parser.add_argument("--duplicates", type=float, default=0.05,
                        help="share of webhooks delivered twice (default 0.05)")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    if not rates or any(not 1 <= r <= MAX_RATE for r in rates):
        raise SystemExit(f"--rates must be between 1 and {MAX_RATE}")
    if not 0 < args.seconds <= MAX_SECONDS or not 0 <= args.duplicates <= 1:
        raise SystemExit(f"--seconds must be in (0, {MAX_SECONDS}], --duplicates in [0, 1]")
    graph = FakeGraphAPI().start()
    try:
        with own_server(graph.graph_url) as port:
            sender = Sender(port)
            sender.post(*webhook("491700000000", "warm up"))
            print(f"{'rate/s':>7} {'sent':>6} {'dup':>5} {'accepted/s':>10} {'non-200':>7} "
                  f"{'p50 ms':>7} {'p99 ms':>7} {'e2e p50':>8} {'e2e p99':>8} {'lost':>5} "
                  f"{'twice':>5}")
            for step, rate in zip(itertools.count(1), rates, strict=False):
                row = run_step(sender, graph, rate, args.seconds, args.duplicates, step)
                print(f"{row['rate']:>7} {row['sent']:>6} {row['redelivered']:>5} "
                      f"{row['accepted_per_s']:>10.1f} {row['non_200']:>7} "
                      f"{row['p50_ms']:>7.1f} {row['p99_ms']:>7.1f} {row['e2e_p50_ms']:>8.1f} "
                      f"{row['e2e_p99_ms']:>8.1f} {row['lost']:>5} {row['twice']:>5}",
                      flush=True)
            calls = server_metrics(port)
            for operation in ("send", "mark_read"):
                count = calls.get(f"{operation}_count", 0.0)
                if count:
                    mean = calls[f"{operation}_sum"] / count * 1000
                    print(f"Graph API {operation}: {count:.0f} calls, mean {mean:.1f} ms")
    finally:
        graph.stop()


if __name__ == "__main__":
    main()
