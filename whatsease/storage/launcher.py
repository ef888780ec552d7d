"""The embedded development database: a SecantusDB server run as a child process.

SecantusDB is GPL-licensed, so it is run as its own program and spoken to over
the MongoDB wire protocol, never imported.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from whatsease.storage.guard import PR_SET_PDEATHSIG

if TYPE_CHECKING:
    from pymongo import MongoClient

logger = logging.getLogger(__name__)

EXECUTABLE = "secantusd-py"
START_TIMEOUT_SECS = 60.0
# How often a starting database is probed: its port is tried (a connect is
# cheap) before it is pinged, so it is known to answer within this time.
READY_POLL_SECS = 0.02
STOP_TIMEOUT_SECS = 10.0
# A database left by a server that was killed shuts down by itself (the kernel
# sends it SIGTERM) or is killed by its guard ``orphan_grace`` seconds later;
# a new start waits this much longer than that before stopping it itself.
ORPHAN_EXTRA_WAIT_SECS = 5.0
GUARD = Path(__file__).with_name("guard.py")  # run as a script: standard library only


class EmbeddedDatabaseError(RuntimeError):
    """The embedded server could not be found, started or reached."""


def state_path(storage_path: Path | str) -> Path:
    """The file beside the data dir that names the running database (pid, port, owner)."""
    path = Path(storage_path)
    return path.with_name(path.name + ".server.json")


def read_state(storage_path: Path | str) -> dict[str, object] | None:
    """The running database's state file, or None if there is none or it is unreadable."""
    try:
        state = json.loads(state_path(storage_path).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def running_database_uri(storage_path: Path | str) -> str | None:
    """The URI of the database a running server started on ``storage_path``, or None.

    Lets operator commands (``python -m whatsease org``) share the data dir with
    a running server instead of failing on its lock.
    """
    state = read_state(storage_path)
    if state is None:
        return None
    pid, uri = state.get("pid"), state.get("uri")
    if not isinstance(pid, int) or not isinstance(uri, str):
        return None
    if not _pid_alive(pid) or not _is_database_of(pid, Path(storage_path)):
        return None
    return uri


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] not in (["Z"], ["X"])


def _is_database_of(pid: int, storage_path: Path) -> bool:
    """True if ``pid`` is a SecantusDB server on ``storage_path`` (not a reused pid)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return (any(arg.endswith(EXECUTABLE.encode()) or EXECUTABLE.encode() in arg for arg in argv)
            and str(storage_path).encode() in argv)


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


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


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
    thread: the parent-death signal is tied to the thread that forks (the
    supervisor's thread calls `restart`, and lives as long as what it started).

    If this process dies without calling `stop`, the database gets SIGTERM
    from the kernel, and a guard process kills it if it is still running
    ``orphan_grace`` seconds later.
    """

    def __init__(self, storage_path: Path | str, *, host: str = "127.0.0.1",
                 port: int | None = None, log_path: Path | str | None = None,
                 orphan_grace: float = STOP_TIMEOUT_SECS, journal: bool = True) -> None:
        self.storage_path = Path(storage_path)
        self.host = host
        self.port = port or free_port(host)
        self.log_path = Path(log_path) if log_path else self.storage_path.parent / "secantusd.log"
        self.orphan_grace = orphan_grace
        self.journal = journal
        self.process: subprocess.Popen[bytes] | None = None
        self.guard: subprocess.Popen[bytes] | None = None
        # Held while the process is replaced or stopped (the supervisor's thread
        # restarts it; the main thread stops it).
        self._lock = threading.RLock()
        self._stopping = threading.Event()

    @property
    def uri(self) -> str:
        # journal=true: a write is acknowledged once it is in the journal on
        # disk. Without it SecantusDB syncs its journal about once a second,
        # and a database killed with SIGKILL loses the writes it acknowledged
        # in that second; with it each write or batch costs a few ms more
        # (bench/README.md).
        journal = "&journal=true" if self.journal else ""
        return f"mongodb://{self.host}:{self.port}/?directConnection=true{journal}"

    def start(self, timeout: float = START_TIMEOUT_SECS) -> str:
        """Start the server and wait until it answers; returns its URI.

        `spawn` then `wait_ready`: a database left running on the same data
        dir by a server that was killed is waited for first (see
        `wait_for_previous`). Raises `EmbeddedDatabaseError` if the server
        cannot be started or reached.
        """
        self.spawn()
        return self.wait_ready(timeout)

    def spawn(self) -> None:
        """Start the server's process and return at once, without waiting for it.

        The database takes about half a second to answer (its own imports and
        storage): the caller can do its own start-up meanwhile, then call
        `wait_ready`. A database left running on the same data dir by a server
        that was killed is waited for first (see `wait_for_previous`). Raises
        `EmbeddedDatabaseError` if the executable is missing or the data dir
        is in use.
        """
        executable = find_executable()
        self.storage_path.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._stopping.clear()
        self.wait_for_previous()
        with self._lock:
            self._spawn(executable)

    def wait_ready(self, timeout: float = START_TIMEOUT_SECS) -> str:
        """Wait until the server `spawn` started answers; returns its URI.

        Raises `EmbeddedDatabaseError` (with the tail of its log) if it exits,
        stays silent for ``timeout`` seconds, or `stop` was called meanwhile.
        """
        with self._lock:
            if self.process is None:
                raise EmbeddedDatabaseError("the embedded database was stopped while starting")
            self._wait_until_ready(timeout)
            self._start_guard()
            self._write_state()
            assert self.process is not None
            pid = self.process.pid
        logger.info("local development database (SecantusDB) started",
                    extra={"port": self.port, "storage": str(self.storage_path),
                           "pid": pid, "guard_pid": self.guard.pid if self.guard else None})
        return self.uri

    def restart(self, timeout: float = START_TIMEOUT_SECS) -> None:
        """Start the server again on the same port and data dir after it exited.

        The old process is reaped and its guard stopped first. Raises
        `EmbeddedDatabaseError` if the new one does not answer, or if `stop`
        was called meanwhile.
        """
        executable = find_executable()
        with self._lock:
            if self._stopping.is_set():
                raise EmbeddedDatabaseError("the embedded database is being stopped")
            if self.process is not None and self.process.poll() is None:
                raise EmbeddedDatabaseError("the embedded database is still running")
            self._stop_guard()
            self._spawn(executable)
            self._wait_until_ready(timeout)
            self._start_guard()
            self._write_state()

    def exit_code(self) -> int | None:
        """The exit status of a server that exited (reaping it), or None while it runs.

        A negative status is the signal that ended it.
        """
        with self._lock:
            process = self.process
            return None if process is None else process.poll()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def wait_for_previous(self, timeout: float | None = None) -> None:
        """Wait for a database left on this data dir by a server that died.

        After ``kill -9`` of the server, its database is still shutting down
        (checkpointing) and holds the data dir's lock; a new one started then
        exits at once. This waits for it, up to ``timeout`` seconds (by default
        the guard's grace plus a margin), then stops it with SIGTERM and
        SIGKILL. Raises `EmbeddedDatabaseError` if the data dir belongs to a
        server that is still running.
        """
        state = read_state(self.storage_path)
        if state is None:
            return
        pid, owner = state.get("pid"), state.get("owner")
        if not isinstance(pid, int) or not _pid_alive(pid) \
                or not _is_database_of(pid, self.storage_path):
            return
        if isinstance(owner, int) and owner != os.getpid() and _pid_alive(owner):
            raise EmbeddedDatabaseError(
                f"the data dir {self.storage_path} is in use by the database (pid {pid}) of a "
                f"running server (pid {owner}); stop it first, or use another "
                "WHATSEASE_DATA_DIR")
        wait = self.orphan_grace + ORPHAN_EXTRA_WAIT_SECS if timeout is None else timeout
        logger.warning("the database (pid %d) of a server that stopped without stopping it "
                       "still holds %s; waiting up to %.0f s for it to exit",
                       pid, self.storage_path, wait)
        started = time.monotonic()
        if _wait_gone(pid, wait):
            logger.warning("the previous database (pid %d) exited after %.1f s; starting",
                           pid, time.monotonic() - started)
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            logger.warning("the previous database (pid %d) is still running; sending %s",
                           pid, sig.name)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            if _wait_gone(pid, STOP_TIMEOUT_SECS):
                return
        raise EmbeddedDatabaseError(f"the previous database (pid {pid}) on "
                                    f"{self.storage_path} would not stop")

    def _write_state(self) -> None:
        assert self.process is not None
        path = state_path(self.storage_path)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({
            "pid": self.process.pid, "host": self.host, "port": self.port, "uri": self.uri,
            "owner": os.getpid()}))
        temporary.replace(path)

    def _remove_state(self) -> None:
        state = read_state(self.storage_path)
        if state is not None and state.get("owner") == os.getpid():
            with contextlib.suppress(OSError):
                state_path(self.storage_path).unlink()

    def _spawn(self, executable: str) -> None:
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

    def _start_guard(self) -> None:
        assert self.process is not None
        try:
            self.guard = start_guard(self.process.pid, self.orphan_grace, self.log_path)
        except OSError as exc:  # the parent-death signal still stops the database
            logger.warning("could not start the embedded database's guard: %s", exc)

    def _wait_until_ready(self, timeout: float) -> None:
        # Imported here: the server spawns its database before its own imports.
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        assert self.process is not None
        deadline = time.monotonic() + timeout
        client: MongoClient[dict[str, object]] | None = None
        try:
            while True:
                if self.process.poll() is not None:
                    raise EmbeddedDatabaseError(
                        f"{EXECUTABLE} exited with code {self.process.returncode}:\n"
                        + self._log_tail())
                try:
                    # A refused connection costs a client its whole server
                    # selection time: ping only once the port accepts.
                    if client is None and self._accepts():
                        client = MongoClient(self.uri, serverSelectionTimeoutMS=250,
                                             connectTimeoutMS=250)
                    if client is not None:
                        client.admin.command("ping")
                        return
                except PyMongoError:
                    pass
                if self._stopping.is_set():
                    self._stop_database(STOP_TIMEOUT_SECS)
                    raise EmbeddedDatabaseError("stopped while starting") from None
                if time.monotonic() > deadline:
                    self._stop_database(STOP_TIMEOUT_SECS)
                    raise EmbeddedDatabaseError(
                        f"{EXECUTABLE} did not answer ping within {timeout:.0f} s:\n"
                        + self._log_tail()) from None
                time.sleep(READY_POLL_SECS)
        finally:
            if client is not None:
                client.close()

    def _accepts(self) -> bool:
        """Whether the database's port accepts a connection yet."""
        try:
            with socket.create_connection((self.host, self.port), timeout=READY_POLL_SECS):
                return True
        except OSError:
            return False

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = STOP_TIMEOUT_SECS) -> None:
        """Stop the server: SIGTERM to its process group, SIGKILL if it lingers."""
        self._stopping.set()
        with self._lock:
            try:
                self._stop_database(timeout)
            finally:
                self._stop_guard()
                self._remove_state()

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
