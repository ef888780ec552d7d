"""Idle memory of a fresh server, and how soon after start-up the assistant first answers.

Starts ``python -m whatsease`` on 127.0.0.1 with its embedded database in a
temporary folder, reads the server's RSS once it is ready (nobody has asked the
assistant anything), registers a user, asks the bot a question the words cannot
place (so the sentence reader is needed) and times the reply from the moment
the process was started; then waits for the reader and reads the RSS again.
Stops what it started.

    python bench/idle_memory.py
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "are your doors shut on bank holidays"
BOT = "bot:whatsease"
TIMEOUT_SECS = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def call(port: int, method: str, path: str, body: dict[str, Any] | None = None,
         token: str = "") -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json",
                 **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(request, timeout=30) as res:
        return json.loads(res.read() or b"null")


def wait(probe: Any, what: str) -> Any:
    deadline = time.monotonic() + TIMEOUT_SECS
    while time.monotonic() < deadline:
        try:
            result = probe()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.02)
    raise SystemExit(f"timed out waiting for {what}")


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="idle_memory-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHATSEASE_")}
    env.update(WHATSEASE_HOST="127.0.0.1", WHATSEASE_PORT=str(port),
               WHATSEASE_DATA_DIR=str(workdir), WHATSEASE_LOG_LEVEL="INFO",
               WHATSEASE_DEMO_USERS="false", WHATSEASE_BCRYPT_ROUNDS="4",
               PYTHONPATH=str(ROOT))
    log_path = workdir / "server.log"
    started = time.monotonic()
    with open(log_path, "wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "whatsease"], cwd=ROOT, env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        wait(lambda: call(port, "GET", "/readyz") is not None, "the server to be ready")
        ready_at = time.monotonic() - started
        time.sleep(2.0)  # settle: background start-up work done
        idle = rss_mib(server.pid)
        user = call(port, "POST", "/api/v1/auth/register",
                    {"email": "idle@example.com", "name": "Idle", "password": "idle password 1"})
        token = user["access_token"]
        asked = time.monotonic()
        sent = call(port, "POST", "/api/v1/messages", {"recipient": BOT, "content": QUESTION},
                    token)["message"]

        def reply() -> dict[str, Any] | None:
            page = call(port, "GET", f"/api/v1/messages?with={BOT}&limit=5", token=token)
            later = [m for m in page["messages"]
                     if m["sender"] == BOT and m["message_id"] > sent["message_id"]]
            return later[-1] if later else None

        answer = wait(reply, "the bot's answer")
        answered = time.monotonic()
        wait(lambda: "the sentence reader is ready" in log_path.read_text(errors="replace")
             or None, "the sentence reader")
        loaded = time.monotonic()
        time.sleep(1.0)
        print(f"ready after start-up        {ready_at:6.2f} s")
        print(f"RSS idle (nobody asked)     {idle:6.1f} MiB")
        print(f"first answer after start-up {answered - started:6.2f} s "
              f"({answered - asked:.2f} s after the question): {answer['content'][:60]!r}")
        print(f"reader ready after question {loaded - asked:6.2f} s")
        print(f"RSS with the reader         {rss_mib(server.pid):6.1f} MiB")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
