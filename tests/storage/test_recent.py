"""The record of recently stored messages: bounded in number and age, no content kept."""

from __future__ import annotations

from whatsease.storage.models import Message, conversation_id, new_id
from whatsease.storage.recent import RecentMessages
from whatsease.timeutil import utcnow


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _message(n: int) -> Message:
    return Message(message_id=new_id(), sender="a@example.com", recipient="b@example.com",
                   content=f"secret {n}", timestamp=utcnow(), status="Sent",
                   conversation_id=conversation_id("a@example.com", "b@example.com"))


def test_found_messages_are_sent_without_a_receipt_and_without_content() -> None:
    recent = RecentMessages()
    stored = _message(1)
    recent.add([stored])
    [(message_id, found)] = recent.find([stored.message_id, new_id()]).items()
    assert message_id == stored.message_id
    assert (found.sender, found.recipient, found.conversation_id, found.timestamp) == (
        stored.sender, stored.recipient, stored.conversation_id, stored.timestamp)
    assert found.status == "Sent" and not found.has_receipt and found.content == ""
    assert found is not stored  # its status is changed by the caller
    recent.forget([stored.message_id])
    assert recent.find([stored.message_id]) == {}


def test_the_oldest_entries_leave_past_the_bound_and_past_their_age() -> None:
    clock = Clock()
    recent = RecentMessages(max_entries=3, max_age_secs=10.0, clock=clock)
    messages = [_message(n) for n in range(5)]
    recent.add(messages[:4])
    assert len(recent) == 3
    assert set(recent.find(m.message_id for m in messages)) == {
        m.message_id for m in messages[1:4]}
    clock.now += 6
    recent.add(messages[4:])
    clock.now += 5  # the first three are now 11 s old, the last 5 s
    assert set(recent.find(m.message_id for m in messages)) == {messages[4].message_id}
    assert len(recent) == 1
    recent.clear()
    assert len(recent) == 0
