"""The conversation's state: what the bot knows about one user between messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

USER_ROLE = "user"
BOT_ROLE = "bot"


@dataclass
class HistoryEntry:
    """One message of the conversation with the bot (from the user or from the bot)."""

    role: str
    text: str
    at: datetime
    intent: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"role": self.role, "text": self.text, "at": self.at, "intent": self.intent}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> HistoryEntry:
        """Rebuild an entry from `to_dict` output; raises ValueError if it is not one."""
        return cls(
            role=str(data["role"]),
            text=str(data["text"]),
            at=_moment(data["at"]),
            intent=_optional_text(data.get("intent")),
        )


@dataclass
class BotState:
    """What the bot knows about one user between messages.

    Convert with `to_dict` / `from_dict` to store it (datetimes stay `datetime`
    objects, so MongoDB stores them as dates; naive ones read back are taken as UTC).
    `respond` never changes the state it is given: it returns a new one.
    """

    context: str | None = None
    context_expires_at: datetime | None = None
    context_turns_left: int = 0
    memory: dict[str, str] = field(default_factory=dict)
    history: list[HistoryEntry] = field(default_factory=list)
    # The language the bot last spoke with the user (None: not known yet), and the one
    # the user chose ("speak Spanish", or in settings), which detection never changes.
    language: str | None = None
    chosen_language: str | None = None

    def active_context(self, now: datetime) -> str | None:
        """The context still in force at `now`, or None if there is none or it expired."""
        if self.context is None or self.context_turns_left <= 0:
            return None
        if self.context_expires_at is not None and aware(self.context_expires_at) <= now:
            return None
        return self.context

    def to_dict(self) -> dict[str, object]:
        return {
            "context": self.context,
            "context_expires_at": self.context_expires_at,
            "context_turns_left": self.context_turns_left,
            "memory": dict(self.memory),
            "history": [entry.to_dict() for entry in self.history],
            "language": self.language,
            "chosen_language": self.chosen_language,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object] | None) -> BotState:
        """Rebuild a state from `to_dict` output; missing keys mean a new user.

        Raises ValueError if a value has the wrong type (not a stored state).
        """
        if not data:
            return cls()
        expires = data.get("context_expires_at")
        turns = data.get("context_turns_left") or 0
        memory = data.get("memory") or {}
        history = data.get("history") or []
        if not isinstance(turns, int) or not isinstance(memory, Mapping):
            raise ValueError("not a stored bot state: 'context_turns_left' or 'memory'")
        if not isinstance(history, list) or not all(isinstance(e, Mapping) for e in history):
            raise ValueError("not a stored bot state: 'history'")
        return cls(
            context=_optional_text(data.get("context")),
            context_expires_at=_moment(expires) if expires is not None else None,
            context_turns_left=turns,
            memory={str(k): str(v) for k, v in memory.items()},
            history=[HistoryEntry.from_dict(e) for e in history],
            language=_optional_text(data.get("language")),
            chosen_language=_optional_text(data.get("chosen_language")),
        )

    def copy(self) -> BotState:
        return BotState(
            context=self.context,
            context_expires_at=self.context_expires_at,
            context_turns_left=self.context_turns_left,
            memory=dict(self.memory),
            history=list(self.history),
            language=self.language,
            chosen_language=self.chosen_language,
        )


def bound_history(
    history: Sequence[HistoryEntry],
    *,
    max_messages: int,
    max_chars: int,
    max_age: timedelta,
    now: datetime,
) -> list[HistoryEntry]:
    """Return the newest part of `history` that fits every bound, oldest dropped first.

    Entries older than `max_age` go, then the oldest until at most `max_messages`
    remain and their texts total at most `max_chars`. A single entry longer than
    `max_chars` on its own is kept, cut to `max_chars` characters.
    """
    cutoff = now - max_age
    kept = [entry for entry in history if aware(entry.at) >= cutoff]
    if len(kept) > max_messages:
        kept = kept[len(kept) - max_messages :]
    total = sum(len(entry.text) for entry in kept)
    while len(kept) > 1 and total > max_chars:
        total -= len(kept.pop(0).text)
    if kept and total > max_chars:
        only = kept[0]
        kept = [HistoryEntry(only.role, only.text[:max_chars], only.at, only.intent)]
    return kept




def clear_context(state: BotState) -> None:
    """Forget the state's context (it was answered, or its turns ran out)."""
    state.context = None
    state.context_expires_at = None
    state.context_turns_left = 0


def aware(moment: datetime) -> datetime:
    """Datetimes from MongoDB come back naive but mean UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _moment(value: object) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"expected a datetime, got {type(value).__name__}")
    return aware(value)


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)
