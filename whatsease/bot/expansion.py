"""Readings: the other catalogue words a message word may stand for (lexicon groups,
derived forms, WordNet senses, word vectors, the words of a multi-word expression)."""

from __future__ import annotations

import heapq
import os
from array import array
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache

from whatsease.bot.folding import PHRASE_JOINER, TextFolder, fold
from whatsease.bot.lexicon import QUESTION_WORDS, Lexicon, stop_words
from whatsease.bot.meaning import WordNetData, load_wordnet
from whatsease.bot.vectors import VectorTable, WordVectors, load_vectors
from whatsease.bot.wordlist import WordList

# A reading: a catalogue token and the fraction of the word's weight it credits.
Readings = tuple[tuple[str, float], ...]
# (Zipf frequency, noun share, noun class) of a folded word.
WordFacts = tuple[float, float, str]
# A word's noun class counts only if it is used as a noun at least this often.
CIRCUMSTANCE_MIN_NOUN_SHARE = 0.5

# A message word is also read as each catalogue word related to it (lexicon [related])
# at this fraction of its weight: enough to carry a paraphrase ("credit cards" for an
# intent that says "visa"), less than the word itself, so an intent that uses the
# message's own word wins.
RELATED_SIMILARITY = 0.7
# An unknown word is also read as a catalogue word that looks like another form of it
# ("cancellation" / "cancel"): they share at least this many first letters...
DERIVED_MIN_PREFIX = 5
# ...and this share of the shorter word ("experience" is not "experiment")...
DERIVED_MIN_SHARE = 0.75
# ...and the reading counts this much of the word.
DERIVED_SIMILARITY = 0.8
# An unknown word made of a prefix and a catalogue word (or a derived form of one) is
# read as that word at this similarity; the root must keep this many letters. Not
# "re": most words starting so are no prefixed forms ("report" is not "port").
AFFIX_PREFIXES: tuple[str, ...] = ("dis", "un", "mis", "non")
AFFIX_MIN_ROOT = 4
AFFIX_SIMILARITY = 0.6
# A message word the catalogue does not use is also read as each catalogue word
# WordNet puts in one of its first senses (a shared synset, or a derivational link:
# "relocate" / "move", "payment" / "pay") at this fraction of its weight, and as one
# a sense away up or down the hypernym tree at the second. Soft evidence: less than
# the word itself, and less than the hand-written [related] groups. Hypernyms are off:
# on the four case sets they answered more out-of-scope questions and fixed nothing.
WORDNET_SYNONYM_SIMILARITY = 0.6
WORDNET_HYPERNYM_SIMILARITY = 0.0
# The message word's first senses per part of speech (WordNet orders senses by how
# often they are used; a customer means the usual sense), the catalogue word's first
# few more (in its domain a rarer sense may be the one meant: "move" house).
MESSAGE_SENSES = 2
CATALOGUE_SENSES = 6
# A message word the catalogue does not use, and that neither the lexicon nor WordNet
# reads as any catalogue word, is read as the catalogue words whose GloVe vectors are
# closest to its own (vectors.bin.gz): "purse" / "wallet", "inhaler" / "prescription",
# "migraine" / "pain". Neighbours at or above this cosine similarity count, at most
# this many, each at VECTOR_SIMILARITY x its cosine: soft evidence like WordNet's,
# which leaves the word its own weight. Below 0.5 the neighbours turn into
# associations ("physio" / "boss", "jab" / "right").
VECTOR_MIN_COSINE = 0.5
VECTOR_NEIGHBOURS = 3
VECTOR_SIMILARITY = 1.0
# ...and never more than a WordNet synonym: they are the weakest evidence.
VECTOR_MAX_SIMILARITY = WORDNET_SYNONYM_SIMILARITY
# Only for message words no more frequent than this (Zipf): "inhaler" 2.9, "lag" 3.7,
# "purse" 4.0; a frequent word's neighbours are other topics ("poem" 4.2 / "write",
# "weather" 4.9 / "today"). On the four development sets anything up to 4.0 changed
# nothing but one fixed case, 4.2 answered one more out-of-scope message.
VECTOR_MAX_ZIPF = 4.0
# Nor for nouns of time ("thursday" / "saturday", "week"): they say when, not what.
VECTOR_SKIP_KINDS: frozenset[str] = frozenset({"time"})
# ...and also as each of their own words the catalogue uses, at this fraction: "how
# long does it take" still shares "how" and "long" with examples that say them.
PHRASE_PART_SIMILARITY = 0.6
# Folded words whose facts and lemmas are kept once read (a message word's, the
# catalogue's): the scorer asks for them on every message.
FOLD_CACHE_SIZE = 8192


class Expander:
    """Finds the catalogue words (`weights`: catalogue token -> weight) a message
    word may also be read as, each with its similarity; results cached per word.

    Builds its tables at construction: the lexicon's related groups through
    `folder`, WordNet's senses of the `surface` words, the vectors of the topic words.
    """

    def __init__(self, lexicon: Lexicon, folder: TextFolder, weights: Mapping[str, float],
                 surface: Mapping[str, int], common_stems: frozenset[str]) -> None:
        self._weights = weights
        self._common_stems = common_stems
        self._folded = folded_words(load_wordnet())
        self.facts: Mapping[str, WordFacts] = _FoldedFacts(self._folded)
        # Related words (lexicon [related]), read through the same pipeline as the
        # examples; a message token is also read as each related token the catalogue
        # uses. Members that fold to several tokens (a catalogue's own multi-word
        # canonical phrase) take no part.
        related: dict[str, set[str]] = {}
        for group in lexicon.related:
            members = set()
            for member in group:
                folded = [t for t, _ in folder.canonical(member, correct=False)]
                if len(folded) == 1:
                    members.add(folded[0])
            for member in members:
                related.setdefault(member, set()).update(members - {member})
        self.related: dict[str, Readings] = {}
        for token, others in related.items():
            known = tuple((t, RELATED_SIMILARITY) for t in sorted(others) if t in self._weights)
            if known:
                self.related[token] = known
        # Catalogue words by their first letters, to find derived forms of a word.
        self._by_prefix: dict[str, list[str]] = {}
        for token in self._weights:
            if len(token) >= DERIVED_MIN_PREFIX and token.isalpha():
                self._by_prefix.setdefault(token[:DERIVED_MIN_PREFIX], []).append(token)
        self.derived = lru_cache(maxsize=4096)(self._derived_uncached)
        self._wordnet_index(surface)
        self.meaning = lru_cache(maxsize=4096)(self._meaning_uncached)
        self._vector_index()
        self.neighbours = lru_cache(maxsize=4096)(self._neighbours_uncached)

    def _derived_uncached(self, token: str) -> Readings:
        """Catalogue words that look like another form of `token`, with their similarity.

        "cancellation" and "cancel", "registration" and "register", "arrival" and
        "arrive" share a long beginning: at least DERIVED_MIN_PREFIX letters and
        DERIVED_MIN_SHARE of the shorter word (so "experience" is not "experiment").
        """
        if len(token) < DERIVED_MIN_PREFIX or not token.isalpha():
            return ()
        found = []
        for known in self._by_prefix.get(token[:DERIVED_MIN_PREFIX], ()):
            shared = len(os.path.commonprefix((known, token)))  # noqa: RUF071 - words
            if shared >= DERIVED_MIN_SHARE * min(len(known), len(token)):
                found.append((known, DERIVED_SIMILARITY))
        if not found:
            # A prefixed word is about its root ("disconnecting" is about connecting,
            # "unpaid" about paying), though it may mean the opposite: less credit.
            for prefix in AFFIX_PREFIXES:
                root = token[len(prefix) :]
                if token.startswith(prefix) and len(root) >= AFFIX_MIN_ROOT:
                    if root in self._weights:
                        found.append((root, AFFIX_SIMILARITY))
                    else:
                        found += [(r, AFFIX_SIMILARITY) for r, _ in self.derived(root)]
                    break
        return tuple(found)

    def _wordnet_index(self, surface: Mapping[str, int]) -> None:
        """Catalogue words by WordNet synset: each word's senses, derived forms and
        hypernyms, looked up through the spellings the catalogue uses."""
        wordnet = load_wordnet()
        lemmas: dict[str, set[str]] = {}
        for word in surface:
            token = fold(word)
            if token in self._weights and token not in stop_words():
                lemmas.setdefault(token, set()).update(wordnet.lemmas_of(word))
        # synset -> {catalogue token: True for its own sense, False for a hypernym}
        self._synsets: dict[int, dict[str, bool]] = {}
        for token, names in lemmas.items():
            for name in names:
                entry = wordnet.lemmas[name]
                for synset in entry.core(CATALOGUE_SENSES):
                    self._synsets.setdefault(synset, {})[token] = True
                for synset in entry.hypernyms:
                    self._synsets.setdefault(synset, {}).setdefault(token, False)
        self.wordnet = wordnet
        self.fold_lemmas: Mapping[str, tuple[str, ...]] = _FoldedLemmas(self._folded)

    def _meaning_uncached(self, token: str) -> Readings:
        """Catalogue words WordNet relates to `token` (a folded message word)."""
        if token in stop_words() or token in QUESTION_WORDS or not token.isalpha():
            return ()
        found: dict[str, float] = {}
        for name in self.fold_lemmas.get(token, ()):
            entry = self.wordnet.lemmas[name]
            for synset in entry.core(MESSAGE_SENSES):
                for known, own in self._synsets.get(synset, {}).items():
                    value = WORDNET_SYNONYM_SIMILARITY if own else WORDNET_HYPERNYM_SIMILARITY
                    if value > found.get(known, 0.0):
                        found[known] = value
            for synset in entry.hypernyms:
                for known, own in self._synsets.get(synset, {}).items():
                    if own and found.get(known, 0.0) < WORDNET_HYPERNYM_SIMILARITY:
                        found[known] = WORDNET_HYPERNYM_SIMILARITY
        found.pop(token, None)
        return tuple(sorted(found.items()))

    def _vector_index(self) -> None:
        """The catalogue's topic words that have a word vector, packed for comparison."""
        vectors = load_vectors()
        keys: list[str] = []
        rows: list[Sequence[int]] = []
        for token in sorted(self._weights):
            if token in stop_words() or token in QUESTION_WORDS or not token.isalpha():
                continue
            vector = vectors.vector(self._folded.vector_spelling(token, vectors) or token)
            if vector is not None:
                keys.append(token)
                rows.append(vector)
        self._vectors = vectors
        self._vector_table = VectorTable(keys, rows)

    def _neighbours_uncached(self, token: str, word: str) -> Readings:
        """Catalogue words whose vectors are close to `token`'s (a folded message word;
        `word` is it as typed, or "" when not known)."""
        if token in stop_words() or token in QUESTION_WORDS or not token.isalpha():
            return ()
        if VECTOR_SIMILARITY <= 0 or token in self._common_stems:
            return ()
        if not word or word not in self._vectors:
            word = self._folded.vector_spelling(token, self._vectors) or token
        # Everyday words frame the sentence, and their neighbours are associations
        # ("brother" / "friend"), not paraphrases.
        zipf = self.wordnet.zipf.get(word)
        facts = self.facts.get(token)
        if zipf is not None and zipf > VECTOR_MAX_ZIPF:
            return ()
        if facts is not None and facts[2] in VECTOR_SKIP_KINDS:
            return ()
        vector = self._vectors.vector(word)
        if vector is None:
            return ()
        table = self._vector_table
        close = [
            (cosine, key)
            for cosine, key in zip(table.cosines(vector), table.keys, strict=True)
            if cosine >= VECTOR_MIN_COSINE and key != token
        ]
        best = heapq.nlargest(VECTOR_NEIGHBOURS, close)
        return tuple(
            (key, min(VECTOR_SIMILARITY * cosine, VECTOR_MAX_SIMILARITY)) for cosine, key in best
        )

    def phrase_parts(self, token: str) -> Readings:
        """The catalogue words among a multi-word expression's own words."""
        parts = dict.fromkeys(token.split(PHRASE_JOINER))
        return tuple((p, PHRASE_PART_SIMILARITY) for p in parts if p in self._weights)


class FoldedWords:
    """Every word WordNet lists by its folded form ("messag": "message", "messages"),
    the most frequent spelling first; one table a process (`folded_words`).

    Kept as arrays of word positions (see wordlist.py); what a folded word's
    spellings say is read when asked for and kept for the next time.
    """

    def __init__(self, wordnet: WordNetData) -> None:
        self._wordnet = wordnet
        ranked = wordnet.ranked()
        tokens = [fold(wordnet.words.word(i)) for i in ranked]
        # By folded form; a stable sort keeps each form's spellings most frequent first.
        order = sorted(range(len(ranked)), key=tokens.__getitem__)
        unique: list[str] = []
        self._groups = array("I")  # folded word j's spellings: _members[_groups[j]:_groups[j + 1]]
        self._members = array("I")
        for position in order:
            token = tokens[position]
            if not unique or unique[-1] != token:
                unique.append(token)
                self._groups.append(len(self._members))
            self._members.append(ranked[position])
        self._groups.append(len(self._members))
        self.tokens = WordList.from_words(unique)
        self.facts = lru_cache(maxsize=FOLD_CACHE_SIZE)(self._facts_uncached)
        self.lemmas = lru_cache(maxsize=FOLD_CACHE_SIZE)(self._lemmas_uncached)

    def spellings(self, token: str) -> list[str]:
        """The listed words that fold to `token`, the most frequent first."""
        j = self.tokens.index(token)
        if j < 0:
            return []
        words = self._wordnet.words
        return [words.word(i) for i in self._members[self._groups[j] : self._groups[j + 1]]]

    def _facts_uncached(self, token: str) -> WordFacts | None:
        """(Zipf frequency, noun share, noun class) of `token`'s most frequent
        spelling, or None if no listed word folds to it."""
        j = self.tokens.index(token)
        if j < 0:
            return None
        wordnet = self._wordnet
        i = self._members[self._groups[j]]
        kind = ""
        names = wordnet.lemmas_of(wordnet.words.word(i))
        if names:
            entry = wordnet.lemmas[names[0]]
            # The noun class says what the word is only if it is used as a noun, or
            # as an adverb of the same kind ("tonight"): "have" and "great" also
            # name kinds of person, as nouns nobody means.
            if entry.noun >= CIRCUMSTANCE_MIN_NOUN_SHARE or not entry.verb_or_adjective:
                kind = entry.kind
        return (wordnet.zipf_at(i), wordnet.noun_at(i), kind)

    def _lemmas_uncached(self, token: str) -> tuple[str, ...]:
        """The WordNet lemmas of every spelling of `token`, or ()."""
        found: dict[str, None] = {}
        for word in self.spellings(token):
            found.update(dict.fromkeys(self._wordnet.lemmas_of(word)))
        return tuple(found)

    def vector_spelling(self, token: str, vectors: WordVectors) -> str | None:
        """The most frequent spelling of `token` with a vector ("messag" is read
        through "message"), or None."""
        return next((word for word in self.spellings(token) if word in vectors), None)


class _FoldedFacts(Mapping[str, WordFacts]):
    """`Expander.facts`: (Zipf frequency, noun share, noun class) by folded form."""

    def __init__(self, table: FoldedWords) -> None:
        self._table = table

    def __getitem__(self, token: str) -> WordFacts:
        facts = self._table.facts(token)
        if facts is None:
            raise KeyError(token)
        return facts

    def __iter__(self) -> Iterator[str]:
        return iter(self._table.tokens)

    def __len__(self) -> int:
        return len(self._table.tokens)


class _FoldedLemmas(Mapping[str, tuple[str, ...]]):
    """`Expander.fold_lemmas`: WordNet lemmas by the folded form of every spelling
    listed; only forms that have some."""

    def __init__(self, table: FoldedWords) -> None:
        self._table = table

    def __getitem__(self, token: str) -> tuple[str, ...]:
        names = self._table.lemmas(token)
        if not names:
            raise KeyError(token)
        return names

    def __iter__(self) -> Iterator[str]:
        return (token for token in self._table.tokens if self._table.lemmas(token))

    def __len__(self) -> int:
        return sum(1 for _ in self)


@lru_cache(maxsize=1)
def folded_words(wordnet: WordNetData) -> FoldedWords:
    """Every listed word by its folded form (once a process: folding 60,000 words
    is most of the cost of these tables)."""
    return FoldedWords(wordnet)
