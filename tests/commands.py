"""Count the commands services send to a real database, with a PyMongo command listener."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pymongo import monitoring

from tests.support import test_config as config_for_tests
from whatsease.app import build_services
from whatsease.services import Services

# Handshakes and session bookkeeping are the driver's, not the application's.
IGNORED = {"hello", "ismaster", "isMaster", "ping", "endSessions", "buildInfo"}


class Commands(monitoring.CommandListener):
    """Every command the client sends: (name, collection, whether it asks for a journal sync)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bool]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in IGNORED:
            concern = event.command.get("writeConcern") or {}
            self.seen.append((event.command_name, str(event.command.get(event.command_name, "")),
                              bool(concern.get("j"))))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def index(self, name: str, collection: str) -> int:
        """Where the first such command is in ``seen``; -1 if none was sent."""
        for i, (n, c, _) in enumerate(self.seen):
            if (n, c) == (name, collection):
                return i
        return -1


@asynccontextmanager
async def counted_services(mongo_uri: str) -> AsyncIterator[tuple[Services, Commands]]:
    """Services on the test configuration whose client reports every command; dropped after."""
    commands = Commands()
    built = await build_services(config_for_tests(), mongo_uri, event_listeners=[commands])
    try:
        yield built, commands
    finally:
        await built.messaging.drain()
        await built.activity.drain()
        await built.store.client.drop_database(built.config.db_name)
        await built.store.close()
