"""Shared fixtures: one real SecantusDB process and one real server per test session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from tests.support import ServerThread, test_config
from whatsease.app import build_services
from whatsease.services import Services
from whatsease.storage.launcher import EmbeddedDatabase


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the browser tests last.

    Playwright's sync API keeps an event loop running in the main thread for
    as long as its session-scoped browser lives; asyncio tests collected after
    it could not start their own loop.
    """
    items.sort(key=lambda item: "tests/e2e/" in item.nodeid.replace("\\", "/"))


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SecantusDB server started by the same launcher the application uses."""
    root = tmp_path_factory.mktemp("secantus")
    database = EmbeddedDatabase(root / "db", log_path=root / "secantusd.log")
    database.start()
    yield database.uri
    database.stop()


@pytest.fixture(scope="session")
def server(mongo_uri: str) -> Iterator[ServerThread]:
    """A listening WhatsEase server shared by the session (tests use fresh accounts)."""
    thread = ServerThread(test_config(), mongo_uri).start()
    yield thread
    thread.stop()


@pytest.fixture
def make_server(mongo_uri: str) -> Iterator[Callable[..., ServerThread]]:
    """Start extra servers with their own settings and database; stopped after the test."""
    started: list[ServerThread] = []

    def start(**overrides: Any) -> ServerThread:
        thread = ServerThread(test_config(**overrides), mongo_uri).start()
        started.append(thread)
        return thread

    yield start
    for thread in started:
        thread.stop()


@pytest.fixture
async def services(mongo_uri: str) -> AsyncIterator[Services]:
    """The services on the test's own event loop, against a fresh database (no HTTP)."""
    built = await build_services(test_config(), mongo_uri)
    yield built
    await built.messaging.drain()
    await built.activity.drain()
    await built.store.client.drop_database(built.config.db_name)
    await built.store.close()
