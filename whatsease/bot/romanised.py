"""Romanised Hindi ("Hinglish"): Hindi typed in Latin letters.

Most Hindi chat is typed this way ("mera naam yaad hai?", "block kaise karte hai"),
and lingua has no model for it: it reads such a message as English. This module
tells it apart with a small lexicon of very common Hindi words as people spell them
in Latin letters (romanised_hi.toml, read on first use), and gives a Hindi engine
those spellings, and the English loanwords Hindi chat keeps in Latin letters, as
synonyms of the Devanagari words its examples use, so the message is matched
against the Hindi examples and answered in Hindi (Devanagari).
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from whatsease.bot.catalogue import Catalogue
from whatsease.bot.folding import fold
from whatsease.bot.normalize import strip_accents, tokenize

ROMANISED_PATH = Path(__file__).with_name("romanised_hi.toml")
# A Latin-script message is romanised Hindi when at least this share of its words
# are Hindi words that are no English or Spanish word ("kaise", "hai", "mera"; not
# "me", "to", "se"), and at least one is: "account delete karna hai" has two of four,
# "cancel kar do" one of three. None of the 2,096 English and Spanish messages of
# tests/bot has one in five.
MARKER_SHARE = 0.25
# The language a romanised Hindi message is read and answered in.
HINDI = "hi"

_LATIN_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class RomanisedLexicon:
    """The romanised Hindi lexicon (romanised_hi.toml)."""

    # Devanagari word -> its Latin spellings, Hindi words and English loanwords
    synonyms: Mapping[str, tuple[str, ...]]
    # Latin spellings only Hindi uses: they make a message romanised Hindi
    markers: frozenset[str]


@lru_cache(maxsize=1)
def romanised_lexicon() -> RomanisedLexicon:
    """The romanised Hindi lexicon, read once on first use; raises `ValueError` if the
    data file is malformed (a packaging mistake)."""
    with open(ROMANISED_PATH, "rb") as f:
        data = tomllib.load(f)
    synonyms: dict[str, tuple[str, ...]] = {}
    for table in ("words", "loanwords"):
        for word, spellings in data[table].items():
            if not isinstance(spellings, list) or not all(isinstance(s, str) for s in spellings):
                raise ValueError(f"{ROMANISED_PATH.name}: [{table}] '{word}' must list strings")
            synonyms[word] = (*synonyms.get(word, ()), *spellings)
    ambiguous = frozenset(data["ambiguous"]["words"])
    markers = frozenset(s for spellings in data["words"].values() for s in spellings
                        if " " not in s) - ambiguous
    return RomanisedLexicon(synonyms=synonyms, markers=markers)


def latin_words(text: str) -> list[str]:
    """The Latin-letter words of `text`, lower-cased and without accents."""
    return _LATIN_WORD.findall(strip_accents(text.casefold()))


def is_romanised_hindi(text: str) -> bool:
    """Whether a Latin-script message is Hindi written in Latin letters (see
    MARKER_SHARE): "mera naam yaad hai?" is, "my name is Rohan" and "me llamo Ana"
    are not."""
    words = latin_words(text)
    if not words:
        return False
    markers = romanised_lexicon().markers
    found = sum(1 for word in words if word in markers)
    return found >= 1 and found / len(words) >= MARKER_SHARE


def _phrase(text: str) -> tuple[str, ...]:
    """`text` in folded words, as synonym tables compare them."""
    return tuple(fold(word) for word in tokenize(text))


def with_romanised(catalogue: Catalogue) -> Catalogue:
    """`catalogue` with the romanised Hindi spellings and loanwords as synonyms of
    their Devanagari words, when its texts are Hindi (else `catalogue` itself). The
    catalogue's own synonyms win: their variants are added to the built-in ones, and
    a spelling the catalogue maps elsewhere is left to it."""
    if catalogue.language != HINDI:
        return catalogue
    own = catalogue.bot.synonyms
    taken = {variant for variants in own.values() for variant in variants} | set(own)
    # A Devanagari word the catalogue folds into another ("तुम" into "आप", "हटाना"
    # into "डिलीट") takes its spellings there: a synonym's canonical word is never
    # rewritten, so it must not become one.
    folded_into = {_phrase(variant): canonical
                   for canonical, variants in own.items() for variant in variants}
    merged: dict[str, tuple[str, ...]] = {}
    for word, spellings in romanised_lexicon().synonyms.items():
        kept = tuple(s for s in spellings if s not in taken)
        if kept:
            target = folded_into.get(_phrase(word), word)
            merged[target] = (*merged.get(target, ()), *kept)
    for word, variants in own.items():
        merged[word] = (*merged.get(word, ()), *variants)
    bot = dataclasses.replace(catalogue.bot, synonyms=merged)
    return dataclasses.replace(catalogue, bot=bot)
