"""One process of a local cluster (`whatsease.cluster.local`): where it listens, its log, its life.

Used by `LocalCluster`, the cluster tests and ``bench/cluster_load.py``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


class LocalClusterError(RuntimeError):
    """An instance or the database could not be started, or the request made no sense."""


@dataclass
class Instance:
    """One running WhatsEase process of a `LocalCluster`."""

    id: str
    port: int
    cluster_port: int
    host: str
    process: subprocess.Popen[bytes]
    log_path: Path
    data_dir: Path
    started_at: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        """Where clients reach it (its public port)."""
        return f"http://{self.host}:{self.port}"

    @property
    def internal_url(self) -> str:
        """Where its peers reach it (its cluster port): the URL in the member list."""
        return f"http://{self.host}:{self.cluster_port}"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_ready(self, timeout: float) -> None:
        """Wait until it answers ``/readyz``.

        Raises `LocalClusterError` (with the tail of its log) if it exits first
        or does not answer within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise LocalClusterError(
                    f"instance {self.id} exited with code {self.process.returncode}:\n"
                    + self.log_tail())
            # Another process may have taken the port between our choosing it and the
            # instance binding it (a busy machine): its answer is not this instance's.
            if answers_ready(f"{self.url}/readyz") and listens(self.pid, self.port) is not False:
                return
            if time.monotonic() > deadline:
                raise LocalClusterError(
                    f"instance {self.id} did not answer /readyz within "
                    f"{timeout:.0f} s:\n" + self.log_tail())
            time.sleep(0.1)

    def terminate(self, timeout: float) -> None:
        """SIGTERM it (it drains) and wait; SIGKILL it if it is still running after ``timeout``."""
        if not self.running:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.process.wait()


def answers_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:  # noqa: S310 (http, ours)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def listens(pid: int, port: int) -> bool | None:
    """Whether process ``pid`` holds the TCP socket listening on ``port``; None if ``/proc``
    cannot say (not Linux, or the process is not ours to read)."""
    inodes: set[str] = set()
    readable = False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for row in rows:
            fields = row.split()
            # local address "ADDR:PORT" in hex, state 0A is LISTEN, then the inode.
            if len(fields) > 9 and fields[3] == "0A" and \
                    int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    if not readable:
        return None
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False
