"""An account erased while its chats' summaries are still queued: the chats stay gone."""

from __future__ import annotations

from whatsease.services import Services
from whatsease.storage.models import User

ALICE, BOB = "alice@example.com", "bob@example.com"


async def test_a_summary_queued_before_an_erasure_does_not_bring_the_chat_back(
        services: Services) -> None:
    for email in (ALICE, BOB):
        await services.store.users.insert(User(email=email, name=email))
    # Summaries linger before they are written; make that longer than any
    # machine can stretch the erasure, so the order below is the only one.
    services.messaging._summaries.linger = 600.0
    await services.messaging.send(BOB, ALICE, "written just before Alice leaves")
    await services.accounts.delete(ALICE)
    await services.messaging.summaries_written()  # whatever was still queued
    assert await services.messaging.chats(BOB) == []
    assert await services.store.conversations.collection.count_documents({}) == 0
