"""WordNet word knowledge for matching: base forms, senses, hypernyms, English word frequency."""

from __future__ import annotations

import gzip
import sys
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from whatsease.bot.wordlist import WordList

# Built by scripts/build_wordnet.py from WordNet 3.0 and wordfreq (format there);
# licence in WORDNET-LICENSE beside it.
WORDNET_PATH = Path(__file__).with_name("wordnet.tsv.gz")
POS_ORDER = "nvar"
# What a line of the data file says about its word: only its frequencies, that it is
# an inflected form of lemmas ("went" -> "go"), or that it is a lemma with senses.
PLAIN, FORM, LEMMA = 0, 1, 2
# Lemma entries kept once read: an engine reads its catalogue's words (a few hundred)
# and each new message word's.
WORD_CACHE_SIZE = 8192


class MeaningDataError(ValueError):
    """The WordNet data file is missing or malformed (a packaging mistake)."""


@dataclass(frozen=True, slots=True)
class Word:
    """What WordNet and wordfreq say about one English word (a lemma).

    Made when a word is looked up (`WordNetData.lemmas`), not for all 30,000 lemmas;
    the synset lists are kept as text and read on first use too.
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


class WordNetData:
    """The meaning layer: lemmas by spelling, inflected forms, and word frequencies.

    Kept as the data file's text with each line's offsets, and each word's frequency
    and noun share in byte arrays; a word's entry is read from its line when asked
    for (and kept for the next time). ~3 MiB for the whole layer, where a dict of
    objects per word took ~16 MiB of every server's memory.
    """

    def __init__(self, text: bytes, starts: array[int], word_ends: array[int],
                 line_ends: array[int], tenths: array[int], ninths: array[int],
                 kinds: array[int]) -> None:
        self._text = text
        # Line i is text[starts[i]:line_ends[i]]; it starts with its word.
        self.words = WordList(text, starts, word_ends)
        self._starts = starts
        self._line_ends = line_ends
        self._tenths = tenths
        self._ninths = ninths
        self._kinds = kinds  # PLAIN, FORM or LEMMA per word
        self.lemmas: Mapping[str, Word] = _Lemmas(self, kinds.count(LEMMA))
        self.forms: Mapping[str, tuple[str, ...]] = _Forms(self, kinds.count(FORM))
        self.zipf: Mapping[str, float] = _Frequencies(self, tenths, 10.0)
        self.noun: Mapping[str, float] = _Frequencies(self, ninths, 9.0)
        self.entry = lru_cache(maxsize=WORD_CACHE_SIZE)(self._entry_uncached)

    def __len__(self) -> int:
        return len(self.words)

    def lemmas_of(self, word: str) -> tuple[str, ...]:
        """The WordNet lemmas `word` is a form of (itself if it is one), or ()."""
        i = self.words.index(word)
        if i < 0:
            return ()
        if self._kinds[i] == LEMMA:
            return (word,)
        return self.forms_at(i)

    def kind_at(self, i: int) -> int:
        """What line `i` is: `PLAIN` (a word and its frequency), `FORM` or `LEMMA`."""
        return self._kinds[i]

    def zipf_at(self, i: int) -> float:
        """The Zipf frequency of word `i` (see `Word.zipf`)."""
        return self._tenths[i] / 10.0

    def noun_at(self, i: int) -> float:
        """The noun share of word `i` (see `Word.noun`)."""
        return self._ninths[i] / 9.0

    def forms_at(self, i: int) -> tuple[str, ...]:
        """The lemmas word `i` is an inflected form of, or () if it is no such form."""
        if self._kinds[i] != FORM:
            return ()
        return tuple(self._fields(i)[3][1:].split(","))

    def ranked(self) -> list[int]:
        """Every word's position, the most frequent first (alphabetical among equals)."""
        tenths = self._tenths
        return sorted(range(len(tenths)), key=lambda i: -tenths[i])

    def _fields(self, i: int) -> list[str]:
        return self._text[self._starts[i] : self._line_ends[i]].decode().split("\t")

    def _entry_uncached(self, i: int) -> Word:
        """The entry of lemma `i` (its kind is `LEMMA`)."""
        fields = self._fields(i)
        return Word(self.zipf_at(i), self.noun_at(i), sys.intern(fields[3]), *fields[4:])


class _Lemmas(Mapping[str, Word]):
    """`WordNetData.lemmas`: the entry of every lemma by its spelling."""

    def __init__(self, data: WordNetData, count: int) -> None:
        self._data = data
        self._count = count

    def __getitem__(self, word: str) -> Word:
        i = self._data.words.index(word)
        if i < 0 or self._data.kind_at(i) != LEMMA:
            raise KeyError(word)
        return self._data.entry(i)

    def __iter__(self) -> Iterator[str]:
        data = self._data
        return (data.words.word(i) for i in range(len(data)) if data.kind_at(i) == LEMMA)

    def __len__(self) -> int:
        return self._count


class _Forms(Mapping[str, tuple[str, ...]]):
    """`WordNetData.forms`: inflected form -> its lemmas ("went" -> "go")."""

    def __init__(self, data: WordNetData, count: int) -> None:
        self._data = data
        self._count = count

    def __getitem__(self, word: str) -> tuple[str, ...]:
        i = self._data.words.index(word)
        if i < 0 or self._data.kind_at(i) != FORM:
            raise KeyError(word)
        return self._data.forms_at(i)

    def __iter__(self) -> Iterator[str]:
        data = self._data
        return (data.words.word(i) for i in range(len(data)) if data.kind_at(i) == FORM)

    def __len__(self) -> int:
        return self._count


class _Frequencies(Mapping[str, float]):
    """`WordNetData.zipf` and `.noun`: a number for every listed word, stored as a
    byte of `steps` per unit."""

    def __init__(self, data: WordNetData, values: array[int], steps: float) -> None:
        self._data = data
        self._values = values
        self._steps = steps

    def __getitem__(self, word: str) -> float:
        i = self._data.words.index(word)
        if i < 0:
            raise KeyError(word)
        return self._values[i] / self._steps

    def __iter__(self) -> Iterator[str]:
        return iter(self._data.words)

    def __len__(self) -> int:
        return len(self._data)


def _ids(field: str) -> tuple[int, ...]:
    try:
        return tuple(int(x, 36) for x in field.split(",")) if field else ()
    except ValueError as e:
        raise MeaningDataError(f"{WORDNET_PATH.name}: malformed synset list ({e})") from e


@lru_cache(maxsize=1)
def load_wordnet(path: Path = WORDNET_PATH) -> WordNetData:
    """Read the data file once per process (about 60,000 lines, sorted by word).

    Raises `MeaningDataError` naming the line if one is malformed or out of order."""
    try:
        with gzip.open(path, "rb") as f:
            text = f.read()
        text.decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise MeaningDataError(f"{path}: cannot read the WordNet data ({e})") from e
    starts, word_ends, line_ends = array("I"), array("I"), array("I")
    tenths, ninths, kinds = array("B"), array("B"), array("B")
    previous = b""
    position = 0
    for number, line in enumerate(text.split(b"\n"), start=1):
        start, position = position, position + len(line) + 1
        if not line or line.startswith(b"#"):
            continue
        fields = line.split(b"\t")
        try:
            word = fields[0]
            if word <= previous:
                raise ValueError(f"{word!r} does not sort after {previous!r}")
            tenths.append(int(fields[1]))
            ninths.append(int(fields[2]))
            if len(fields) == 4 and fields[3].startswith(b"="):
                kinds.append(FORM)
            elif len(fields) == 7:
                if fields[4].count(b"|") != len(POS_ORDER) - 1:
                    raise ValueError("expected senses for 4 parts of speech")
                kinds.append(LEMMA)
            elif len(fields) == 3:
                kinds.append(PLAIN)
            else:
                raise ValueError(f"{len(fields)} fields")
        except (IndexError, ValueError, OverflowError) as e:
            raise MeaningDataError(f"{path}:{number}: malformed line ({e})") from e
        previous = word
        starts.append(start)
        word_ends.append(start + len(word))
        line_ends.append(start + len(line))
    return WordNetData(text, starts, word_ends, line_ends, tenths, ninths, kinds)
