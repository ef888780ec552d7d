"""The assistant in the conversation, over REST: replies, read receipts, memory, history, LLM."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.fake_completions import FakeCompletions
from tests.support import Client, ServerThread, User, register, wait_for

BOT = "bot:whatsease"


def say(user: User, text: str) -> dict[str, Any]:
    res = user.client.post("/api/v1/messages", {"recipient": BOT, "content": text})
    assert res.status == 201, res.body
    return res.json["message"]


def interactions(user: User, count: int = 1) -> list[dict[str, Any]]:
    """The user's bot history once it holds ``count`` turns (the turn is logged after the reply)."""
    def probe() -> list[dict[str, Any]] | None:
        turns = user.client.get("/api/v1/bot/history").json["interactions"]
        return turns if len(turns) >= count else None
    return wait_for(probe, what=f"{count} bot turn(s) in the history")


def bot_reply_to(user: User, sent: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
    """Wait for the bot's message that follows ``sent`` in the conversation."""
    def probe() -> dict[str, Any] | None:
        page = user.client.get(f"/api/v1/messages?with={BOT}&limit=20").json["messages"]
        later = [m for m in page if m["sender"] == BOT and m["message_id"] > sent["message_id"]]
        return later[-1] if later else None
    return wait_for(probe, timeout=timeout, what=f"the bot's reply to {sent['content']!r}")


def test_reply_arrives_as_a_bot_message_and_the_question_turns_read(server: ServerThread) -> None:
    alice = register(server.port, "alice", name="Alice")
    sent = say(alice, "hello there")
    reply = bot_reply_to(alice, sent)
    assert reply["is_bot_response"] is True
    assert reply["recipient"] == alice.email
    assert reply["content"]
    wait_for(lambda: alice.client.get(f"/api/v1/messages/{sent['message_id']}")
             .json["message"]["status"] == "Read", what="the question to turn Read")
    entries = wait_for(lambda: [e for e in alice.client.get("/api/v1/activity").json["entries"]
                                if e["kind"] == "bot.replied"], what="bot.replied activity")
    assert entries[0]["text"] == f"bot:whatsease replied to {alice.email}"
    history = interactions(alice)
    assert history[0]["message_id"] == sent["message_id"]
    assert history[0]["intent"] == "greet"
    assert 0 < history[0]["confidence"] <= 1
    assert history[0]["reply"] == reply["content"]


def test_bot_appears_in_the_chat_list_under_the_bots_filter(server: ServerThread) -> None:
    bob = register(server.port, "bob")
    bot_reply_to(bob, say(bob, "hi"))
    bots = bob.client.get("/api/v1/chats?filter=bots").json["chats"]
    assert [c["peer"] for c in bots] == [BOT]
    assert bob.client.get("/api/v1/chats?filter=people").json["chats"] == []


def test_memory_survives_a_restart_and_can_be_forgotten(
        make_server: Callable[..., ServerThread]) -> None:
    first = make_server()
    ana = register(first.port, "ana", name="Ana Lopes")
    bot_reply_to(ana, say(ana, "my name is Ana"))
    first.stop()
    second = make_server(db_name=first.config.db_name, jwt_secret=first.config.jwt_secret)
    ana.client = Client(second.port, token=ana.access_token)
    reply = bot_reply_to(ana, say(ana, "what's my name?"))
    assert "Ana" in reply["content"]
    assert ana.client.delete("/api/v1/bot/context").status == 204
    reply = bot_reply_to(ana, say(ana, "what's my name?"))
    assert "Ana" not in reply["content"]


def test_feedback_is_a_two_turn_flow_that_stores_the_text(server: ServerThread) -> None:
    carol = register(server.port, "carol")
    first = bot_reply_to(carol, say(carol, "I want to give feedback"))
    assert first["content"]
    say(carol, "the dark mode is lovely")
    turns = interactions(carol, 2)
    assert [t["intent"] for t in turns] == ["feedback_text", "feedback"]
    stored = server.call(server.services.store.bot.notes(carol.email, kind="feedback"))
    assert [note.text for note in stored] == ["the dark mode is lovely"]


def test_a_question_never_ends_up_as_feedback(server: ServerThread) -> None:
    # The trap a new user fell into: "can I send photos?" started the feedback flow
    # and the next question was stored as feedback.
    gail = register(server.port, "gail")
    photos = bot_reply_to(gail, say(gail, "can I send photos?"))
    assert "text only" in photos["content"]
    blocked = bot_reply_to(gail, say(gail, "how do I block someone"))
    assert "Blocking isn't available" in blocked["content"]
    # Asked while feedback is awaited: answered, and the flow offered again.
    bot_reply_to(gail, say(gail, "I want to give feedback"))
    asked = bot_reply_to(gail, say(gail, "what do the ticks mean?"))
    assert "feedback" in asked["content"]
    say(gail, "the ticks could be bigger")
    turns = interactions(gail, 5)
    assert [t["intent"] for t in turns] == [
        "feedback_text", "ticks_meaning", "feedback", "block_user", "send_media"]
    stored = server.call(server.services.store.bot.notes(gail.email, kind="feedback"))
    assert [note.text for note in stored] == ["the ticks could be bigger"]


def test_history_is_only_the_callers(server: ServerThread) -> None:
    dave, erin = register(server.port, "dave"), register(server.port, "erin")
    bot_reply_to(dave, say(dave, "thanks a lot"))
    assert interactions(dave)[0]["message"] == "thanks a lot"
    assert erin.client.get("/api/v1/bot/history").json["interactions"] == []
    assert erin.client.get("/api/v1/bot/history", token="nope").status == 401


# ------------------------------------------------------------------ language-model fallback


@pytest.fixture
def fake_llm() -> Iterator[FakeCompletions]:
    fake = FakeCompletions().start()
    yield fake
    fake.stop()


OUT_OF_SCOPE = "what is the capital of peru"


def test_llm_answers_what_the_catalogue_cannot(make_server: Callable[..., ServerThread],
                                               fake_llm: FakeCompletions) -> None:
    srv = make_server(llm_url=fake_llm.url, llm_token="sk-test", llm_model="tiny",
                      llm_timeout=2.0)
    frank = register(srv.port, "frank")
    bot_reply_to(frank, say(frank, "hello"))
    reply = bot_reply_to(frank, say(frank, OUT_OF_SCOPE))
    assert reply["content"] == "From the model: Lima."
    request = fake_llm.requests[-1]
    assert request["authorization"] == "Bearer sk-test"
    assert request["body"]["model"] == "tiny"
    texts = [m["content"] for m in request["body"]["messages"]]
    assert "hello" in texts and texts[-1] == OUT_OF_SCOPE
    turns = interactions(frank, 2)
    assert turns[0]["source"] == "llm"


@pytest.mark.parametrize("mode", ["slow", "error"])
def test_llm_timeout_or_error_falls_back_to_the_catalogue(
        make_server: Callable[..., ServerThread], fake_llm: FakeCompletions, mode: str) -> None:
    fake_llm.mode = mode
    srv = make_server(llm_url=fake_llm.url, llm_timeout=0.5)
    gina = register(srv.port, "gina")
    assistant = srv.services.assistant
    assert assistant is not None
    catalogue = assistant.catalogue
    reply = bot_reply_to(gina, say(gina, OUT_OF_SCOPE), timeout=5)
    assert reply["content"] in catalogue.bot.fallback
    turns = interactions(gina)
    assert turns[0]["source"] == "llm_error"
    assert srv.services.hub is not None


def test_no_llm_configured_uses_the_fallback(server: ServerThread) -> None:
    hank = register(server.port, "hank")
    reply = bot_reply_to(hank, say(hank, OUT_OF_SCOPE))
    assistant = server.services.assistant
    assert assistant is not None
    catalogue = assistant.catalogue
    assert reply["content"] in catalogue.bot.fallback
