"""Typo correction towards the words a catalogue (and the lexicon) uses."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from whatsease.bot.catalogue import Catalogue
from whatsease.bot.folding import VOWEL, fold
from whatsease.bot.lexicon import Lexicon, stop_words
from whatsease.bot.normalize import COMMON_WORDS, GUARD_WORDS, is_word, tokenize

# A word typed without vowels ("hlp") read as a catalogue word counts this much.
SKELETON_SIMILARITY = 0.8


def surface_words(catalogue: Catalogue, lexicon: Lexicon) -> dict[str, int]:
    """Surface words the examples and synonyms use, with how often the examples use
    them (1 for a word only the lexicon or the synonyms use): typos are corrected
    towards them."""
    surface: dict[str, int] = {}
    for intent in catalogue.intents:
        for example in intent.examples:
            for word in tokenize(example):
                surface[word] = surface.get(word, 0) + 1
    lexicon_phrases = [p for group in lexicon.related for p in group]
    for table in (lexicon.synonyms, catalogue.bot.synonyms):
        for canonical, variants in table.items():
            lexicon_phrases += [canonical, *variants]
    for phrase in lexicon_phrases:
        for word in tokenize(phrase):
            surface.setdefault(word, 1)
    return surface


class Speller:
    """Corrects typos towards `surface` words (from `surface_words`); everyday
    English words are never corrected ("life" is not a typo of "like")."""

    def __init__(self, surface: Mapping[str, int],
                 stemmer: Callable[[str], str] | None = None) -> None:
        # Typos are only worth correcting towards words the catalogue knows; most
        # frequent first, so a tie between two corrections picks the common word.
        self._correction_choices = sorted(surface, key=lambda w: (-surface[w], w))
        # The same by stem (the most frequent form stands for it), and by consonants.
        self._stem_surface: dict[str, str] = {}
        self._skeletons: dict[str, list[str]] = {}
        for word in self._correction_choices:
            if is_word(word):
                self._stem_surface.setdefault(fold(word), word)
                skeleton = VOWEL.sub("", word)
                if word.isascii() and len(skeleton) >= 3 and skeleton != word:
                    self._skeletons.setdefault(skeleton, []).append(word)
        self._stem_choices = [s for s in self._stem_surface if len(s) >= 4]
        self._known_stems = frozenset(fold(w) for w in surface)
        # A word whose stem in the language (LANGUAGE_STEMMERS) a catalogue word has
        # is no typo: Spanish "borro" when the examples say "borrar".
        self._stemmer = stemmer
        self._known_language_stems = (frozenset(stemmer(fold(w)) for w in surface)
                                      if stemmer is not None else frozenset())
        # Words squeezed ("helloooo") and never corrected: the catalogue's, the
        # function words and everyday English.
        self.vocabulary = frozenset(surface) | stop_words() | COMMON_WORDS
        self.common_stems = frozenset(fold(w) for w in COMMON_WORDS)
        self.guard_stems = self.common_stems | frozenset(fold(w) for w in GUARD_WORDS)
        self.guard_words = COMMON_WORDS | GUARD_WORDS
        self.correct = lru_cache(maxsize=4096)(self._correct_uncached)

    def _correct_uncached(self, word: str) -> tuple[str, float]:
        """The nearest known word to an unknown one, with their similarity (0..1)."""
        if word in self.vocabulary or fold(word) in self._known_stems:
            return word, 1.0
        if self._stemmer is not None and self._stemmer(fold(word)) in self._known_language_stems:
            return word, 1.0
        if word in self.guard_words or fold(word) in self.guard_stems:
            return word, 1.0
        if not is_word(word) or len(word) < 3:
            return word, 1.0
        if word.isascii() and not VOWEL.search(word):
            # Chat drops vowels ("hlp", "crds", "whn"): read the word as the most
            # frequent catalogue word with these consonants.
            spelled = self._skeletons.get(word)
            return (spelled[0], SKELETON_SIMILARITY) if spelled else (word, 1.0)
        candidate = nearest(word, self._correction_choices)
        if candidate is not None:
            return candidate, fuzz.ratio(word, candidate) / 100.0
        # A typo in an inflected word ("hleped", "couons") is one edit from the stem
        # of a catalogue word, not from any of its forms.
        stemmed = fold(word)
        if stemmed != word and len(stemmed) >= 4:
            candidate = nearest(stemmed, self._stem_choices)
            if candidate is not None:
                return self._stem_surface[candidate], fuzz.ratio(stemmed, candidate) / 100.0
        return word, 1.0


def nearest(word: str, choices: Sequence[str]) -> str | None:
    """The choice a typo of `word` most likely meant, or None (`choices` by frequency)."""
    # Short words tolerate one slip, long ones two.
    limit = 1 if len(word) <= 7 else 2
    found = process.extract(word, choices, scorer=OSA.distance, score_cutoff=limit, limit=None)
    # People rarely get the first letter wrong, so "mate" is not a typo of "date";
    # a swap of the first two letters ("hlep") still counts.
    found = [f for f in found if f[0][0] == word[0] or f[0][:2] == word[1::-1]]
    if len(word) == 3:
        # Three letters: a swap ("hwo"), or one dropped letter when only one word
        # fits ("tme" → "time", but "tak" could be "take" or "talk").
        swaps = [f for f in found if sorted(f[0]) == sorted(word)]
        dropped = [f for f in found if len(f[0]) == 4]
        found = swaps or (dropped if len(dropped) == 1 else [])
    if not found:
        return None
    # Fewest edits first; among those the closest spelling ("helo" → "hello", not
    # "help"); the choices are ordered by frequency, which breaks the last ties.
    return max(found, key=lambda f: (-f[1], fuzz.ratio(word, f[0]), -f[2]))[0]
