"""Idle memory of a fresh server, and how soon after start-up the assistant first answers.

Starts ``python -m whatsease`` on 127.0.0.1 with its embedded database in a
temporary folder three times, on the same data dir:

1. a fresh data dir: the time from starting the process to ``/readyz``, the
   server's RSS once it has settled (nobody has asked the assistant anything),
   then a user registers and asks the bot a question the words cannot place
   (so the sentence reader is needed): the time to the answer, to the reader,
   and the RSS with it;
2. a restart: the same user asks that question the moment ``/readyz`` answers;
   the answer's time from the question and from the process start;
3. another restart: a question the words place on their own, asked the same way.

The process start includes the embedded database's (``python -m whatsease``
starts it before it can answer); a production server connects to a running
MongoDB, as the server does here with ``--external-db`` (a SecantusDB started
by this script first, not timed). Stops what it started.

    python bench/idle_memory.py [--server-root DIR] [--external-db]

``--server-root`` runs another checkout's server (``/work/main``) with this
interpreter.
"""

from __future__ import annotations

import argparse
import contextlib
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
WORDS_QUESTION = "hi, what can you do?"
BOT = "bot:whatsease"
TIMEOUT_SECS = 120.0
# How often /readyz and the conversation are polled: the resolution of the times.
POLL_SECS = 0.01
SETTLE_SECS = 2.0


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
        time.sleep(POLL_SECS)
    raise SystemExit(f"timed out waiting for {what}")


class Server:
    """One ``python -m whatsease`` process on ``workdir``, stopped on exit."""

    def __init__(self, root: Path, workdir: Path, mongodb_uri: str = "") -> None:
        self.port = free_port()
        self.log_path = workdir / f"server-{self.port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("WHATSEASE_")}
        env.update(WHATSEASE_HOST="127.0.0.1", WHATSEASE_PORT=str(self.port),
                   WHATSEASE_DATA_DIR=str(workdir), WHATSEASE_LOG_LEVEL="INFO",
                   WHATSEASE_DEMO_USERS="false", WHATSEASE_BCRYPT_ROUNDS="4",
                   PYTHONPATH=str(root))
        if mongodb_uri:
            env.update(WHATSEASE_MONGODB_URI=mongodb_uri, WHATSEASE_DB_NAME="idle_memory")
        self.started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "whatsease"], cwd=root,
                                            env=env, stdout=log, stderr=subprocess.STDOUT)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def wait_ready(self) -> float:
        """Seconds from the process start to the first ready answer."""
        wait(lambda: call(self.port, "GET", "/readyz") is not None, "the server to be ready")
        return time.monotonic() - self.started

    def ask(self, token: str, question: str) -> tuple[float, float, str]:
        """Ask the bot; (seconds from the question, from the process start, the answer)."""
        asked = time.monotonic()
        sent = call(self.port, "POST", "/api/v1/messages",
                    {"recipient": BOT, "content": question}, token)["message"]

        def reply() -> dict[str, Any] | None:
            page = call(self.port, "GET", f"/api/v1/messages?with={BOT}&limit=5", token=token)
            later = [m for m in page["messages"]
                     if m["sender"] == BOT and m["message_id"] > sent["message_id"]]
            return later[-1] if later else None

        answer = wait(reply, "the bot's answer")
        answered = time.monotonic()
        return answered - asked, answered - self.started, str(answer["content"])

    def wait_reader(self) -> float:
        wait(lambda: "the sentence reader is ready" in self.log_path.read_text(errors="replace")
             or None, "the sentence reader")
        return time.monotonic()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-root", type=Path, default=ROOT,
                        help="the checkout whose server runs (default: this one)")
    parser.add_argument("--external-db", action="store_true",
                        help="start a SecantusDB first and have the server connect to it "
                             "(WHATSEASE_MONGODB_URI), as in production")
    args = parser.parse_args(argv)
    root = args.server_root.resolve()
    workdir = Path(tempfile.mkdtemp(prefix="idle_memory-"))
    print(f"server {root}, data {workdir}"
          + (", an external database" if args.external_db else ""))
    with contextlib.ExitStack() as stack:
        uri = ""
        if args.external_db:
            sys.path.insert(0, str(ROOT))
            from whatsease.storage.launcher import EmbeddedDatabase

            uri = stack.enter_context(EmbeddedDatabase(
                workdir / "external-db", log_path=workdir / "external-db.log")).uri
        measure(root, workdir, uri)
    return 0


def measure(root: Path, workdir: Path, uri: str) -> None:
    with Server(root, workdir, uri) as server:
        ready_at = server.wait_ready()
        time.sleep(SETTLE_SECS)  # background start-up work done
        idle = rss_mib(server.process.pid)
        user = call(server.port, "POST", "/api/v1/auth/register",
                    {"email": "idle@example.com", "name": "Idle",
                     "password": "idle password 1"})
        token = user["access_token"]
        took, _, answer = server.ask(token, QUESTION)
        asked = time.monotonic() - took
        loaded = server.wait_reader()
        time.sleep(1.0)
        print(f"fresh data dir: ready after start-up      {ready_at:6.2f} s")
        print(f"RSS idle (nobody asked, {SETTLE_SECS:.0f} s later)     {idle:6.1f} MiB")
        print(f"first answer after the question          {took:6.2f} s: {answer[:50]!r}")
        print(f"reader ready after the question          {loaded - asked:6.2f} s")
        print(f"RSS with the reader                      "
              f"{rss_mib(server.process.pid):6.1f} MiB")

    for label, question in (("needs the reader", QUESTION), ("words place it", WORDS_QUESTION)):
        with Server(root, workdir, uri) as server:
            ready_at = server.wait_ready()
            took, since_start, answer = server.ask(token, question)
            print(f"restart: ready after start-up             {ready_at:6.2f} s")
            print(f"  asked at ready ({label}): answer {took:.2f} s after the question, "
                  f"{since_start:.2f} s after start-up: {answer[:50]!r}")


if __name__ == "__main__":
    raise SystemExit(main())
