"""Quarter hours added up in this process from the documents an index walk returns.

The messages of the messenger and of support (read by conversation) and the
assistant's turns (read by time) are the bulk of the history: on the embedded
database a pipeline's stages cost several times the walk itself for each
document (docs/analytics.md, measured), so these are found with a plain find
and their figures worked out here. A message counts for a channel and
direction, the person (or support conversation) who wrote, a support bot's
reply and whether it fell back, the customer's language, and the newest texts
of each quarter hour to score for sentiment; a turn for a reply or a
fallback, its intent, the message that fell back and its language.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from whatsease.analytics.slots import Key, Piece, Texts, floor, pseudonym, read_rows, utc
from whatsease.storage.analytics import CHANNEL_PREFIXES, Spans

# The kinds of support message that count: system notes ("Ana joined") do not.
SUPPORT_KINDS = frozenset({"customer", "bot", "agent"})
# A turn answered by these fell back: the catalogue did not know the message
# (a language model's answer too).
FALLBACK_SOURCES = frozenset({"fallback", "llm", "llm_error"})


def channel(doc: dict[str, Any], default: str) -> str:
    """What a channel integration stored, else the contact's prefix (wa:, tg:), else ``default``."""
    stored = doc.get("channel")
    if stored is not None:
        return str(stored)
    sender, recipient = doc.get("sender"), doc.get("recipient")
    for prefix, name in CHANNEL_PREFIXES:
        if ((isinstance(sender, str) and sender.startswith(prefix))
                or (isinstance(recipient, str) and recipient.startswith(prefix))):
            return name
    return default


class _Fold:
    """Pieces by (quarter hour, current period?) and the texts to score, as messages come."""

    def __init__(self, spans: Spans, sample: int, field: str = "timestamp") -> None:
        self.spans = spans
        self.field = field
        self.sample = sample
        self.split = utc(spans.split)
        self.ranges = [(utc(a), utc(b)) for a, b in spans.ranges]
        self.pieces: dict[Key, Piece] = {}
        # Per key: (timestamp, text, language) of the texts that may be scored.
        self.candidates: dict[Key, list[tuple[datetime, str, str]]] = {}

    def key(self, doc: dict[str, Any]) -> Key | None:
        """The message's key, or None when it is outside the ranges (or not of the org)."""
        moment = doc.get(self.field)
        if not isinstance(moment, datetime):
            return None
        moment = utc(moment)
        if not any(low <= moment < high for low, high in self.ranges):
            return None
        if self.spans.org is not None and doc.get("org") != self.spans.org:
            return None
        return floor(moment), moment >= self.split

    def piece(self, key: Key) -> Piece:
        found = self.pieces.get(key)
        if found is None:
            found = self.pieces[key] = Piece()
        return found

    def count(self, piece: Piece, doc: dict[str, Any], default: str, direction: str) -> None:
        counted = (channel(doc, default), direction)
        piece.counts[counted] = piece.counts.get(counted, 0) + 1

    def offer(self, key: Key, doc: dict[str, Any]) -> None:
        if self.sample > 0:
            self.candidates.setdefault(key, []).append(
                (utc(doc["timestamp"]), str(doc.get("content") or ""),
                 str(doc.get("language") or "en")))

    def finish(self) -> tuple[dict[Key, Piece], Texts]:
        texts: Texts = {}
        for key, found in self.candidates.items():
            found.sort(key=lambda one: one[0], reverse=True)
            texts[key] = [(text, language) for _at, text, language in found[:self.sample]]
        return self.pieces, texts


def fold_messenger(docs: Iterable[dict[str, Any]], spans: Spans, *,
                   sample: int) -> tuple[dict[Key, Piece], Texts]:
    """The messenger's messages by quarter hour: counts by channel and direction, the
    people who wrote, and what people wrote to a bot (person-to-person chats are
    private: never read for their words)."""
    fold = _Fold(spans, sample)
    for doc in docs:
        key = fold.key(doc)
        if key is None:
            continue
        piece = fold.piece(key)
        from_bot = bool(doc.get("is_bot_response"))
        fold.count(piece, doc, "web", "out" if from_bot else "in")
        sender = doc.get("sender")
        if not from_bot and isinstance(sender, str):
            piece.people.add(pseudonym(sender))
        recipient = doc.get("recipient")
        if (isinstance(recipient, str) and recipient.startswith("bot:")
                and doc.get("deleted") is False):
            fold.offer(key, doc)
    return fold.finish()


def fold_support(docs: Iterable[dict[str, Any]], spans: Spans, *, fallback_texts: list[str],
                 sample: int) -> tuple[dict[Key, Piece], Texts]:
    """Support's messages by quarter hour: counts by channel and direction, the bots'
    replies and fallbacks (a reply that is one of ``fallback_texts``), the
    conversations whose customer wrote, customers' languages and texts."""
    fold = _Fold(spans, sample)
    fallbacks = set(fallback_texts)
    for doc in docs:
        kind = doc.get("kind")
        if kind not in SUPPORT_KINDS:
            continue
        key = fold.key(doc)
        if key is None:
            continue
        piece = fold.piece(key)
        customer = kind == "customer"
        fold.count(piece, doc, "widget", "in" if customer else "out")
        if kind == "bot":
            fell_back = doc.get("content") in fallbacks
            piece.bot[fell_back] = piece.bot.get(fell_back, 0) + 1
        if customer:
            conversation = doc.get("conversation_id")
            if isinstance(conversation, str):
                piece.people.add(pseudonym(conversation))
            stored = doc.get("language")
            language = "en" if stored is None else str(stored)
            piece.languages[language] = piece.languages.get(language, 0) + 1
            fold.offer(key, doc)
    return fold.finish()


def fold_turns(docs: Iterable[dict[str, Any]], spans: Spans) -> dict[Key, Piece]:
    """The assistant's turns by quarter hour: replies and fallbacks, intents, the messages
    that fell back (trimmed, lower-cased; with the last time asked) and the language
    each was answered in (turns from before it spoke several have none: English)."""
    fold = _Fold(spans, 0, field="at")
    for doc in docs:
        key = fold.key(doc)
        if key is None:
            continue
        piece = fold.piece(key)
        fell_back = doc.get("source") in FALLBACK_SOURCES
        piece.bot[fell_back] = piece.bot.get(fell_back, 0) + 1
        intent = doc.get("intent")
        if isinstance(intent, str):
            piece.intents[intent] = piece.intents.get(intent, 0) + 1
        message = doc.get("message")
        if fell_back and isinstance(message, str):
            asked = message.strip().lower()
            moment = utc(doc["at"])
            seen, last = piece.fallbacks.get(asked, (0, moment))
            piece.fallbacks[asked] = (seen + 1, max(last, moment))
        stored = doc.get("lang")
        language = "en" if stored is None else str(stored)
        piece.languages[language] = piece.languages.get(language, 0) + 1
    return fold.pieces


def fold_source(name: str, rows: list[dict[str, Any]], spans: Spans, *,
                fallback_texts: list[str], sample: int) -> tuple[dict[Key, Piece], Texts]:
    """The rows of source ``name``'s plan added up per quarter hour, with the texts
    sampled for sentiment: the hot collections and the assistant's turns come as
    documents, the other sources already grouped by the database."""
    if name == "messenger_messages":
        return fold_messenger(rows, spans, sample=sample)
    if name == "support_messages":
        return fold_support(rows, spans, fallback_texts=fallback_texts, sample=sample)
    if name == "bot_turns":
        return fold_turns(rows, spans), {}
    return read_rows(rows)
