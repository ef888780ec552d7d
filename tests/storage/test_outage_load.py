"""kill -9 of the embedded database under REST and WebSocket load.

While it is down, requests answer 503 (never 500) and sockets are not told
their token is bad (no 4001); the supervisor restarts it and the same server
carries on; every message that got a 201 or an ``ack`` is in the database
afterwards, exactly once. Bounded (about 15 s of load), 127.0.0.1 only.
Run with ``-s`` to see the figures (recorded in bench/README.md).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
import websocket
from pymongo import MongoClient

from tests import support
from tests.support import ServerThread, User, register, wait_for
from whatsease.storage.launcher import EmbeddedDatabase
from whatsease.storage.supervisor import Supervisor

REST_WORKERS = 3
WS_WORKERS = 2
LOAD_BEFORE_SECS = 3.0
LOAD_AFTER_SECS = 3.0
OUTAGE_SECS = 3.0  # the supervisor's wait before it restarts the killed database
RETRY_SECS = 0.2  # a worker's pause after a 503 before sending the same message again
FRAME_WAIT_SECS = 10.0
WS_4001_UNAUTHENTICATED = 4001
WS_1013_TRY_AGAIN_LATER = 1013


@dataclass
class Tally:
    """What the workers saw; appended to from several threads (list.append is atomic)."""

    statuses: Counter[int] = field(default_factory=Counter)
    acknowledged: list[tuple[str, str]] = field(default_factory=list)  # (sender, client_id)
    ws_errors: Counter[str] = field(default_factory=Counter)
    ws_closes: Counter[int] = field(default_factory=Counter)
    slowest_503: float = 0.0
    first_503: float | None = None
    first_ok_after: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def saw(self, status: int, elapsed: float) -> None:
        with self.lock:
            self.statuses[status] += 1
            if status == 503:
                self.slowest_503 = max(self.slowest_503, elapsed)
                if self.first_503 is None:
                    self.first_503 = time.monotonic()
            elif status in (200, 201) and self.first_503 is not None \
                    and self.first_ok_after is None:
                self.first_ok_after = time.monotonic()


def _rest_worker(server: ServerThread, sender: User, recipient: User, name: str,
                 stop: threading.Event, tally: Tally) -> None:
    count = 0
    while not stop.is_set():
        client_id = f"{name}-{count}"
        while not stop.is_set():  # the same client_id until it is stored
            started = time.monotonic()
            try:
                res = sender.client.post("/api/v1/messages", {
                    "recipient": recipient.email, "content": f"rest {client_id}",
                    "client_id": client_id})
            except OSError:
                tally.saw(0, 0.0)
                time.sleep(RETRY_SECS)
                continue
            tally.saw(res.status, time.monotonic() - started)
            if res.status == 201:
                tally.acknowledged.append((sender.email, client_id))
                break
            time.sleep(RETRY_SECS)
        count += 1


def _connect(server: ServerThread, user: User) -> websocket.WebSocket:
    ws = websocket.create_connection(server.ws_url, timeout=FRAME_WAIT_SECS)
    ws.send(orjson.dumps({"type": "auth", "token": user.access_token}).decode())
    return ws


def _ws_worker(server: ServerThread, sender: User, recipient: User, name: str,
               stop: threading.Event, tally: Tally) -> None:
    ws: websocket.WebSocket | None = None
    count = 0
    try:
        while not stop.is_set():
            client_id = f"{name}-{count}"
            if ws is None:
                ws = _connect(server, sender)
            ws.send(orjson.dumps({"type": "send", "client_id": client_id,
                                  "recipient": recipient.email,
                                  "content": f"ws {client_id}"}).decode())
            outcome = ""
            deadline = time.monotonic() + FRAME_WAIT_SECS
            while not outcome and time.monotonic() < deadline:
                opcode, data = ws.recv_data(control_frame=True)
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
                    tally.ws_closes[code] += 1
                    outcome = "closed"
                    break
                if opcode != websocket.ABNF.OPCODE_TEXT:
                    continue
                frame = orjson.loads(data)
                if frame["type"] == "ack" and frame["client_id"] == client_id:
                    tally.acknowledged.append((sender.email, client_id))
                    outcome = "ack"
                elif frame["type"] == "error" and frame.get("ref") == client_id:
                    tally.ws_errors[frame["code"]] += 1
                    outcome = "error"
            if outcome == "ack":
                count += 1
                continue
            if outcome == "closed" or not outcome:
                ws.close()
                ws = None
            time.sleep(RETRY_SECS)  # then the same client_id again
    finally:
        if ws is not None:
            ws.close()


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[tuple[EmbeddedDatabase, Supervisor]]:
    database = EmbeddedDatabase(tmp_path / "db", log_path=tmp_path / "db.log")
    database.start()
    # Down for at least OUTAGE_SECS: longer than a request's server selection
    # (db_timeout) and pymongo's one retry of a write together, so requests sent
    # meanwhile cannot ride the outage out and must be answered 503.
    supervisor = Supervisor(database, restarts=3, first_backoff=OUTAGE_SECS).start()
    try:
        yield database, supervisor
    finally:
        supervisor.stop()
        database.stop()


def test_kill_9_of_the_database_under_load_loses_nothing_acknowledged(
        supervised: tuple[EmbeddedDatabase, Supervisor]) -> None:
    database, supervisor = supervised
    config = support.test_config(db_timeout=1.0, ws_send_rate=1000.0, ws_send_burst=1000)
    server = ServerThread(config, database.uri).start()
    stop = threading.Event()
    tally = Tally()
    threads: list[threading.Thread] = []
    try:
        for kind, workers, target in (("rest", REST_WORKERS, _rest_worker),
                                      ("ws", WS_WORKERS, _ws_worker)):
            for n in range(workers):
                sender, recipient = register(server.port, f"{kind}s"), register(
                    server.port, f"{kind}r")
                threads.append(threading.Thread(
                    target=target, args=(server, sender, recipient, f"{kind}{n}", stop, tally),
                    daemon=True))
        for thread in threads:
            thread.start()
        time.sleep(LOAD_BEFORE_SECS)
        before = len(tally.acknowledged)
        assert database.process is not None
        killed_at = time.monotonic()
        os.kill(database.process.pid, signal.SIGKILL)
        wait_for(lambda: supervisor.restarted == 1, timeout=120, what="the database restarted")
        restarted_after = time.monotonic() - killed_at
        # Whichever worker stores first (a REST 201 or a WebSocket ack) shows the
        # server carries on.
        acknowledged_at_restart = len(tally.acknowledged)
        wait_for(lambda: len(tally.acknowledged) > acknowledged_at_restart, timeout=60,
                 what="a message stored after the restart")
        time.sleep(LOAD_AFTER_SECS)
    finally:
        stop.set()
        for thread in threads:
            thread.join(FRAME_WAIT_SECS + 5)
    try:
        client: MongoClient[dict[str, object]] = MongoClient(database.uri)
        stored = client[config.db_name]["messages"]
        missing = [pair for pair in tally.acknowledged
                   if stored.count_documents({"sender": pair[0], "client_id": pair[1]}) != 1]
        recovery = (tally.first_ok_after or 0) - (tally.first_503 or 0)
        print(f"\nkill -9 under load: {len(tally.acknowledged)} messages acknowledged "
              f"({before} before the kill), HTTP statuses {dict(tally.statuses)}, "
              f"WebSocket errors {dict(tally.ws_errors)}, closes {dict(tally.ws_closes)}, "
              f"slowest 503 {tally.slowest_503:.2f} s, database back after "
              f"{restarted_after:.1f} s, first 503 to first success {recovery:.1f} s, "
              f"missing {len(missing)}")
        assert not missing, missing[:5]
        assert tally.statuses[503] > 0, "the outage was not seen"
        assert tally.statuses[500] == 0 and tally.ws_errors["internal"] == 0
        assert tally.slowest_503 < 3.5
        assert tally.ws_closes[WS_4001_UNAUTHENTICATED] == 0
        assert set(tally.ws_closes) <= {WS_1013_TRY_AGAIN_LATER}, tally.ws_closes
        assert len(tally.acknowledged) > before  # it carried on without a server restart
        assert server.call(server.services.store.ping())
    finally:
        client.close()
        server.stop()
