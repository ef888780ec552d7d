"""Catching up after a lost member: who is told to sync, and only once per message.

Told: the recipients here of a lost member's messages that are still Sent and
whose frame never arrived over the link. Not told: a recipient whose frame
arrived (its receipt is merely late), one who was homed on the lost member
(it has just synced), and anyone for a message sent after the loss.
"""

from __future__ import annotations

import asyncio

from whatsease.delivery import frames
from whatsease.messaging.catchup import Arrivals, CatchUp
from whatsease.services import Services
from whatsease.storage.models import User


async def test_only_recipients_of_a_lost_members_undelivered_messages_are_told_once(
        services: Services) -> None:
    emails = ("lost@example.com", "alive@example.com", "owed@example.com",
              "fine@example.com", "read@example.com", "late@example.com",
              "moved@example.com")
    for email in emails:
        await services.store.users.insert(User(email=email, name=email))
    messaging = services.messaging
    await messaging.send("lost@example.com", "owed@example.com", "never forwarded")
    await messaging.send("alive@example.com", "fine@example.com", "its home lives on")
    seen = await messaging.send("lost@example.com", "read@example.com", "arrived")
    await messaging.mark("read@example.com", [seen.message_id], "Delivered")
    arrived = await messaging.send("lost@example.com", "late@example.com", "no receipt yet")
    await messaging.send("lost@example.com", "moved@example.com", "synced on reconnect")
    arrivals = Arrivals()
    arrivals.note(frames.message(arrived.to_json()))
    told: list[str] = []
    local = ["owed@example.com", "fine@example.com", "read@example.com", "late@example.com",
             "moved@example.com"]
    catch_up = CatchUp(services.store.messages, lambda: local, told.append, arrivals,
                       recheck_secs=2.1)
    catch_up.members_lost(lambda sender: sender == "lost@example.com",
                          lambda user: user != "moved@example.com")
    # Sent after the loss (a moved sender's next message): not the lost member's.
    await asyncio.sleep(1.1)
    await messaging.send("lost@example.com", "fine@example.com", "after the loss")
    for _ in range(400):  # both looks: now and after the recheck (20 s at most)
        await asyncio.sleep(0.05)
        if not catch_up._tasks:
            break
    assert not catch_up._tasks
    assert told == ["owed@example.com"]  # told once, though its message is still Sent
