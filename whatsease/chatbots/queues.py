"""A sender's bounded queue: their messages and the bot's answers, oldest dropped first.

Each instance keeps one queue per sender. It is both the work still to do
(the sender's unanswered messages, answered oldest first) and the context the
language model sees (the answered turns before them). The instance's
``queue_config`` bounds it by entries, characters and age; when a new message
pushes it over a bound, the oldest entries go first. An unanswered message
that goes is a *drop*: counted, and the sender is told. The newest entry
always stays, so one long message is answered rather than lost.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from whatsease.chatbots.llm import ASSISTANT_ROLE, USER_ROLE, Turn
from whatsease.storage.chatbots import QueueEntry

MAX_MESSAGES = 1000
MAX_CHARACTERS = 200_000
MAX_DAYS = 365


@dataclass(frozen=True)
class QueueLimits:
    """An instance's ``queue_config``: entries, characters and days a sender's queue keeps."""

    max_messages: int
    max_characters: int
    max_days: float

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> QueueLimits:
        return cls(int(doc["max_messages"]), int(doc["max_characters"]), float(doc["max_days"]))

    def to_dict(self) -> dict[str, Any]:
        return {"max_messages": self.max_messages, "max_characters": self.max_characters,
                "max_days": self.max_days}


class SenderQueue:
    """One sender's entries, oldest first; the in-flight entry is the one being answered."""

    def __init__(self, limits: QueueLimits, entries: list[QueueEntry] | None = None) -> None:
        self.limits = limits
        self.entries: deque[QueueEntry] = deque(entries or [])
        self.characters = sum(len(e.content) for e in self.entries)
        self.in_flight: str | None = None
        # Whether the sender was told of drops since the queue was last empty: one
        # notice per overflow, not one per message of a flood.
        self.told_of_drops = False
        # Answers in a row below the handoff threshold, and the support conversation
        # the sender was handed to (None: the bot answers).
        self.unsure_turns = 0
        self.handoff: str | None = None
        # When the sender last wrote: a platform's customer-service window (WhatsApp:
        # 24 h) runs from it. Kept apart from the entries, which trimming may remove.
        self.last_inbound: datetime | None = max(
            (e.at for e in self.entries if e.role == USER_ROLE), default=None)

    @property
    def pending(self) -> int:
        """Unanswered messages of the sender (the one being answered included)."""
        return sum(1 for e in self.entries if e.role == USER_ROLE and not e.answered)

    def add(self, entry: QueueEntry, now: datetime) -> list[QueueEntry]:
        """Append ``entry`` and trim; the entries removed, oldest first."""
        self.entries.append(entry)
        self.characters += len(entry.content)
        if entry.role == USER_ROLE and (self.last_inbound is None or entry.at > self.last_inbound):
            self.last_inbound = entry.at
        return self.trim(now)

    def trim(self, now: datetime) -> list[QueueEntry]:
        """Drop the oldest entries while any bound is exceeded (the newest always stays)."""
        removed: list[QueueEntry] = []
        oldest_allowed = now - timedelta(days=self.limits.max_days)
        while len(self.entries) > 1 and (
                len(self.entries) > self.limits.max_messages
                or self.characters > self.limits.max_characters
                or self.entries[0].at < oldest_allowed):
            gone = self.entries.popleft()
            self.characters -= len(gone.content)
            removed.append(gone)
        return removed

    def is_drop(self, entry: QueueEntry) -> bool:
        """True when ``entry`` (just removed) was a message nobody answered or is answering."""
        return entry.role == USER_ROLE and not entry.answered and entry.entry_id != self.in_flight

    def next_pending(self) -> QueueEntry | None:
        """The oldest unanswered message, or None."""
        return next((e for e in self.entries if e.role == USER_ROLE and not e.answered), None)

    def context_for(self, entry: QueueEntry) -> list[Turn]:
        """The turns the model sees for ``entry``: what came before it in the queue, then it.

        Unanswered messages before it (none, as they are answered in order) and
        after it are left out, so each answer is to its own message.
        """
        turns: list[Turn] = []
        for current in self.entries:
            if current.entry_id == entry.entry_id:
                break
            if current.role == ASSISTANT_ROLE or current.answered:
                turns.append(Turn(current.role, current.content))
        turns.append(Turn(USER_ROLE, entry.content))
        return turns

    def add_answer(self, answered: QueueEntry, answer: QueueEntry,
                   now: datetime) -> tuple[bool, list[QueueEntry]]:
        """Mark ``answered`` and put ``answer`` just after it; (kept, entries trimmed).

        When the question itself was trimmed while it was being answered, the
        answer is not kept either (it would be context without its question, and
        would push out messages still waiting).
        """
        answered.answered = True
        position = next((i for i, e in enumerate(self.entries)
                         if e.entry_id == answered.entry_id), None)
        if position is None:
            return False, []
        # Just after its question, so later unanswered messages keep their place.
        self.entries.insert(position + 1, answer)
        self.characters += len(answer.content)
        return True, self.trim(now)
