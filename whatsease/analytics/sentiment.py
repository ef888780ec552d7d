"""Sentiment of customers' messages: VADER's lexicon for English, nothing pretended for others."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from vaderSentiment.vaderSentiment import (  # type: ignore[import-untyped]
    SentimentIntensityAnalyzer,
)

# VADER's own cut-offs for its compound score (its README).
POSITIVE = 0.05
NEGATIVE = -0.05
SCORED_LANGUAGES = ("en",)


@lru_cache(maxsize=1)
def _analyser() -> SentimentIntensityAnalyzer:
    # Loading the lexicon takes tens of milliseconds: once per process.
    return SentimentIntensityAnalyzer()


TALLY_KEYS = ("positive", "neutral", "negative", "unscored", "compound_sum")


def tally(texts: Sequence[tuple[str, str]]) -> dict[str, float]:
    """Score ``(text, language)`` pairs (only English ones); the sums `finish` adds up.

    CPU-bound: call it off the event loop.
    """
    analyser = _analyser()
    result = dict.fromkeys(TALLY_KEYS, 0.0)
    for text, language in texts:
        if language not in SCORED_LANGUAGES:
            result["unscored"] += 1
            continue
        compound = float(analyser.polarity_scores(text)["compound"])
        result["compound_sum"] += compound
        if compound >= POSITIVE:
            result["positive"] += 1
        elif compound <= NEGATIVE:
            result["negative"] += 1
        else:
            result["neutral"] += 1
    return result


def finish(tallies: Iterable[Mapping[str, float]]) -> dict[str, Any]:
    """Counts of positive/neutral/negative, how many were not scored (no lexicon for
    their language) and the mean compound score (-1..1, None if nothing was scored)."""
    total = dict.fromkeys(TALLY_KEYS, 0.0)
    for one in tallies:
        for key in TALLY_KEYS:
            total[key] += float(one.get(key, 0))
    positive, neutral, negative = (int(total[k]) for k in ("positive", "neutral", "negative"))
    scored = positive + neutral + negative
    return {"scored": scored, "positive": positive, "neutral": neutral, "negative": negative,
            "unscored": int(total["unscored"]),
            "mean_compound": round(total["compound_sum"] / scored, 4) if scored else None}


def score(texts: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Score ``(text, language)`` pairs; only English ones are scored (see `finish`).

    CPU-bound: call it off the event loop.
    """
    return finish([tally(texts)])
