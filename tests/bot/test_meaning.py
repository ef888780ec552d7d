"""Tests for the WordNet meaning layer and how the engine weighs words with it."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from whatsease.bot.catalogue import loads_catalogue
from whatsease.bot.engine import IntentEngine
from whatsease.bot.meaning import WORDNET_PATH, MeaningDataError, load_wordnet


def test_data_file_is_small_and_licensed() -> None:
    assert WORDNET_PATH.stat().st_size < 1_500_000
    licence = WORDNET_PATH.with_name("WORDNET-LICENSE").read_text(encoding="utf-8")
    assert "Princeton University" in licence


def test_base_forms_and_frequencies() -> None:
    wordnet = load_wordnet()
    assert wordnet.lemmas_of("relocating") == ("relocate",)
    assert wordnet.lemmas_of("went") == ("go",)
    assert wordnet.lemmas_of("router") == ("router",)
    assert wordnet.lemmas_of("qwzx") == ()
    # Rare words name topics, frequent ones frame sentences.
    assert wordnet.zipf["the"] > wordnet.zipf["bill"] > wordnet.zipf["inhaler"]
    assert wordnet.lemmas["monday"].kind == "time"
    assert wordnet.lemmas["husband"].kind == "person"


def test_senses_are_in_frequency_order() -> None:
    wordnet = load_wordnet()
    # "relocate" (change residence) shares a synset with one of the first senses of "move"
    relocate = wordnet.lemmas["relocate"].core(1)
    assert relocate & wordnet.lemmas["move"].core(6)
    assert not relocate & wordnet.lemmas["move"].core(1)


@pytest.mark.parametrize(
    "content",
    [b"word\t50\n", b"word\t5x\t9\n", b"word\t50\t9\tartifact\t1|2\t\t\n"],
)
def test_malformed_data_is_reported(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.tsv.gz"
    path.write_bytes(gzip.compress(content))
    with pytest.raises(MeaningDataError, match=r"bad\.tsv\.gz:1"):
        load_wordnet.__wrapped__(path)


def test_missing_data_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(MeaningDataError, match="cannot read"):
        load_wordnet.__wrapped__(tmp_path / "none.tsv.gz")


MOVING = """
[bot]
name = "T"
fallback = ["?"]

[[intents]]
name = "moving_home"
examples = ["i am moving house", "we are moving to a new home", "moving home soon"]
responses = ["ok"]

[[intents]]
name = "billing"
examples = ["question about my bill", "my bill is wrong", "explain my bill"]
responses = ["ok"]
"""


def test_wordnet_synonym_reaches_a_catalogue_word() -> None:
    engine = IntentEngine(loads_catalogue(MOVING, source="<t>"))
    found = engine.match("we are relocating")
    assert found.intent_name == "moving_home"


def test_rare_unknown_word_weighs_more_than_a_frequent_one() -> None:
    engine = IntentEngine(loads_catalogue(MOVING, source="<t>"))
    # The same sentence frame, and words of the same length the catalogue does not
    # use: "electricity" is rarer in English than "information", so it leaves more of
    # the message unexplained (with one weight for every unknown word they tie).
    rare = engine.match("question about my electricity bill")
    common = engine.match("question about my information bill")
    assert rare.confidence < common.confidence - 0.03


CONNECTION = """
[bot]
name = "T"
fallback = ["?"]

[[intents]]
name = "no_connection"
examples = ["my connection is down", "i am not connected", "the connection keeps failing"]
responses = ["ok"]

[[intents]]
name = "billing"
examples = ["question about my bill", "my bill is wrong", "explain my bill"]
responses = ["ok"]
"""


def test_a_prefixed_word_is_read_as_its_root() -> None:
    engine = IntentEngine(loads_catalogue(CONNECTION, source="<t>"))
    # "disconnecting" is unknown; its root "connect" is a form of "connection"/"connected".
    assert engine.match("it keeps disconnecting").intent_name == "no_connection"
    # "report" is not "re" + "port": the prefix rule leaves such words alone.
    assert engine.expander.derived("report") == ()


ROUTER = """
[bot]
name = "T"
fallback = ["?"]

[[intents]]
name = "router_reset"
examples = ["how do i reset my router", "reset the router", "router needs a reset"]
responses = ["ok"]

[[intents]]
name = "remember_name"
examples = ["call me Sam", "my name is Sam"]
slots = { name = '(?i)(?:call me|name is)\\s+(?P<name>\\w+)' }
responses = ["Hi {name}"]
"""


def test_a_product_the_catalogue_never_names_makes_a_fallback() -> None:
    engine = IntentEngine(loads_catalogue(ROUTER, source="<t>"))
    assert engine.match("how do i reset my router").intent_name == "router_reset"
    # "iphone" is frequent English, unknown to WordNet and to the catalogue.
    assert engine.match("how do i reset my iphone").intent is None
    # A rare unknown word is more likely a typo or jargon: no veto for it.
    assert engine.match("how do i reset my zyxelrouter").intent_name == "router_reset"


def test_a_slot_value_or_a_capitalised_name_is_no_stranger() -> None:
    engine = IntentEngine(loads_catalogue(ROUTER, source="<t>"))
    assert engine.match("call me kim").intent_name == "remember_name"
    assert engine.match("reset the router for Kim please").intent_name == "router_reset"


SERVICE = """
[bot]
name = "T"
fallback = ["?"]

[[intents]]
name = "fault"
examples = ["my internet is not working", "the service does not work", "it is broken"]
responses = ["ok"]

[[intents]]
name = "cancel"
examples = ["cancel my contract", "stop my contract", "i want to cancel the service"]
responses = ["ok"]
"""


def test_stopped_working_is_not_working() -> None:
    engine = IntentEngine(loads_catalogue(SERVICE, source="<t>"))
    assert engine.match("my internet stopped working").intent_name == "fault"
    assert engine.match("stop my contract please").intent_name == "cancel"
