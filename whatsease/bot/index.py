"""The catalogue's index: its examples in canonical tokens, IDF weights, and which
intents use which word."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from whatsease.bot.catalogue import Catalogue, Intent
from whatsease.bot.folding import TextFolder
from whatsease.bot.lexicon import STOP_WORD_WEIGHT, stop_factor
from whatsease.bot.replies import mark_slots

# In an intent's coverage a word counts this much plus the share of the intent's
# examples that use it (capped at 1): "account" in most delete_account examples counts
# fully, a word from one long example ("meaning") only about half.
TYPICAL_WORD_BASE = 0.5
# An unknown word weighs this fraction of the rarest known word: enough that
# "what's the capital of peru" does not look like a question about anything we know.
OOV_WEIGHT_FACTOR = 0.8


@dataclass(frozen=True)
class ExampleIndex:
    """One example of an intent, ready for scoring."""

    tokens: frozenset[str]
    weight: float  # sum of the token weights
    text: str  # canonical tokens joined, for character-level scoring


@dataclass(frozen=True)
class IntentIndex:
    """One intent's examples and vocabulary."""

    intent: Intent
    examples: tuple[ExampleIndex, ...]
    # token -> how typical it is of the intent (TYPICAL_WORD_BASE + share of examples)
    vocabulary: Mapping[str, float]


class CatalogueIndex:
    """Everything about a catalogue's intents that does not depend on the message,
    computed once: canonical examples, IDF weights and an inverted index from token
    to intent position. Catch-all intents have no examples and are not indexed."""

    def __init__(self, catalogue: Catalogue, folder: TextFolder,
                 stop: frozenset[str] = frozenset()) -> None:
        """`stop`: the catalogue language's own function words, folded
        (lexicon.LANGUAGE_STOP_WORDS); they weigh like the English ones."""
        # Canonical example token lists; slot values become "<slot>" tokens.
        scorable = [i for i in catalogue.intents if not i.catch_all]
        example_tokens: dict[str, list[list[str]]] = {}
        for intent in scorable:
            lists = []
            for example in intent.examples:
                tokens = [t for t, _ in folder.canonical(example, correct=False)]
                if intent.slots:
                    tokens = mark_slots(folder, intent, example, tokens)
                lists.append(tokens)
            example_tokens[intent.name] = lists

        # IDF over intents: a word that names one intent outweighs one that all share.
        n_intents = max(len(scorable), 1)
        frequency: dict[str, int] = {}
        for lists in example_tokens.values():
            for token in {t for tokens in lists for t in tokens}:
                frequency[token] = frequency.get(token, 0) + 1
        # catalogue token -> weight
        self.weights: dict[str, float] = {}
        for token, df in frequency.items():
            factor = STOP_WORD_WEIGHT if token in stop else stop_factor(token)
            self.weights[token] = factor * math.log(1.0 + n_intents / df)
        # What a word the catalogue never uses weighs, before its salience.
        self.oov_weight = OOV_WEIGHT_FACTOR * math.log(1.0 + n_intents)

        indexes: list[IntentIndex] = []
        # token -> positions (in `indexes`) of the intents that use it
        self.postings: dict[str, list[int]] = {}
        for intent in scorable:
            examples = tuple(
                ExampleIndex(
                    tokens=frozenset(tokens),
                    weight=sum(self.weights[t] for t in set(tokens)),
                    text=" ".join(tokens),
                )
                for tokens in example_tokens[intent.name]
            )
            uses: dict[str, int] = {}
            for scored_example in examples:
                for token in scored_example.tokens:
                    uses[token] = uses.get(token, 0) + 1
            vocabulary = {
                token: min(1.0, TYPICAL_WORD_BASE + count / len(examples))
                for token, count in uses.items()
            }
            for token in vocabulary:
                self.postings.setdefault(token, []).append(len(indexes))
            indexes.append(IntentIndex(intent, examples, vocabulary))
        self.intents = tuple(indexes)
        self.context_positions = tuple(
            p for p, index in enumerate(indexes) if index.intent.context_in is not None
        )
        self.slot_positions = tuple(p for p, index in enumerate(indexes) if index.intent.slots)
        # context -> its catch-all intent
        self.catch_all = {i.context_in: i for i in catalogue.intents if i.catch_all}
