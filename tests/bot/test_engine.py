"""Tests for whatsease.bot.engine: matching, contexts, slots, memory and history."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from whatsease.bot.catalogue import load_catalogue, loads_catalogue
from whatsease.bot.engine import (
    CONTEXT_THRESHOLD_FACTOR,
    BotState,
    HistoryEntry,
    IntentEngine,
    Reply,
    bound_history,
)

NOW = datetime(2026, 11, 22, 14, 5, tzinfo=UTC)

SHOP = """
[bot]
name = "Shopbot"
fallback = ["Sorry, I didn't get that."]
context_turns = 3
context_minutes = 5
history_max_messages = 6

[[intents]]
name = "order_status"
examples = ["where is my order", "track my order", "has my parcel shipped"]
responses = ["Sure - what's your order number?"]
context_out = "awaiting_order_number"

[[intents]]
name = "give_order_number"
context_in = "awaiting_order_number"
examples = ["it's 48213", "order number 55120", "48213"]
slots = { order = '\\b\\d{5}\\b' }
responses = ["Order {order} is on its way."]

[[intents]]
name = "opening_hours"
examples = ["when are you open", "what are your opening hours", "are you open on sunday"]
responses = ["We're open 9 to 5, {user_name}."]

[[intents]]
name = "thanks"
examples = ["thanks", "thank you"]
responses = ["You're welcome!", "Any time!", "Glad to help!"]
"""


@pytest.fixture(scope="module")
def default_engine() -> IntentEngine:
    return IntentEngine(load_catalogue())


@pytest.fixture(scope="module")
def shop() -> IntentEngine:
    return IntentEngine(loads_catalogue(SHOP, source="shop"))


def say(
    engine: IntentEngine,
    text: str,
    state: BotState | None = None,
    *,
    now: datetime = NOW,
    user_name: str = "",
) -> Reply:
    return engine.respond(text, state, now=now, user_name=user_name, rng=random.Random(0))


# ---------------------------------------------------------------- matching


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("delte my acount", "delete_account"),  # typos
        ("how do i serch my chats", "how_to_search"),
        ("wat tiem is it", "time_now"),
        ("helo", "greet"),
        ("how can I get rid of my profile", "delete_account"),  # paraphrase
        ("what do the blue check marks mean", "ticks_meaning"),
        ("account delete", "delete_account"),  # word order
        ("messages send how", "how_to_send"),
        ("THANK YOU!!!", "thanks"),
        ("um so like who r u", "identity"),
        ("sign me out of my other devices", "log_out_sessions"),
    ],
)
def test_matches_typos_paraphrases_and_word_order(
    default_engine: IntentEngine, text: str, intent: str
) -> None:
    assert default_engine.match(text).intent_name == intent


@pytest.mark.parametrize(
    "text",
    ["what's the capital of peru", "book me a flight", "asdfgh", "can you do my taxes", "", "??"],
)
def test_out_of_scope_falls_back(default_engine: IntentEngine, text: str) -> None:
    reply = say(default_engine, text)
    assert reply.intent is None and reply.is_fallback
    assert reply.text in default_engine.catalogue.bot.fallback
    assert 0.0 <= reply.confidence < default_engine.catalogue.bot.threshold
    assert reply.store is None and reply.action is None


def test_confidence_is_between_0_and_1(default_engine: IntentEngine) -> None:
    exact = default_engine.match("delete my account")
    assert exact.intent_name == "delete_account"
    assert 0.9 <= exact.confidence <= 1.0
    assert exact.ranking[0][0] == "delete_account"


def test_threshold_comes_from_the_catalogue() -> None:
    lax = IntentEngine(
        loads_catalogue(SHOP.replace("context_turns", "threshold = 0.2\ncontext_turns"))
    )
    strict = IntentEngine(
        loads_catalogue(SHOP.replace("context_turns", "threshold = 0.99\ncontext_turns"))
    )
    assert lax.match("open").intent_name == "opening_hours"
    assert strict.match("when are you open on sundays").intent_name is None


def test_catalogue_synonyms_apply() -> None:
    plain = IntentEngine(loads_catalogue(SHOP))
    assert plain.match("zorp").intent_name is None
    with_synonym = IntentEngine(
        loads_catalogue(SHOP.replace("history_max_messages = 6", '[bot.synonyms]\nopen = ["zorp"]'))
    )
    assert with_synonym.match("when are you zorp").intent_name == "opening_hours"


def test_talk_to_human_asks_for_a_handoff(default_engine: IntentEngine) -> None:
    reply = say(default_engine, "can I talk to a real person")
    assert reply.intent == "talk_to_human"
    assert reply.action == "handoff"


def test_a_context_intent_outside_its_context_makes_a_fallback(
    default_engine: IntentEngine,
) -> None:
    # "cancel" is feedback_cancel's; with no feedback awaited it must not become
    # delete_account ("cancel my account") by a weaker match.
    assert default_engine.match("cancel").intent_name is None
    assert default_engine.match("cancel", "awaiting_feedback").intent_name == "feedback_cancel"


# ---------------------------------------------------------------- contexts and slots


def test_context_flow_with_slot(shop: IntentEngine) -> None:
    first = say(shop, "wheres my order??")
    assert first.intent == "order_status"
    assert first.state.context == "awaiting_order_number"
    assert first.state.context_turns_left == 3
    assert first.state.context_expires_at == NOW + timedelta(minutes=5)

    second = say(shop, "it's 48213 I think", first.state)
    assert second.intent == "give_order_number"
    assert second.slots == {"order": "48213"}
    assert second.text == "Order 48213 is on its way."
    assert second.state.context is None  # answered: the context has done its job


def test_context_intents_match_only_while_active(shop: IntentEngine) -> None:
    assert say(shop, "48213").intent is None
    assert shop.match("48213", "awaiting_order_number").intent_name == "give_order_number"


def test_slot_intent_is_not_chosen_without_its_value(shop: IntentEngine) -> None:
    state = say(shop, "track my order").state
    reply = say(shop, "order number please", state)
    assert reply.intent is None
    assert reply.state.context == "awaiting_order_number"  # still waiting
    assert reply.state.context_turns_left == 2


def test_other_intents_still_match_during_a_context(shop: IntentEngine) -> None:
    state = say(shop, "where is my order").state
    reply = say(shop, "when are you open", state, user_name="Ann")
    assert reply.intent == "opening_hours"
    assert reply.text == "We're open 9 to 5, Ann."
    assert reply.state.context == "awaiting_order_number"
    # ...and the context is still there for the answer.
    assert say(shop, "55120", reply.state).slots == {"order": "55120"}


def test_an_intent_of_the_active_context_needs_less_than_the_threshold() -> None:
    feedback = """
[bot]
name = "F"
fallback = ["?"]
threshold = THRESHOLD

[[intents]]
name = "feedback"
examples = ["i have feedback", "can i give feedback"]
responses = ["Go ahead, or say never mind."]
context_out = "awaiting_feedback"

[[intents]]
name = "feedback_cancel"
context_in = "awaiting_feedback"
examples = ["never mind", "cancel that", "forget it"]
responses = ["OK, no feedback."]

[[intents]]
name = "feedback_text"
context_in = "awaiting_feedback"
catch_all = true
responses = ["Thanks for the feedback."]
"""
    text = "no never mind i will not"
    probe = IntentEngine(loads_catalogue(feedback.replace("THRESHOLD", "0.45")))
    score = dict(probe.match(text, "awaiting_feedback").ranking)["feedback_cancel"]
    # A threshold just above the score, within the context's allowance.
    threshold = round(score / (CONTEXT_THRESHOLD_FACTOR + 0.05), 4)
    assert score < threshold < 1
    engine = IntentEngine(loads_catalogue(feedback.replace("THRESHOLD", str(threshold))))
    assert engine.match(text, "awaiting_feedback").intent_name == "feedback_cancel"
    assert engine.match(text).intent_name is None  # no context: below the threshold


def test_context_expires_after_its_turns(shop: IntentEngine) -> None:
    state = say(shop, "where is my order").state
    for text in ("thanks", "when are you open", "thank you"):
        state = say(shop, text, state).state
    assert state.context is None
    assert say(shop, "48213", state).intent is None


def test_context_expires_after_its_minutes(shop: IntentEngine) -> None:
    state = say(shop, "where is my order").state
    assert state.active_context(NOW + timedelta(minutes=4)) == "awaiting_order_number"
    late = say(shop, "48213", state, now=NOW + timedelta(minutes=5, seconds=1))
    assert late.intent is None
    assert late.state.context is None


def test_feedback_is_a_two_turn_flow_and_is_stored(default_engine: IntentEngine) -> None:
    ask = say(default_engine, "I'd like to leave some feedback")
    assert ask.intent == "feedback"
    assert ask.state.context == "awaiting_feedback"
    assert ask.store is None

    text = "Search is slow when I have many chats"
    given = say(default_engine, text, ask.state)
    assert given.intent == "feedback_text"
    assert given.store == ("feedback", text)
    assert given.state.context is None

    cancelled = say(default_engine, "never mind", ask.state)
    assert cancelled.intent == "feedback_cancel"
    assert cancelled.store is None


def test_a_question_does_not_start_the_feedback_flow(default_engine: IntentEngine) -> None:
    # "can i send photos?" borrows the frame of "can i send feedback": it must get the
    # honest answer, and the next question must be answered too, not kept as feedback.
    photos = say(default_engine, "can I send photos?")
    assert photos.intent == "send_media"
    assert photos.state.active_context(NOW) is None
    block = say(default_engine, "how do I block someone", photos.state)
    assert block.intent == "block_user"
    assert block.store is None
    assert "isn't available" in block.text


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("how do I block someone", "block_user"),
        ("can I send photos?", "send_media"),
        ("what do the ticks mean?", "ticks_meaning"),
        ("how do i change my display name", "change_name"),
    ],
)
def test_a_question_while_feedback_waits_is_answered_and_the_flow_offered_again(
    default_engine: IntentEngine, text: str, intent: str
) -> None:
    ask = say(default_engine, "I want to give feedback")
    assert ask.intent == "feedback"
    asked = say(default_engine, text, ask.state)
    assert asked.intent == intent
    assert asked.store is None
    reminder = default_engine.catalogue.intent("feedback_text").reminder[0]
    assert asked.text.endswith(reminder)
    # The flow is still open: the next message is the feedback.
    assert asked.state.active_context(NOW) == "awaiting_feedback"
    given = say(default_engine, "the app is lovely", asked.state)
    assert given.intent == "feedback_text"
    assert given.store == ("feedback", "the app is lovely")


@pytest.mark.parametrize(
    "text",
    ["the ticks are confusing", "search is too slow", "please let me send photos", "love it"],
)
def test_free_text_while_feedback_waits_is_the_feedback(
    default_engine: IntentEngine, text: str
) -> None:
    ask = say(default_engine, "I want to give feedback")
    given = say(default_engine, text, ask.state)
    assert given.intent == "feedback_text"
    assert given.store == ("feedback", text)


def test_no_reminder_once_the_flow_has_run_out(default_engine: IntentEngine) -> None:
    state = say(default_engine, "I want to give feedback").state
    state.context_turns_left = 1
    asked = say(default_engine, "how do I block someone", state)
    assert asked.intent == "block_user"
    assert asked.state.active_context(NOW) is None
    reminder = default_engine.catalogue.intent("feedback_text").reminder[0]
    assert reminder not in asked.text


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "?!", "..."])
def test_an_empty_message_falls_back_whatever_the_context(
    default_engine: IntentEngine, text: str
) -> None:
    assert default_engine.match(text).intent is None
    assert default_engine.match(text, "awaiting_feedback").intent is None
    reply = say(default_engine, text)
    assert reply.is_fallback
    assert reply.text in default_engine.catalogue.bot.fallback
    waiting = say(default_engine, "I want to give feedback").state
    blank = say(default_engine, text, waiting)
    assert blank.is_fallback
    assert blank.store is None


def test_the_fallback_says_what_the_assistant_can_help_with(
    default_engine: IntentEngine,
) -> None:
    for text in default_engine.catalogue.bot.fallback:
        assert "help" in text
        assert "WhatsEase" in text


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("can i send a video?", "send_media"),
        ("how do i make a group", "groups"),
        ("how do i turn on notifications", "notifications"),
        ("can I call someone?", "calls"),
        ("block a user", "block_user"),
    ],
)
def test_what_whatsease_cannot_do_is_answered_honestly(
    default_engine: IntentEngine, text: str, intent: str
) -> None:
    reply = say(default_engine, text)
    assert reply.intent == intent
    assert "n't" in reply.text  # "isn't available", "can't be attached", "aren't"


THRESHOLDS = """
[bot]
name = "T"
fallback = ["?"]

[[intents]]
name = "report"
examples = ["i want to report a problem", "report a bug"]
responses = ["Tell me more."]
threshold = 0.9

[[intents]]
name = "hours"
examples = ["when are you open", "opening hours"]
responses = ["9 to 5."]
"""


def test_an_intent_with_its_own_threshold_needs_it() -> None:
    engine = IntentEngine(loads_catalogue(THRESHOLDS))
    assert engine.match("report a bug").intent_name == "report"
    loose = engine.match("i want to report my neighbour")
    assert loose.ranking[0][0] == "report"
    assert loose.ranking[0][1] >= engine.catalogue.bot.threshold
    assert loose.intent is None
    assert engine.match("when are you open").intent_name == "hours"


# ---------------------------------------------------------------- memory and state


def test_remember_and_recall_name_through_stored_state(default_engine: IntentEngine) -> None:
    unknown = say(default_engine, "what's my name?")
    assert unknown.intent == "recall_name"
    assert "don't know your name" in unknown.text

    told = say(default_engine, "my name is Alice", unknown.state)
    assert told.intent == "remember_name"
    assert told.slots == {"name": "Alice"}
    assert "Alice" in told.text
    assert told.state.memory == {"name": "Alice"}

    stored = told.state.to_dict()  # what the integration saves in MongoDB
    restored = BotState.from_dict(stored)
    assert restored == told.state

    recalled = say(default_engine, "do you remember my name", restored)
    assert recalled.intent == "recall_name"
    assert "Alice" in recalled.text

    forgotten = say(default_engine, "forget my name", recalled.state)
    assert forgotten.intent == "forget_name"
    assert forgotten.state.memory == {}


def test_state_dict_keeps_datetimes_and_reads_naive_ones_as_utc(shop: IntentEngine) -> None:
    state = say(shop, "where is my order").state
    stored = state.to_dict()
    expires, history = stored["context_expires_at"], stored["history"]
    assert isinstance(expires, datetime)
    assert isinstance(history, list)
    assert isinstance(history[0]["at"], datetime)
    # MongoDB hands datetimes back without a time zone.
    stored["context_expires_at"] = expires.replace(tzinfo=None)
    history[0]["at"] = history[0]["at"].replace(tzinfo=None)
    restored = BotState.from_dict(stored)
    assert restored.context_expires_at == NOW + timedelta(minutes=5)
    assert restored.history[0].at == NOW
    assert BotState.from_dict(None) == BotState()
    assert BotState.from_dict({}) == BotState()


def test_respond_does_not_change_the_given_state(shop: IntentEngine) -> None:
    state = say(shop, "where is my order").state
    before = state.to_dict()
    say(shop, "48213", state)
    assert state.to_dict() == before


def test_placeholders_are_filled(default_engine: IntentEngine) -> None:
    assert say(default_engine, "what time is it").text in {
        "It's 14:05 UTC.",
        "Right now it's 14:05 UTC.",
    }
    assert "Sunday 22 November 2026" in say(default_engine, "what's the date today").text
    greeting = say(default_engine, "hello", user_name="Bea")
    assert "Bea" in greeting.text
    assert "WhatsEase" in greeting.text
    assert "there" in say(default_engine, "hello").text  # no name known


def test_variants_are_random_but_repeatable_with_a_seed(shop: IntentEngine) -> None:
    def texts(seed: int) -> list[str]:
        rng = random.Random(seed)
        return [shop.respond("thanks", rng=rng, now=NOW).text for _ in range(12)]

    assert texts(7) == texts(7)
    assert len(set(texts(7))) > 1


def test_history_records_both_sides(shop: IntentEngine) -> None:
    reply = say(shop, "thanks")
    assert [(e.role, e.text, e.intent) for e in reply.state.history] == [
        ("user", "thanks", None),
        ("bot", reply.text, "thanks"),
    ]


def test_respond_bounds_history_with_the_catalogue_limits(shop: IntentEngine) -> None:
    state = BotState()
    for i in range(5):
        state = say(shop, f"thanks {i}", state, now=NOW + timedelta(seconds=i)).state
    assert len(state.history) == 6  # history_max_messages
    assert state.history[0].text == "thanks 2"  # the oldest went first


# ---------------------------------------------------------------- history bounds


def entry(text: str, minutes_ago: float) -> HistoryEntry:
    return HistoryEntry("user", text, NOW - timedelta(minutes=minutes_ago))


def test_bound_history_by_count() -> None:
    history = [entry(str(i), 10 - i) for i in range(10)]
    kept = bound_history(
        history, max_messages=3, max_chars=1000, max_age=timedelta(days=1), now=NOW
    )
    assert [e.text for e in kept] == ["7", "8", "9"]


def test_bound_history_by_characters() -> None:
    history = [entry("aaaa", 3), entry("bbbb", 2), entry("cccc", 1)]
    kept = bound_history(history, max_messages=10, max_chars=9, max_age=timedelta(days=1), now=NOW)
    assert [e.text for e in kept] == ["bbbb", "cccc"]


def test_bound_history_by_age() -> None:
    history = [entry("old", 120), entry("recent", 30), entry("new", 1)]
    kept = bound_history(
        history, max_messages=10, max_chars=1000, max_age=timedelta(hours=1), now=NOW
    )
    assert [e.text for e in kept] == ["recent", "new"]


def test_bound_history_cuts_a_single_overlong_message() -> None:
    kept = bound_history(
        [entry("x" * 50, 1)], max_messages=10, max_chars=20, max_age=timedelta(days=1), now=NOW
    )
    assert [e.text for e in kept] == ["x" * 20]
    assert bound_history([], max_messages=1, max_chars=1, max_age=timedelta(1), now=NOW) == []


def test_long_messages_are_matched_on_their_start(default_engine: IntentEngine) -> None:
    story = "I have been using WhatsEase with my team for a while and we moved on. "
    text = "Hi! How do I delete my account? " + story * 50
    reply = say(default_engine, text)
    assert reply.intent == "delete_account"
    kept = sum(len(e.text) for e in reply.state.history)
    assert 0 < kept <= default_engine.catalogue.bot.history_max_chars
