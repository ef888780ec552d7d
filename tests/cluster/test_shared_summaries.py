"""Chat summaries in a cluster are written without multi-document transactions.

An instance killed between a transaction's writes and its commit leaves the
transaction open, holding its chat summaries, for the database's transaction
lifetime (60 s): every other instance's write to one of them retries on the
conflict inside its write lane, and its inserts and acks stop with it. In the
600-user chaos bench that stalled the whole cluster for the rest of the run
after the kill. One instance alone may batch its summaries in a transaction.
"""

from __future__ import annotations

import secrets
from typing import Any

from pymongo import monitoring

from whatsease.storage.models import Message, conversation_id, new_id
from whatsease.storage.store import Store
from whatsease.timeutil import utcnow


class Commands(monitoring.CommandListener):
    """Records the names of the commands the client sends."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def _messages(n: int) -> list[Message]:
    """One message in each of ``n`` conversations (a batch of ``n`` summary updates)."""
    out = []
    for i in range(n):
        sender, recipient = f"a{i}@example.com", f"b{i}@example.com"
        out.append(Message(message_id=new_id(), sender=sender, recipient=recipient,
                           content=f"m{i}", timestamp=utcnow(),
                           conversation_id=conversation_id(sender, recipient)))
    return out


async def _summary_commands(mongo_uri: str, shared: bool) -> list[str]:
    commands = Commands()
    store = Store(mongo_uri, f"sum_{secrets.token_hex(4)}", event_listeners=[commands])
    try:
        await store.ensure_indexes()
        if shared:
            store.conversations.share()
        commands.names.clear()
        await store.conversations.record_messages(_messages(5))
        stored: list[dict[str, Any]] = await store.conversations.collection.find().to_list()
        assert len(stored) == 5
        return commands.names
    finally:
        await store.client.drop_database(store.db.name)
        await store.close()


async def test_a_cluster_writes_chat_summaries_without_a_transaction(mongo_uri: str) -> None:
    assert "commitTransaction" not in await _summary_commands(mongo_uri, shared=True)


async def test_one_instance_alone_batches_its_summaries_in_one_commit(mongo_uri: str) -> None:
    # The contrast that shows the check above can fail.
    assert "commitTransaction" in await _summary_commands(mongo_uri, shared=False)
