"""Intent catalogues: TOML loading and validation. The dataclasses the engine reads are
in catalogue_model.py, the languages' `i18n` tables in catalogue_i18n.py; all are
importable from here."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from whatsease.bot.catalogue_i18n import (
    bot_text,
    check_translations,
    parse_languages,
    parse_synonyms,
    translate_bot,
    translate_intent,
)
from whatsease.bot.catalogue_model import (
    BOT_KEYS,
    BUILTIN_PLACEHOLDERS,
    DEFAULT_CATALOGUE_PATH,
    DEFAULT_CONTEXT_MINUTES,
    DEFAULT_CONTEXT_TURNS,
    DEFAULT_HISTORY_MAX_CHARS,
    DEFAULT_HISTORY_MAX_MESSAGES,
    DEFAULT_HISTORY_MAX_MINUTES,
    DEFAULT_LANGUAGE,
    DEFAULT_MARGIN,
    DEFAULT_THRESHOLD,
    IDENTIFIER,
    INTENT_KEYS,
    BotSettings,
    Catalogue,
    CatalogueError,
    Intent,
    bad_placeholder,
    name_list,
    number_value,
    optional_string,
    placeholders,
    string_list,
)

__all__ = [
    "BUILTIN_PLACEHOLDERS",
    "DEFAULT_CATALOGUE_PATH",
    "DEFAULT_CONTEXT_MINUTES",
    "DEFAULT_CONTEXT_TURNS",
    "DEFAULT_HISTORY_MAX_CHARS",
    "DEFAULT_HISTORY_MAX_MESSAGES",
    "DEFAULT_HISTORY_MAX_MINUTES",
    "DEFAULT_LANGUAGE",
    "DEFAULT_MARGIN",
    "DEFAULT_THRESHOLD",
    "BotSettings",
    "Catalogue",
    "CatalogueError",
    "Intent",
    "load_catalogue",
    "loads_catalogue",
    "parse_catalogue",
]


def load_catalogue(path: str | Path = DEFAULT_CATALOGUE_PATH) -> Catalogue:
    """Read and validate a TOML catalogue; raises `CatalogueError` naming what is wrong."""
    source = str(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise CatalogueError(source, f"cannot read the file ({e.strerror or e})") from e
    except tomllib.TOMLDecodeError as e:
        raise CatalogueError(source, f"not valid TOML ({e})") from e
    return parse_catalogue(data, source=source)


def loads_catalogue(text: str, source: str = "<string>") -> Catalogue:
    """Validate a catalogue given as TOML text (handy in tests)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CatalogueError(source, f"not valid TOML ({e})") from e
    return parse_catalogue(data, source=source)


def parse_catalogue(data: Mapping[str, Any], source: str = "<catalogue>") -> Catalogue:
    """Validate an already-parsed catalogue (the dict `tomllib` returns)."""
    unknown = sorted(set(data) - {"bot", "intents"})
    if unknown:
        raise CatalogueError(
            source, f"unknown top-level key '{unknown[0]}' (expected [bot] and [[intents]])"
        )
    bot_table = data.get("bot")
    if not isinstance(bot_table, Mapping):
        raise CatalogueError(source, "a [bot] table with 'name' and 'fallback' is required")
    bot = _parse_bot(bot_table, source)
    raw_intents = data.get("intents")
    if not isinstance(raw_intents, list) or not raw_intents:
        raise CatalogueError(source, "at least one [[intents]] table is required")

    # Memory keys are catalogue-wide (one intent remembers, another recalls), so
    # collect them before checking any response's placeholders.
    memory_keys: set[str] = set()
    for raw in raw_intents:
        if isinstance(raw, Mapping) and isinstance(raw.get("remember"), list):
            memory_keys.update(k for k in raw["remember"] if isinstance(k, str))

    intents: list[Intent] = []
    seen: set[str] = set()
    for position, raw in enumerate(raw_intents):
        intent = _parse_intent(raw, position, source, frozenset(memory_keys))
        if intent.name in seen:
            raise CatalogueError(
                source, f"'name' '{intent.name}' is used by more than one intent",
                intent=intent.name, key="name",
            )  # fmt: skip
        seen.add(intent.name)
        intents.append(intent)
    _check_contexts(intents, source)
    check_translations(bot, bot_table, raw_intents, source)
    translations: dict[str, Catalogue] = {}
    for language in bot.languages[1:]:
        translated_bot = translate_bot(bot, bot_table, language, source)
        translated = tuple(
            translate_intent(intent, raw, language, source, frozenset(memory_keys))
            for intent, raw in zip(intents, raw_intents, strict=True)
        )
        translations[language] = Catalogue(source=source, bot=translated_bot,
                                           intents=translated, language=language)
    return Catalogue(source=source, bot=bot, intents=tuple(intents), translations=translations,
                     language=bot.default_language)


def _parse_bot(table: Mapping[str, Any], source: str) -> BotSettings:
    def fail(key: str, detail: str) -> CatalogueError:
        return CatalogueError(source, f"[bot] '{key}' {detail}", key=key)

    for key in table:
        if key not in BOT_KEYS:
            raise fail(key, f"is not a known key (known: {', '.join(sorted(BOT_KEYS))})")
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise fail("name", "must be a non-empty string")
    fallback = string_list(table.get("fallback"))
    if fallback is None:
        raise fail("fallback", "must be a non-empty list of strings")
    for reply in fallback:
        bad = bad_placeholder(reply, BUILTIN_PLACEHOLDERS)
        if bad:
            raise fail("fallback", bad)

    threshold = number_value(table, "threshold", DEFAULT_THRESHOLD)
    if threshold is None or not 0.0 < threshold < 1.0:
        raise fail("threshold", "must be a number between 0 and 1 (exclusive)")
    margin = number_value(table, "margin", DEFAULT_MARGIN)
    if margin is None or not 0.0 <= margin < 1.0:
        raise fail("margin", "must be a number from 0 up to (not including) 1")
    turns = table.get("context_turns", DEFAULT_CONTEXT_TURNS)
    if isinstance(turns, bool) or not isinstance(turns, int) or turns < 1:
        raise fail("context_turns", "must be a whole number of at least 1")
    limits: dict[str, float] = {}
    for key, default in (
        ("context_minutes", DEFAULT_CONTEXT_MINUTES),
        ("history_max_minutes", DEFAULT_HISTORY_MAX_MINUTES),
    ):
        value = number_value(table, key, default)
        if value is None or value <= 0:
            raise fail(key, "must be a positive number of minutes")
        limits[key] = value
    counts: dict[str, int] = {}
    for key, default_count in (
        ("history_max_messages", DEFAULT_HISTORY_MAX_MESSAGES),
        ("history_max_chars", DEFAULT_HISTORY_MAX_CHARS),
    ):
        count = table.get(key, default_count)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise fail(key, "must be a whole number of at least 1")
        counts[key] = count

    synonyms = parse_synonyms(table.get("synonyms", {}), fail)

    languages = parse_languages(table, fail)
    detection = table.get("language_detection", "accurate")
    if detection not in ("accurate", "light"):
        raise fail("language_detection", "must be \"accurate\" or \"light\"")
    switched = bot_text(table, "switched", fail) if "switched" in table else ()
    return BotSettings(
        languages=languages,
        language=languages[0],
        light_detection=detection == "light",
        switched=switched,
        name=name.strip(),
        fallback=fallback,
        threshold=threshold,
        margin=margin,
        context_turns=turns,
        context_minutes=limits["context_minutes"],
        history_max_messages=counts["history_max_messages"],
        history_max_chars=counts["history_max_chars"],
        history_max_minutes=limits["history_max_minutes"],
        synonyms=synonyms,
    )


def _parse_intent(raw: object, position: int, source: str, memory_keys: frozenset[str]) -> Intent:
    if not isinstance(raw, Mapping):
        raise CatalogueError(source, f"intents[{position}] must be a table")
    name = raw.get("name")
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        raise CatalogueError(
            source,
            f"intents[{position}]: 'name' must be a string of letters, digits and underscores",
            key="name",
        )

    def fail(key: str, detail: str) -> CatalogueError:
        return CatalogueError(source, f"'{key}' {detail}", intent=name, key=key)

    for key in raw:
        if key not in INTENT_KEYS:
            raise fail(key, f"is not a known key (known: {', '.join(sorted(INTENT_KEYS))})")

    catch_all = raw.get("catch_all", False)
    if not isinstance(catch_all, bool):
        raise fail("catch_all", "must be true or false")
    context_in = optional_string(raw, "context_in", fail)
    context_out = optional_string(raw, "context_out", fail)
    if catch_all and context_in is None:
        # Without a context a catch-all intent would swallow every message.
        raise fail("catch_all", "needs 'context_in': a catch-all intent only works in a context")

    if catch_all and "examples" not in raw:
        examples: tuple[str, ...] = ()
    else:
        parsed = string_list(raw.get("examples"))
        if parsed is None:
            raise fail("examples", "must be a non-empty list of strings")
        examples = parsed

    slots: dict[str, re.Pattern[str]] = {}
    raw_slots = raw.get("slots", {})
    if not isinstance(raw_slots, Mapping):
        raise fail("slots", "must be a table of slot name = 'regular expression'")
    for slot, pattern in raw_slots.items():
        if not IDENTIFIER.match(slot) or slot in BUILTIN_PLACEHOLDERS:
            raise fail(
                f"slots.{slot}",
                "is not a usable slot name (letters, digits, underscores; not a built-in)",
            )
        if not isinstance(pattern, str) or not pattern:
            raise fail(f"slots.{slot}", "must be a regular expression string")
        try:
            # Case-insensitive because people type "Order 123" and "order 123" alike;
            # the captured value keeps the case the user typed.
            slots[slot] = re.compile(pattern, re.IGNORECASE)
        except re.error as e:
            raise fail(f"slots.{slot}", f"is not a valid regular expression ({e})") from e

    remember = name_list(raw, "remember", fail)
    for key in remember:
        if key not in slots:
            raise fail("remember", f"names '{key}', which is not one of this intent's slots")
    forget = name_list(raw, "forget", fail)
    for key in forget:
        if key not in memory_keys:
            raise fail("forget", f"names '{key}', which no intent remembers")

    responses = string_list(raw.get("responses"))
    if responses is None:
        raise fail("responses", "must be a non-empty list of strings")
    allowed = BUILTIN_PLACEHOLDERS | set(slots) | memory_keys
    needs_memory: set[str] = set()
    for response in responses:
        bad = bad_placeholder(response, allowed)
        if bad:
            raise fail("responses", bad)
        needs_memory.update(placeholders(response) & (memory_keys - set(slots)))

    responses_missing: tuple[str, ...] = ()
    if "responses_missing" in raw:
        parsed_missing = string_list(raw.get("responses_missing"))
        if parsed_missing is None:
            raise fail("responses_missing", "must be a non-empty list of strings")
        for response in parsed_missing:
            bad = bad_placeholder(response, BUILTIN_PLACEHOLDERS | set(slots))
            if bad:
                raise fail("responses_missing", f"{bad} (memory keys may be missing here)")
        responses_missing = parsed_missing
    elif needs_memory:
        raise fail(
            "responses_missing",
            f"is required: the responses use memory key '{sorted(needs_memory)[0]}', "
            "which a user may not have given yet",
        )

    store = optional_string(raw, "store", fail)
    action = optional_string(raw, "action", fail)
    threshold: float | None = None
    if "threshold" in raw:
        threshold = number_value(raw, "threshold", 0.0)
        if threshold is None or not 0.0 < threshold < 1.0:
            raise fail("threshold", "must be a number between 0 and 1 (exclusive)")
    reminder: tuple[str, ...] = ()
    if "reminder" in raw:
        parsed_reminder = string_list(raw.get("reminder"))
        if parsed_reminder is None:
            raise fail("reminder", "must be a non-empty list of strings")
        if not catch_all:
            raise fail("reminder", "needs 'catch_all': it reminds that a flow is still open")
        for line in parsed_reminder:
            bad = bad_placeholder(line, BUILTIN_PLACEHOLDERS)
            if bad:
                raise fail("reminder", bad)
        reminder = parsed_reminder
    return Intent(
        name=name,
        examples=examples,
        responses=responses,
        responses_missing=responses_missing,
        context_in=context_in,
        context_out=context_out,
        slots=slots,
        remember=remember,
        forget=forget,
        store=store,
        action=action,
        catch_all=catch_all,
        threshold=threshold,
        reminder=reminder,
        needs_memory=frozenset(needs_memory),
    )


def _check_contexts(intents: list[Intent], source: str) -> None:
    produced = {i.context_out for i in intents if i.context_out is not None}
    catch_alls: dict[str, str] = {}
    for intent in intents:
        if intent.context_in is not None and intent.context_in not in produced:
            raise CatalogueError(
                source,
                f"'context_in' is '{intent.context_in}', which no intent sets with 'context_out'",
                intent=intent.name,
                key="context_in",
            )
        if intent.catch_all and intent.context_in is not None:
            other = catch_alls.setdefault(intent.context_in, intent.name)
            if other != intent.name:
                raise CatalogueError(
                    source,
                    f"'catch_all': context '{intent.context_in}' already has "
                    f"catch-all intent '{other}'",
                    intent=intent.name,
                    key="catch_all",
                )
