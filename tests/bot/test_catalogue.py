"""Tests for whatsease.bot.catalogue: loading and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from whatsease.bot.catalogue import (
    DEFAULT_CATALOGUE_PATH,
    DEFAULT_CONTEXT_MINUTES,
    DEFAULT_CONTEXT_TURNS,
    CatalogueError,
    load_catalogue,
    loads_catalogue,
)

BOT = """
[bot]
name = "Test"
fallback = ["Sorry?"]
"""

ORDER_STATUS = """
[[intents]]
name = "order_status"
examples = ["where is my order"]
responses = ["What's your order number?"]
context_out = "awaiting_order_number"
"""

REQUIRED_DEFAULT_INTENTS = {
    "greet", "goodbye", "thanks", "help", "identity", "how_to_send", "ticks_meaning",
    "how_to_search", "activity_log", "change_name", "log_out_sessions", "delete_account",
    "privacy", "talk_to_human", "how_are_you", "joke", "time_now", "date_today",
    "remember_name", "recall_name", "feedback", "feedback_text",
}  # fmt: skip


def test_minimal_catalogue_loads_with_defaults() -> None:
    catalogue = loads_catalogue(BOT + ORDER_STATUS)
    assert catalogue.bot.name == "Test"
    assert catalogue.bot.fallback == ("Sorry?",)
    assert catalogue.bot.context_turns == DEFAULT_CONTEXT_TURNS
    assert catalogue.bot.context_minutes == DEFAULT_CONTEXT_MINUTES
    intent = catalogue.intent("order_status")
    assert intent.examples == ("where is my order",)
    assert intent.context_out == "awaiting_order_number"
    assert catalogue.contexts == {"awaiting_order_number"}


def test_settings_are_read_from_the_bot_table() -> None:
    catalogue = loads_catalogue(
        BOT
        + "threshold = 0.7\nmargin = 0.05\ncontext_turns = 2\ncontext_minutes = 1.5\n"
        + "history_max_messages = 4\nhistory_max_chars = 100\nhistory_max_minutes = 30\n"
        + '[bot.synonyms]\ndelete = ["zap"]\n'
        + ORDER_STATUS
    )
    bot = catalogue.bot
    assert (bot.threshold, bot.margin, bot.context_turns, bot.context_minutes) == (
        0.7, 0.05, 2, 1.5,
    )  # fmt: skip
    assert (bot.history_max_messages, bot.history_max_chars, bot.history_max_minutes) == (
        4, 100, 30.0,
    )  # fmt: skip
    assert bot.synonyms == {"delete": ("zap",)}


# (TOML after [bot], the intent the message must name or None, the key it must name)
BAD_INTENTS = [
    (
        '[[intents]]\nname = "order_status"\nexamples = []\nresponses = ["x"]',
        "order_status",
        "'examples' must be a non-empty list of strings",
    ),
    (
        '[[intents]]\nname = "order_status"\nexamples = ["a", 3]\nresponses = ["x"]',
        "order_status",
        "'examples' must be a non-empty list of strings",
    ),
    (
        '[[intents]]\nname = "a"\nexamples = ["a"]',
        "a",
        "'responses' must be a non-empty list of strings",
    ),
    (
        '[[intents]]\nname = "a"\nexamples = ["a"]\nresponses = ["x"]\nrespones = ["y"]',
        "a",
        "'respones' is not a known key",
    ),
    (
        '[[intents]]\nname = "a"\nexamples = ["a"]\nresponses = ["x"]\n'
        '[[intents]]\nname = "a"\nexamples = ["b"]\nresponses = ["y"]',
        "a",
        "'name' 'a' is used by more than one intent",
    ),
    (
        '[[intents]]\nname = "a"\nexamples = ["a"]\nresponses = ["x"]\nslots = { order = "(" }',
        "a",
        "'slots.order' is not a valid regular expression",
    ),
    (
        '[[intents]]\nname = "a"\nexamples = ["a"]\nresponses = ["x {order}"]',
        "a",
        "'responses' uses unknown placeholder {order}",
    ),
    (
        '[[intents]]\nname = "a"\nexamples = ["a"]\nresponses = ["x {bot_name.__class__}"]',
        "a",
        "'responses' has placeholder {bot_name.__class__}",
    ),
    (
        '[[intents]]\nname = "a"\nexamples = ["a"]\nresponses = ["x"]\ncontext_in = "nowhere"',
        "a",
        "'context_in' is 'nowhere', which no intent sets with 'context_out'",
    ),
    (
        '[[intents]]\nname = "a"\nexamples = ["a"]\nresponses = ["x"]\ncatch_all = true',
        "a",
        "'catch_all' needs 'context_in'",
    ),
    (
        '[[intents]]\nname = "a"\nexamples = ["a"]\nresponses = ["x"]\nremember = ["name"]',
        "a",
        "'remember' names 'name', which is not one of this intent's slots",
    ),
    (
        '[[intents]]\nname = "a"\nexamples = ["a"]\nresponses = ["x"]\nforget = ["name"]',
        "a",
        "'forget' names 'name', which no intent remembers",
    ),
    (
        '[[intents]]\nname = "a"\nexamples = ["my name is Bo"]\nresponses = ["x"]\n'
        'slots = { name = "is (\\\\w+)" }\nremember = ["name"]\n'
        '[[intents]]\nname = "b"\nexamples = ["who am i"]\nresponses = ["You are {name}"]',
        "b",
        "'responses_missing' is required: the responses use memory key 'name'",
    ),
    (
        '[[intents]]\nname = "a"\nexamples = ["a"]\nresponses = ["x"]\nstore = ""',
        "a",
        "'store' must be a non-empty string",
    ),
    (
        '[[intents]]\nname = "a"\nexamples = ["a"]\nresponses = ["x"]\ncatch_all = "yes"',
        "a",
        "'catch_all' must be true or false",
    ),
    (
        '[[intents]]\nname = "a"\nexamples = ["a"]\nresponses = ["x"]\nthreshold = 1.5',
        "a",
        "'threshold' must be a number between 0 and 1 (exclusive)",
    ),
    (
        '[[intents]]\nname = "a"\nexamples = ["a"]\nresponses = ["x"]\nreminder = ["still open"]',
        "a",
        "'reminder' needs 'catch_all'",
    ),
    (
        '[[intents]]\nname = "a"\nexamples = ["a"]\nresponses = ["x"]\ncontext_out = "c"\n'
        '[[intents]]\nname = "b"\ncontext_in = "c"\ncatch_all = true\nresponses = ["x"]\n'
        'reminder = ["{order}"]',
        "b",
        "'reminder' uses unknown placeholder {order}",
    ),
]


@pytest.mark.parametrize(("toml", "intent", "detail"), BAD_INTENTS)
def test_invalid_intents_name_the_file_intent_and_key(
    tmp_path: Path, toml: str, intent: str, detail: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BOT + toml, encoding="utf-8")
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: intent '{intent}': "), message
    assert detail in message
    assert caught.value.intent == intent


def test_the_issue_example_message() -> None:
    with pytest.raises(CatalogueError) as caught:
        loads_catalogue(
            BOT + '[[intents]]\nname = "order_status"\nexamples = "where"\nresponses = ["x"]',
            source="shop.toml",
        )
    assert str(caught.value) == (
        "shop.toml: intent 'order_status': 'examples' must be a non-empty list of strings"
    )
    assert caught.value.key == "examples"


@pytest.mark.parametrize(
    ("bot", "detail"),
    [
        ('[bot]\nfallback = ["x"]', "[bot] 'name' must be a non-empty string"),
        ('[bot]\nname = "x"\nfallback = []', "[bot] 'fallback' must be a non-empty list"),
        ('[bot]\nname = "x"', "[bot] 'fallback' must be a non-empty list"),
        ('[bot]\nname = "x"\nfallback = ["y"]\nthreshold = 1.5', "[bot] 'threshold'"),
        ('[bot]\nname = "x"\nfallback = ["y"]\nthreshold = true', "[bot] 'threshold'"),
        ('[bot]\nname = "x"\nfallback = ["y"]\ncontext_turns = 0', "[bot] 'context_turns'"),
        ('[bot]\nname = "x"\nfallback = ["y"]\ncontext_minutes = -1', "[bot] 'context_minutes'"),
        ('[bot]\nname = "x"\nfallback = ["y"]\nhistory_max_chars = 0', "'history_max_chars'"),
        ('[bot]\nname = "x"\nfallback = ["y"]\ncolour = "red"', "[bot] 'colour' is not a known"),
        ('[bot]\nname = "x"\nfallback = ["y {order}"]', "unknown placeholder {order}"),
        ('[bot]\nname = "x"\nfallback = ["y"]\nsynonyms = { a = "b" }', "'synonyms' 'a' must"),
    ],
)
def test_invalid_bot_table(bot: str, detail: str) -> None:
    with pytest.raises(CatalogueError) as caught:
        loads_catalogue(bot + "\n" + ORDER_STATUS, source="c.toml")
    assert str(caught.value).startswith("c.toml: ")
    assert detail in str(caught.value)


def test_missing_sections() -> None:
    with pytest.raises(CatalogueError, match=r"a \[bot\] table"):
        loads_catalogue(ORDER_STATUS)
    with pytest.raises(CatalogueError, match=r"at least one \[\[intents\]\]"):
        loads_catalogue(BOT)
    with pytest.raises(CatalogueError, match="unknown top-level key 'intent'"):
        loads_catalogue(BOT + '[[intent]]\nname = "a"')


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(CatalogueError, match=r"missing\.toml: cannot read the file"):
        load_catalogue(missing)
    broken = tmp_path / "broken.toml"
    broken.write_text("[bot\nname =", encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"broken\.toml: not valid TOML"):
        load_catalogue(broken)


def test_catch_all_needs_no_examples_and_one_per_context() -> None:
    feedback = ORDER_STATUS + (
        '[[intents]]\nname = "anything"\ncontext_in = "awaiting_order_number"\n'
        'catch_all = true\nresponses = ["ok"]\n'
    )
    catalogue = loads_catalogue(BOT + feedback)
    assert catalogue.intent("anything").examples == ()
    with pytest.raises(CatalogueError, match="already has catch-all intent 'anything'"):
        loads_catalogue(BOT + feedback + feedback.split(ORDER_STATUS)[1].replace("anything", "b"))


def test_default_catalogue_is_valid_and_complete() -> None:
    catalogue = load_catalogue(DEFAULT_CATALOGUE_PATH)
    names = {intent.name for intent in catalogue.intents}
    assert names >= REQUIRED_DEFAULT_INTENTS
    for intent in catalogue.intents:
        if intent.name in REQUIRED_DEFAULT_INTENTS and not intent.catch_all:
            assert len(intent.examples) >= 8, intent.name
    feedback = catalogue.intent("feedback")
    feedback_text = catalogue.intent("feedback_text")
    assert feedback.context_out == feedback_text.context_in == "awaiting_feedback"
    assert feedback_text.catch_all and feedback_text.store == "feedback"


def test_example_shop_catalogue_is_valid() -> None:
    shop = Path(__file__).resolve().parents[2] / "examples" / "catalogues" / "shop.toml"
    catalogue = load_catalogue(shop)
    assert len(catalogue.intents) >= 15
    assert catalogue.intent("give_order_number").slots["order"].search("it's 48213")
