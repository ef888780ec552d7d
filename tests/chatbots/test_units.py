"""The parts of chatbot instances that need no server: sealing, queues, whitelists, providers."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.fake_completions import FakeCompletions
from whatsease.chatbots.configs import parse_instances
from whatsease.chatbots.llm import (
    ASSISTANT_ROLE,
    USER_ROLE,
    ConfigInvalid,
    LLMProviderError,
    ProviderContext,
    Turn,
    llm_provider,
    llm_providers,
)
from whatsease.chatbots.queues import QueueLimits, SenderQueue
from whatsease.chatbots.runtime import whitelisted
from whatsease.chatbots.sealing import SealBroken, Sealer
from whatsease.errors import Unprocessable
from whatsease.net.outbound import OutboundPolicy
from whatsease.storage.chatbots import QueueEntry, new_entry_id

KEY = "sk-unit-" + secrets.token_hex(8)
LOCAL = ProviderContext(OutboundPolicy(allow_private=True))
PUBLIC_ONLY = ProviderContext(OutboundPolicy())
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _entry(text: str, at: datetime = T0, role: str = USER_ROLE) -> QueueEntry:
    return QueueEntry(new_entry_id(), role, text, at, answered=role == ASSISTANT_ROLE)


# ------------------------------------------------------------------ sealing

def test_sealed_secrets_open_only_with_the_same_server_secret_and_instance() -> None:
    sealer = Sealer("server-secret-" + "x" * 40)
    blob = sealer.seal({"api_key": KEY}, "instance-1")
    assert KEY not in blob
    assert sealer.open(blob, "instance-1") == {"api_key": KEY}
    # Copied onto another instance, or read with another server secret: refused.
    with pytest.raises(SealBroken):
        sealer.open(blob, "instance-2")
    with pytest.raises(SealBroken):
        Sealer("another-secret-" + "y" * 40).open(blob, "instance-1")
    with pytest.raises(SealBroken):
        sealer.open(blob[:-4] + "AAAA", "instance-1")
    # A fresh nonce each time: the same secrets never seal to the same text.
    assert sealer.seal({"api_key": KEY}, "instance-1") != blob


# ------------------------------------------------------------------- queues

def test_a_queue_drops_its_oldest_entries_first_and_counts_unanswered_ones() -> None:
    queue = SenderQueue(QueueLimits(max_messages=3, max_characters=1000, max_days=1))
    first, second, third = _entry("one"), _entry("two"), _entry("three")
    for entry in (first, second, third):
        assert queue.add(entry, T0) == []
    fourth = _entry("four")
    removed = queue.add(fourth, T0)
    assert removed == [first] and queue.is_drop(first)
    assert [e.content for e in queue.entries] == ["two", "three", "four"]
    assert queue.next_pending() is second


def test_a_queue_is_bounded_by_characters_and_age_but_keeps_the_newest() -> None:
    queue = SenderQueue(QueueLimits(max_messages=100, max_characters=10, max_days=1))
    queue.add(_entry("aaaa"), T0)
    queue.add(_entry("bbbb"), T0)
    removed = queue.add(_entry("cccc"), T0)
    assert [e.content for e in removed] == ["aaaa"] and queue.characters == 8
    # One message longer than the bound stays: it is answered rather than lost.
    queue.add(_entry("x" * 50), T0)
    assert [e.content for e in queue.entries] == ["x" * 50]
    aged = SenderQueue(QueueLimits(max_messages=100, max_characters=1000, max_days=1))
    aged.add(_entry("old", T0 - timedelta(days=2)), T0 - timedelta(days=2))
    removed = aged.add(_entry("new", T0), T0)
    assert [e.content for e in removed] == ["old"]


def test_the_entry_being_answered_is_not_a_drop_and_context_is_in_order() -> None:
    queue = SenderQueue(QueueLimits(max_messages=3, max_characters=1000, max_days=1))
    question = _entry("hello")
    queue.add(question, T0)
    queue.in_flight = question.entry_id
    later = _entry("are you there")
    queue.add(later, T0)
    queue.add(_entry("third"), T0)
    removed = queue.add(_entry("fourth"), T0)
    assert removed == [question] and not queue.is_drop(question)
    queue.in_flight = None
    # Its answer is not kept without it, so it pushes out no waiting message.
    assert queue.add_answer(question, _entry("hi!", role=ASSISTANT_ROLE), T0) == (False, [])
    assert [e.content for e in queue.entries] == ["are you there", "third", "fourth"]
    answered = SenderQueue(QueueLimits(10, 1000, 1))
    one = _entry("one")
    answered.add(one, T0)
    assert answered.add_answer(one, _entry("first answer", role=ASSISTANT_ROLE), T0) == (
        True, [])
    two = _entry("two")
    answered.add(two, T0)
    assert answered.next_pending() is two
    assert answered.context_for(two) == [Turn(USER_ROLE, "one"),
                                         Turn(ASSISTANT_ROLE, "first answer"),
                                         Turn(USER_ROLE, "two")]


def test_whitelist_matches_contacts_and_bare_numbers() -> None:
    assert whitelisted([], "wa:+4915112345678")
    assert whitelisted(["4915112345678"], "wa:+4915112345678")
    assert whitelisted(["+4915112345678"], "wa:+4915112345678")
    assert whitelisted(["wa:+4915112345678"], "wa:+4915112345678")
    assert whitelisted(["alice"], "lb:alice")
    assert not whitelisted(["4915112345678"], "wa:+4915199999999")
    assert not whitelisted(["alice"], "lb:alicea")


# ---------------------------------------------------------------- providers

def test_the_built_in_llm_providers_are_entry_points() -> None:
    assert {"catalogue", "openai_compatible", "fake"} <= set(llm_providers())


async def test_the_fake_provider_is_deterministic_and_can_fail() -> None:
    fake = llm_provider("fake")
    config = fake.validate({"reply": "Echo: {text}", "confidence": 0.4}, LOCAL)
    provider = fake(config, LOCAL)
    reply = await provider.complete([Turn(USER_ROLE, "hi there")], conversation_id="c")
    assert reply.text == "Echo: hi there" and reply.confidence == 0.4
    assert reply.prompt_tokens > 0 and reply.completion_tokens > 0 and reply.latency >= 0
    failing = fake(fake.validate({"fail": True}, LOCAL), LOCAL)
    with pytest.raises(LLMProviderError):
        await failing.complete([Turn(USER_ROLE, "x")], conversation_id="c")
    with pytest.raises(ConfigInvalid) as bad:
        fake.validate({"confidence": 3}, LOCAL)
    assert bad.value.field == "confidence"
    with pytest.raises(ConfigInvalid) as unknown:
        fake.validate({"replyy": "typo"}, LOCAL)
    assert unknown.value.field == "replyy"


async def test_the_catalogue_provider_answers_with_the_intent_engine() -> None:
    catalogue = llm_provider("catalogue")
    toml = ('[bot]\nname = "Shop"\nfallback = ["Sorry?"]\n\n[[intents]]\nname = "hours"\n'
            'examples = ["when are you open", "opening hours"]\n'
            'responses = ["We open at nine."]\n')
    provider = catalogue(catalogue.validate({"catalogue": toml}, LOCAL), LOCAL)
    reply = await provider.complete([Turn(USER_ROLE, "what are your opening hours")],
                                    conversation_id="c")
    assert reply.text == "We open at nine." and reply.confidence > 0.5
    assert (reply.prompt_tokens, reply.completion_tokens) == (0, 0)
    unsure = await provider.complete([Turn(USER_ROLE, "zxqv plorb")], conversation_id="c")
    assert unsure.text == "Sorry?" and unsure.confidence == 0.0
    with pytest.raises(ConfigInvalid) as bad:
        catalogue.validate({"catalogue": "[bot\nname="}, LOCAL)
    assert bad.value.field == "catalogue"


@pytest.fixture
def completions() -> Iterator[FakeCompletions]:
    fake = FakeCompletions(lambda body: f"Model says: {body['messages'][-1]['content']}")
    yield fake.start()
    fake.stop()


async def test_the_openai_compatible_provider_speaks_the_protocol(
        completions: FakeCompletions) -> None:
    openai = llm_provider("openai_compatible")
    config = openai.validate({"url": completions.url, "model": "tiny-1", "system": "Be brief.",
                              "api_key": KEY}, LOCAL)
    assert openai.SECRET_FIELDS == ("api_key",)
    provider = openai(config, LOCAL)
    reply = await provider.complete([Turn(USER_ROLE, "hi"), Turn(ASSISTANT_ROLE, "hello"),
                                     Turn(USER_ROLE, "price?")], conversation_id="c")
    assert reply.text == "Model says: price?"
    request = completions.requests[-1]
    assert request["authorization"] == f"Bearer {KEY}"
    assert request["body"]["model"] == "tiny-1"
    assert [m["role"] for m in request["body"]["messages"]] == ["system", "user", "assistant",
                                                                 "user"]
    assert reply.prompt_tokens > 0 and reply.completion_tokens > 0
    completions.mode = "error"
    with pytest.raises(LLMProviderError) as failed:
        await provider.complete([Turn(USER_ROLE, "x")], conversation_id="c")
    assert "500" in str(failed.value) and KEY not in str(failed.value)


def test_the_openai_compatible_provider_refuses_local_urls_unless_allowed() -> None:
    openai = llm_provider("openai_compatible")
    with pytest.raises(ConfigInvalid) as bad:
        openai.validate({"url": "http://127.0.0.1:9/v1/chat/completions"}, PUBLIC_ONLY)
    assert bad.value.field == "url"
    with pytest.raises(ConfigInvalid) as header:
        openai.validate({"url": "https://llm.example/v1", "api_key": "a\r\nX-Evil: 1"},
                        PUBLIC_ONLY)
    assert header.value.field == "api_key"


# ------------------------------------------------------------------ configs

def _config(**overrides: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "user_id": "bot_1",
        "chat_provider_config": {"provider_name": "loopback", "provider_config": {
            "peer_url": "http://127.0.0.1:9/replies", "secret": "s3cret"}},
        "queue_config": {"max_messages": 10, "max_characters": 1000, "max_days": 1},
        "llm_provider_config": {"provider_name": "fake", "provider_config": {}}}
    entry.update(overrides)
    return entry


def test_configs_are_validated_as_a_whole_naming_index_and_field() -> None:
    good = parse_instances([_config(), _config(user_id="bot_2")], LOCAL)
    assert [s.user_id for s in good] == ["bot_1", "bot_2"]
    assert good[0].chat_secrets == {"secret": "s3cret"}
    assert "secret" not in good[0].chat_config
    with pytest.raises(Unprocessable) as bad:
        parse_instances([_config(), _config(user_id="bot_2", queue_config={
            "max_messages": 0, "max_characters": 10, "max_days": 1})], LOCAL)
    assert [e["field"] for e in bad.value.errors] == ["[1].queue_config.max_messages"]
    with pytest.raises(Unprocessable) as provider:
        parse_instances([_config(llm_provider_config={"provider_name": "gpt-9000"})], LOCAL)
    assert provider.value.errors[0]["field"] == "[0].llm_provider_config.provider_name"
    with pytest.raises(Unprocessable) as nested:
        parse_instances([_config(chat_provider_config={"provider_name": "loopback",
                                                       "provider_config": {"secret": "x"}})],
                        LOCAL)
    assert nested.value.errors[0]["field"] == (
        "[0].chat_provider_config.provider_config.peer_url")
    with pytest.raises(Unprocessable) as twice:
        parse_instances([_config(), _config()], LOCAL)
    assert twice.value.errors[0]["field"] == "[1].user_id"
    with pytest.raises(Unprocessable):
        parse_instances({"user_id": "x"}, LOCAL)
