"""Word vectors for matching: GloVe vectors of frequent English words, reduced and quantised."""

from __future__ import annotations

import gzip
import math
from array import array
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

from whatsease.bot.wordlist import WordList

# Built by scripts/build_vectors.py from GloVe (format there); notice in VECTORS-LICENSE.
VECTORS_PATH = Path(__file__).with_name("vectors.bin.gz")
MAGIC = "WEVEC1"
# The decompressed file is about 4 MB; refuse anything far larger (a packaging mistake).
MAX_BYTES = 32 * 1024 * 1024
# Packed dot products: each value of a column takes this many bits. A component is
# stored offset into 1..255, so one product sum is at most dims x 127 x 255 (< 2^22
# for 64 dimensions) and never carries into the next slot.
SLOT_BITS = 32
COMPONENT_OFFSET = 128


class VectorDataError(ValueError):
    """The word-vector data file is missing or malformed (a packaging mistake)."""


class WordVectors:
    """int8 word vectors by word (`words`, sorted; see wordlist.py); cosine
    similarity between them."""

    def __init__(self, words: WordList, dims: int, data: bytes | memoryview) -> None:
        if len(data) != len(words) * dims:
            raise VectorDataError(f"expected {len(words) * dims} vector bytes, got {len(data)}")
        self.dims = dims
        self._words = words
        self._data = memoryview(data).cast("b")

    def __len__(self) -> int:
        return len(self._words)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and self._words.index(word) >= 0

    def vector(self, word: str) -> memoryview | None:
        """The word's int8 components, or None if it has no vector."""
        i = self._words.index(word)
        if i < 0:
            return None
        return self._data[i * self.dims : (i + 1) * self.dims]

    def similarity(self, a: str, b: str) -> float | None:
        """Cosine similarity of two words (-1..1), or None if one has no vector."""
        va, vb = self.vector(a), self.vector(b)
        if va is None or vb is None:
            return None
        return _cosine(va, vb)


def _cosine(a: Sequence[int], b: Sequence[int]) -> float:
    norms = math.sqrt(sum(x * x for x in a) * sum(x * x for x in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / norms if norms else 0.0


class VectorTable:
    """A fixed set of vectors, each compared with a query at once.

    Pure Python, no numpy: the vectors are packed column by column into big
    integers, so one query costs 2 x dims big-integer multiply-adds and one unpacking
    instead of a Python loop over every component (about 10x faster for a thousand
    vectors).
    """

    def __init__(self, keys: Sequence[str], vectors: Iterable[Sequence[int]]) -> None:
        rows = [list(v) for v in vectors]
        if len(rows) != len(keys):
            raise ValueError("one vector per key")
        self.keys = tuple(keys)
        self.dims = len(rows[0]) if rows else 0
        self._norms = [math.sqrt(sum(x * x for x in row)) or 1.0 for row in rows]
        self._columns: list[int] = []
        for d in range(self.dims):
            column = bytearray()
            for row in rows:
                column += (row[d] + COMPONENT_OFFSET).to_bytes(SLOT_BITS // 8, "little")
            self._columns.append(int.from_bytes(column, "little"))

    def cosines(self, query: Sequence[int]) -> list[float]:
        """The cosine similarity of `query` with every vector, in key order."""
        if not self.keys:
            return []
        positive = negative = 0
        for q, column in zip(query, self._columns, strict=True):
            if q > 0:
                positive += q * column
            elif q < 0:
                negative -= q * column
        size = len(self.keys) * SLOT_BITS // 8
        plus = array("I", positive.to_bytes(size, "little"))
        minus = array("I", negative.to_bytes(size, "little"))
        offset = COMPONENT_OFFSET * sum(query)
        q_norm = math.sqrt(sum(q * q for q in query)) or 1.0
        return [
            (p - m - offset) / (q_norm * n)
            for p, m, n in zip(plus, minus, self._norms, strict=True)
        ]


@lru_cache(maxsize=1)
def load_vectors(path: Path = VECTORS_PATH) -> WordVectors:
    """Read the data file once per process (about 57,000 words, sorted).

    Raises `VectorDataError` if it cannot be read or is malformed."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except (OSError, EOFError) as e:
        raise VectorDataError(f"{path}: cannot read the word vectors ({e})") from e
    if len(raw) > MAX_BYTES:
        raise VectorDataError(f"{path}: larger than {MAX_BYTES} bytes")
    end = raw.find(b"\n")
    try:
        magic, count_text, dims_text = raw[:end].decode("ascii").split()
        count, dims = int(count_text), int(dims_text)
    except (UnicodeDecodeError, ValueError) as e:
        raise VectorDataError(f"{path}: malformed header") from e
    if magic != MAGIC or count < 0 or dims <= 0:
        raise VectorDataError(f"{path}: not a {MAGIC} file")
    start = end + 1
    starts, ends = array("I"), array("I")
    for _ in range(count):
        stop = raw.find(b"\n", start)
        if stop < 0:
            raise VectorDataError(f"{path}: the word list ends early")
        starts.append(start)
        ends.append(stop)
        start = stop + 1
    if not raw[end + 1 : start].isascii():
        raise VectorDataError(f"{path}: the word list is not ASCII")
    try:
        # The words stay in the file's text; the vectors are read from it in place.
        return WordVectors(WordList(raw, starts, ends), dims, memoryview(raw)[start:])
    except ValueError as e:  # VectorDataError, or the words out of order
        raise VectorDataError(f"{path}: {e}") from e
