"""The embedded development database: a SecantusDB server run as a child process.

SecantusDB is GPL-licensed, so it is run as its own program and spoken to over
the MongoDB wire protocol, never imported.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from whatsease.storage.guard import PR_SET_PDEATHSIG

logger = logging.getLogger(__name__)

EXECUTABLE = "secantusd-py"
START_TIMEOUT_SECS = 60.0
STOP_TIMEOUT_SECS = 10.0
GUARD = Path(__file__).with_name("guard.py")  # run as a script: standard library only


class EmbeddedDatabaseError(RuntimeError):
    """The embedded server could not be found, started or reached."""


def find_executable() -> str:
    """Locate ``secantusd-py``: on PATH, or beside the running interpreter (a venv)."""
    beside = Path(sys.executable).parent / EXECUTABLE
    if beside.exists():
        return str(beside)
    found = shutil.which(EXECUTABLE)
    if found:
        return found
    raise EmbeddedDatabaseError(
        f"{EXECUTABLE} was not found on PATH or beside {sys.executable}; "
        "install it with `pip install secantusdb`, or set WHATSEASE_MONGODB_URI."
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _load_libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


# Loaded here, in the parent: the child between fork and exec should do as
# little as it can (no dynamic loading while another thread may hold a lock).
_LIBC = _load_libc()


def _die_with_parent(parent: int) -> Callable[[], None]:
    """What the child runs between fork and exec so that it stops with ``parent``."""

    def preexec() -> None:
        # Linux sends SIGTERM to the database when the process that started
        # it dies, even by SIGKILL: it shuts down cleanly, checkpointing what
        # it acknowledged. The guard (guard.py) kills it if that wedges.
        if _LIBC is not None:
            _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # it died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def start_guard(pid: int, grace: float, log_path: Path) -> subprocess.Popen[bytes]:
    """Start guard.py for our child ``pid``: if we die and it outlives us by
    ``grace`` seconds, it is killed. The guard leaves when ``pid`` does."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-I", str(GUARD), str(pid), str(os.getpid()), str(grace)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)


class EmbeddedDatabase:
    """Start, wait for and stop a local SecantusDB server.

    Use as a context manager or call `start` and `stop`. `start` blocks until
    the server answers ``ping`` and raises `EmbeddedDatabaseError` (with the
    tail of its log) if it exits or stays silent. Call `start` from the main
    thread: the parent-death signal is tied to the thread that forks.

    If this process dies without calling `stop`, the database gets SIGTERM
    from the kernel, and a guard process kills it if it is still running
    ``orphan_grace`` seconds later.
    """

    def __init__(self, storage_path: Path | str, *, host: str = "127.0.0.1",
                 port: int | None = None, log_path: Path | str | None = None,
                 orphan_grace: float = STOP_TIMEOUT_SECS) -> None:
        self.storage_path = Path(storage_path)
        self.host = host
        self.port = port or free_port(host)
        self.log_path = Path(log_path) if log_path else self.storage_path.parent / "secantusd.log"
        self.orphan_grace = orphan_grace
        self.process: subprocess.Popen[bytes] | None = None
        self.guard: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    def start(self, timeout: float = START_TIMEOUT_SECS) -> str:
        executable = find_executable()
        self.storage_path.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [executable, "--host", self.host, "--port", str(self.port),
                 "--storage-path", str(self.storage_path), "--log-level", "WARNING",
                 # Nothing here reads an oplog (no change streams, no
                 # transactions): a standalone server writes none, and
                 # spends ~12% less CPU per message (bench/README.md).
                 "--standalone"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_die_with_parent(os.getpid()),
            )
        self._wait_until_ready(timeout)
        self._start_guard()
        logger.info("local development database (SecantusDB) started",
                    extra={"port": self.port, "storage": str(self.storage_path),
                           "pid": self.process.pid,
                           "guard_pid": self.guard.pid if self.guard else None})
        return self.uri

    def _start_guard(self) -> None:
        assert self.process is not None
        try:
            self.guard = start_guard(self.process.pid, self.orphan_grace, self.log_path)
        except OSError as exc:  # the parent-death signal still stops the database
            logger.warning("could not start the embedded database's guard: %s", exc)

    def _wait_until_ready(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        client: MongoClient[dict[str, object]] = MongoClient(
            self.uri, serverSelectionTimeoutMS=250, connectTimeoutMS=250)
        try:
            while True:
                if self.process.poll() is not None:
                    raise EmbeddedDatabaseError(
                        f"{EXECUTABLE} exited with code {self.process.returncode}:\n"
                        + self._log_tail())
                try:
                    client.admin.command("ping")
                    return
                except PyMongoError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise EmbeddedDatabaseError(
                            f"{EXECUTABLE} did not answer ping within {timeout:.0f} s:\n"
                            + self._log_tail()) from None
                    time.sleep(0.1)
        finally:
            client.close()

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = STOP_TIMEOUT_SECS) -> None:
        """Stop the server: SIGTERM to its process group, SIGKILL if it lingers."""
        try:
            self._stop_database(timeout)
        finally:
            self._stop_guard()

    def _stop_guard(self) -> None:
        guard, self.guard = self.guard, None
        if guard is None:
            return
        try:
            guard.wait(2)  # it exits when the database does
        except subprocess.TimeoutExpired:
            guard.kill()
            guard.wait()

    def _stop_database(self, timeout: float) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("embedded database ignored SIGTERM; killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)
        logger.info("local development database stopped")

    def __enter__(self) -> EmbeddedDatabase:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
