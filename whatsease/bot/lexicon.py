"""General English word knowledge every catalogue gets: the lexicon file and stop words.

The lexicon (lexicon.toml) is read on first use, never at import.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# Function words: they still count, at this fraction of their weight, because
# "who are you" and "how are you" differ only in them, but they must not outvote
# the words that name a topic.
BASE_STOP_WORDS: frozenset[str] = frozenset(
    {
        "a", "an", "the", "i", "me", "my", "mine", "myself", "you", "your", "yours", "is",
        "are", "am", "was", "were", "be", "been", "being", "do", "does", "did", "to", "of",
        "in", "on", "for", "at", "by", "with", "from", "it", "its", "this", "that", "these",
        "those", "can", "could", "would", "will", "shall", "should", "may", "might", "and",
        "or", "but", "if", "then", "there", "here", "some", "any", "we", "us", "our", "they",
        "them", "their", "he", "she", "him", "her", "his", "about", "up", "very", "too",
        "also", "have", "has", "had", "get", "got", "as", "into", "out", "than", "again",
        "ok", "yes", "all", "one", "now", "want", "need", "like", "know", "tell", "let",
        # question frames: "what does X mean" asks about X, not about meaning
        "mean", "meaning", "means",
    }
)  # fmt: skip
STOP_WORD_WEIGHT = 0.3
# Other languages' function words, weighed like the English ones in that language's
# engine (the engine folds them as it folds the examples). Question words ("cómo",
# "dónde", "कैसे", "क्या") weigh fully, as in English; so do negations ("no", "नहीं")
# and pronouns, which tell "your name" (identity) from "my name" (recall_name).
LANGUAGE_STOP_WORDS: Mapping[str, frozenset[str]] = {
    "es": frozenset(
        """de la el los las un una unos unas y o a al del en con por para se le lo les es son
        esta estoy estas ser estar hay que ya muy mas tambien pero si este esto esa ese eso
        puedo puedes puede pueden podria quiero quisiera necesito tengo tiene tienen sabes
        dime hago hace hacer haces favor porfa algo ahi aqui""".split()),  # noqa: SIM905 - a word list reads better as text
    "hi": frozenset(
        """है हैं हूं हो था थी थे का की के को में से पर और या भी ही तो ना यह वो इस उस कर करना
        करें करो सकता सकते सकती चाहिए जी रहा रही रहे हुआ गया कोई किसी कुछ""".split()),  # noqa: SIM905 - as above
}
# Question words weigh fully ("who are you" is not "how are you"), but a message whose
# only overlap with an intent is a question word is not about that intent.
QUESTION_WORDS: frozenset[str] = frozenset({"what", "who", "how", "when", "where", "why", "which"})

LEXICON_PATH = Path(__file__).with_name("lexicon.toml")


class LexiconError(ValueError):
    """The lexicon data file is malformed (a packaging or editing mistake, not user input)."""


@dataclass(frozen=True)
class Lexicon:
    """General English word knowledge every catalogue gets (whatsease/bot/lexicon.toml)."""

    # canonical word or phrase -> the words and phrases folded into it
    synonyms: Mapping[str, tuple[str, ...]]
    # groups of words and phrases that often stand in for one another
    related: tuple[tuple[str, ...], ...]
    # words that frame a question rather than name its topic
    function_words: frozenset[str]


def load_lexicon(path: str | Path = LEXICON_PATH) -> Lexicon:
    """Read and check a lexicon file; raises `LexiconError` naming what is wrong."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise LexiconError(f"{path}: cannot read the lexicon ({e})") from e
    unknown = set(data) - {"synonyms", "related", "function_words"}
    if unknown:
        raise LexiconError(f"{path}: unknown table '{sorted(unknown)[0]}'")

    def words(value: object, where: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise LexiconError(f"{path}: {where} must be a list of non-empty strings")
        return tuple(value)

    synonyms = {str(k): words(v, f"synonyms.{k}") for k, v in data.get("synonyms", {}).items()}
    related = tuple(words(v, f"related.{k}") for k, v in data.get("related", {}).items())
    function_table = data.get("function_words", {})
    if not isinstance(function_table, dict) or set(function_table) - {"words"}:
        raise LexiconError(f"{path}: [function_words] has only 'words'")
    function_words = frozenset(words(function_table.get("words", []), "function_words.words"))
    return Lexicon(synonyms, related, function_words)



@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The lexicon shipped with WhatsEase, read once a process at its first use.

    Raises `LexiconError` if the shipped file is malformed.
    """
    return load_lexicon()


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    """Function words and the lexicon's question-frame words: they weigh
    STOP_WORD_WEIGHT and are never stemmed."""
    return BASE_STOP_WORDS | default_lexicon().function_words


def stop_factor(token: str) -> float:
    """The fraction of its weight a token keeps: STOP_WORD_WEIGHT for a stop word."""
    return STOP_WORD_WEIGHT if token in stop_words() else 1.0
