"""WordNet word knowledge for matching: base forms, senses, hypernyms, English word frequency."""

from __future__ import annotations

import gzip
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

# Built by scripts/build_wordnet.py from WordNet 3.0 and wordfreq (format there);
# licence in WORDNET-LICENSE beside it.
WORDNET_PATH = Path(__file__).with_name("wordnet.tsv.gz")
POS_ORDER = "nvar"


class MeaningDataError(ValueError):
    """The WordNet data file is missing or malformed (a packaging mistake)."""


@dataclass(frozen=True, slots=True)
class Word:
    """What WordNet and wordfreq say about one English word (a lemma).

    The synset lists are kept as text and read on first use: an engine needs them
    for its catalogue's words and a few message words, not for 30,000 lemmas.
    Slots, not a ``__dict__`` each: 30,000 of them live for the whole process.
    """

    zipf: float  # English frequency: log10 of uses per billion words (7 = "the", 3 = rare)
    noun: float  # share of its tagged uses that are as a noun, 0..1
    kind: str  # lexicographer class of its first noun sense ("time", "person"), or ""
    raw_senses: str  # "n|v|a|r" lists of base-36 synset numbers, first sense first
    raw_hypernyms: str
    raw_derived: str
    # The lists above once read (None until then).
    _senses: tuple[tuple[int, ...], ...] | None = field(
        default=None, init=False, repr=False, compare=False)
    _hypernyms: tuple[int, ...] | None = field(default=None, init=False, repr=False,
                                               compare=False)
    _derived: tuple[int, ...] | None = field(default=None, init=False, repr=False,
                                             compare=False)

    @property
    def verb_or_adjective(self) -> bool:
        """Whether WordNet also knows it as a verb or an adjective."""
        _, verbs, adjectives, _ = self.raw_senses.split("|")
        return bool(verbs or adjectives)

    @property
    def senses(self) -> tuple[tuple[int, ...], ...]:
        """Synsets per part of speech (n, v, a, r), first sense first."""
        if self._senses is None:
            object.__setattr__(self, "_senses",
                               tuple(_ids(part) for part in self.raw_senses.split("|")))
        assert self._senses is not None
        return self._senses

    @property
    def hypernyms(self) -> tuple[int, ...]:
        """The hypernyms of its first senses."""
        if self._hypernyms is None:
            object.__setattr__(self, "_hypernyms", _ids(self.raw_hypernyms))
        assert self._hypernyms is not None
        return self._hypernyms

    @property
    def derived(self) -> tuple[int, ...]:
        """Synsets its derivational links reach ("pay" -> "payment")."""
        if self._derived is None:
            object.__setattr__(self, "_derived", _ids(self.raw_derived))
        assert self._derived is not None
        return self._derived

    def core(self, senses_per_pos: int) -> frozenset[int]:
        """Its first `senses_per_pos` senses of each part of speech, with derived forms."""
        found = {s for pos in self.senses for s in pos[:senses_per_pos]}
        return frozenset(found.union(self.derived))


@dataclass(frozen=True, eq=False)
class WordNetData:
    """The meaning layer: lemmas by spelling, inflected forms, and word frequencies."""

    lemmas: Mapping[str, Word]
    forms: Mapping[str, tuple[str, ...]]  # inflected form -> its lemmas ("went" -> "go")
    zipf: Mapping[str, float]  # every listed word, lemma or not
    noun: Mapping[str, float]

    def lemmas_of(self, word: str) -> tuple[str, ...]:
        """The WordNet lemmas `word` is a form of (itself if it is one), or ()."""
        if word in self.lemmas:
            return (word,)
        return self.forms.get(word, ())


def _ids(field: str) -> tuple[int, ...]:
    try:
        return tuple(int(x, 36) for x in field.split(",")) if field else ()
    except ValueError as e:
        raise MeaningDataError(f"{WORDNET_PATH.name}: malformed synset list ({e})") from e


@lru_cache(maxsize=1)
def load_wordnet(path: Path = WORDNET_PATH) -> WordNetData:
    """Read the data file once per process (about 60,000 lines)."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise MeaningDataError(f"{path}: cannot read the WordNet data ({e})") from e
    lemmas: dict[str, Word] = {}
    forms: dict[str, tuple[str, ...]] = {}
    zipf: dict[str, float] = {}
    noun: dict[str, float] = {}
    # The frequencies and noun shares take a few dozen values, and the classes a
    # few dozen names: one object each, not one per word (~4 MiB of a process).
    numbers: dict[tuple[int, int], float] = {}
    for number, line in enumerate(lines, start=1):
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        try:
            word = fields[0]
            tenths, ninths = int(fields[1]), int(fields[2])
            zipf[word] = numbers.setdefault((tenths, 10), tenths / 10.0)
            noun[word] = numbers.setdefault((ninths, 9), ninths / 9.0)
            if len(fields) == 4 and fields[3].startswith("="):
                forms[word] = tuple(fields[3][1:].split(","))
            elif len(fields) == 7:
                if fields[4].count("|") != len(POS_ORDER) - 1:
                    raise ValueError("expected senses for 4 parts of speech")
                lemmas[word] = Word(zipf[word], noun[word], sys.intern(fields[3]),
                                    *fields[4:])
            elif len(fields) != 3:
                raise ValueError(f"{len(fields)} fields")
        except (IndexError, ValueError) as e:
            raise MeaningDataError(f"{path}:{number}: malformed line ({e})") from e
    return WordNetData(lemmas, forms, zipf, noun)
