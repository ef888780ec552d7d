"""The embedded database's supervisor: reaps, restarts on the same port, or gives up loudly."""

from __future__ import annotations

import logging
import os
import signal
import socket
from pathlib import Path

import pytest
from pymongo import MongoClient

from tests.support import wait_for
from whatsease.storage.launcher import EmbeddedDatabase
from whatsease.storage.supervisor import Supervisor


def _client(uri: str) -> MongoClient[dict[str, object]]:
    return MongoClient(uri, serverSelectionTimeoutMS=20000)


def _reaped(pid: int) -> bool:
    """Gone from the process table: neither running nor a `<defunct>` zombie."""
    return not Path(f"/proc/{pid}").exists()


def test_a_killed_database_is_reaped_and_restarted_on_the_same_port(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "whatsease.storage.supervisor")
    database = EmbeddedDatabase(tmp_path / "db", log_path=tmp_path / "db.log")
    database.start()
    supervisor = Supervisor(database, restarts=3, first_backoff=0.1).start()
    client = _client(database.uri)
    try:
        client.t.kept.insert_one({"_id": 1})
        assert database.process is not None
        old = database.process.pid
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: supervisor.restarted == 1, timeout=30, what="a restart")
        assert _reaped(old)
        assert database.process is not None and database.process.pid != old
        # The same client, on the same port, reconnects by itself and finds the data.
        assert client.t.kept.find_one({"_id": 1}) == {"_id": 1}
        assert supervisor.failure is None
        said = caplog.text
        assert "killed by SIGKILL" in said and "is back on port" in said
    finally:
        client.close()
        supervisor.stop()
        database.stop()


def test_a_database_that_cannot_come_back_is_given_up_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    database = EmbeddedDatabase(tmp_path / "db", log_path=tmp_path / "db.log")
    database.start()
    supervisor = Supervisor(database, restarts=2, first_backoff=0.1).start()
    squatter = socket.socket()
    try:
        assert database.process is not None
        pid = database.process.pid
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: _reaped(pid), timeout=10, what="the dead database reaped")
        # Someone else takes the port: every restart fails.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((database.host, database.port))
        squatter.listen()
        wait_for(lambda: supervisor.failure, timeout=60, what="the supervisor to give up")
        assert "could not be restarted (restarts in a row: 2)" in (supervisor.failure or "")
        assert "did not come back (attempt 2 of 2)" in caplog.text
        assert supervisor.restarted == 0
    finally:
        squatter.close()
        supervisor.stop()
        database.stop()


def test_stop_ends_supervision_without_a_restart(tmp_path: Path) -> None:
    database = EmbeddedDatabase(tmp_path / "db", log_path=tmp_path / "db.log")
    database.start()
    supervisor = Supervisor(database, restarts=3, first_backoff=0.1).start()
    supervisor.stop()
    database.stop()
    assert database.process is None
    assert supervisor.restarted == 0 and supervisor.failure is None
