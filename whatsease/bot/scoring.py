"""Scoring: a message's words as weighted units with their readings, and how well
an intent's examples explain them (a confidence in 0..1)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rapidfuzz import fuzz

from whatsease.bot.expansion import Expander, WordFacts
from whatsease.bot.folding import PHRASE_JOINER
from whatsease.bot.index import CatalogueIndex, IntentIndex
from whatsease.bot.lexicon import QUESTION_WORDS, STOP_WORD_WEIGHT, stop_words
from whatsease.bot.spelling import Speller

# An intent that shares only function words with a message that has topic words is
# scored at this fraction: it is probably not what the message is about.
CONTENT_MISS_FACTOR = 0.7

# Words in a subordinate clause weigh this fraction: the question is in the main clause.
# "do I need to pay to see a doctor" asks about paying, "when will it arrive if I order
# today" about arriving. A clause starts at a subordinating word after some topic word,
# or at a "to" + verb once a catalogue word came before ("free to see", "how much is it
# to see"; not "talk to someone", nor "I want to book", where no topic word came before).
SUBORDINATE_FACTOR = 0.5
PURPOSE_MARKERS: frozenset[str] = frozenset({"to"})
INDEFINITE_PRONOUNS: frozenset[str] = frozenset(
    {"someone", "somebody", "anyone", "anybody", "everyone", "everybody", "people", "nobody"}
)
SUBORDINATORS: frozenset[str] = frozenset(
    {"if", "because", "since", "unless", "after", "before", "while", "once"}
)
# How the confidence (0..1) is blended; tuned on tests/bot/cases.jsonl (docs/bot.md).
KEYWORD_WEIGHT = 0.4  # IDF-weighted word overlap with the best example (F1 of both sides)
CHAR_WEIGHT = 0.2  # character-level similarity of the sorted words (typos, merged words)
COVERAGE_WEIGHT = 0.4  # share of the message's words the intent knows from any example
# An unknown but everyday word ("able", "kind", "make") weighs this fraction of an
# unknown word:
# it rarely names the topic, while rare words ("peru", "taxes") usually do.
OOV_COMMON_FACTOR = 0.5
# With English word frequencies (wordfreq's Zipf scale: log10 uses per billion words,
# "the" 7.7, "bill" 5.2, "electricity" 4.4, "inhaler" 2.9) an unknown word's weight
# follows how rare it is instead: rare words name topics, frequent ones frame the
# sentence. The factor is 1 at SALIENCE_PIVOT_ZIPF and changes by SALIENCE_SLOPE per
# Zipf unit, within the bounds.
SALIENCE_PIVOT_ZIPF = 4.5
SALIENCE_SLOPE = 0.4
SALIENCE_MIN = 0.3
SALIENCE_MAX = 1.6
# Nouns of time and people (WordNet's noun classes: "tonight", "my husband") say when
# and who, rarely what about: they weigh this fraction. Places do not get it: "a
# flight to lisbon", "the capital of peru" are about them (measured: treating places
# so answered "book me a flight to lisbon" in the bench's 200-intent catalogue).
CIRCUMSTANCE_KINDS: frozenset[str] = frozenset({"time", "person"})
CIRCUMSTANCE_FACTOR = 0.5
# A message naming something neither WordNet nor the catalogue knows, though English
# uses it often (Zipf between these: "netflix" 4.2, "iphone" 4.4, "facebook" 4.9; not
# typos or rare jargon below, not function words above), is about that thing: a
# product or company the catalogue never mentions. It falls back instead of being
# answered by the intent whose frame it borrows ("how do i reset my iphone"). Not
# when the word is a name typed with a capital, an everyday word (COMMON_WORDS,
# GUARD_WORDS), or the value an intent's slot captured.
STRANGER_MIN_ZIPF = 4.0
STRANGER_MAX_ZIPF = 5.3


@dataclass
class Message:
    """A message ready for scoring: its words as units, each readable as several tokens."""

    # token -> {unit: weight x similarity}: how much reading that token credits each
    # unit (a unit is one word of the message; a related word credits it at a discount)
    hits: dict[str, dict[int, float]]
    total: float  # sum of the units' weights, unscaled
    text: str  # the units' own tokens, for character-level scoring
    content: frozenset[str]  # tokens reading a unit that names a topic
    readings: frozenset[str]  # every token in `hits`
    # Whether some unit has several readings; if not, each token credits one unit and
    # scoring can add up token credits without keeping the best per unit.
    shared: bool
    # Frequent English words that WordNet and the catalogue both lack: product and
    # company names ("netflix", "iphone"), which name what the message is about.
    strangers: frozenset[str] = frozenset()


class Scorer:
    """Reads messages against one catalogue's `index`, with `expander`'s readings
    and `speller`'s everyday-word tables, and scores them against its intents."""

    def __init__(self, index: CatalogueIndex, expander: Expander, speller: Speller,
                 stop: frozenset[str] = frozenset()) -> None:
        """`stop`: the catalogue language's own function words, folded (as for the index)."""
        self._stop = stop_words() | stop
        self._weights = index.weights
        self._oov_weight = index.oov_weight
        self._expander = expander
        self._common_stems = speller.common_stems
        self._guard_stems = speller.guard_stems

    def message(
        self, tokens: Iterable[tuple[str, float]], spelled: Mapping[str, str] | None = None
    ) -> Message:
        """Units, readings and weights of a message's tokens; `spelled` maps a folded
        token to the word as typed (for its word vector)."""
        spelled = spelled or {}
        units: dict[str, int] = {}
        hits: dict[str, dict[int, float]] = {}
        content: set[str] = set()
        total = 0.0
        subordinate = False
        seen_content = False
        known_before = False  # a topic word the catalogue uses came before
        tokens = list(tokens)
        for position, (token, similarity) in enumerate(tokens):
            if seen_content and (
                token in SUBORDINATORS
                or (
                    token in PURPOSE_MARKERS
                    and known_before
                    and position + 1 < len(tokens)
                    and infinitive(tokens[position + 1][0])
                )
            ):
                subordinate = True
            is_word = token not in self._stop and token not in QUESTION_WORDS
            seen_content = seen_content or is_word
            known_before = known_before or (is_word and token in self._weights)
            weight = self._weights.get(token)
            known = weight is not None
            related = self._expander.related.get(token, ())
            if not known:
                related = related + self._expander.derived(token)
            if PHRASE_JOINER in token:
                related = related + self._expander.phrase_parts(token)
            # WordNet's readings are softer: they leave the word its own weight.
            meanings = self._expander.meaning(token) if not known else ()
            if not known and not related and not meanings:
                # Word vectors are the last resort: they know what a word is used
                # with, not what it means ("postpone" is nearer "cancel" than
                # "reschedule"), so the lexicon and WordNet speak first.
                meanings = self._expander.neighbours(token, spelled.get(token, ""))
            if weight is None:
                if related:
                    # An unknown word the lexicon relates to catalogue words weighs
                    # like them: it is as much about the topic as they are.
                    weight = max(self._weights[r] for r, _ in related)
                    if circumstance(self._expander.facts.get(token)):
                        weight *= CIRCUMSTANCE_FACTOR
                else:
                    weight = (STOP_WORD_WEIGHT if token in self._stop else 1.0) * self._oov_weight
                    facts = self._expander.facts.get(token)
                    factor = salience(*facts) if facts is not None else 1.0
                    if token in self._common_stems:
                        factor = min(factor, OOV_COMMON_FACTOR)
                    weight *= factor
            if subordinate and is_word:
                weight *= SUBORDINATE_FACTOR
            related = related + meanings
            unit = units.get(token)
            if unit is None:
                unit = units[token] = len(units)
                total += weight
            elif not known:
                total += weight  # each unknown word is more the catalogue cannot explain
            is_content = token not in self._stop and token not in QUESTION_WORDS
            # A related reading credits no more than that word itself would: "buy"
            # read as "order" is worth what "order" is worth, discounted.
            for reading, value in (
                (token, weight * similarity),
                *(
                    (r, min(weight, self._weights[r]) * similarity * factor)
                    for r, factor in related
                ),
            ):
                if value <= 0:
                    continue
                credits = hits.setdefault(reading, {})
                if value > credits.get(unit, 0.0):
                    credits[unit] = value
                # "how long" names a topic, its "how" does not.
                if is_content and reading not in self._stop and reading not in QUESTION_WORDS:
                    content.add(reading)
        shared = sum(len(credits) for credits in hits.values()) > len(units)
        strangers = frozenset(
            token
            for token in units
            if token.isalpha()
            and len(hits[token]) == 1
            and token not in self._weights
            and token not in self._stop
            and token not in self._guard_stems
            and token not in self._expander.fold_lemmas
            and STRANGER_MIN_ZIPF <= self._expander.facts.get(token, (0.0,))[0] <= STRANGER_MAX_ZIPF
        )
        return Message(
            hits, total, " ".join(units), frozenset(content), frozenset(hits), shared, strangers
        )

    def score(self, index: IntentIndex, message: Message) -> float:
        """How well `index`'s intent explains `message`: a confidence in 0..1."""
        if message.total <= 0:
            return 0.0
        hits = message.hits
        typical = index.vocabulary
        # An intent that shares only function words with a message that has topic
        # words ("what is the meaning of life") is probably not what it is about.
        penalty = 1.0
        if message.content and message.content.isdisjoint(typical):
            penalty = CONTENT_MISS_FACTOR
        readings = message.readings
        covered = credit(hits, readings & typical.keys(), message.shared, typical)
        best = 0.0
        for example in index.examples:
            overlap = credit(hits, readings & example.tokens, message.shared)
            if overlap > 0 and example.weight > 0:
                recall = overlap / message.total
                precision = min(overlap / example.weight, 1.0)
                keyword = 2 * precision * recall / (precision + recall)
            else:
                keyword = 0.0
            chars = fuzz.token_sort_ratio(message.text, example.text, processor=None) / 100.0
            best = max(best, KEYWORD_WEIGHT * keyword + CHAR_WEIGHT * chars)
        return penalty * (best + COVERAGE_WEIGHT * covered / message.total)


def credit(
    hits: Mapping[str, Mapping[int, float]],
    tokens: Iterable[str],
    shared: bool,
    scale: Mapping[str, float] | None = None,
) -> float:
    """How much of the message `tokens` explain: each unit counted once, at its best
    reading, times `scale[token]` if given."""
    if not shared:
        total = 0.0
        for token in tokens:
            for value in hits[token].values():
                total += value * scale[token] if scale is not None else value
        return total
    best: dict[int, float] = {}
    for token in tokens:
        factor = scale[token] if scale is not None else 1.0
        for unit, value in hits[token].items():
            if value * factor > best.get(unit, 0.0):
                best[unit] = value * factor
    return sum(best.values())


def circumstance(facts: WordFacts | None) -> bool:
    """Whether a word's first noun sense is a time or a person ("tonight", "husband")."""
    return facts is not None and facts[2] in CIRCUMSTANCE_KINDS


def salience(zipf: float, noun: float, kind: str) -> float:
    """How much an unknown word may name the topic, as a factor of its weight."""
    factor = 1.0 + (SALIENCE_PIVOT_ZIPF - zipf) * SALIENCE_SLOPE
    factor = max(SALIENCE_MIN, min(SALIENCE_MAX, factor))
    if kind in CIRCUMSTANCE_KINDS:
        factor *= CIRCUMSTANCE_FACTOR
    return factor


def infinitive(token: str) -> bool:
    """Whether `token` after "to" may start a purpose clause ("to see", not "to someone")."""
    return (
        token not in stop_words()
        and token not in QUESTION_WORDS
        and token not in INDEFINITE_PRONOUNS
        and token.isalpha()
    )
