"""Quarter hours of the hot collections: which a report reads, which it keeps, and their figures.

Messages are the bulk of the history, and their collections carry no time
index (storage/analytics.py), so their figures are computed per quarter hour
and a quarter hour that can no longer change is kept (`Piece.to_doc`): a
report reads kept ones by key and computes only the rest, in one pipeline per
collection. The other collections are indexed and small, and read live.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from whatsease.storage.analytics import SLOT

SLOT_SECS = int(SLOT.total_seconds())
DAY_SECS = 86400
PER_DAY = DAY_SECS // SLOT_SECS
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Uncovered ranges read in one pipeline; past this (a year with every other
# quarter hour kept) one covering range is read instead and kept ones skipped.
MAX_RANGES = 48


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def floor(moment: datetime) -> datetime:
    """The start of the quarter hour (UTC) holding ``moment``."""
    moment = utc(moment)
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % SLOT_SECS, UTC)


def ceil(moment: datetime) -> datetime:
    start = floor(moment)
    return start if start == utc(moment) else start + SLOT


def nearest(moment: datetime) -> datetime:
    """The quarter hour boundary nearest ``moment`` (half way rounds up)."""
    return floor(utc(moment) + SLOT / 2)


@lru_cache(maxsize=200_000)
def day_and_name(slot: datetime) -> tuple[str, str]:
    """The UTC day a quarter hour is kept under, and its name in that day's document."""
    # A year's report and its previous period name 70,000 quarter hours per source.
    secs = int(slot.timestamp())
    return _day(secs // DAY_SECS), f"q{secs % DAY_SECS // SLOT_SECS:02d}"


@lru_cache(maxsize=2048)
def _day(number: int) -> str:
    # A report names up to 733 days, each for up to 96 quarter hours.
    return (EPOCH + timedelta(days=number)).date().isoformat()


def whole_slots(start: datetime, split: datetime, end: datetime,
                closed_before: datetime) -> list[datetime]:
    """Quarter hours wholly inside ``[start, end)``, not cut by ``split``, ended before
    ``closed_before``: the ones that can be kept."""
    result = []
    slot = ceil(start)
    while slot + SLOT <= end and slot + SLOT <= closed_before:
        if not slot < split < slot + SLOT:
            result.append(slot)
        slot += SLOT
    return result


def uncovered_runs(start: datetime, end: datetime,
                   covered: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` minus the ``covered`` ranges, as ordered ranges (at most `MAX_RANGES`)."""
    result: list[tuple[datetime, datetime]] = []
    cursor = start
    for low, high in sorted(covered):
        if low > cursor:
            result.append((cursor, low))
        cursor = max(cursor, high)
    if cursor < end:
        result.append((cursor, end))
    if len(result) > MAX_RANGES:
        return [(result[0][0], result[-1][1])]
    return result


def pseudonym(person: str) -> str:
    """What a quarter hour keeps of a person or conversation: enough to count them
    apart, not their address (64 bits: a collision among a million is ~1 in 10^7)."""
    return hashlib.blake2b(person.encode(), digest_size=8).hexdigest()


@dataclass
class Piece:
    """The figures of one quarter hour of one pipeline (or its part on one side of the
    current period's start)."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    people: set[str] = field(default_factory=set)
    bot: dict[bool, int] = field(default_factory=dict)
    languages: dict[str, int] = field(default_factory=dict)
    sentiment: dict[str, float] = field(default_factory=dict)
    intents: dict[str, int] = field(default_factory=dict)
    # Fallback message (lower-cased) -> (times asked, last asked).
    fallbacks: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    started: int = 0
    # (agent, seconds from start to end) of each conversation that ended.
    closed: list[tuple[str | None, float]] = field(default_factory=list)
    # (first responder, first response secs, queue wait secs) of each handoff.
    handoffs: list[tuple[str | None, float | None, float | None]] = field(
        default_factory=list)

    def to_doc(self) -> dict[str, Any]:
        """What is kept: only the fields that hold something (an empty quarter hour is {})."""
        doc: dict[str, Any] = {}
        if self.counts:
            doc["counts"] = [[c, d, n] for (c, d), n in sorted(self.counts.items())]
        if self.people:
            doc["people"] = sorted(self.people)
        if self.bot:
            doc["bot"] = [[f, n] for f, n in sorted(self.bot.items())]
        if self.languages:
            doc["languages"] = [[lang, n] for lang, n in sorted(self.languages.items())]
        if any(self.sentiment.values()):
            doc["sentiment"] = dict(self.sentiment)
        if self.intents:
            doc["intents"] = [[i, n] for i, n in sorted(self.intents.items())]
        if self.fallbacks:
            doc["fallbacks"] = [[m, n, last] for m, (n, last) in sorted(self.fallbacks.items())]
        if self.started:
            doc["started"] = self.started
        if self.closed:
            doc["closed"] = [[a, v] for a, v in self.closed]
        if self.handoffs:
            doc["handoffs"] = [[r, f, w] for r, f, w in self.handoffs]
        return doc

    def merge(self, other: Piece) -> None:
        """Add ``other``'s figures (the same quarter hour, read in another part)."""
        for key, n in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + n
        self.people |= other.people
        for fallback, n in other.bot.items():
            self.bot[fallback] = self.bot.get(fallback, 0) + n
        for language, n in other.languages.items():
            self.languages[language] = self.languages.get(language, 0) + n
        for intent, n in other.intents.items():
            self.intents[intent] = self.intents.get(intent, 0) + n
        for message, (n, last) in other.fallbacks.items():
            seen, latest = self.fallbacks.get(message, (0, last))
            self.fallbacks[message] = (seen + n, max(latest, last))
        for name, value in other.sentiment.items():
            self.sentiment[name] = self.sentiment.get(name, 0.0) + value
        self.started += other.started
        self.closed += other.closed
        self.handoffs += other.handoffs

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Piece:
        return cls(counts={(c, d): int(n) for c, d, n in doc.get("counts", [])},
                   people=set(doc.get("people", [])),
                   bot={bool(f): int(n) for f, n in doc.get("bot", [])},
                   languages={lang: int(n) for lang, n in doc.get("languages", [])},
                   sentiment={k: float(v) for k, v in doc.get("sentiment", {}).items()},
                   intents={i: int(n) for i, n in doc.get("intents", [])},
                   fallbacks={m: (int(n), utc(last)) for m, n, last in doc.get("fallbacks", [])},
                   started=int(doc.get("started", 0)),
                   closed=[(a, float(v)) for a, v in doc.get("closed", [])],
                   handoffs=[(r, _number(f), _number(w)) for r, f, w in doc.get("handoffs", [])])


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


Key = tuple[datetime, bool]
Texts = dict[Key, list[tuple[str, str]]]


def read_rows(rows: list[dict[str, Any]]) -> tuple[dict[Key, Piece], Texts]:
    """A hot pipeline's rows as pieces by (quarter hour, current period?), and the
    texts to score for sentiment by the same key."""
    facet = rows[0] if rows else {}
    pieces: dict[Key, Piece] = {}
    texts: Texts = {}

    def piece(key: dict[str, Any]) -> Piece:
        return pieces.setdefault((utc(key["s"]), bool(key["n"])), Piece())

    for row in facet.get("counts", []):
        key = row["_id"]
        counts = piece(key).counts
        counts[(key["c"], key["d"])] = counts.get((key["c"], key["d"]), 0) + int(row["n"])
    for row in facet.get("people", []):
        piece(row["_id"]).people.update(pseudonym(p) for p in row["people"]
                                        if isinstance(p, str))
    for row in facet.get("bot", []):
        bot = piece(row["_id"]).bot
        fallback = bool(row["_id"]["f"])
        bot[fallback] = bot.get(fallback, 0) + int(row["n"])
    for row in facet.get("languages", []):
        languages = piece(row["_id"]).languages
        languages[row["_id"]["l"]] = languages.get(row["_id"]["l"], 0) + int(row["n"])
    for row in facet.get("intents", []):
        intents = piece(row["_id"]).intents
        intents[row["_id"]["i"]] = intents.get(row["_id"]["i"], 0) + int(row["n"])
    for row in facet.get("fallbacks", []):
        message = row["_id"]["m"]
        if isinstance(message, str):
            piece(row["_id"]).fallbacks[message] = (int(row["n"]), utc(row["last"]))
    for row in facet.get("started", []):
        piece(row["_id"]).started += int(row["n"])
    for row in facet.get("closed", []):
        piece(row["_id"]).closed.extend((r.get("a"), float(r["v"])) for r in row["rows"])
    for row in facet.get("handoffs", []):
        piece(row["_id"]).handoffs.extend((r.get("r"), _number(r.get("f")), _number(r.get("w")))
                                          for r in row["rows"])
    for row in facet.get("sample", []):
        piece(row["_id"])
        texts[(utc(row["_id"]["s"]), bool(row["_id"]["n"]))] = [
            (str(t.get("text") or ""), str(t.get("language") or "en")) for t in row["texts"]]
    return pieces, texts


def whole_days(kept: dict[str, dict[str, Any]], *, suffix: str) -> dict[str, dict[str, Any]]:
    """Each day of ``kept`` (day key → quarter hour name → figures) that has all its
    quarter hours, added up as one figure under its key plus ``suffix``."""
    rollups: dict[str, dict[str, Any]] = {}
    for day_key, figures in kept.items():
        if len(figures) >= PER_DAY:
            day_piece = Piece()
            for one in figures.values():
                if one:
                    day_piece.merge(Piece.from_doc(one))
            rollups[day_key + suffix] = day_piece.to_doc()
    return rollups
