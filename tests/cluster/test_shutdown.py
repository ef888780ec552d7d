"""SIGTERM stops an instance within its bound, even with sends in flight and a
database that crawls, and loses nothing it acknowledged.

The database is throttled (stopped with SIGSTOP most of the time, let run for
a moment now and then: every command answers, but each takes over a second,
below the driver's socket timeout) while a few hundred sends are queued. The
flush used to have no bound: the instance kept flushing until its orchestrator
killed it (Fly at ``kill_timeout``, the local cluster after 25 s).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from pymongo import MongoClient

from tests.cluster.conftest import FAST, connect_home, homed_user
from tests.realtime.wsclient import ClosedError
from whatsease.app import SHUTDOWN_FLUSH_SECS, STORE_CLOSE_SECS
from whatsease.cluster.local import LocalCluster

# No REST request is under way, so the requests' grace ends at once: the flush's
# bound, closing the database client, and room for a loaded machine.
EXIT_WITHIN_SECS = SHUTDOWN_FLUSH_SECS + STORE_CLOSE_SECS + 6.0
SENDERS = 30
# Per sender, under the per-socket send rate (20 a second): acknowledged before
# the database stalls, then queued behind it (a few hundred in all, many
# insert batches, each failing only after the driver's socket timeout).
BEFORE = 2
IN_FLIGHT = 19
# The throttled database: stopped this long, then running this long.
STALL_SECS = 1.5
RUN_SECS = 0.05


def _throttle(pid: int, stop: threading.Event) -> None:
    while not stop.is_set():
        os.kill(pid, signal.SIGSTOP)
        stop.wait(STALL_SECS)
        os.kill(pid, signal.SIGCONT)
        time.sleep(RUN_SECS)


@pytest.fixture
def own_database_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """One instance and a database of its own (the test stops and resumes it)."""
    with LocalCluster(tmp_path / "stop", 1, bcrypt_rounds=4, env=FAST) as running:
        yield running


def test_sigterm_with_sends_in_flight_and_a_crawling_database_exits_within_the_bound(
        own_database_cluster: LocalCluster) -> None:
    cluster = own_database_cluster
    recipient, recipient_route = homed_user(cluster, "i1", "waiting")
    # Online, so that a send needs no lookup of its recipient: it goes straight
    # to the insert queue.
    listening = connect_home(cluster, recipient, recipient_route)
    senders = [connect_home(cluster, *homed_user(cluster, "i1", "stopping"))
               for _ in range(SENDERS)]
    acked: set[str] = set()
    for ws in senders:
        for n in range(BEFORE):
            ws.send({"type": "send", "client_id": f"b{n}", "recipient": recipient.email,
                     "content": f"before {n}"})
        for _ in range(BEFORE):
            acked.add(ws.expect("ack", timeout=30)["message"]["message_id"])

    database = cluster.database
    assert database is not None and database.process is not None
    instance = cluster.instance("i1")
    time.sleep(1.1)  # a fresh second of the send rate
    throttled = threading.Event()
    throttle = threading.Thread(target=_throttle, args=(database.process.pid, throttled),
                                daemon=True)
    throttle.start()
    try:
        for ws in senders:
            for n in range(IN_FLIGHT):
                ws.send({"type": "send", "client_id": f"f{n}", "recipient": recipient.email,
                         "content": f"in flight {n}"})
        time.sleep(0.5)  # read by the server
        started = time.monotonic()
        os.kill(instance.pid, signal.SIGTERM)
        for ws in senders:
            try:
                while True:  # acks that still come are acknowledged messages too
                    acked.add(ws.expect("ack", timeout=EXIT_WITHIN_SECS)["message"]["message_id"])
            except ClosedError:
                pass
        try:
            instance.process.wait(max(0.1, EXIT_WITHIN_SECS - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            pytest.fail(f"the instance ignored SIGTERM for {EXIT_WITHIN_SECS} s")
        took = time.monotonic() - started
    finally:
        throttled.set()
        throttle.join()
    assert took < EXIT_WITHIN_SECS, took
    assert len(acked) >= SENDERS * BEFORE
    client: MongoClient[dict[str, Any]] = MongoClient(cluster.mongodb_uri)
    with client:
        stored = {str(d["_id"]) for d in client[cluster.db_name].messages.find(
            {"_id": {"$in": [ObjectId(m) for m in acked]}}, {"_id": 1})}
    assert stored == acked  # every acknowledged message is in the database
    listening.close()
