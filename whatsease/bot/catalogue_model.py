"""Intent catalogues' dataclasses (`Catalogue`, `Intent`, `BotSettings`), `CatalogueError`,
the defaults and the value checks the loaders share (catalogue.py, catalogue_i18n.py)."""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CATALOGUE_PATH = Path(__file__).with_name("catalogue.toml")

# A message must score at least this (0..1) to be answered with an intent; below it the
# bot falls back. Measured on tests/bot/cases.jsonl: see docs/bot.md.
DEFAULT_THRESHOLD = 0.45
# The best intent must beat the runner-up (a different intent) by this much, otherwise
# the message is ambiguous and the bot falls back rather than guess.
DEFAULT_MARGIN = 0.0
# A context set by `context_out` lives for this many user messages or minutes,
# whichever ends first: long enough for a reply, short enough not to surprise later.
DEFAULT_CONTEXT_TURNS = 3
DEFAULT_CONTEXT_MINUTES = 5.0
# Bounds of the per-user turn history (user and bot messages), oldest dropped first.
DEFAULT_HISTORY_MAX_MESSAGES = 20
DEFAULT_HISTORY_MAX_CHARS = 4000
DEFAULT_HISTORY_MAX_MINUTES = 24 * 60.0

# Placeholders every response may use; the engine fills them in at reply time.
BUILTIN_PLACEHOLDERS: frozenset[str] = frozenset({"user_name", "bot_name", "time", "date"})

BOT_KEYS = frozenset(
    {
        "name", "fallback", "threshold", "margin", "context_turns", "context_minutes",
        "history_max_messages", "history_max_chars", "history_max_minutes", "synonyms",
        "languages", "default_language", "i18n", "language_detection",
    }
)  # fmt: skip
INTENT_KEYS = frozenset(
    {
        "name", "examples", "responses", "responses_missing", "context_in", "context_out",
        "slots", "remember", "forget", "store", "action", "catch_all", "threshold",
        "reminder", "i18n",
    }
)  # fmt: skip
# The language a catalogue without `languages` speaks.
DEFAULT_LANGUAGE = "en"
# What an intent's [intents.i18n.<language>] table may give: its texts in that language.
INTENT_TEXT_KEYS = ("examples", "responses", "responses_missing", "reminder")
BOT_TEXT_KEYS = frozenset({"fallback", "switched", "synonyms"})
# ISO 639-1 codes: two lower-case letters.
LANGUAGE_CODE = re.compile(r"[a-z]{2}\Z")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# Builds the error for one key of the table being checked.
Fail = Callable[[str, str], "CatalogueError"]


class CatalogueError(ValueError):
    """A catalogue file is unreadable or invalid.

    The message names the file, the intent (when there is one) and the key, e.g.
    ``catalogue.toml: intent 'order_status': 'examples' must be a non-empty list of strings``.
    """

    def __init__(self, source: str, detail: str, *, intent: str | None = None, key: str = ""):
        where = f"intent '{intent}': " if intent is not None else ""
        super().__init__(f"{source}: {where}{detail}")
        self.source = source
        self.intent = intent
        self.key = key


@dataclass(frozen=True)
class Intent:
    """One thing the bot understands: how people say it and what it answers."""

    name: str
    examples: tuple[str, ...]
    responses: tuple[str, ...]
    # Used instead of `responses` when one of the memory keys they need is unknown.
    responses_missing: tuple[str, ...] = ()
    context_in: str | None = None
    context_out: str | None = None
    slots: Mapping[str, re.Pattern[str]] = field(default_factory=dict)
    remember: tuple[str, ...] = ()
    forget: tuple[str, ...] = ()
    store: str | None = None
    action: str | None = None
    catch_all: bool = False
    # The confidence this intent needs instead of [bot] threshold (None: that one);
    # higher for an intent that starts a flow, which must be clearly wanted.
    threshold: float | None = None
    # For a catch-all intent: said after the answer to a question asked while its
    # context waits, since the flow is still open.
    reminder: tuple[str, ...] = ()
    # Memory keys the responses use (filled in by the loader).
    needs_memory: frozenset[str] = frozenset()


@dataclass(frozen=True)
class BotSettings:
    """The catalogue's [bot] table."""

    name: str
    fallback: tuple[str, ...]
    threshold: float = DEFAULT_THRESHOLD
    margin: float = DEFAULT_MARGIN
    context_turns: int = DEFAULT_CONTEXT_TURNS
    context_minutes: float = DEFAULT_CONTEXT_MINUTES
    history_max_messages: int = DEFAULT_HISTORY_MAX_MESSAGES
    history_max_chars: int = DEFAULT_HISTORY_MAX_CHARS
    history_max_minutes: float = DEFAULT_HISTORY_MAX_MINUTES
    # canonical word or phrase -> the words and phrases that mean the same here
    synonyms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The languages the catalogue speaks (ISO 639-1), the default one first.
    languages: tuple[str, ...] = (DEFAULT_LANGUAGE,)
    # Said when a person sets this language ("speak Spanish"); empty: the built-in line.
    switched: tuple[str, ...] = ()
    # The language of these settings' texts (fallback, switched), for {date}.
    language: str = DEFAULT_LANGUAGE
    # Language detection in lingua's low-accuracy mode: 6 MiB instead of about 95, a
    # little less sure on short messages (docs/bot.md, "Languages").
    light_detection: bool = False

    @property
    def default_language(self) -> str:
        """The language of the catalogue's top-level texts, spoken when nothing else is known."""
        return self.languages[0]


@dataclass(frozen=True)
class Catalogue:
    """A validated catalogue: bot settings and intents in file order."""

    source: str
    bot: BotSettings
    intents: tuple[Intent, ...]
    # Every other language's catalogue: the same intents with that language's texts.
    translations: Mapping[str, Catalogue] = field(default_factory=dict, repr=False)
    # The language this catalogue's texts are in.
    language: str = DEFAULT_LANGUAGE

    @property
    def languages(self) -> tuple[str, ...]:
        """Every language the catalogue speaks, the default first."""
        return self.bot.languages

    def in_language(self, language: str) -> Catalogue:
        """This catalogue with `language`'s examples and replies; raises `KeyError` for
        a language the catalogue does not speak."""
        if language == self.language:
            return self
        return self.translations[language]

    def intent(self, name: str) -> Intent:
        """Return the intent called `name`; raises `KeyError` if there is none."""
        for intent in self.intents:
            if intent.name == name:
                return intent
        raise KeyError(name)

    @property
    def memory_keys(self) -> frozenset[str]:
        """Every key some intent stores in a user's memory."""
        return frozenset(key for intent in self.intents for key in intent.remember)

    @property
    def contexts(self) -> frozenset[str]:
        """Every context some intent sets with `context_out`."""
        return frozenset(i.context_out for i in self.intents if i.context_out is not None)


def string_list(value: object) -> tuple[str, ...] | None:
    """The value as a tuple of non-blank strings, or None if it is anything else."""
    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(v, str) and v.strip() for v in value):
        return None
    return tuple(value)


def name_list(raw: Mapping[str, Any], key: str, fail: Fail) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise fail(key, "must be a list of names")
    return tuple(value)


def optional_string(raw: Mapping[str, Any], key: str, fail: Fail) -> str | None:
    if key not in raw:
        return None
    value = raw[key]
    if not isinstance(value, str) or not value.strip():
        raise fail(key, "must be a non-empty string")
    return value.strip()


def number_value(table: Mapping[str, Any], key: str, default: float) -> float | None:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def placeholders(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}


def bad_placeholder(template: str, allowed: frozenset[str] | set[str]) -> str:
    """Why `template` cannot be rendered with `allowed` placeholders, or "" if it can."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        return f"has a malformed placeholder in {template!r} ({e}); write {{{{ for a brace"
    for _, field_name, spec, conversion in parsed:
        if field_name is None:
            continue
        # Only bare names: attribute or index access ("{name.__class__}") would let a
        # catalogue reach into Python objects.
        if not IDENTIFIER.match(field_name) or spec or conversion:
            return f"has placeholder {{{field_name}}} in {template!r}; use a bare {{name}}"
        if field_name not in allowed:
            return (
                f"uses unknown placeholder {{{field_name}}} in {template!r} "
                f"(known here: {', '.join(sorted(allowed))})"
            )
    return ""
