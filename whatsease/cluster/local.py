"""A local cluster for development and tests: one database and N real WhatsEase processes.

`LocalCluster` starts one SecantusDB (the embedded database's launcher) and N
instances (``python -m whatsease`` subprocesses) with static membership, each
on its own public port and cluster port, all sharing the database, the JWT
secret and the cluster secret. It waits until every instance answers
``/readyz``, exposes their ids, URLs, ports and PIDs, can ``kill -9`` one,
start another, and stops everything by PID. `start_front` adds the front
(``whatsease/cluster/front.py``, a development stand-in for Fly's proxy) as
one more process, fed by a *backends file* of the running instances' public
URLs; ``python -m whatsease.cluster.local [N]`` (``scripts/cluster``) runs
all of it until SIGTERM or Ctrl-C.

Membership changes while running. Every instance gets the whole list in
``WHATSEASE_CLUSTER_MEMBERS`` at start, and the path of a *members file* in
``WHATSEASE_CLUSTER_MEMBERS_FILE``. The file holds the same ``id=url,...``
text, one member a line, and is rewritten atomically (write, then rename)
whenever `add` or `forget` changes the list; an instance that reads it at
each membership poll sees members join and leave. A member killed with
`kill` stays listed (as a crashed Fly machine stays in Fly's DNS until it is
replaced): the others take it out of the ring when its heartbeats stop.

Every process started here gets SIGTERM from the kernel if the process that
started it dies, so a test or script killed mid-run leaves nothing behind.
Used by ``scripts/cluster``, the cluster tests and ``bench/cluster_load.py``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from whatsease.cluster.instance import Instance, LocalClusterError, answers_ready
from whatsease.storage.launcher import EmbeddedDatabase, _die_with_parent, free_port

__all__ = ["Instance", "LocalCluster", "LocalClusterError"]

logger = logging.getLogger("whatsease.cluster")

READY_TIMEOUT_SECS = 60.0
# An instance drains on SIGTERM (up to 10 s for requests, 10 s more for sockets).
STOP_TIMEOUT_SECS = 25.0
# Bounded: a local cluster is for a laptop or a test, not for production.
MAX_INSTANCES = 32
MEMBERS_FILE_ENV = "WHATSEASE_CLUSTER_MEMBERS_FILE"
CLUSTER_SECRET_ENV = "WHATSEASE_CLUSTER_SECRET"  # noqa: S105 (a variable's name)
# The parent's settings that must not leak into an instance: each gets its own.
_PER_INSTANCE = ("WHATSEASE_PORT", "WHATSEASE_HOST", "WHATSEASE_DATA_DIR",
                 "WHATSEASE_CLUSTER", "WHATSEASE_CLUSTER_MEMBERS", "WHATSEASE_CLUSTER_SELF",
                 "WHATSEASE_CLUSTER_PORT", "WHATSEASE_METRICS_PORT", MEMBERS_FILE_ENV)


class LocalCluster:
    """One database and ``size`` instances on 127.0.0.1; a context manager.

    ``root`` holds the database, each instance's data dir and log
    (``<id>.log``) and the members file. ``mongodb_uri`` uses that database
    instead of starting one. ``bcrypt_rounds`` lowers the hashing cost (tests).
    ``env`` adds or overrides settings for every instance (e.g.
    ``{"WHATSEASE_BOT_SEMANTIC": "false"}``). Instance ids are ``i1``, ``i2``...
    in start order, so the one started after three is ``i4``.

    Raises `LocalClusterError` (with the tail of the instance's log) when an
    instance exits or does not answer ``/readyz`` within ``ready_timeout``.
    """

    def __init__(self, root: Path | str, size: int = 3, *, host: str = "127.0.0.1",
                 mongodb_uri: str | None = None, db_name: str = "whatsease",
                 bcrypt_rounds: int | None = None, env: Mapping[str, str] | None = None,
                 ready_timeout: float = READY_TIMEOUT_SECS,
                 jwt_secret: str | None = None, cluster_secret: str | None = None) -> None:
        if not 1 <= size <= MAX_INSTANCES:
            raise LocalClusterError(f"a local cluster has 1-{MAX_INSTANCES} instances, got {size}")
        self.root = Path(root).resolve()
        self.size = size
        self.host = host
        self.db_name = db_name
        self.bcrypt_rounds = bcrypt_rounds
        self.extra_env = dict(env or {})
        self.ready_timeout = ready_timeout
        # Every instance must verify every other's tokens and links.
        self.jwt_secret = jwt_secret or secrets.token_urlsafe(48)
        self.cluster_secret = cluster_secret or secrets.token_urlsafe(32)
        self.members_file = self.root / "members"
        self.backends_file = self.root / "backends"
        self.front: subprocess.Popen[bytes] | None = None
        self.front_port = 0
        self.database: EmbeddedDatabase | None = None
        self.mongodb_uri = mongodb_uri or ""
        self._external_db = mongodb_uri is not None
        self._instances: dict[str, Instance] = {}
        # Listed members (id -> internal URL): what the members file says.
        self._listed: dict[str, str] = {}
        self._next_number = 1

    # -- what callers look at --------------------------------------------------------

    @property
    def instances(self) -> dict[str, Instance]:
        """Every instance started and not stopped, killed ones included, by id."""
        return dict(self._instances)

    def _serving(self) -> list[Instance]:
        return [i for i in self._instances.values() if i.running and i.id in self._listed]

    @property
    def ids(self) -> list[str]:
        """The ids of the listed instances that are running, in start order."""
        return [i.id for i in self._serving()]

    @property
    def urls(self) -> dict[str, str]:
        return {i.id: i.url for i in self._serving()}

    @property
    def ports(self) -> dict[str, int]:
        return {i.id: i.port for i in self._serving()}

    @property
    def pids(self) -> dict[str, int]:
        return {i.id: i.pid for i in self._serving()}

    @property
    def members(self) -> dict[str, str]:
        """The member list as the instances read it: id -> internal URL."""
        return dict(self._listed)

    def instance(self, instance_id: str) -> Instance:
        """The instance ``instance_id``; raises `LocalClusterError` if there is none."""
        try:
            return self._instances[instance_id]
        except KeyError:
            raise LocalClusterError(f"no instance {instance_id!r}") from None

    # -- starting and stopping -------------------------------------------------------

    def start(self) -> LocalCluster:
        """Start the database (unless given one) and the instances; wait until all are ready.

        On failure everything started so far is stopped before the error is raised.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            if not self._external_db:
                self.database = EmbeddedDatabase(self.root / "db",
                                                 log_path=self.root / "secantusd.log")
                self.mongodb_uri = self.database.start()
            planned = [self._plan() for _ in range(self.size)]
            for instance_id, _port, cluster_port in planned:
                self._listed[instance_id] = f"http://{self.host}:{cluster_port}"
            self._write_members()
            started = [self._spawn(*plan, self._listed) for plan in planned]
            for instance in started:
                self._wait_ready(instance)
            self._write_backends()
        except BaseException:
            self.stop()
            raise
        logger.info("local cluster started: %s", ", ".join(
            f"{i.id} port {i.port} pid {i.pid}" for i in self._instances.values()))
        return self

    def add(self, *, listed: bool = True) -> Instance:
        """Start one more instance, wait until it is ready, then list it in the members file.

        The new instance's member list names every listed member and itself;
        the others learn of it from the members file once it answers, so that
        none of them sends a user to an instance that is not listening yet.
        With ``listed=False`` it waits unlisted (no member and the front know
        of it) until `join` lists it: a join at a chosen moment.
        """
        instance_id, port, cluster_port = self._plan()
        members = {**self._listed, instance_id: f"http://{self.host}:{cluster_port}"}
        instance = self._spawn(instance_id, port, cluster_port, members)
        try:
            self._wait_ready(instance)
        except BaseException:
            self._terminate(instance)
            raise
        if listed:
            self.join(instance_id)
        return instance

    def join(self, instance_id: str) -> None:
        """List a running instance in the members file and the front's backends."""
        instance = self.instance(instance_id)
        self._listed[instance_id] = instance.internal_url
        self._write_members()
        self._write_backends()

    def kill(self, instance_id: str) -> int:
        """``kill -9`` the instance and reap it; it stays listed. Returns its pid."""
        instance = self.instance(instance_id)
        with contextlib.suppress(ProcessLookupError):
            os.kill(instance.pid, signal.SIGKILL)
        instance.process.wait()
        # Fly's proxy stops sending to a machine that fails its health check.
        self._write_backends()
        logger.info("local cluster: killed %s (pid %d) with SIGKILL", instance_id, instance.pid)
        return instance.pid

    def terminate(self, instance_id: str, timeout: float = STOP_TIMEOUT_SECS) -> None:
        """SIGTERM the instance (it drains), SIGKILL it after ``timeout``; it stays listed."""
        self._terminate(self.instance(instance_id), timeout)
        self._write_backends()

    def forget(self, instance_id: str) -> None:
        """Take the instance out of the members file (as a destroyed machine leaves Fly's DNS)."""
        if self._listed.pop(instance_id, None) is not None:
            self._write_members()
            self._write_backends()

    def start_front(self, port: int = 0, *, balancing: str = "least-connections") -> str:
        """Start the front on ``port`` (0: a free one) and wait until it serves; returns its URL.

        It sends to the instances in the backends file, which follows `add`,
        `kill` and `terminate`. Raises `LocalClusterError` if it does not come up.
        """
        if self.front is not None and self.front.poll() is None:
            raise LocalClusterError("the front is already running")
        self.front_port = port or free_port(self.host)
        self._write_backends()
        log_path = self.root / "front.log"
        with open(log_path, "ab") as log:
            self.front = subprocess.Popen(
                [sys.executable, "-m", "whatsease.cluster.front", "--backends",
                 str(self.backends_file), "--host", self.host, "--port", str(self.front_port),
                 "--balancing", balancing],
                env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=str(self.root),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_die_with_parent(os.getpid()))
        deadline = time.monotonic() + self.ready_timeout
        while not answers_ready(f"{self.front_url}/readyz"):
            if self.front.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
                self._stop_front()
                raise LocalClusterError(f"the front did not come up on port {self.front_port}:\n"
                                        + tail)
            time.sleep(0.1)
        return self.front_url

    @property
    def front_url(self) -> str:
        return f"http://{self.host}:{self.front_port}"

    @property
    def front_pid(self) -> int | None:
        return self.front.pid if self.front is not None and self.front.poll() is None else None

    def stop(self, timeout: float = STOP_TIMEOUT_SECS) -> None:
        """Stop the front, every instance (SIGTERM all, SIGKILL after ``timeout``), the database."""
        self._stop_front()
        running = [i for i in self._instances.values() if i.running]
        for instance in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(instance.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for instance in running:
            try:
                instance.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("local cluster: %s (pid %d) ignored SIGTERM; killing it",
                               instance.id, instance.pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(instance.pid, signal.SIGKILL)
                instance.process.wait()
        for instance in self._instances.values():
            instance.process.poll()  # reap the ones killed earlier
        if self.database is not None:
            self.database.stop()
            self.database = None

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- inside ----------------------------------------------------------------------

    def _plan(self) -> tuple[str, int, int]:
        if len(self._instances) + 1 > MAX_INSTANCES * 2:
            raise LocalClusterError("too many instances started in this local cluster")
        instance_id = f"i{self._next_number}"
        self._next_number += 1
        port = free_port(self.host)
        cluster_port = free_port(self.host)
        while cluster_port == port:
            cluster_port = free_port(self.host)
        return instance_id, port, cluster_port

    def _write_members(self) -> None:
        temporary = self.members_file.with_suffix(".tmp")
        temporary.write_text("".join(f"{mid}={url}\n" for mid, url in self._listed.items()))
        temporary.replace(self.members_file)

    def _write_backends(self) -> None:
        temporary = self.backends_file.with_suffix(".tmp")
        temporary.write_text("".join(f"{i.id}={i.url}\n" for i in self._serving()))
        temporary.replace(self.backends_file)

    def _stop_front(self) -> None:
        front, self.front = self.front, None
        if front is None or front.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(front.pid, signal.SIGTERM)
        try:
            front.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(front.pid, signal.SIGKILL)
            front.wait()

    def _environment(self, instance_id: str, port: int, cluster_port: int,
                     data_dir: Path, members: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _PER_INSTANCE}
        env.update({
            "WHATSEASE_HOST": self.host,
            "WHATSEASE_PORT": str(port),
            "WHATSEASE_DATA_DIR": str(data_dir),
            "WHATSEASE_MONGODB_URI": self.mongodb_uri,
            "WHATSEASE_DB_NAME": self.db_name,
            "WHATSEASE_JWT_SECRET": self.jwt_secret,
            "WHATSEASE_CLUSTER": "static",
            "WHATSEASE_CLUSTER_SELF": instance_id,
            "WHATSEASE_CLUSTER_MEMBERS": ",".join(f"{k}={v}" for k, v in members.items()),
            "WHATSEASE_CLUSTER_PORT": str(cluster_port),
            MEMBERS_FILE_ENV: str(self.members_file),
            CLUSTER_SECRET_ENV: self.cluster_secret,
            # The front (or Fly's proxy) appends the client's address.
            "WHATSEASE_TRUSTED_PROXY": "true",
            "PYTHONUNBUFFERED": "1",
        })
        if self.bcrypt_rounds is not None:
            env["WHATSEASE_BCRYPT_ROUNDS"] = str(self.bcrypt_rounds)
        env.update(self.extra_env)
        return env

    def _spawn(self, instance_id: str, port: int, cluster_port: int,
               members: dict[str, str]) -> Instance:
        data_dir = self.root / instance_id
        data_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.root / f"{instance_id}.log"
        env = self._environment(instance_id, port, cluster_port, data_dir, members)
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "whatsease"], env=env, cwd=str(data_dir),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C in the terminal reaches the script,
                # which stops the instances in order, not every process at once.
                start_new_session=True, preexec_fn=_die_with_parent(os.getpid()))
        instance = Instance(instance_id, port, cluster_port, self.host, process, log_path,
                            data_dir)
        self._instances[instance_id] = instance
        return instance

    def _wait_ready(self, instance: Instance) -> None:
        instance.wait_ready(self.ready_timeout)

    def _terminate(self, instance: Instance, timeout: float = STOP_TIMEOUT_SECS) -> None:
        instance.terminate(timeout)


def _secret_file(path: Path) -> str:
    """A secret kept in ``path`` (mode 0600), made on first use, so restarts keep sessions."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    secret = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret


def main(argv: list[str] | None = None) -> int:
    """``python -m whatsease.cluster.local [N]``: a database, N instances and the front.

    Prints the front's URL, then one line per instance (id, port, pid), and
    runs until SIGTERM or SIGINT, then stops everything.
    """
    import argparse

    parser = argparse.ArgumentParser(
        prog="scripts/cluster",
        description="A local WhatsEase cluster for development: one database, N instances "
                    "(static membership) and a front standing in for Fly's proxy on "
                    "WHATSEASE_PORT (8080). Not for production.")
    parser.add_argument("instances", nargs="?", type=int, default=3)
    parser.add_argument("--data-dir", default="",
                        help="where the database, logs and secrets live "
                             "(default: $WHATSEASE_DATA_DIR/cluster, or data/cluster)")
    args = parser.parse_args(argv)
    if not 1 <= args.instances <= MAX_INSTANCES:
        parser.error(f"the number of instances must be 1-{MAX_INSTANCES}")
    try:
        front_port = int(os.environ.get("WHATSEASE_PORT", "8080") or 8080)
    except ValueError:
        parser.error("WHATSEASE_PORT must be a port number")
    root = Path(args.data_dir or Path(os.environ.get("WHATSEASE_DATA_DIR", "data")) / "cluster")
    root.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=os.environ.get("WHATSEASE_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)

    cluster = LocalCluster(
        root, args.instances, mongodb_uri=os.environ.get("WHATSEASE_MONGODB_URI") or None,
        db_name=os.environ.get("WHATSEASE_DB_NAME", "whatsease"),
        jwt_secret=os.environ.get("WHATSEASE_JWT_SECRET") or _secret_file(root / "jwt-secret"),
        cluster_secret=(os.environ.get(CLUSTER_SECRET_ENV)
                        or _secret_file(root / "cluster-secret")))
    try:
        cluster.start()
        url = cluster.start_front(front_port)
        print(f"front {url} pid {cluster.front_pid}", flush=True)
        for instance in cluster.instances.values():
            print(f"instance {instance.id} port {instance.port} pid {instance.pid}", flush=True)
        reported: set[str] = set()
        while not stop.wait(1.0):
            for instance in cluster.instances.values():
                if not instance.running and instance.id not in reported:
                    reported.add(instance.id)
                    print(f"instance {instance.id} exited with code "
                          f"{instance.process.returncode} (log: {instance.log_path})", flush=True)
    except LocalClusterError as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        return 1
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
