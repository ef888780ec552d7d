"""Tests for whatsease.bot.normalize."""

from __future__ import annotations

import pytest

from whatsease.bot.normalize import normalize, squeeze_repeats, strip_accents, tokenize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Café CRÈME!!", "cafe creme"),
        ("Call ME, Maybe... (again)", "call me maybe again"),
        ("naïve façade", "naive facade"),
    ],
)
def test_case_punctuation_and_accents(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_strip_accents_keeps_base_letters() -> None:
    assert strip_accents("Ångström señor") == "Angstrom senor"


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("helloooo", "hello"),
        ("pleeease", "please"),
        ("sooo", "so"),
        ("goooood", "good"),
        ("yesss", "yes"),
        ("hello", "hello"),  # real doubles survive
        ("coffee", "coffee"),
    ],
)
def test_squeeze_repeats(word: str, expected: str) -> None:
    assert squeeze_repeats(word) == expected


def test_squeeze_prefers_the_given_vocabulary() -> None:
    assert squeeze_repeats("acccount", vocabulary={"account"}) == "account"


def test_digits_are_not_squeezed() -> None:
    assert normalize("order 10000") == "order 10000"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("u r gr8", "you are great"),
        ("whats ur name", "what is your name"),
        ("What's your name?", "what is your name"),
        ("thx", "thanks"),
        ("ty", "thanks"),
        ("idk", "i do not know"),
        ("btw my msg", "by the way my message"),
        ("I can't log in", "i can not log in"),
        ("dont", "do not"),
        ("wanna chat", "want to chat"),
    ],
)
def test_chat_abbreviations_and_contractions(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("um so like how do I send a msg", "how do i send a message"),
        ("uhh just tell me pls", "tell me"),
        ("hey there, how do I search?", "how do i search"),
        ("well, what time is it", "what time is it"),
        ("ok thanks", "thanks"),
    ],
)
def test_fillers_are_removed(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hi there", "hi there"),  # a greeting alone is the message
        ("hey", "hey"),
        ("I do not like it", "i do not like it"),  # "like" as a verb, "not" kept
        ("no I would like a refund", "no i would like a refund"),
        ("i love it so much", "i love it so much"),  # "so" only goes as a leading filler
        ("please", "please"),  # a message of fillers only keeps its words
        ("who are you", "who are you"),
    ],
)
def test_words_that_carry_meaning_are_kept(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_symbols_become_words() -> None:
    assert normalize("what does ✓✓ mean") == "what does tick tick mean"
    assert tokenize("👋") == ["hello"]


def test_other_scripts_survive() -> None:
    assert normalize("Привет, мир!") == "привет мир"
