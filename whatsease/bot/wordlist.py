"""Sorted word lists kept in one bytes object, searched by bisection.

The word tables (WordNet, the word vectors, the words by folded form) list ~58,000
words each. As a dict, every word is a str object and every value an object too,
~100 bytes a word; here a word costs its letters and 8 bytes of offsets, and a
lookup a bisection (a few microseconds, cached by the callers that repeat them).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator


class WordList:
    """Distinct words in byte order: word ``i`` is ``blob[starts[i]:ends[i]]`` (UTF-8).

    The offsets may point into a larger text (a data file's lines), so that text is
    the only copy of the words. Raises `ValueError` if the words are not strictly
    increasing (unsorted or repeated).
    """

    __slots__ = ("_blob", "_ends", "_starts")

    def __init__(self, blob: bytes, starts: array[int], ends: array[int]) -> None:
        if len(starts) != len(ends):
            raise ValueError("one end offset per start offset")
        self._blob = blob
        self._starts = starts
        self._ends = ends
        previous = b""
        for i in range(len(starts)):
            word = blob[starts[i] : ends[i]]
            if i and word <= previous:
                raise ValueError(f"word {i + 1} ({word!r}) does not sort after {previous!r}")
            previous = word

    @classmethod
    def from_words(cls, words: Iterable[str]) -> WordList:
        """A list of `words`, which must be sorted and distinct (raises `ValueError`)."""
        blob = bytearray()
        starts, ends = array("I"), array("I")
        for word in words:
            starts.append(len(blob))
            blob += word.encode()
            ends.append(len(blob))
        return cls(bytes(blob), starts, ends)

    def __len__(self) -> int:
        return len(self._starts)

    def __getitem__(self, i: int) -> bytes:
        """Word `i` as UTF-8 bytes (what the bisection compares)."""
        return self._blob[self._starts[i] : self._ends[i]]

    def __iter__(self) -> Iterator[str]:
        return (self.word(i) for i in range(len(self._starts)))

    def word(self, i: int) -> str:
        """Word `i`."""
        return self._blob[self._starts[i] : self._ends[i]].decode()

    def index(self, word: str) -> int:
        """The position of `word`, or -1 if it is not listed."""
        key = word.encode(errors="surrogatepass")
        i = bisect_left(self, key)
        if i < len(self._starts) and self[i] == key:
            return i
        return -1
