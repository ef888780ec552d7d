"""What each message of a hot collection adds to its quarter hour (analytics/fold.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from whatsease.analytics.fold import fold_messenger, fold_support, fold_turns
from whatsease.analytics.slots import pseudonym
from whatsease.storage.analytics import Spans

T = datetime(2026, 3, 2, 10, tzinfo=UTC)
SPANS = Spans(((T, T + timedelta(hours=1)),), split=T + timedelta(minutes=30))


def _msg(minutes: float, **fields: Any) -> dict[str, Any]:
    return {"timestamp": T + timedelta(minutes=minutes), **fields}


def test_messenger_messages_count_by_channel_direction_and_person() -> None:
    pieces, texts = fold_messenger([
        _msg(1, sender="a@x.test", recipient="b@x.test", content="private"),
        _msg(2, sender="wa:+4912", recipient="bot:whatsease", content="parcel?",
             deleted=False, is_bot_response=False),
        _msg(3, sender="bot:whatsease", recipient="wa:+4912", content="here",
             is_bot_response=True),
        _msg(4, sender="a@x.test", recipient="bot:whatsease", content="gone", deleted=True),
        _msg(31, sender="a@x.test", recipient="c@x.test", channel="telegram"),
        _msg(-1, sender="a@x.test", recipient="b@x.test"),  # before the range
        _msg(60, sender="a@x.test", recipient="b@x.test"),  # at its end: outside
    ], SPANS, sample=50)
    assert set(pieces) == {(T, False), (T + timedelta(minutes=30), True)}
    first = pieces[(T, False)]
    assert first.counts == {("web", "in"): 2, ("whatsapp", "in"): 1, ("whatsapp", "out"): 1}
    assert first.people == {pseudonym("a@x.test"), pseudonym("wa:+4912")}
    assert pieces[(T + timedelta(minutes=30), True)].counts == {("telegram", "in"): 1}
    # Only what people wrote to a bot (not deleted) is read for sentiment.
    assert texts == {(T, False): [("parcel?", "en")]}


def test_support_messages_count_bots_fallbacks_languages_and_their_org() -> None:
    spans = Spans(SPANS.ranges, split=T, org="acme")
    pieces, texts = fold_support([
        _msg(1, org="acme", kind="customer", conversation_id="c1", content="hola",
             language="es", sender="zed@c.test"),
        _msg(2, org="acme", kind="bot", conversation_id="c1", content="Sorry?"),
        _msg(3, org="acme", kind="bot", conversation_id="c1", content="Hi!"),
        _msg(4, org="acme", kind="system", conversation_id="c1", content="Ana joined"),
        _msg(5, org="acme", kind="customer", conversation_id="c1", content="thanks"),
        _msg(6, org="other", kind="customer", conversation_id="c9", content="not ours"),
    ], spans, fallback_texts=["Sorry?"], sample=1)
    piece = pieces[(T, True)]
    assert piece.counts == {("widget", "in"): 2, ("widget", "out"): 2}
    assert piece.bot == {True: 1, False: 1}
    assert piece.languages == {"es": 1, "en": 1}
    assert piece.people == {pseudonym("c1")}
    # The newest customer text of the quarter hour.
    assert texts == {(T, True): [("thanks", "en")]}


def test_turns_count_replies_fallbacks_intents_and_languages() -> None:
    def turn(minutes: float, **fields: Any) -> dict[str, Any]:
        return {"at": T + timedelta(minutes=minutes), **fields}

    pieces = fold_turns([
        turn(1, source="intent", intent="greeting", message="hi", lang="es"),
        turn(2, source="fallback", intent=None, message="  Where is my PARCEL? "),
        turn(3, source="llm", message="where is my parcel?"),
        turn(4, source="llm_error", message="??", lang="hi"),
        turn(35, source="intent", intent="greeting", message="hello"),
        turn(61, source="fallback", message="after the range"),
    ], SPANS)
    first = pieces[(T, False)]
    assert first.bot == {False: 1, True: 3}
    assert first.intents == {"greeting": 1}
    assert first.fallbacks == {"where is my parcel?": (2, T + timedelta(minutes=3)),
                               "??": (1, T + timedelta(minutes=4))}
    assert first.languages == {"es": 1, "en": 2, "hi": 1}
    assert set(pieces) == {(T, False), (T + timedelta(minutes=30), True)}
