"""A database that cannot be reached: fast 503s with Retry-After, never 500s or stalls."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests import support
from tests.api.checks import assert_problem
from tests.support import Client, ServerThread, register
from whatsease.errors import ServiceUnavailable
from whatsease.storage.launcher import EmbeddedDatabase, free_port
from whatsease.storage.outage import Breaker
from whatsease.storage.store import Store

# The first failure waits out the selection timeout (plus pymongo's one retry
# of a read on a fresh selection); the ones after it are answered at once.
FIRST_FAILURE_SECS = 3.5
KNOWN_FAILURE_SECS = 0.5


@pytest.mark.parametrize("uri", [
    "mongodb://127.0.0.1:{port}/?directConnection=true",  # the embedded database's form
    "mongodb://127.0.0.1:{port}/?replicaSet=rs0",  # a replica set, as in production
])
async def test_an_unreachable_database_raises_service_unavailable_fast(uri: str) -> None:
    store = Store(uri.format(port=free_port()), "outage", timeout=1.0)
    try:
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable) as raised:
            await store.users.get("nobody@example.com")
        assert time.monotonic() - started < FIRST_FAILURE_SECS
        assert raised.value.status == 503
        assert raised.value.headers["Retry-After"] == "2"
        # Known down: the next operations, writes and cursors too, fail at once.
        for operation in (store.users.get("x@example.com"),
                          store.db["users"].insert_one({"_id": "x@example.com"}),
                          store.db["users"].find({}).to_list(10)):
            started = time.monotonic()
            with pytest.raises(ServiceUnavailable):
                await operation
            assert time.monotonic() - started < KNOWN_FAILURE_SECS
        assert not await store.ping()
    finally:
        await store.close()


def test_the_breaker_lets_one_probe_through_after_its_cooldown() -> None:
    now = [0.0]
    breaker = Breaker(cooldown=1.0, clock=lambda: now[0])
    assert breaker.admit() is False  # closed: everything runs, no probe
    breaker.failed(False, ConnectionError("refused"))
    with pytest.raises(ServiceUnavailable):
        breaker.admit()
    now[0] = 1.5
    assert breaker.admit() is True  # the probe
    with pytest.raises(ServiceUnavailable):
        breaker.admit()  # only one at a time
    breaker.failed(True, ConnectionError("refused"))
    with pytest.raises(ServiceUnavailable):
        breaker.admit()
    now[0] = 3.0
    assert breaker.admit() is True
    breaker.succeeded(True)
    assert not breaker.is_open
    assert breaker.admit() is False


def test_requests_answer_503_with_retry_after_while_the_database_is_down(
        tmp_path: Path) -> None:
    database = EmbeddedDatabase(tmp_path / "db", log_path=tmp_path / "secantusd.log")
    database.start()
    server = ServerThread(support.test_config(db_timeout=1.0), database.uri).start()
    try:
        alice, bob = register(server.port, "alice"), register(server.port, "bob")
        assert alice.client.get("/api/v1/chats").status == 200
        database.stop()
        timings = []
        for _ in range(4):
            started = time.monotonic()
            res = alice.client.get("/api/v1/chats")
            timings.append(time.monotonic() - started)
            assert_problem(res, 503)
            assert res.json["type"].endswith("/database_unavailable")
            assert res.header("Retry-After") == "2"
        assert timings[0] < FIRST_FAILURE_SECS, timings
        assert max(timings[1:]) < KNOWN_FAILURE_SECS, timings
        # A write and a login too: 503, not 500.
        assert_problem(alice.client.post("/api/v1/messages", {
            "recipient": bob.email, "content": "hi"}), 503)
        assert_problem(Client(server.port).post("/api/v1/auth/login", {
            "email": alice.email, "password": alice.password}), 503)
        res = Client(server.port).get("/readyz")
        assert_problem(res, 503)
        # The same database back on the same port: requests work again by themselves.
        database = EmbeddedDatabase(tmp_path / "db", port=database.port,
                                    log_path=tmp_path / "secantusd.log")
        database.start()
        support.wait_for(lambda: alice.client.get("/api/v1/chats").status == 200,
                         timeout=20, what="the server to reconnect")
        assert Client(server.port).get("/readyz").status == 200
    finally:
        server.stop()
        database.stop()


async def test_a_cancelled_probe_does_not_wedge_the_breaker() -> None:
    store = Store(f"mongodb://127.0.0.1:{free_port()}/?directConnection=true", "outage",
                  timeout=5.0)
    try:
        task = asyncio.ensure_future(store.users.get("a@example.com"))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not store.client.breaker.probing
    finally:
        await store.close()
