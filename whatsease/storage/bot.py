"""The assistants' records: each user's state with a bot, the turn log, and kept notes.

Three collections: ``bot_contexts`` (one document per user and bot: context, memory
and recent turns, as the bot's state serialises them), ``bot_turns`` (one entry per
answered message, newest first by ``_id``) and ``bot_feedback`` (what a user asked
the bot to keep, e.g. feedback).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from whatsease.storage.models import new_id

STATE_COLLECTION = "bot_contexts"
TURNS_COLLECTION = "bot_turns"
NOTES_COLLECTION = "bot_feedback"


@dataclass(frozen=True)
class BotTurn:
    """One message a bot answered, and how."""

    user: str
    bot: str
    message_id: str
    message: str
    intent: str | None
    confidence: float
    reply: str
    reply_message_id: str
    source: str | None  # "intent", "fallback", "llm", "llm_error"
    at: datetime
    id: str = ""  # given on insert
    # The language the turn was answered in (ISO 639-1; None for turns logged before
    # the bot spoke several languages).
    lang: str | None = None

    def to_doc(self) -> dict[str, object]:
        return {"_id": self.id, "user": self.user, "bot": self.bot,
                "message_id": self.message_id, "message": self.message,
                "intent": self.intent, "confidence": self.confidence, "reply": self.reply,
                "reply_message_id": self.reply_message_id, "source": self.source,
                "at": self.at, "lang": self.lang}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> BotTurn:
        return cls(user=doc["user"], bot=doc["bot"], message_id=doc["message_id"],
                   message=doc["message"], intent=doc["intent"],
                   confidence=doc["confidence"], reply=doc["reply"],
                   reply_message_id=doc["reply_message_id"], source=doc.get("source"),
                   at=doc["at"], id=doc["_id"], lang=doc.get("lang"))


@dataclass(frozen=True)
class BotNote:
    """A message a user asked a bot to keep, under a kind (e.g. "feedback")."""

    user: str
    bot: str
    kind: str
    text: str
    at: datetime


class BotRepo:
    """Reads and writes the assistants' records; the only code that knows their shape."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._states = db[STATE_COLLECTION]
        self._turns = db[TURNS_COLLECTION]
        self._notes = db[NOTES_COLLECTION]

    @staticmethod
    def _key(user: str, bot: str) -> str:
        return f"{user} {bot}"

    async def load_state(self, user: str, bot: str) -> dict[str, Any] | None:
        """The state `save_state` stored for `user` with `bot`, or None if none is."""
        doc = await self._states.find_one({"_id": self._key(user, bot)})
        if doc is None:
            return None
        state = doc.get("state")
        return state if isinstance(state, dict) else None

    async def save_state(self, user: str, bot: str, state: Mapping[str, object], *,
                         at: datetime) -> None:
        """Replace `user`'s state with `bot` (a serialised state: plain values and dates)."""
        await self._states.replace_one(
            {"_id": self._key(user, bot)},
            {"user": user, "bot": bot, "state": dict(state), "updated_at": at}, upsert=True)

    async def forget(self, user: str, bot: str) -> bool:
        """Drop `user`'s state with `bot`; whether there was one."""
        result = await self._states.delete_one({"_id": self._key(user, bot)})
        return result.deleted_count == 1

    async def erase(self, user: str) -> None:
        """Drop everything any bot holds about `user` (the account is being erased)."""
        for collection in (self._states, self._turns, self._notes):
            await collection.delete_many({"user": user})

    async def add_turn(self, turn: BotTurn) -> BotTurn:
        """Log an answered message; returns it with its id."""
        stored = BotTurn(**{**turn.__dict__, "id": turn.id or new_id()})
        await self._turns.insert_one(stored.to_doc())
        return stored

    async def turns(self, user: str, bot: str, *, before: str | None,
                    limit: int) -> list[BotTurn]:
        """`user`'s turns with `bot`, newest first, older than the turn `before` if given."""
        filters: dict[str, object] = {"user": user, "bot": bot}
        if before:
            filters["_id"] = {"$lt": before}
        docs = await self._turns.find(filters).sort("_id", -1).limit(limit).to_list()
        return [BotTurn.from_doc(doc) for doc in docs]

    async def add_note(self, note: BotNote) -> None:
        """Keep a message the user asked the bot to keep."""
        await self._notes.insert_one({"_id": new_id(), "user": note.user, "bot": note.bot,
                                      "kind": note.kind, "text": note.text, "at": note.at})

    async def notes(self, user: str, *, kind: str | None = None,
                    limit: int = 100) -> list[BotNote]:
        """What `user` asked bots to keep (of one `kind` if given), newest first."""
        filters: dict[str, object] = {"user": user}
        if kind is not None:
            filters["kind"] = kind
        docs = await self._notes.find(filters).sort("_id", -1).limit(limit).to_list()
        return [BotNote(user=d["user"], bot=d["bot"], kind=d["kind"], text=d["text"],
                        at=d["at"]) for d in docs]
