"""The server as a process: start-up, graceful shutdown, no orphaned database, restarts, logs."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import bcrypt
import orjson
import pytest

from tests import support
from tests.support import (
    Client,
    HeldPasswordChecks,
    ServerThread,
    process_alive,
    wait_for,
    wait_process_gone,
)
from whatsease.cluster.instance import listens
from whatsease.storage.launcher import free_port

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECS = 60.0
EXIT_TIMEOUT_SECS = 30.0
# The parent-death signal (SIGTERM) reaches the database at once; its clean shutdown,
# or the guard's kill 10 s later if that wedges, must end it within this.
ORPHAN_TIMEOUT_SECS = 15.0
PASSWORD = "correct horse battery staple"


class Served:
    """``python -m whatsease`` in a subprocess, its stderr (JSON log lines) kept in a file."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if not k.startswith("WHATSEASE_")}
        env.update(WHATSEASE_DATA_DIR=str(data_dir), WHATSEASE_PORT=str(self.port),
                   WHATSEASE_HOST="127.0.0.1", WHATSEASE_BCRYPT_ROUNDS="4",
                   WHATSEASE_LOG_LEVEL="INFO")
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "whatsease"], cwd=ROOT,
                                            env=env, stdout=subprocess.DEVNULL, stderr=log)
        self._wait_healthy()
        self.database_pid = self._database_pid()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECS
        while True:
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                # On a busy machine another process may have taken the port first:
                # only an answer from a socket this server holds counts.
                if Client(self.port).get("/healthz").status == 200 and \
                        listens(self.process.pid, self.port) is not False:
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, "the server never answered /healthz"
            time.sleep(0.1)

    def _database_pid(self) -> int:
        for line in self.log_path.read_text().splitlines():
            entry = orjson.loads(line) if line.startswith("{") else {}
            if "SecantusDB) started" in entry.get("msg", "") and entry.get("port"):
                pid, self.guard_pid = int(entry["pid"]), int(entry["guard_pid"])
        assert process_alive(pid)
        # It is our child, not something else's.
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        assert ppid == self.process.pid
        return pid

    def signal(self, sig: int) -> int | None:
        self.process.send_signal(sig)
        try:
            return self.process.wait(EXIT_TIMEOUT_SECS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pid in (self.database_pid, self.guard_pid):
            if process_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_sigterm_stops_cleanly_restart_keeps_data_and_sigkill_loses_nothing(
        tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "server.log"
    first = Served(data, log)
    try:
        client = Client(first.port)
        email = "restart@example.com"
        res = client.post("/api/v1/auth/register",
                          {"email": email, "name": "Restart", "password": PASSWORD})
        assert res.status == 201, res.body
        tokens = res.json
        other = client.post("/api/v1/auth/register", {"email": "peer@example.com",
                                                       "name": "Peer", "password": PASSWORD})
        me = Client(first.port, token=tokens["access_token"])
        sent = me.post("/api/v1/messages", {"recipient": "peer@example.com",
                                            "content": "still here after a restart?"})
        assert sent.status == 201
        me.get("/api/v1/messages?with=peer@example.com&limit=5")
        client.post("/api/v1/auth/refresh", {"refresh_token": tokens["refresh_token"]})
        client.post("/api/v1/auth/login", {"email": email, "password": "wrong password!"})
        assert first.signal(signal.SIGTERM) == 0
        assert wait_process_gone(first.database_pid, 1), "the database outlived a clean shutdown"
    finally:
        first.stop()

    # The log has a JSON line per request and none of the secrets that went by.
    lines = [orjson.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    requests = [e for e in lines if e.get("logger") == "whatsease.access"]
    assert {e["route"] for e in requests} >= {"/api/v1/auth/register", "/api/v1/messages",
                                              "/api/v1/auth/refresh", "/api/v1/auth/login"}
    assert all({"method", "route", "status", "ms"} <= set(e) for e in requests)
    text = log.read_text()
    for secret in (PASSWORD, "wrong password!", tokens["access_token"],
                   tokens["refresh_token"], tokens["refresh_token"].split(".")[1],
                   other.json["access_token"], (data / "jwt-secret").read_text().strip()):
        assert secret not in text
    assert "limit=5" not in text  # no query strings either

    second = Served(data, log)
    try:
        # Same data dir: same JWT secret (the old access token still verifies) and the message.
        me = Client(second.port, token=tokens["access_token"])
        history = me.get("/api/v1/messages?with=peer@example.com")
        assert history.status == 200, history.body
        assert [m["content"] for m in history.json["messages"]] == ["still here after a restart?"]
        assert second.signal(signal.SIGINT) == 0
        assert wait_process_gone(second.database_pid, 1)
    finally:
        second.stop()

    third = Served(data, log)
    try:
        me = Client(third.port, token=tokens["access_token"])
        sent = me.post("/api/v1/messages", {"recipient": "peer@example.com",
                                            "content": "and after a crash?"})
        assert sent.status == 201, sent.body
        third.process.kill()  # no handler runs: only the parent-death signal is left
        third.process.wait()
        assert wait_process_gone(third.database_pid, ORPHAN_TIMEOUT_SECS), "orphaned database"
        assert wait_process_gone(third.guard_pid, 5), "orphaned guard"
    finally:
        third.stop()

    # The database got SIGTERM from the kernel and shut down cleanly: nothing acknowledged is lost.
    fourth = Served(data, log)
    try:
        me = Client(fourth.port, token=tokens["access_token"])
        history = me.get("/api/v1/messages?with=peer@example.com")
        assert history.status == 200, history.body
        assert sorted(m["content"] for m in history.json["messages"]) == [
            "and after a crash?", "still here after a restart?"]
    finally:
        fourth.stop()


def test_shutdown_lets_requests_under_way_finish(mongo_uri: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # The login is held inside its password check until the shutdown has begun,
    # so it is certainly under way when the server starts draining, however long
    # a hash takes on a loaded machine.
    server = ServerThread(support.test_config(), mongo_uri).start()
    held = HeldPasswordChecks()
    stopping: threading.Thread | None = None
    results: list[int | str] = []

    def log_in() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        try:
            conn.request("POST", "/api/v1/auth/login",
                         body=orjson.dumps({"email": email, "password": PASSWORD}),
                         headers={"Content-Type": "application/json"})
            results.append(conn.getresponse().status)
        except OSError as exc:
            results.append(repr(exc))
        finally:
            conn.close()

    thread = threading.Thread(target=log_in)
    try:
        email = support.unique_email("inflight")
        res = Client(server.port).post("/api/v1/auth/register",
                                       {"email": email, "name": "N", "password": PASSWORD})
        assert res.status == 201
        monkeypatch.setattr(bcrypt, "checkpw", held)
        thread.start()
        assert held.entered.wait(30), "the login never reached its password check"
        stopping = threading.Thread(target=server.stop, kwargs={"grace": 60.0})
        stopping.start()
        wait_for(lambda: server.services.draining, timeout=30, what="the shutdown to begin")
        assert not results, "the login was answered before its password check ended"
    finally:
        held.release()
        if stopping is None:
            server.stop()
        else:
            stopping.join(120)
    thread.join(60)
    assert stopping is not None and not stopping.is_alive()
    assert results == [200]
    assert not held.timed_out
