"""A catalogue's other languages: [bot] `languages`, and the `i18n` tables that give
[bot] and each intent their texts in them, validated so that every language answers
every intent (docs/bot.md, "Languages")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from whatsease.bot.catalogue_model import (
    BOT_TEXT_KEYS,
    BUILTIN_PLACEHOLDERS,
    DEFAULT_LANGUAGE,
    INTENT_TEXT_KEYS,
    LANGUAGE_CODE,
    BotSettings,
    CatalogueError,
    Fail,
    Intent,
    bad_placeholder,
    placeholders,
    string_list,
)


def parse_languages(table: Mapping[str, Any], fail: Fail) -> tuple[str, ...]:
    """[bot] `languages` and `default_language`, the default first."""
    raw = table.get("languages")
    default = table.get("default_language")
    if default is not None and (not isinstance(default, str) or not LANGUAGE_CODE.match(default)):
        raise fail("default_language", "must be a two-letter ISO 639-1 code such as 'en'")
    if raw is None:
        return (default or DEFAULT_LANGUAGE,)
    if (
        not isinstance(raw, list)
        or not raw
        or not all(isinstance(code, str) and LANGUAGE_CODE.match(code) for code in raw)
    ):
        raise fail("languages", "must be a non-empty list of two-letter ISO 639-1 codes "
                   "such as ['en', 'es']")
    if len(set(raw)) != len(raw):
        raise fail("languages", "names a language more than once")
    default = default or raw[0]
    if default not in raw:
        raise fail("default_language", f"'{default}' is not one of 'languages'")
    return (default, *(code for code in raw if code != default))


def bot_text(table: Mapping[str, Any], key: str, fail: Fail) -> tuple[str, ...]:
    lines = string_list(table.get(key))
    if lines is None:
        raise fail(key, "must be a non-empty list of strings")
    for line in lines:
        bad = bad_placeholder(line, BUILTIN_PLACEHOLDERS)
        if bad:
            raise fail(key, bad)
    return lines


def i18n_table(raw: Mapping[str, Any], language: str,
                fail: Fail) -> Mapping[str, Any]:
    """The `i18n.<language>` table of an intent or of [bot] (empty if there is none)."""
    tables = raw.get("i18n", {})
    if not isinstance(tables, Mapping):
        raise fail("i18n", "must be a table of language = {texts}")
    table = tables.get(language, {})
    if not isinstance(table, Mapping):
        raise fail(f"i18n.{language}", "must be a table")
    return table


def check_translations(bot: BotSettings, bot_table: Mapping[str, Any], raw_intents: list[Any],
                        source: str) -> None:
    """Every `i18n` table names a language of [bot] `languages` other than the default."""
    others = bot.languages[1:]
    known = ", ".join(others) or "none"
    for raw in [bot_table, *raw_intents]:
        tables = raw.get("i18n", {})
        intent = raw["name"] if raw is not bot_table else None
        where = "" if intent is not None else "[bot] "
        if not isinstance(tables, Mapping):
            raise CatalogueError(source, f"{where}'i18n' must be a table of language = {{texts}}",
                                 intent=intent, key="i18n")
        for language in tables:
            if language not in others:
                raise CatalogueError(
                    source,
                    f"{where}'i18n.{language}': '{language}' is not one of [bot] 'languages' "
                    f"other than the default (others: {known})",
                    intent=intent, key=f"i18n.{language}",
                )


def translate_bot(bot: BotSettings, table: Mapping[str, Any], language: str,
                   source: str) -> BotSettings:
    def fail(key: str, detail: str) -> CatalogueError:
        return CatalogueError(source, f"[bot] '{key}' {detail}", key=key)

    texts = i18n_table(table, language, fail)
    for key in texts:
        if key not in BOT_TEXT_KEYS:
            known = ", ".join(sorted(BOT_TEXT_KEYS))
            raise fail(f"i18n.{language}.{key}",
                       f"is not a key a language may give (known: {known})")
    if "fallback" not in texts:
        raise fail(f"i18n.{language}.fallback",
                   "is missing: every language in 'languages' needs its fallback replies "
                   f"([bot.i18n.{language}] fallback = [...])")

    def scoped(key: str, detail: str) -> CatalogueError:
        return fail(f"i18n.{language}.{key}", detail)

    fallback = bot_text(texts, "fallback", scoped)
    switched = bot_text(texts, "switched", scoped) if "switched" in texts else ()
    # Each language has its own synonyms: the default language's are its words.
    synonyms = parse_synonyms(texts.get("synonyms", {}), scoped)
    return replace(bot, fallback=fallback, switched=switched, language=language,
                   synonyms=synonyms)


def parse_synonyms(raw: object, fail: Fail) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, Mapping):
        raise fail("synonyms", "must be a table of word = [other words]")
    synonyms: dict[str, tuple[str, ...]] = {}
    for canonical, variants in raw.items():
        words = string_list(variants)
        if words is None:
            raise fail("synonyms", f"'{canonical}' must map to a non-empty list of strings")
        synonyms[canonical] = words
    return synonyms


def translate_intent(intent: Intent, raw: Mapping[str, Any], language: str, source: str,
                      memory_keys: frozenset[str]) -> Intent:
    """`intent` with its texts in `language`, from its [intents.i18n.<language>] table.

    Every text the intent has must be given: a person writing in that language must
    be answered in it. Raises `CatalogueError` naming the intent, key and language.
    """
    def fail(key: str, detail: str) -> CatalogueError:
        return CatalogueError(source, f"'{key}' {detail}", intent=intent.name, key=key)

    texts = i18n_table(raw, language, fail)
    for key in texts:
        if key not in INTENT_TEXT_KEYS:
            known = ", ".join(INTENT_TEXT_KEYS)
            raise fail(f"i18n.{language}.{key}",
                       f"is not a key a language may give (known: {known})")
    given: dict[str, tuple[str, ...]] = {}
    for key in INTENT_TEXT_KEYS:
        own: tuple[str, ...] = getattr(intent, key)
        where = f"i18n.{language}.{key}"
        if key not in texts:
            if own:
                raise fail(where, f"is missing: the intent has '{key}', so language "
                           f"'{language}' needs them too ([intents.i18n.{language}] {key} = [...])")
            continue
        if not own:
            raise fail(where, f"is given, but the intent has no '{key}' in its default language")
        lines = string_list(texts[key])
        if lines is None:
            raise fail(where, "must be a non-empty list of strings")
        if key != "examples":
            allowed = BUILTIN_PLACEHOLDERS | set(intent.slots)
            if key == "responses":
                allowed |= memory_keys
            for line in lines:
                bad = bad_placeholder(line, allowed)
                if bad:
                    raise fail(where, bad)
            if key == "responses":
                uses = set().union(*(placeholders(line) for line in lines))
                if uses & (memory_keys - set(intent.slots)) - intent.needs_memory:
                    raise fail(where, "uses a memory key the default language's responses do "
                               "not, so 'responses_missing' would not cover it")
        given[key] = lines
    return replace(
        intent,
        examples=given.get("examples", intent.examples),
        responses=given.get("responses", intent.responses),
        responses_missing=given.get("responses_missing", intent.responses_missing),
        reminder=given.get("reminder", intent.reminder),
    )
