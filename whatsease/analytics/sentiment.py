"""Sentiment of customers' messages: VADER's lexicon for English, nothing pretended for others."""

from __future__ import annotations

from collections.abc import Sequence
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


def score(texts: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Score ``(text, language)`` pairs; only English ones are scored.

    Returns counts of positive/neutral/negative, the mean compound score
    (-1..1, None if nothing was scored) and how many were not scored because
    no lexicon covers their language. CPU-bound: call it off the event loop.
    """
    analyser = _analyser()
    positive = neutral = negative = unscored = 0
    total = 0.0
    for text, language in texts:
        if language not in SCORED_LANGUAGES:
            unscored += 1
            continue
        compound = float(analyser.polarity_scores(text)["compound"])
        total += compound
        if compound >= POSITIVE:
            positive += 1
        elif compound <= NEGATIVE:
            negative += 1
        else:
            neutral += 1
    scored = positive + neutral + negative
    return {"scored": scored, "positive": positive, "neutral": neutral, "negative": negative,
            "unscored": unscored,
            "mean_compound": round(total / scored, 4) if scored else None}
