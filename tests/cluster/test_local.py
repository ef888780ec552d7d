"""The local cluster: real instances on one database, killed, added and stopped by PID."""

from __future__ import annotations

import json
import os
import queue
import secrets
import signal
import socket
import subprocess
import threading
import urllib.request
from pathlib import Path

import pytest

from whatsease.cluster.instance import listens
from whatsease.cluster.local import LocalCluster, LocalClusterError
from whatsease.storage.launcher import _pid_alive, free_port

FAST = {"WHATSEASE_BOT_SEMANTIC": "false", "WHATSEASE_LOG_LEVEL": "WARNING"}


def post_json(url: str, body: dict[str, str]) -> dict[str, object]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, object] = json.loads(response.read())
        return result


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_instances_share_a_database_die_join_and_stop(mongo_uri: str, tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "cluster", 2, mongodb_uri=mongo_uri,
                           db_name=f"t{secrets.token_hex(6)}", bcrypt_rounds=4, env=FAST)
    with cluster:
        assert cluster.ids == ["i1", "i2"]
        assert len(set(cluster.ports.values())) == 2
        assert all(ready(url) for url in cluster.urls.values())
        first, second = (cluster.instance(i) for i in cluster.ids)
        assert first.cluster_port not in (first.port, second.port, second.cluster_port)
        assert cluster.members_file.read_text().splitlines() == [
            f"i1={first.internal_url}", f"i2={second.internal_url}"]
        # One database and one JWT secret: an account made on one works on the other.
        email = f"u{secrets.token_hex(4)}@example.com"
        post_json(f"{first.url}/api/v1/auth/register",
                  {"email": email, "name": "Ann", "password": "a long password 1"})
        pair = post_json(f"{second.url}/api/v1/auth/login",
                         {"email": email, "password": "a long password 1"})
        assert pair["access_token"]

        front = cluster.start_front()
        front_pid = cluster.front_pid
        assert front_pid is not None and ready(front)
        pair = post_json(f"{front}/api/v1/auth/login",
                         {"email": email, "password": "a long password 1"})
        assert pair["access_token"]

        killed = cluster.kill("i1")
        assert not _pid_alive(killed)
        assert cluster.ids == ["i2"] and ready(second.url)
        # The front stops sending to the killed instance.
        assert all(ready(front) for _ in range(4))
        # A killed member stays listed, as a crashed machine stays in Fly's DNS.
        assert "i1=" in cluster.members_file.read_text()

        third = cluster.add()
        assert third.id == "i3" and ready(third.url)
        assert cluster.ids == ["i2", "i3"]
        assert cluster.members_file.read_text().splitlines()[-1] == f"i3={third.internal_url}"
        cluster.forget("i1")
        assert "i1=" not in cluster.members_file.read_text()

        # A standby: running and ready, known to nobody until it joins.
        standby = cluster.add(listed=False)
        assert ready(standby.url) and standby.id not in cluster.ids
        listed = cluster.members_file.read_text() + cluster.backends_file.read_text()
        assert f"{standby.id}=" not in listed
        cluster.join(standby.id)
        assert cluster.ids == ["i2", "i3", standby.id]
        assert f"{standby.id}={standby.url}" in cluster.backends_file.read_text()
        assert f"{standby.id}={standby.internal_url}" in cluster.members_file.read_text()
        pids = [*cluster.pids.values(), front_pid]
    assert len(pids) == 4 and not any(_pid_alive(pid) for pid in pids)


def test_an_instance_that_cannot_start_is_reported_with_its_log(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "cluster", 1, mongodb_uri="mongodb://127.0.0.1:1/",
                           env={**FAST, "WHATSEASE_LOG_LEVEL": "shouting"}, ready_timeout=20)
    with pytest.raises(LocalClusterError, match="WHATSEASE_LOG_LEVEL"):
        cluster.start()
    assert not any(i.running for i in cluster.instances.values())


def test_size_is_bounded(tmp_path: Path) -> None:
    with pytest.raises(LocalClusterError):
        LocalCluster(tmp_path, 0)
    with pytest.raises(LocalClusterError):
        LocalCluster(tmp_path, 1000)


def test_starts_its_own_database_and_stops_it(tmp_path: Path) -> None:
    with LocalCluster(tmp_path / "cluster", 1, bcrypt_rounds=4, env=FAST) as cluster:
        assert cluster.database is not None and cluster.database.process is not None
        db_pid = cluster.database.process.pid
        pid = cluster.pids["i1"]
        assert ready(cluster.urls["i1"])
    assert not _pid_alive(pid) and not _pid_alive(db_pid)
    assert os.path.exists(tmp_path / "cluster" / "i1.log")


def test_scripts_cluster_starts_prints_and_stops_on_sigterm(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    port = free_port()
    env = {**os.environ, "WHATSEASE_PORT": str(port), "WHATSEASE_BOT_SEMANTIC": "false",
           "WHATSEASE_BCRYPT_ROUNDS": "4", "WHATSEASE_LOG_LEVEL": "WARNING"}
    env.pop("WHATSEASE_MONGODB_URI", None)
    process = subprocess.Popen([str(root / "scripts" / "cluster"), "2", "--data-dir",
                                str(tmp_path / "cluster")], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        stdout = process.stdout
        assert stdout is not None
        printed: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            for line in stdout:
                printed.put(line)

        threading.Thread(target=pump, daemon=True).start()
        lines = [printed.get(timeout=120).strip() for _ in range(3)]
        assert lines[0].startswith(f"front http://127.0.0.1:{port} pid "), lines
        instances = [line.split() for line in lines[1:]]
        assert [(words[0], words[1], words[2]) for words in instances] == [
            ("instance", "i1", "port"), ("instance", "i2", "port")]
        pids = [int(lines[0].split()[-1])] + [int(words[5]) for words in instances]
        assert all(_pid_alive(pid) for pid in pids)
        assert ready(f"http://127.0.0.1:{port}")
        assert all(ready(f"http://127.0.0.1:{words[3]}") for words in instances)
        state = json.loads((tmp_path / "cluster" / "db.server.json").read_text())
        pids.append(state["pid"])
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        assert not any(_pid_alive(pid) for pid in pids)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_readiness_is_the_instance_own_listening_socket() -> None:
    """An answer on an instance's port from a process that took the port first is not ready."""
    with socket.socket() as server, socket.socket() as other:
        server.bind(("127.0.0.1", 0))
        server.listen()
        other.bind(("127.0.0.1", 0))  # bound, not listening
        port, not_listening = server.getsockname()[1], other.getsockname()[1]
        assert listens(os.getpid(), port) is True
        assert listens(os.getpid(), not_listening) is False
        assert listens(os.getppid(), port) in (False, None)  # another process's
