"""The embedded SecantusDB launcher: start, answer, keep data, stop (even when it will not)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pymongo import MongoClient

from tests.support import process_alive, wait_process_gone
from whatsease.storage import launcher
from whatsease.storage.launcher import EmbeddedDatabase, EmbeddedDatabaseError


def _ping(uri: str) -> bool:
    client: MongoClient[dict[str, object]] = MongoClient(uri, serverSelectionTimeoutMS=500)
    try:
        client.admin.command("ping")
        return True
    except Exception:
        return False
    finally:
        client.close()


def test_start_answers_keeps_data_across_restarts_and_stops(tmp_path: Path) -> None:
    with EmbeddedDatabase(tmp_path / "db", log_path=tmp_path / "db.log") as database:
        assert database.uri.startswith("mongodb://127.0.0.1:")
        assert database.process is not None
        pid, port = database.process.pid, database.port
        client: MongoClient[dict[str, object]] = MongoClient(database.uri)
        client.keep.things.insert_one({"_id": "kept", "n": 1})
        client.close()
    # Stopped: the process is reaped and the port is closed.
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not _ping(f"mongodb://127.0.0.1:{port}/?directConnection=true")
    assert (tmp_path / "db").is_dir()
    with EmbeddedDatabase(tmp_path / "db", log_path=tmp_path / "db.log") as again:
        client = MongoClient(again.uri)
        assert client.keep.things.find_one({"_id": "kept"}) == {"_id": "kept", "n": 1}
        client.close()
    again.stop()  # a second stop is harmless
    EmbeddedDatabase(tmp_path / "never").stop()  # so is stopping one never started


def test_spawn_returns_at_once_and_wait_ready_gives_an_answering_uri(tmp_path: Path) -> None:
    database = EmbeddedDatabase(tmp_path / "db", log_path=tmp_path / "db.log")
    try:
        database.spawn()
        # Not waited for: neither its guard nor its state file exists before wait_ready.
        assert database.process is not None and database.guard is None
        assert launcher.read_state(tmp_path / "db") is None
        uri = database.wait_ready(timeout=60)
        assert uri == database.uri and _ping(uri)
        assert database.guard is not None
        assert launcher.running_database_uri(tmp_path / "db") == uri
    finally:
        database.stop()


def test_a_database_stopped_between_spawn_and_wait_ready_is_reported(tmp_path: Path) -> None:
    database = EmbeddedDatabase(tmp_path / "db", log_path=tmp_path / "db.log")
    database.spawn()
    assert database.process is not None
    pid = database.process.pid
    database.stop()
    with pytest.raises(EmbeddedDatabaseError, match="stopped while starting"):
        database.wait_ready(timeout=10)
    assert not process_alive(pid)


def test_a_database_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    database = EmbeddedDatabase(tmp_path / "db", log_path=tmp_path / "db.log")
    database.start()
    assert database.process is not None
    pid = database.process.pid
    os.kill(pid, signal.SIGSTOP)  # a stopped process cannot act on SIGTERM
    started = time.monotonic()
    database.stop(timeout=1)
    assert time.monotonic() - started < 5
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_port_already_taken_is_reported_with_the_log(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        database = EmbeddedDatabase(tmp_path / "db", port=port, log_path=tmp_path / "db.log")
        with pytest.raises(EmbeddedDatabaseError) as caught:
            database.start(timeout=10)
    assert "secantusd-py exited with code" in str(caught.value)
    # Nothing is left running.
    assert database.process is None or database.process.poll() is not None


def test_a_missing_executable_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(EmbeddedDatabaseError) as caught:
        launcher.find_executable()
    message = str(caught.value)
    assert "pip install secantusdb" in message and "WHATSEASE_MONGODB_URI" in message


def test_free_port_is_bindable() -> None:
    port = launcher.free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


# A server that starts, as the launcher starts the database, a process that
# ignores SIGTERM (as a wedged database does) and its guard, then waits.
STAND_IN_SERVER = """
import os, subprocess, sys, time
from pathlib import Path
from whatsease.storage import launcher
stubborn = subprocess.Popen(
    [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
     "print(flush=True); time.sleep(600)"],
    stdout=subprocess.PIPE, start_new_session=True,
    preexec_fn=launcher._die_with_parent(os.getpid()))
stubborn.stdout.readline()
guard = launcher.start_guard(stubborn.pid, 1.0, Path(sys.argv[1]) / "guard.log")
print(stubborn.pid, guard.pid, flush=True)
time.sleep(600)
"""


def test_the_guard_kills_a_wedged_database_whose_server_died(tmp_path: Path) -> None:
    server = subprocess.Popen([sys.executable, "-c", STAND_IN_SERVER, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    stubborn = guard = 0
    try:
        assert server.stdout is not None
        stubborn, guard = map(int, server.stdout.readline().split())
        server.kill()  # no handler runs: the kernel's signals and the guard are left
        server.wait()
        assert not wait_process_gone(stubborn, 0.5)  # SIGTERM alone does not stop it
        assert wait_process_gone(stubborn, 15), "orphaned database"
        assert wait_process_gone(guard, 5), "the guard outlived the database"
        assert "still running 1 s later; killed it" in (tmp_path / "guard.log").read_text()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        for pid in (stubborn, guard):
            if pid and process_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_guard_leaves_with_a_database_stopped_cleanly(tmp_path: Path) -> None:
    database = EmbeddedDatabase(tmp_path / "db", log_path=tmp_path / "db.log")
    database.start()
    assert database.guard is not None
    guard = database.guard
    assert guard.poll() is None
    database.stop()
    assert guard.returncode == 0
    assert "guard" not in (tmp_path / "db.log").read_text()


def test_without_pidfd_the_guard_says_so_and_leaves(tmp_path: Path) -> None:
    # As on a kernel before 5.3 or a system that is not Linux: only the parent-death
    # signal is left, and the guard says so in the database's log instead of failing.
    script = ("import os, runpy, sys; del os.pidfd_open; "
              f"sys.argv = ['guard.py', *sys.argv[1:]]; runpy.run_path({str(launcher.GUARD)!r}, "
              "run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", script, str(os.getpid()), str(os.getppid()),
                           "1"], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert "cannot watch the database" in done.stderr
    assert "relying on its parent-death signal" in done.stderr


# A server that starts the embedded database as `python -m whatsease` does,
# prints its pid, then waits to be killed.
SERVER_WITH_DATABASE = """
import sys, time
from pathlib import Path
from whatsease.storage.launcher import EmbeddedDatabase
root = Path(sys.argv[1])
database = EmbeddedDatabase(root / "db", log_path=root / "db.log", orphan_grace=3)
database.start()
print(database.process.pid, flush=True)
time.sleep(600)
"""


def test_a_start_after_kill_9_waits_for_the_old_database_to_let_go(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = subprocess.Popen([sys.executable, "-c", SERVER_WITH_DATABASE, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    old = 0
    try:
        assert server.stdout is not None
        old = int(server.stdout.readline())
        assert launcher.read_state(tmp_path / "db")["pid"] == old  # type: ignore[index]
        # Frozen, the old database cannot finish its shutdown when its server
        # dies: it holds the data dir's lock until its guard kills it (3 s).
        os.kill(old, signal.SIGSTOP)
        server.kill()
        server.wait()
        started = time.monotonic()
        with EmbeddedDatabase(tmp_path / "db", log_path=tmp_path / "db.log") as database:
            waited = time.monotonic() - started
            assert _ping(database.uri)
        assert not process_alive(old)
        assert waited >= 1.0
        assert f"the database (pid {old}) of a server that stopped without stopping it" \
            in caplog.text
        assert "exited after" in caplog.text
        assert launcher.read_state(tmp_path / "db") is None  # a clean stop removes it
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        if old and process_alive(old):
            os.kill(old, signal.SIGKILL)


def test_a_data_dir_in_use_by_a_running_server_is_refused(tmp_path: Path) -> None:
    server = subprocess.Popen([sys.executable, "-c", SERVER_WITH_DATABASE, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        server.stdout.readline()
        with pytest.raises(EmbeddedDatabaseError, match="in use by the database"):
            EmbeddedDatabase(tmp_path / "db", log_path=tmp_path / "db.log").start()
    finally:
        server.terminate()
        server.wait()
