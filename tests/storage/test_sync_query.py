"""The sync read (`MessageRepo.changed_since`) pages exactly and reads through the index.

A sync with a cursor used to be one ``$or`` filter that the database planned
as a scan of the whole collection: each cost O(all messages), and a few hundred
users syncing together after a cluster change stalled the database for seconds.
Naming the index (a hint) is no way out: the embedded database then reads and
sorts the whole collection.
"""

from __future__ import annotations

import secrets
from typing import Any

from bson import ObjectId
from pymongo import monitoring

from whatsease.storage.models import Message, conversation_id, new_id
from whatsease.storage.store import Store
from whatsease.timeutil import utcnow


class Finds(monitoring.CommandListener):
    """Records every ``find`` command the client sends."""

    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find":
            self.commands.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def _message(sender: str, recipient: str, n: int) -> Message:
    return Message(message_id=new_id(), sender=sender, recipient=recipient, content=f"m{n}",
                   timestamp=utcnow(), conversation_id=conversation_id(sender, recipient))


async def test_sync_pages_through_ties_in_order_and_every_read_uses_the_index(
        mongo_uri: str) -> None:
    finds = Finds()
    store = Store(mongo_uri, f"sync_{secrets.token_hex(4)}", event_listeners=[finds])
    try:
        await store.ensure_indexes()
        # Other people's messages: the sync of ann must not read them.
        await store.messages.insert_many(
            [_message(f"x{i}@example.com", "y@example.com", i) for i in range(40)])
        mine = await store.messages.insert_many(
            [_message("ann@example.com", "bob@example.com", i) for i in range(12)])
        # Seven of them changed together (one receipt batch): they share a rev.
        shared = ObjectId()
        await store.messages.collection.update_many(
            {"_id": {"$in": [ObjectId(m.message_id) for m in mine[2:9]]}},
            {"$set": {"rev": shared}})
        everything = await store.messages.changed_since("ann@example.com", None, limit=100)
        expected = [(m.rev, m.message_id) for m in everything]
        assert len(expected) == 12 and expected == sorted(expected)

        seen: list[tuple[str, str]] = []
        after: str | None = None
        after_id: str | None = None
        finds.commands.clear()
        while True:
            page = await store.messages.changed_since("ann@example.com", after, limit=3,
                                                      after_id=after_id)
            assert len(page) <= 3
            if not page:
                break
            seen += [(m.rev, m.message_id) for m in page]
            after, after_id = page[-1].rev, page[-1].message_id
        assert seen == expected  # every message once, in (rev, id) order, ties included

        assert finds.commands
        for command in finds.commands:
            # A hint on the multikey index makes the embedded database read and sort
            # every document of the collection (its plan still says IXSCAN).
            assert "hint" not in command
            asked = {name: command[name] for name in ("find", "filter", "sort", "limit", "hint")
                     if name in command}
            plan = await store.db.command("explain", asked)
            assert "COLLSCAN" not in str(plan["queryPlanner"]["winningPlan"]), command["filter"]
    finally:
        await store.client.drop_database(store.db.name)
        await store.close()
