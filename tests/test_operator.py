"""What an operator meets: `python -m whatsease` supervising its database, readiness after
the demo accounts, the org command beside a running server, the agent console's icon."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Client, ServerThread, wait_for
from whatsease.cluster.instance import listens
from whatsease.config import Config
from whatsease.storage.launcher import free_port, read_state


def _env(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHATSEASE_")}
    env.update(WHATSEASE_DATA_DIR=str(tmp_path / "data"), WHATSEASE_PORT=str(port),
               WHATSEASE_BOT_SEMANTIC="false", WHATSEASE_LOG_LEVEL="INFO", **extra)
    return env


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, dict[str, str]]]:
    """`python -m whatsease` on the embedded database, demo accounts on, one restart allowed."""
    port = free_port()
    env = _env(tmp_path, port, WHATSEASE_DEMO_USERS="true", WHATSEASE_DB_RESTARTS="1")
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 (closed below)
    server = subprocess.Popen([sys.executable, "-m", "whatsease"], env=env, stdout=log,
                              stderr=subprocess.STDOUT, text=True)
    try:
        yield server, port, env
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        log.close()


def _database_pid(data: Path) -> int:
    state = read_state(data / "db")
    assert state is not None and isinstance(state["pid"], int), state
    return state["pid"]


def _status(port: int, path: str) -> int:
    try:
        return Client(port).get(path).status
    except OSError:
        return 0


def test_the_server_supervises_its_database_and_fails_health_when_it_cannot(
        serving: tuple[subprocess.Popen[str], int, dict[str, str]], tmp_path: Path) -> None:
    server, port, env = serving
    data = tmp_path / "data"
    # Ready means the demo accounts exist: their passwords are written by then.
    # Its own answer, not that of another process that took the port first.
    wait_for(lambda: _status(port, "/readyz") == 200 and listens(server.pid, port) is not False,
             timeout=90, what="ready")
    lines = (data / "demo-users.txt").read_text().split()
    assert lines[0] == "alice@example.com"
    login = Client(port).post("/api/v1/auth/login", {"email": lines[0], "password": lines[1]})
    assert login.status == 200, login.body

    # The org command works beside the running server and prints real links.
    done = subprocess.run(
        [sys.executable, "-m", "whatsease", "org", "create", "--name", "Acme Shoes",
         "--admin", "boss@acme.example"],
        env=env | {"WHATSEASE_PUBLIC_URL": "https://chat.acme.example/"},
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert '<script src="https://chat.acme.example/widget.js"' in done.stdout
    assert "https://chat.acme.example/agent" in done.stdout
    assert "YOUR-HOST" not in done.stdout

    # kill -9 of the database: reaped, restarted on the same port, the server reconnects.
    first = _database_pid(data)
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: (read_state(data / "db") or {}).get("pid") not in (None, first),
             timeout=60, what="a restarted database")
    assert not Path(f"/proc/{first}").exists(), "the dead database was not reaped"
    wait_for(lambda: _status(port, "/readyz") == 200, timeout=30, what="ready again")
    assert Client(port).post("/api/v1/auth/login", {
        "email": lines[0], "password": lines[1]}).status == 200
    assert _status(port, "/healthz") == 200

    # Killed again right away: one restart in a row is all it may do, so it gives up
    # and liveness fails for the platform to restart the machine.
    second = _database_pid(data)
    os.kill(second, signal.SIGKILL)
    wait_for(lambda: _status(port, "/healthz") == 503, timeout=30, what="/healthz to fail")
    assert _status(port, "/readyz") == 503
    res = Client(port).post("/api/v1/auth/login", {"email": lines[0], "password": lines[1]})
    assert res.status == 503 and res.header("Retry-After") == "2"

    server.send_signal(signal.SIGTERM)
    assert server.wait(30) == 0
    said = (tmp_path / "server.log").read_text()
    assert "killed by SIGKILL; restarting it on the same data dir" in said
    assert "could not be restarted (restarts in a row: 1)" in said


def test_the_org_command_prints_the_address_the_server_listens_on(tmp_path: Path) -> None:
    env = _env(tmp_path, 8123, WHATSEASE_HOST="0.0.0.0")
    done = subprocess.run([sys.executable, "-m", "whatsease", "org", "create", "--name", "Shop"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert '<script src="http://localhost:8123/widget.js"' in done.stdout


def test_base_url() -> None:
    assert Config(host="chat.example.com", port=80).base_url == "http://chat.example.com:80"
    assert Config(host="::1", port=8080).base_url == "http://[::1]:8080"
    assert Config(public_url="https://chat.example.com/").base_url == "https://chat.example.com"


def test_the_agent_console_has_its_icon(server: ServerThread) -> None:
    page = Client(server.port).get("/agent")
    assert page.status == 200
    found = re.search(rb'<link rel="icon" type="image/svg\+xml" href="([^"]+)"', page.body)
    assert found, "no icon link on /agent"
    icon = Client(server.port).get(found.group(1).decode())
    assert icon.status == 200
    assert (icon.header("Content-Type") or "").startswith("image/svg+xml")


def test_readyz_waits_while_the_server_is_starting(server: ServerThread) -> None:

    server.services.starting = True
    try:
        res = Client(server.port).get("/readyz")
        assert res.status == 503 and res.json["type"].endswith("/starting")
    finally:
        server.services.starting = False
    assert Client(server.port).get("/readyz").status == 200
