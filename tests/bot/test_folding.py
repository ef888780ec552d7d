"""Tests for whatsease.bot.folding: stems, the question test, canonical tokens."""

from __future__ import annotations

import pytest

from whatsease.bot.folding import fold, is_question, stem


@pytest.mark.parametrize(
    "text",
    ["can I send photos?", "how do i block someone", "what do the ticks mean",
     "is there video chat", "can i make a group", "does it work offline", "where?",
     "Why is search so slow"],
)  # fmt: skip
def test_questions(text: str) -> None:
    assert is_question(text)


@pytest.mark.parametrize(
    "text",
    ["the ticks are confusing", "can you add dark mode", "please let me send photos",
     "love it", "", "   ", "search is slow"],
)  # fmt: skip
def test_not_questions(text: str) -> None:
    assert not is_question(text)


def test_stop_words_are_not_stemmed() -> None:
    assert stem("sending") == "send"
    assert fold("sending") == "send"
    assert fold("this") == "this"
    assert fold("wondering") == "wondering"  # a question-frame word of the lexicon
