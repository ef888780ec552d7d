"""Replies and slots: what a match found, the reply rendered from it, and the values
captured from a message."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from whatsease.bot.catalogue import BotSettings, Intent
from whatsease.bot.state import BotState

if TYPE_CHECKING:
    from whatsease.bot.folding import TextFolder

# A captured slot value is cut to this many characters before it is echoed or remembered.
MAX_SLOT_CHARS = 100
# Filled in for {user_name} when the caller does not know the user's name.
DEFAULT_USER_NAME = "there"


@dataclass(frozen=True)
class Match:
    """How a message was classified, before any reply is rendered."""

    intent: Intent | None
    confidence: float
    slots: dict[str, str]
    # The best few candidates as (intent name, score), best first: for bot-eval and logs.
    ranking: tuple[tuple[str, float], ...] = ()

    @property
    def intent_name(self) -> str | None:
        return self.intent.name if self.intent is not None else None


@dataclass(frozen=True)
class Reply:
    """The bot's answer and the user's new state.

    `intent` is None when nothing matched confidently: `text` is then one of the
    catalogue's fallback replies and the caller may try a language model instead.
    `store` is ("feedback", the user's text) when the intent asks for the message to
    be kept; `action` is the intent's `action` string (e.g. "handoff") for the caller.
    """

    text: str
    intent: str | None
    confidence: float
    slots: dict[str, str]
    state: BotState
    store: tuple[str, str] | None = None
    action: str | None = None
    # The language of the reply (ISO 639-1), and the one the user just chose
    # ("speak Spanish"; None when the message chose none) for the caller to keep.
    language: str = ""
    chosen_language: str | None = None

    @property
    def is_fallback(self) -> bool:
        return self.intent is None


def capture_slots(intent: Intent, text: str) -> dict[str, str] | None:
    """Every slot's value found in `text`, or None if any slot finds nothing."""
    values: dict[str, str] = {}
    for slot, pattern in intent.slots.items():
        found = pattern.search(text)
        if found is None:
            return None
        if slot in found.groupdict() and found.group(slot) is not None:
            value = found.group(slot)
        elif pattern.groups:
            value = next((g for g in found.groups() if g is not None), found.group(0))
        else:
            value = found.group(0)
        value = value.strip()[:MAX_SLOT_CHARS]
        if not value:
            return None
        values[slot] = value
    return values


def mark_slots(folder: TextFolder, intent: Intent, text: str, tokens: list[str]) -> list[str]:
    """An example's tokens with its slot values as "<slot>" tokens."""
    values = capture_slots(intent, text)
    if values is None:
        return tokens
    pairs = [(t, 1.0) for t in tokens]
    return [t for t, _ in substitute_slots(folder, pairs, values)]


def substitute_slots(
    folder: TextFolder, tokens: list[tuple[str, float]], values: Mapping[str, str]
) -> list[tuple[str, float]]:
    """Replace each slot's value words with one "<slot>" token."""
    result = list(tokens)
    for slot, value in values.items():
        needle = [t for t, _ in folder.canonical(value, correct=False)]
        words = [t for t, _ in result]
        for start in range(len(words) - len(needle) + 1):
            if needle and words[start : start + len(needle)] == needle:
                result[start : start + len(needle)] = [(f"<{slot}>", 1.0)]
                break
        else:
            result.append((f"<{slot}>", 1.0))
    return result


def render(
    bot: BotSettings,
    intent: Intent | None,
    slots: Mapping[str, str],
    memory: Mapping[str, str],
    now: datetime,
    user_name: str,
    rng: random.Random,
) -> str:
    """The reply to a message `intent` answered (None: a fallback), with its
    placeholders filled."""
    values = _builtins(bot, now, user_name)
    if intent is None:
        options: Sequence[str] = bot.fallback
    else:
        values.update(memory)
        values.update(slots)
        missing = intent.needs_memory - set(values)
        options = intent.responses_missing if missing else intent.responses
    template = rng.choice(options)
    # Placeholders were checked at load time to be bare known names.
    return template.format_map(values)


def render_line(bot: BotSettings, options: Sequence[str], now: datetime, user_name: str,
                rng: random.Random) -> str:
    """One of `options` (which use only the built-in placeholders), filled in."""
    return rng.choice(options).format_map(_builtins(bot, now, user_name))


def _builtins(bot: BotSettings, now: datetime, user_name: str) -> dict[str, str]:
    return {
        "user_name": user_name.strip() or DEFAULT_USER_NAME,
        "bot_name": bot.name,
        "time": format_time(now),
        "date": format_date(now, bot.language),
    }


# Day and month names of the languages {date} speaks besides English (Monday first).
_DATE_NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "es": (
        ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
        ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
         "septiembre", "octubre", "noviembre", "diciembre"),
        "{weekday} {day} de {month} de {year}",
    ),
    "hi": (
        ("सोमवार", "मंगलवार", "बुधवार", "गुरुवार", "शुक्रवार", "शनिवार", "रविवार"),
        ("जनवरी", "फ़रवरी", "मार्च", "अप्रैल", "मई", "जून", "जुलाई", "अगस्त", "सितंबर",
         "अक्टूबर", "नवंबर", "दिसंबर"),
        "{weekday}, {day} {month} {year}",
    ),
}  # fmt: skip


def format_date(now: datetime, language: str = "en") -> str:
    """`now` as {date} shows it in `language`: "Thursday 1 January 2026", "jueves 1 de
    enero de 2026", "गुरुवार, 1 जनवरी 2026" (English for languages it does not know)."""
    names = _DATE_NAMES.get(language)
    if names is None:
        return f"{now:%A} {now.day} {now:%B %Y}"
    weekdays, months, pattern = names
    return pattern.format(weekday=weekdays[now.weekday()], day=now.day,
                          month=months[now.month - 1], year=now.year)


def format_time(now: datetime) -> str:
    """`now` as {time} shows it: "14:05 UTC"."""
    zone = now.tzname() or "UTC"
    return f"{now:%H:%M} {zone}"
