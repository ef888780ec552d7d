"""Tests for romanised Hindi and mixed-script detection (whatsease.bot.romanised and
whatsease.bot.language), and for the default assistant reading them."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from whatsease.bot.catalogue import load_catalogue, loads_catalogue
from whatsease.bot.engine import BotState, IntentEngine
from whatsease.bot.language import guess_language
from whatsease.bot.romanised import is_romanised_hindi, romanised_lexicon, with_romanised

LANGUAGES = ("en", "es", "hi")
DEVANAGARI = re.compile(r"[\u0900-\u097f]")
HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def assistant() -> IntentEngine:
    return IntentEngine(load_catalogue(), rng=random.Random(0))


@pytest.mark.parametrize(
    "text",
    ["mera naam yaad hai?", "block kaise karte hai", "cancel kar do", "thanks yaar",
     "account delete karna hai", "ek joke sunao na", "Kya Haal Hai"],
)
def test_romanised_hindi_is_told(text: str) -> None:
    assert is_romanised_hindi(text)
    guess = guess_language(text, LANGUAGES)
    assert (guess.language, guess.romanised, guess.sure) == ("hi", True, True)


@pytest.mark.parametrize(
    "text",
    ["my name is Rohan", "how do I use the app", "me llamo Ana", "is there a group chat",
     "hi", "do you have a joke", "yo", "se me olvidó la contraseña", "ok", ""],
)
def test_english_and_spanish_are_not_romanised_hindi(text: str) -> None:
    assert not is_romanised_hindi(text)


def test_no_case_of_the_english_and_spanish_sets_reads_as_hindi() -> None:
    texts = [json.loads(line)["text"]
             for path in sorted(HERE.glob("*cases*.jsonl")) if not path.name.endswith("_hi.jsonl")
             for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(texts) > 2000
    assert [t for t in texts if is_romanised_hindi(t)] == []


def test_only_a_hindi_catalogue_gets_hindi_guesses() -> None:
    assert guess_language("mera naam yaad hai", ("en", "es")).language in ("en", "es", None)


@pytest.mark.parametrize(
    ("text", "language"),
    [("help करो please", "hi"), ("मेरी activity कहाँ दिखेगी", "hi"),
     ("क्या चैट end to end encrypted है", "hi"), ("what does नमस्ते mean in english", "en")],
)
def test_mixed_scripts(text: str, language: str) -> None:
    assert guess_language(text, LANGUAGES).language == language


@pytest.mark.parametrize(
    ("text", "language"),
    [("eres un bot?", "es"), ("darme de baja de whatsease", "es"), ("what is this", "en")],
)
def test_function_words_decide_when_the_detector_is_unsure(text: str, language: str) -> None:
    guess = guess_language(text, LANGUAGES)
    assert guess.language == language and guess.sure


def test_one_word_is_never_decided_by_function_words() -> None:
    # "yo" is Spanish for "I", and English for "hey".
    assert not guess_language("yo", LANGUAGES).sure


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("mera naam yaad hai?", "recall_name"),
        ("message kaise bhejte hai", "how_to_send"),
        ("block kaise karte hai", "block_user"),
        ("account delete karna hai", "delete_account"),
        ("aaj kya tarikh hai", "date_today"),
        ("notification band kaise kare", "notifications"),
        ("mujhe kisi insaan se baat karni hai", "talk_to_human"),
        ("kese ho aap", "how_are_you"),
        ("सब जगह से logout करना है", "log_out_sessions"),
        ("kaise ho bhai", "how_are_you"),  # words of address weigh as particles
        ("kisi ne mera account hack kar liya", "log_out_sessions"),
    ],
)
def test_the_assistant_answers_romanised_hindi_in_devanagari(
        assistant: IntentEngine, text: str, intent: str) -> None:
    reply = assistant.respond(text, BotState())
    assert (reply.intent, reply.language) == (intent, "hi")
    assert DEVANAGARI.search(reply.text)


def test_a_romanised_name_fills_the_slot(assistant: IntentEngine) -> None:
    reply = assistant.respond("mera naam Rohan hai", BotState())
    assert (reply.intent, reply.slots, reply.language) == ("remember_name", {"name": "Rohan"}, "hi")
    assert assistant.respond("mera naam kya hai", reply.state).intent == "recall_name"
    reply = assistant.respond("mujhe Priya bulao", BotState())
    assert (reply.intent, reply.slots) == ("remember_name", {"name": "Priya"})


def test_english_is_still_english(assistant: IntentEngine) -> None:
    reply = assistant.respond("how do I send a message", BotState())
    assert (reply.intent, reply.language) == ("how_to_send", "en")


def test_the_catalogue_synonyms_win() -> None:
    catalogue = loads_catalogue(
        '[bot]\nname = "T"\nlanguages = ["en", "hi"]\nfallback = ["Sorry?"]\n'
        '[bot.i18n.hi]\nfallback = ["माफ़ कीजिए?"]\n'
        '[bot.i18n.hi.synonyms]\n"संदेश" = ["message"]\n'
        '[[intents]]\nname = "send"\nexamples = ["how do i send a message"]\n'
        'responses = ["Press Enter."]\n'
        '[intents.i18n.hi]\nexamples = ["संदेश कैसे भेजें"]\nresponses = ["Enter दबाएँ।"]\n')
    hindi = with_romanised(catalogue.in_language("hi"))
    assert "message" in hindi.bot.synonyms["संदेश"]
    assert "message" not in hindi.bot.synonyms.get("मैसेज", ())
    assert with_romanised(catalogue) is catalogue  # English: nothing to add
    engine = IntentEngine(catalogue, rng=random.Random(0))
    reply = engine.respond("message kaise bheje", BotState())
    assert (reply.intent, reply.text) == ("send", "Enter दबाएँ।")


def test_the_lexicon_is_plain_latin() -> None:
    lexicon = romanised_lexicon()
    spellings = [s for variants in lexicon.synonyms.values() for s in variants]
    assert len(spellings) > 500
    assert all(s.isascii() and s == s.lower() for s in spellings)
    assert "kaise" in lexicon.markers and "me" not in lexicon.markers


def test_the_catalogue_folding_of_devanagari_words_survives(assistant: IntentEngine) -> None:
    # The catalogue folds "तुम" into "आप" and "हटा" into "डिलीट"; the lexicon lists
    # "तुम" and "हटाना" with their Latin spellings, which must follow them there.
    hindi = assistant.engines["hi"].folder
    for pair in (("तुम", "आप", "tum"), ("हटाना", "डिलीट", "hatana")):
        assert len({tuple(hindi.canonical(word, correct=False)) for word in pair}) == 1, pair


def test_spanish_agent_words_and_name_questions(assistant: IntentEngine) -> None:
    assert assistant.respond("me comunicas con un asesor?", BotState()).intent == "talk_to_human"
    # "yo" after "me llamo" asks the name; it is none.
    assert assistant.respond("como me llamo yo?", BotState()).intent == "recall_name"
    assert assistant.respond("me llamo Javier", BotState()).slots == {"name": "Javier"}


def test_function_words_ignore_punctuation() -> None:
    guess = guess_language("bot, eres!", LANGUAGES)
    assert guess.language == "es" and guess.sure
