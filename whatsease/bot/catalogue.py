"""Intent catalogues: TOML loading, validation and the dataclasses the engine reads."""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
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

_BOT_KEYS = frozenset(
    {
        "name", "fallback", "threshold", "margin", "context_turns", "context_minutes",
        "history_max_messages", "history_max_chars", "history_max_minutes", "synonyms",
        "languages", "default_language", "i18n", "language_detection",
    }
)  # fmt: skip
_INTENT_KEYS = frozenset(
    {
        "name", "examples", "responses", "responses_missing", "context_in", "context_out",
        "slots", "remember", "forget", "store", "action", "catch_all", "threshold",
        "reminder", "i18n",
    }
)  # fmt: skip
# The language a catalogue without `languages` speaks.
DEFAULT_LANGUAGE = "en"
# What an intent's [intents.i18n.<language>] table may give: its texts in that language.
_INTENT_TEXT_KEYS = ("examples", "responses", "responses_missing", "reminder")
_BOT_TEXT_KEYS = frozenset({"fallback", "switched", "synonyms"})
# ISO 639-1 codes: two lower-case letters.
_LANGUAGE_CODE = re.compile(r"[a-z]{2}\Z")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# Builds the error for one key of the table being checked.
_Fail = Callable[[str, str], "CatalogueError"]


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
    _check_translations(bot, bot_table, raw_intents, source)
    translations: dict[str, Catalogue] = {}
    for language in bot.languages[1:]:
        translated_bot = _translate_bot(bot, bot_table, language, source)
        translated = tuple(
            _translate_intent(intent, raw, language, source, frozenset(memory_keys))
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
        if key not in _BOT_KEYS:
            raise fail(key, f"is not a known key (known: {', '.join(sorted(_BOT_KEYS))})")
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise fail("name", "must be a non-empty string")
    fallback = _string_list(table.get("fallback"))
    if fallback is None:
        raise fail("fallback", "must be a non-empty list of strings")
    for reply in fallback:
        bad = _bad_placeholder(reply, BUILTIN_PLACEHOLDERS)
        if bad:
            raise fail("fallback", bad)

    threshold = _number(table, "threshold", DEFAULT_THRESHOLD)
    if threshold is None or not 0.0 < threshold < 1.0:
        raise fail("threshold", "must be a number between 0 and 1 (exclusive)")
    margin = _number(table, "margin", DEFAULT_MARGIN)
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
        value = _number(table, key, default)
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

    synonyms = _synonyms(table.get("synonyms", {}), fail)

    languages = _parse_languages(table, fail)
    detection = table.get("language_detection", "accurate")
    if detection not in ("accurate", "light"):
        raise fail("language_detection", "must be \"accurate\" or \"light\"")
    switched = _bot_text(table, "switched", fail) if "switched" in table else ()
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
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise CatalogueError(
            source,
            f"intents[{position}]: 'name' must be a string of letters, digits and underscores",
            key="name",
        )

    def fail(key: str, detail: str) -> CatalogueError:
        return CatalogueError(source, f"'{key}' {detail}", intent=name, key=key)

    for key in raw:
        if key not in _INTENT_KEYS:
            raise fail(key, f"is not a known key (known: {', '.join(sorted(_INTENT_KEYS))})")

    catch_all = raw.get("catch_all", False)
    if not isinstance(catch_all, bool):
        raise fail("catch_all", "must be true or false")
    context_in = _optional_string(raw, "context_in", fail)
    context_out = _optional_string(raw, "context_out", fail)
    if catch_all and context_in is None:
        # Without a context a catch-all intent would swallow every message.
        raise fail("catch_all", "needs 'context_in': a catch-all intent only works in a context")

    if catch_all and "examples" not in raw:
        examples: tuple[str, ...] = ()
    else:
        parsed = _string_list(raw.get("examples"))
        if parsed is None:
            raise fail("examples", "must be a non-empty list of strings")
        examples = parsed

    slots: dict[str, re.Pattern[str]] = {}
    raw_slots = raw.get("slots", {})
    if not isinstance(raw_slots, Mapping):
        raise fail("slots", "must be a table of slot name = 'regular expression'")
    for slot, pattern in raw_slots.items():
        if not _IDENTIFIER.match(slot) or slot in BUILTIN_PLACEHOLDERS:
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

    remember = _names(raw, "remember", fail)
    for key in remember:
        if key not in slots:
            raise fail("remember", f"names '{key}', which is not one of this intent's slots")
    forget = _names(raw, "forget", fail)
    for key in forget:
        if key not in memory_keys:
            raise fail("forget", f"names '{key}', which no intent remembers")

    responses = _string_list(raw.get("responses"))
    if responses is None:
        raise fail("responses", "must be a non-empty list of strings")
    allowed = BUILTIN_PLACEHOLDERS | set(slots) | memory_keys
    needs_memory: set[str] = set()
    for response in responses:
        bad = _bad_placeholder(response, allowed)
        if bad:
            raise fail("responses", bad)
        needs_memory.update(_placeholders(response) & (memory_keys - set(slots)))

    responses_missing: tuple[str, ...] = ()
    if "responses_missing" in raw:
        parsed_missing = _string_list(raw.get("responses_missing"))
        if parsed_missing is None:
            raise fail("responses_missing", "must be a non-empty list of strings")
        for response in parsed_missing:
            bad = _bad_placeholder(response, BUILTIN_PLACEHOLDERS | set(slots))
            if bad:
                raise fail("responses_missing", f"{bad} (memory keys may be missing here)")
        responses_missing = parsed_missing
    elif needs_memory:
        raise fail(
            "responses_missing",
            f"is required: the responses use memory key '{sorted(needs_memory)[0]}', "
            "which a user may not have given yet",
        )

    store = _optional_string(raw, "store", fail)
    action = _optional_string(raw, "action", fail)
    threshold: float | None = None
    if "threshold" in raw:
        threshold = _number(raw, "threshold", 0.0)
        if threshold is None or not 0.0 < threshold < 1.0:
            raise fail("threshold", "must be a number between 0 and 1 (exclusive)")
    reminder: tuple[str, ...] = ()
    if "reminder" in raw:
        parsed_reminder = _string_list(raw.get("reminder"))
        if parsed_reminder is None:
            raise fail("reminder", "must be a non-empty list of strings")
        if not catch_all:
            raise fail("reminder", "needs 'catch_all': it reminds that a flow is still open")
        for line in parsed_reminder:
            bad = _bad_placeholder(line, BUILTIN_PLACEHOLDERS)
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


def _parse_languages(table: Mapping[str, Any], fail: _Fail) -> tuple[str, ...]:
    """[bot] `languages` and `default_language`, the default first."""
    raw = table.get("languages")
    default = table.get("default_language")
    if default is not None and (not isinstance(default, str) or not _LANGUAGE_CODE.match(default)):
        raise fail("default_language", "must be a two-letter ISO 639-1 code such as 'en'")
    if raw is None:
        return (default or DEFAULT_LANGUAGE,)
    if (
        not isinstance(raw, list)
        or not raw
        or not all(isinstance(code, str) and _LANGUAGE_CODE.match(code) for code in raw)
    ):
        raise fail("languages", "must be a non-empty list of two-letter ISO 639-1 codes "
                   "such as ['en', 'es']")
    if len(set(raw)) != len(raw):
        raise fail("languages", "names a language more than once")
    default = default or raw[0]
    if default not in raw:
        raise fail("default_language", f"'{default}' is not one of 'languages'")
    return (default, *(code for code in raw if code != default))


def _bot_text(table: Mapping[str, Any], key: str, fail: _Fail) -> tuple[str, ...]:
    lines = _string_list(table.get(key))
    if lines is None:
        raise fail(key, "must be a non-empty list of strings")
    for line in lines:
        bad = _bad_placeholder(line, BUILTIN_PLACEHOLDERS)
        if bad:
            raise fail(key, bad)
    return lines


def _i18n_table(raw: Mapping[str, Any], language: str,
                fail: Callable[[str, str], CatalogueError]) -> Mapping[str, Any]:
    """The `i18n.<language>` table of an intent or of [bot] (empty if there is none)."""
    tables = raw.get("i18n", {})
    if not isinstance(tables, Mapping):
        raise fail("i18n", "must be a table of language = {texts}")
    table = tables.get(language, {})
    if not isinstance(table, Mapping):
        raise fail(f"i18n.{language}", "must be a table")
    return table


def _check_translations(bot: BotSettings, bot_table: Mapping[str, Any], raw_intents: list[Any],
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


def _translate_bot(bot: BotSettings, table: Mapping[str, Any], language: str,
                   source: str) -> BotSettings:
    def fail(key: str, detail: str) -> CatalogueError:
        return CatalogueError(source, f"[bot] '{key}' {detail}", key=key)

    texts = _i18n_table(table, language, fail)
    for key in texts:
        if key not in _BOT_TEXT_KEYS:
            known = ", ".join(sorted(_BOT_TEXT_KEYS))
            raise fail(f"i18n.{language}.{key}",
                       f"is not a key a language may give (known: {known})")
    if "fallback" not in texts:
        raise fail(f"i18n.{language}.fallback",
                   "is missing: every language in 'languages' needs its fallback replies "
                   f"([bot.i18n.{language}] fallback = [...])")

    def scoped(key: str, detail: str) -> CatalogueError:
        return fail(f"i18n.{language}.{key}", detail)

    fallback = _bot_text(texts, "fallback", scoped)
    switched = _bot_text(texts, "switched", scoped) if "switched" in texts else ()
    # Each language has its own synonyms: the default language's are its words.
    synonyms = _synonyms(texts.get("synonyms", {}), scoped)
    return replace(bot, fallback=fallback, switched=switched, language=language,
                   synonyms=synonyms)


def _synonyms(raw: object, fail: _Fail) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, Mapping):
        raise fail("synonyms", "must be a table of word = [other words]")
    synonyms: dict[str, tuple[str, ...]] = {}
    for canonical, variants in raw.items():
        words = _string_list(variants)
        if words is None:
            raise fail("synonyms", f"'{canonical}' must map to a non-empty list of strings")
        synonyms[canonical] = words
    return synonyms


def _translate_intent(intent: Intent, raw: Mapping[str, Any], language: str, source: str,
                      memory_keys: frozenset[str]) -> Intent:
    """`intent` with its texts in `language`, from its [intents.i18n.<language>] table.

    Every text the intent has must be given: a person writing in that language must
    be answered in it. Raises `CatalogueError` naming the intent, key and language.
    """
    def fail(key: str, detail: str) -> CatalogueError:
        return CatalogueError(source, f"'{key}' {detail}", intent=intent.name, key=key)

    texts = _i18n_table(raw, language, fail)
    for key in texts:
        if key not in _INTENT_TEXT_KEYS:
            known = ", ".join(_INTENT_TEXT_KEYS)
            raise fail(f"i18n.{language}.{key}",
                       f"is not a key a language may give (known: {known})")
    given: dict[str, tuple[str, ...]] = {}
    for key in _INTENT_TEXT_KEYS:
        own: tuple[str, ...] = getattr(intent, key)
        where = f"i18n.{language}.{key}"
        if key not in texts:
            if own:
                raise fail(where, f"is missing: the intent has '{key}', so language "
                           f"'{language}' needs them too ([intents.i18n.{language}] {key} = [...])")
            continue
        if not own:
            raise fail(where, f"is given, but the intent has no '{key}' in its default language")
        lines = _string_list(texts[key])
        if lines is None:
            raise fail(where, "must be a non-empty list of strings")
        if key != "examples":
            allowed = BUILTIN_PLACEHOLDERS | set(intent.slots)
            if key == "responses":
                allowed |= memory_keys
            for line in lines:
                bad = _bad_placeholder(line, allowed)
                if bad:
                    raise fail(where, bad)
            if key == "responses":
                uses = set().union(*(_placeholders(line) for line in lines))
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


def _string_list(value: object) -> tuple[str, ...] | None:
    """The value as a tuple of non-blank strings, or None if it is anything else."""
    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(v, str) and v.strip() for v in value):
        return None
    return tuple(value)


def _names(raw: Mapping[str, Any], key: str, fail: _Fail) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise fail(key, "must be a list of names")
    return tuple(value)


def _optional_string(raw: Mapping[str, Any], key: str, fail: _Fail) -> str | None:
    if key not in raw:
        return None
    value = raw[key]
    if not isinstance(value, str) or not value.strip():
        raise fail(key, "must be a non-empty string")
    return value.strip()


def _number(table: Mapping[str, Any], key: str, default: float) -> float | None:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _placeholders(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}


def _bad_placeholder(template: str, allowed: frozenset[str] | set[str]) -> str:
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
        if not _IDENTIFIER.match(field_name) or spec or conversion:
            return f"has placeholder {{{field_name}}} in {template!r}; use a bare {{name}}"
        if field_name not in allowed:
            return (
                f"uses unknown placeholder {{{field_name}}} in {template!r} "
                f"(known here: {', '.join(sorted(allowed))})"
            )
    return ""
