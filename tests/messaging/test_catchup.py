"""Catching up after a lost member: who is told to sync, and only once per message."""

from __future__ import annotations

import asyncio

from whatsease.messaging.catchup import CatchUp
from whatsease.services import Services
from whatsease.storage.models import User


async def test_only_recipients_of_a_lost_members_undelivered_messages_are_told_once(
        services: Services) -> None:
    emails = ("lost@example.com", "alive@example.com", "owed@example.com",
              "fine@example.com", "read@example.com")
    for email in emails:
        await services.store.users.insert(User(email=email, name=email))
    messaging = services.messaging
    await messaging.send("lost@example.com", "owed@example.com", "never forwarded")
    await messaging.send("alive@example.com", "fine@example.com", "its home lives on")
    seen = await messaging.send("lost@example.com", "read@example.com", "arrived")
    await messaging.mark("read@example.com", [seen.message_id], "Delivered")
    told: list[str] = []
    catch_up = CatchUp(services.store.messages,
                       lambda: ["owed@example.com", "fine@example.com", "read@example.com"],
                       told.append, recheck_secs=0.1)
    catch_up.members_lost(lambda sender: sender == "lost@example.com")
    for _ in range(400):  # both looks: now and after the recheck (20 s at most)
        await asyncio.sleep(0.05)
        if not catch_up._tasks:
            break
    assert not catch_up._tasks
    assert told == ["owed@example.com"]  # told once, though its message is still Sent
