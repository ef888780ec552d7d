"""SIGTERM stores the last_seen of the users still connected, even when the database
stalls for longer than the shutdown's flush.

The database is stopped (SIGSTOP) with a message's insert waiting on it, so the
write lane is held, then the instance gets SIGTERM, and the database resumes
after `STALL_SECS`: longer than the flush's bound, well inside the whole
shutdown's. The old shutdown wrote last_seen as the sockets closed, behind the
write lane, and closed the database client before its turn came ("presence-
last-seen: flush failed: Cannot use AsyncMongoClient after close").
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from tests.cluster.conftest import FAST, connect_home, homed_user
from whatsease.app import SHUTDOWN_FLUSH_SECS, SHUTDOWN_GRACE_SECS, STORE_CLOSE_SECS
from whatsease.cluster.local import LocalCluster

# Past the flush and the client's close (what the old shutdown waited at most
# with no request under way), with room; below the grace plus the flush.
STALL_SECS = SHUTDOWN_FLUSH_SECS + STORE_CLOSE_SECS + 2.0
EXIT_WITHIN_SECS = SHUTDOWN_GRACE_SECS + SHUTDOWN_FLUSH_SECS + STORE_CLOSE_SECS + 15.0


@pytest.fixture
def own_database_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """One instance and a database of its own (the test stops and resumes it)."""
    with LocalCluster(tmp_path / "seen", 1, bcrypt_rounds=4, env=FAST) as running:
        yield running


def _last_seen(cluster: LocalCluster, email: str) -> datetime:
    client: MongoClient[dict[str, Any]] = MongoClient(cluster.mongodb_uri, tz_aware=True)
    with client:
        doc = client[cluster.db_name].users.find_one({"_id": email}, {"last_seen": 1})
    assert doc is not None
    seen: datetime = doc["last_seen"]
    return seen


def test_sigterm_stores_a_connected_user_s_last_seen_though_the_database_stalls(
        own_database_cluster: LocalCluster) -> None:
    cluster = own_database_cluster
    user, route = homed_user(cluster, "i1", "seen")
    peer, peer_route = homed_user(cluster, "i1", "peer")
    ws = connect_home(cluster, user, route)
    # Online, so that a send needs no lookup of its recipient: it goes straight
    # to the insert, which holds the write lane while the database is stopped.
    listening = connect_home(cluster, peer, peer_route)
    registered = _last_seen(cluster, user.email)
    database = cluster.database
    assert database is not None and database.process is not None
    instance = cluster.instance("i1")
    time.sleep(0.01)  # BSON keeps milliseconds: the shutdown's time is a later one
    signalled = datetime.now(UTC).replace(microsecond=0)
    os.kill(database.process.pid, signal.SIGSTOP)
    try:
        ws.send({"type": "send", "client_id": "c1", "recipient": peer.email,
                 "content": "sent while the database is stopped"})
        time.sleep(1.0)  # read by the server, its insert waiting on the database
        os.kill(instance.pid, signal.SIGTERM)
        started = time.monotonic()
        time.sleep(STALL_SECS)
    finally:
        os.kill(database.process.pid, signal.SIGCONT)
    try:
        instance.process.wait(max(0.1, EXIT_WITHIN_SECS - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        pytest.fail(f"the instance ignored SIGTERM for {EXIT_WITHIN_SECS} s")
    ws.close()
    listening.close()
    seen = _last_seen(cluster, user.email)
    assert seen > registered, (seen, registered)
    assert seen >= signalled, (seen, signalled)
    log = instance.log_path.read_text(errors="replace")
    assert "presence-last-seen" not in log and "presence update" not in log


def test_sigterm_with_the_database_stopped_throughout_still_exits_within_the_bound(
        own_database_cluster: LocalCluster) -> None:
    """The last_seen write never gets an answer: it is cut off at the bound, and the
    shutdown goes on to its end (exit code 0) instead of breaking off."""
    cluster = own_database_cluster
    user, route = homed_user(cluster, "i1", "never")
    ws = connect_home(cluster, user, route)
    database = cluster.database
    assert database is not None and database.process is not None
    instance = cluster.instance("i1")
    os.kill(database.process.pid, signal.SIGSTOP)
    try:
        os.kill(instance.pid, signal.SIGTERM)
        started = time.monotonic()
        try:
            code = instance.process.wait(EXIT_WITHIN_SECS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the instance ignored SIGTERM for {EXIT_WITHIN_SECS} s")
        took = time.monotonic() - started
    finally:
        os.kill(database.process.pid, signal.SIGCONT)
    ws.close()
    log = instance.log_path.read_text(errors="replace")
    # (Other writes cut off log their failure; the database is gone for good.)
    assert code == 0 and '"msg":"stopped"' in log, log[-3000:]
    assert "storing the users' last-seen times did not finish" in log
    assert took < EXIT_WITHIN_SECS
