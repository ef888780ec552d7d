"""Tests for the engine's general word knowledge: the lexicon, derived forms and typo rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from whatsease.bot import expansion, scoring
from whatsease.bot.catalogue import loads_catalogue
from whatsease.bot.engine import (
    LEXICON_PATH,
    IntentEngine,
    LexiconError,
    default_lexicon,
    load_lexicon,
)

# A catalogue that never says "credit card", "bank transfer", "pick up", "cancellation"
# or "help" misspelt: the engine has to bring that knowledge itself.
STORE = """
[bot]
name = "Store"
fallback = ["Sorry?"]

[[intents]]
name = "payment_methods"
examples = ["what payment methods do you accept", "can i pay with visa", "do you take paypal",
            "payment options"]
responses = ["Visa, Mastercard and PayPal."]

[[intents]]
name = "refund_status"
examples = ["where is my refund", "when will the money be back on my card", "refund status"]
responses = ["5 working days."]

[[intents]]
name = "talk_to_human"
examples = ["transfer me to an agent", "talk to a person", "connect me to someone"]
responses = ["Putting you through."]

[[intents]]
name = "store_location"
examples = ["where is your shop", "can i collect my order in store",
            "do you have a shop i can visit"]
responses = ["Main Street 1."]

[[intents]]
name = "cancel_order"
examples = ["cancel my order", "how do i cancel", "i want to cancel my purchase"]
responses = ["Cancelled."]

[[intents]]
name = "help"
examples = ["help", "i need help", "can you help me"]
responses = ["Ask me about orders."]

[[intents]]
name = "discount_code"
examples = ["do you have a coupon", "discount codes", "my coupon does not work"]
responses = ["SAVE10."]

[[intents]]
name = "time_now"
examples = ["what time is it", "tell me the time", "current time"]
responses = ["Noon."]

[[intents]]
name = "remember_name"
examples = ["call me Sam", "my name is Sam"]
slots = { name = '(?:call me|name is)\\s+(?P<name>\\w+)' }
remember = ["name"]
responses = ["Hi {name}."]

[[intents]]
name = "date_today"
examples = ["what is the date", "what date is it today"]
responses = ["Today."]
"""


@pytest.fixture(scope="module")
def store() -> IntentEngine:
    return IntentEngine(loads_catalogue(STORE, source="store"))


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        # related words: the catalogue says "visa" and "pay", the message "credit cards"
        ("do you take credit cards", "payment_methods"),
        ("pay in installments possible?", "payment_methods"),
        # a multi-word expression is one word: "bank transfer" is not "transfer me"
        ("can i pay by bank transfer", "payment_methods"),
        # phrasal verbs, also with the object inside
        ("can i pick up my order", "store_location"),
        ("can i pick it up", "store_location"),
        # a derived form of a catalogue word
        ("i want a cancellation", "cancel_order"),
        # vowels dropped, a typo in an inflected word
        ("hlp", "help"),
        ("any couons?", "discount_code"),
    ],
)
def test_general_knowledge_reaches_the_intent(store: IntentEngine, text: str, intent: str) -> None:
    assert store.match(text).intent_name == intent


def test_a_related_word_counts_less_than_the_word_itself(store: IntentEngine) -> None:
    # "card" is the refund intent's own word and only related to the payment intent's.
    assert store.match("money back on my card").intent_name == "refund_status"


@pytest.mark.parametrize("text", ["what is 17 times 23", "whats 17x23", "17 * 23 = ?"])
def test_arithmetic_is_not_a_question_about_time(store: IntentEngine, text: str) -> None:
    assert store.match(text).intent_name is None


def test_times_without_numbers_is_still_time(store: IntentEngine) -> None:
    assert store.match("what times is it").intent_name == "time_now"


def test_a_capitalised_name_is_not_corrected(store: IntentEngine) -> None:
    # "dave" is one edit from "date"; written as a name inside a sentence it stays a name.
    assert store.match("what is the dave").intent_name == "date_today"
    assert store.match("what is the Dave").intent_name is None


def test_the_shipped_lexicon_loads() -> None:
    lexicon = load_lexicon(LEXICON_PATH)
    assert lexicon == default_lexicon()
    assert "hello" in lexicon.synonyms and "hi" in lexicon.synonyms["hello"]
    assert any("bank transfer" in group for group in lexicon.related)
    assert "possible" in lexicon.function_words


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[nouns]\nx = ['a']\n", "unknown table 'nouns'"),
        ("[related]\npay = 'card'\n", "related.pay must be a list"),
        ("[synonyms]\nhi = ['', 'hey']\n", "synonyms.hi must be a list"),
        ("[function_words]\nlist = ['able']\n", "has only 'words'"),
        ("[related\n", "cannot read"),
    ],
)
def test_a_malformed_lexicon_is_rejected(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "lexicon.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LexiconError, match=problem):
        load_lexicon(path)


def test_phrasal_verb_with_a_noun_phrase_inside(store: IntentEngine) -> None:
    # "pick up" with "the parcel" between verb and particle is still "pick up" (collect).
    assert store.match("can i pick the parcel up").intent_name == "store_location"


BOOKINGS = """
[bot]
name = "Bookings"
fallback = ["Sorry?"]

[[intents]]
name = "renew"
examples = ["how do i renew my membership", "renew membership", "membership renewal"]
responses = ["In the app."]

[[intents]]
name = "reschedule"
examples = ["can i change my booking to another day", "reschedule my booking"]
responses = ["Sure."]

[[intents]]
name = "cancel"
examples = ["cancel my booking", "i want to cancel the booking"]
responses = ["Done."]
"""


@pytest.fixture(scope="module")
def bookings() -> IntentEngine:
    return IntentEngine(loads_catalogue(BOOKINGS, source="bookings"))


def test_a_multi_word_expression_also_counts_its_own_words(
    bookings: IntentEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "how long" is one expression (a duration), yet still shares "how" with "how do i".
    text = "how long does membership renewal take"
    with_parts = bookings.match(text)
    assert with_parts.intent_name == "renew"
    monkeypatch.setattr(expansion, "PHRASE_PART_SIMILARITY", 0.0)
    assert with_parts.confidence > IntentEngine(bookings.catalogue).match(text).confidence


@pytest.mark.parametrize(
    "text", ["can i push my booking back", "postpone my booking", "move the booking to friday"]
)
def test_rescheduling_words_are_related(bookings: IntentEngine, text: str) -> None:
    assert bookings.match(text).intent_name == "reschedule"


PRICES = """
[bot]
name = "Prices"
fallback = ["Sorry?"]

[[intents]]
name = "price"
examples = ["what is the price", "price list", "how much is the price of a ticket"]
responses = ["Ten."]

[[intents]]
name = "store"
examples = ["where is the store", "store address"]
responses = ["Main Street."]
"""


@pytest.mark.parametrize(("text", "word"), [("what is prime", "prime"), ("the score", "score")])
def test_everyday_words_are_not_corrected(text: str, word: str) -> None:
    engine = IntentEngine(loads_catalogue(PRICES, source="prices"))
    assert engine.match(text).intent_name is None
    # ...while a real typo still is.
    assert engine.match("what is the prcie").intent_name == "price"


SURGERY = """
[bot]
name = "Surgery"
fallback = ["Sorry?"]

[[intents]]
name = "fees"
examples = ["how much does it cost", "is it free", "what are your fees", "do i have to pay"]
responses = ["It's free."]

[[intents]]
name = "book"
examples = ["can i see a doctor", "i want to see a doctor today", "book me in with a doctor",
            "i need to see the doctor"]
responses = ["Book online."]
"""


@pytest.mark.parametrize("text", ["is it free to see a doctor", "how much is it to see a doctor"])
def test_the_main_clause_outweighs_a_purpose_clause(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalogue = loads_catalogue(SURGERY, source="surgery")
    assert IntentEngine(catalogue).match(text).intent_name == "fees"
    # Weighing every word alike, the two shared words "see" and "doctor" win instead.
    monkeypatch.setattr(scoring, "SUBORDINATE_FACTOR", 1.0)
    assert IntentEngine(catalogue).match(text).intent_name == "book"


def test_a_purpose_clause_needs_a_word_before_it() -> None:
    engine = IntentEngine(loads_catalogue(SURGERY, source="surgery"))
    assert engine.match("i would like to see a doctor").intent_name == "book"
