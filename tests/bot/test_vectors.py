"""Tests for the word vectors (whatsease/bot/vectors.py) and their use in matching."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

import whatsease.bot.expansion as expansion
from whatsease.bot.catalogue import loads_catalogue
from whatsease.bot.engine import IntentEngine
from whatsease.bot.vectors import (
    VECTORS_PATH,
    VectorDataError,
    VectorTable,
    WordVectors,
    load_vectors,
)


def test_data_file_is_small_and_licensed() -> None:
    assert VECTORS_PATH.stat().st_size < 4 * 1024 * 1024
    notice = VECTORS_PATH.with_name("VECTORS-LICENSE").read_text(encoding="utf-8")
    assert "GloVe" in notice and "PDDL" in notice


def test_frequent_words_have_vectors_and_related_words_are_close() -> None:
    vectors = load_vectors()
    assert len(vectors) > 50_000
    assert vectors.dims == 64
    for word in ("internet", "stolen", "wallet", "refund", "inhaler"):
        assert word in vectors
    assert "zzqxv" not in vectors and vectors.vector("zzqxv") is None
    close = vectors.similarity("purse", "wallet")
    far = vectors.similarity("purse", "broadband")
    assert close is not None and far is not None
    assert close > 0.5 > far
    assert vectors.similarity("internet", "internet") == pytest.approx(1.0)


def test_packed_table_gives_the_same_cosines_as_a_plain_loop() -> None:
    vectors = load_vectors()
    keys = ["wallet", "card", "router", "doctor", "refund"]
    rows = [vectors.vector(k) for k in keys]
    assert all(r is not None for r in rows)
    table = VectorTable(keys, [r for r in rows if r is not None])
    query = vectors.vector("purse")
    assert query is not None
    for key, cosine in zip(keys, table.cosines(query), strict=True):
        assert cosine == pytest.approx(vectors.similarity("purse", key), abs=1e-9)
    # Extreme components do not carry into the next packed slot.
    extreme = VectorTable(["a", "b"], [[127] * 64, [-127] * 64])
    assert extreme.cosines([-127] * 64) == pytest.approx([-1.0, 1.0])
    assert VectorTable([], []).cosines([1] * 64) == []


def _write(path: Path, header: str, words: list[str], data: bytes) -> Path:
    with gzip.open(path, "wb") as f:
        f.write((header + "\n" + "".join(w + "\n" for w in words)).encode("ascii") + data)
    return path


def test_a_small_file_loads(tmp_path: Path) -> None:
    path = _write(tmp_path / "v.bin.gz", "WEVEC1 2 3", ["cat", "dog"], bytes([1, 2, 3, 1, 2, 4]))
    vectors = load_vectors.__wrapped__(path)
    assert isinstance(vectors, WordVectors)
    assert list(vectors.vector("dog") or []) == [1, 2, 4]
    assert (vectors.similarity("cat", "dog") or 0) > 0.99


@pytest.mark.parametrize(
    ("header", "words", "data"),
    [
        ("NOTVEC 2 3", ["cat", "dog"], bytes(6)),
        ("WEVEC1 two 3", ["cat", "dog"], bytes(6)),
        ("WEVEC1 2 3", ["cat", "dog"], bytes(5)),
        ("WEVEC1 3 3", ["cat", "dog"], b""),
    ],
)
def test_malformed_data_is_reported(
    tmp_path: Path, header: str, words: list[str], data: bytes
) -> None:
    path = _write(tmp_path / "v.bin.gz", header, words, data)
    with pytest.raises(VectorDataError, match=r"v\.bin\.gz"):
        load_vectors.__wrapped__(path)


def test_missing_data_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(VectorDataError, match="cannot read"):
        load_vectors.__wrapped__(tmp_path / "absent.bin.gz")


# Made up for this test: no example says "purse", "pickpocket" or "inhaler".
LOST = """
[bot]
name = "T"
fallback = ["?"]

[[intents]]
name = "card_lost"
examples = ["i lost my wallet", "my card was stolen", "someone stole my card"]
responses = ["ok"]

[[intents]]
name = "prescription"
examples = ["i need a repeat prescription", "order more of my medication"]
responses = ["ok"]

[[intents]]
name = "opening_hours"
examples = ["when are you open", "what are your opening hours"]
responses = ["ok"]
"""


@pytest.mark.parametrize(
    ("text", "intent"),
    [("a thief has my purse", "card_lost"), ("i need an inhaler", "prescription")],
)
def test_a_paraphrase_in_other_words_matches_through_the_vectors(
    text: str, intent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalogue = loads_catalogue(LOST, source="<t>")
    assert IntentEngine(catalogue).match(text).intent_name == intent
    # Without the vectors' readings the same message falls back.
    monkeypatch.setattr(expansion, "VECTOR_SIMILARITY", 0.0)
    assert IntentEngine(catalogue).match(text).intent is None


def test_vectors_do_not_answer_an_unrelated_question() -> None:
    engine = IntentEngine(loads_catalogue(LOST, source="<t>"))
    # Frequent words and words of time and people get no vector readings.
    assert engine.match("what is the weather like tomorrow").intent is None
    assert engine.match("my brother likes football").intent is None
