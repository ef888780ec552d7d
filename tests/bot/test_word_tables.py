"""Tests for the compact word tables (wordlist.py, and the WordNet, vector and
folded-word tables built on it): the same answers as plain dicts, in little memory."""

from __future__ import annotations

import gc
import gzip
import tracemalloc
from array import array
from pathlib import Path

import pytest

from whatsease.bot.expansion import CIRCUMSTANCE_MIN_NOUN_SHARE, FoldedWords, folded_words
from whatsease.bot.folding import fold
from whatsease.bot.lexicon import stop_words
from whatsease.bot.meaning import WORDNET_PATH, MeaningDataError, load_wordnet
from whatsease.bot.vectors import VectorDataError, load_vectors
from whatsease.bot.wordlist import WordList

# The three tables as dicts of objects took ~37 MiB (tracemalloc); compact, ~8 MiB.
WORD_TABLES_MAX_BYTES = 12 * 1024 * 1024


def test_a_word_list_finds_its_words_by_bisection() -> None:
    words = WordList.from_words(["apple", "banana", "cherry", "zoë"])
    assert len(words) == 4
    assert [words.index(w) for w in ("apple", "banana", "cherry", "zoë")] == [0, 1, 2, 3]
    for absent in ("", "a", "applf", "bananas", "zz", "zoe", "\ud800"):
        assert words.index(absent) == -1
    assert list(words) == ["apple", "banana", "cherry", "zoë"]
    assert words.word(3) == "zoë" and words[0] == b"apple"
    assert WordList.from_words([]).index("apple") == -1


def test_a_word_list_inside_a_larger_text() -> None:
    text = b"# a comment\nant\t1\nbee\t2\n"
    words = WordList(text, array("I", [12, 18]), array("I", [15, 21]))
    assert words.index("bee") == 1 and words.index("ant") == 0 and words.index("1") == -1


@pytest.mark.parametrize("words", [["b", "a"], ["a", "a"]])
def test_a_word_list_must_be_sorted_and_distinct(words: list[str]) -> None:
    with pytest.raises(ValueError, match="does not sort after"):
        WordList.from_words(words)


def test_unsorted_wordnet_data_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.tsv.gz"
    path.write_bytes(gzip.compress(b"# comment\nbee\t50\t9\nant\t40\t9\n"))
    with pytest.raises(MeaningDataError, match=r"bad\.tsv\.gz:3: .*does not sort after"):
        load_wordnet.__wrapped__(path)


def test_unsorted_vectors_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "v.bin.gz"
    path.write_bytes(gzip.compress(b"WEVEC1 2 1\ndog\ncat\n\x01\x02"))
    with pytest.raises(VectorDataError, match=r"v\.bin\.gz: .*does not sort after"):
        load_vectors.__wrapped__(path)


def test_the_word_tables_answer_as_plain_dicts_of_the_file_do() -> None:
    # A plain reading of the data file, as the tables were kept before.
    zipf: dict[str, float] = {}
    noun: dict[str, float] = {}
    forms: dict[str, tuple[str, ...]] = {}
    lemmas: dict[str, list[str]] = {}
    for line in gzip.decompress(WORDNET_PATH.read_bytes()).decode().splitlines():
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        zipf[fields[0]] = int(fields[1]) / 10.0
        noun[fields[0]] = int(fields[2]) / 9.0
        if len(fields) == 4:
            forms[fields[0]] = tuple(fields[3][1:].split(","))
        elif len(fields) == 7:
            lemmas[fields[0]] = fields[3:]
    wordnet = load_wordnet()
    assert dict(wordnet.zipf) == zipf and dict(wordnet.noun) == noun
    assert dict(wordnet.forms) == forms
    assert list(wordnet.lemmas) == list(lemmas) and len(wordnet.lemmas) == len(lemmas)
    for name in ("monday", "move", "relocate", "a", "zoom"):
        entry = wordnet.lemmas[name]
        assert [entry.kind, entry.raw_senses, entry.raw_hypernyms, entry.raw_derived] == (
            lemmas[name])
        assert (entry.zipf, entry.noun) == (zipf[name], noun[name])

    def lemmas_of(word: str) -> tuple[str, ...]:
        return (word,) if word in lemmas else forms.get(word, ())

    # The folded tables, computed as they were before.
    vectors = load_vectors()
    by_fold: dict[str, dict[str, None]] = {}
    facts: dict[str, tuple[float, float, str]] = {}
    spelling: dict[str, str] = {}
    for word in sorted(zipf, key=lambda w: -zipf[w]):
        token = fold(word)
        names = lemmas_of(word)
        if names:
            by_fold.setdefault(token, {}).update(dict.fromkeys(names))
        if token not in facts:
            kind = ""
            if names:
                first_kind, senses = lemmas[names[0]][:2]
                _, verbs, adjectives, _ = senses.split("|")
                if noun[names[0]] >= CIRCUMSTANCE_MIN_NOUN_SHARE or not (verbs or adjectives):
                    kind = first_kind
            facts[token] = (zipf[word], noun[word], kind)
        if token not in spelling and word in vectors:
            spelling[token] = word
    table = folded_words(wordnet)
    assert list(table.tokens) == sorted(facts)
    for token in facts:
        assert table.facts(token) == facts[token]
        assert table.lemmas(token) == tuple(by_fold.get(token, ()))
        assert table.vector_spelling(token, vectors) == spelling.get(token)
    assert table.facts("qwzxv") is None and table.lemmas("qwzxv") == ()


def test_the_word_tables_stay_small() -> None:
    stop_words()  # read once a process anyway, and not part of the tables
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        wordnet = load_wordnet.__wrapped__()
        vectors = load_vectors.__wrapped__()
        table = FoldedWords(wordnet)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(wordnet) > 50_000 and len(vectors) > 50_000 and len(table.tokens) > 40_000
    assert kept < WORD_TABLES_MAX_BYTES, f"{kept / 2**20:.1f} MiB"
