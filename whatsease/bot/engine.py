"""The intent engine: matches a message against a catalogue and renders the reply, purely."""

from __future__ import annotations

import heapq
import math
import os
import random
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from whatsease.bot.catalogue import Catalogue, Intent
from whatsease.bot.meaning import WordNetData, load_wordnet
from whatsease.bot.normalize import COMMON_WORDS, GUARD_WORDS, tokenize
from whatsease.bot.vectors import VectorTable, WordVectors, load_vectors

if TYPE_CHECKING:  # the encoder's module needs numpy, an optional dependency
    from whatsease.bot.semantic import SemanticIndex

# Function words: they still count, at this fraction of their weight, because
# "who are you" and "how are you" differ only in them, but they must not outvote
# the words that name a topic.
STOP_WORDS: frozenset[str] = frozenset(
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
# Question words weigh fully ("who are you" is not "how are you"), but a message whose
# only overlap with an intent is a question word is not about that intent.
QUESTION_WORDS: frozenset[str] = frozenset({"what", "who", "how", "when", "where", "why", "which"})
CONTENT_MISS_FACTOR = 0.7
# A message that fits an intent of an inactive context ("cancel" with nothing to cancel)
# better than any available intent, by at least this much, falls back: the available
# intent is then a poor guess. Closer than that, the available intent wins.
GATED_MARGIN = 0.1
# The bot has just asked for what an intent of the active context answers, so such an
# intent needs only this fraction of the threshold: the question makes it likely.
CONTEXT_THRESHOLD_FACTOR = 0.85

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


LEXICON = load_lexicon()
# Everyday synonyms every catalogue gets; a catalogue adds its own in [bot] synonyms.
DEFAULT_SYNONYMS: Mapping[str, tuple[str, ...]] = LEXICON.synonyms
STOP_WORDS = STOP_WORDS | LEXICON.function_words
# A message word is also read as each catalogue word related to it (lexicon [related])
# at this fraction of its weight: enough to carry a paraphrase ("credit cards" for an
# intent that says "visa"), less than the word itself, so an intent that uses the
# message's own word wins.
RELATED_SIMILARITY = 0.7
# An unknown word is also read as a catalogue word that looks like another form of it
# ("cancellation" / "cancel"): they share at least this many first letters...
DERIVED_MIN_PREFIX = 5
# ...and this share of the shorter word ("experience" is not "experiment")...
DERIVED_MIN_SHARE = 0.75
# ...and the reading counts this much of the word.
DERIVED_SIMILARITY = 0.8
# An unknown word made of a prefix and a catalogue word (or a derived form of one) is
# read as that word at this similarity; the root must keep this many letters. Not
# "re": most words starting so are no prefixed forms ("report" is not "port").
AFFIX_PREFIXES: tuple[str, ...] = ("dis", "un", "mis", "non")
AFFIX_MIN_ROOT = 4
AFFIX_SIMILARITY = 0.6
# A word typed without vowels ("hlp") read as a catalogue word counts this much.
SKELETON_SIMILARITY = 0.8
# A message word the catalogue does not use is also read as each catalogue word
# WordNet puts in one of its first senses (a shared synset, or a derivational link:
# "relocate" / "move", "payment" / "pay") at this fraction of its weight, and as one
# a sense away up or down the hypernym tree at the second. Soft evidence: less than
# the word itself, and less than the hand-written [related] groups. Hypernyms are off:
# on the four case sets they answered more out-of-scope questions and fixed nothing.
WORDNET_SYNONYM_SIMILARITY = 0.6
WORDNET_HYPERNYM_SIMILARITY = 0.0
# The message word's first senses per part of speech (WordNet orders senses by how
# often they are used; a customer means the usual sense), the catalogue word's first
# few more (in its domain a rarer sense may be the one meant: "move" house).
MESSAGE_SENSES = 2
CATALOGUE_SENSES = 6
# A message word the catalogue does not use, and that neither the lexicon nor WordNet
# reads as any catalogue word, is read as the catalogue words whose GloVe vectors are
# closest to its own (vectors.bin.gz): "purse" / "wallet", "inhaler" / "prescription",
# "migraine" / "pain". Neighbours at or above this cosine similarity count, at most
# this many, each at VECTOR_SIMILARITY x its cosine: soft evidence like WordNet's,
# which leaves the word its own weight. Below 0.5 the neighbours turn into
# associations ("physio" / "boss", "jab" / "right").
VECTOR_MIN_COSINE = 0.5
VECTOR_NEIGHBOURS = 3
VECTOR_SIMILARITY = 1.0
# ...and never more than a WordNet synonym: they are the weakest evidence.
VECTOR_MAX_SIMILARITY = WORDNET_SYNONYM_SIMILARITY
# Only for message words no more frequent than this (Zipf): "inhaler" 2.9, "lag" 3.7,
# "purse" 4.0; a frequent word's neighbours are other topics ("poem" 4.2 / "write",
# "weather" 4.9 / "today"). On the four development sets anything up to 4.0 changed
# nothing but one fixed case, 4.2 answered one more out-of-scope message.
VECTOR_MAX_ZIPF = 4.0
# Nor for nouns of time ("thursday" / "saturday", "week"): they say when, not what.
VECTOR_SKIP_KINDS: frozenset[str] = frozenset({"time"})
# Multi-word expressions are read as one token: their words joined by this.
PHRASE_JOINER = "_"
# ...and also as each of their own words the catalogue uses, at this fraction: "how
# long does it take" still shares "how" and "long" with examples that say them.
PHRASE_PART_SIMILARITY = 0.6
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
# Operators between numbers ("17 times 23", "2 x 3") make an arithmetic question: one
# token no catalogue uses, so "times" is not read as "time".
ARITHMETIC_WORDS: frozenset[str] = frozenset(
    {"times", "x", "plus", "minus", "multiplied", "divided", "multiply", "divide"}
)
# A verb of ceasing before a gerund says the action no longer happens: "stopped
# working" is "not working", not a request to stop (cancel) something. Other aspect
# verbs stay as they are: "keeps dropping" says something a catalogue may use.
ASPECT_VERBS: Mapping[str, str] = dict.fromkeys(
    ("stop", "stops", "stopped", "quit", "quits", "ceased"), "not"
)
# Words ending in -ing that are no gerund ("stop everything").
NOT_GERUNDS: frozenset[str] = frozenset(
    {"nothing", "something", "anything", "everything", "morning", "evening", "during",
     "ceiling", "wedding", "string", "spring", "pudding", "building", "clothing"}
)  # fmt: skip
# Phrasal verbs whose object may stand between verb and particle ("pick it up").
PARTICLES: frozenset[str] = frozenset({"up", "back", "out", "off", "down", "over", "away", "in"})
OBJECT_PRONOUNS: frozenset[str] = frozenset(
    {"it", "them", "me", "us", "him", "her", "this", "that"}
)
# ...or a short noun phrase: a determiner and one word ("pick the parcel up").
OBJECT_DETERMINERS: frozenset[str] = frozenset({"my", "the", "your", "our", "this", "that", "a"})
ARITHMETIC_TOKEN = "<arithmetic>"  # noqa: S105 - a token, not a secret

# Messages may be 4,096 characters; the intent is in the first sentences, and scoring
# cost grows with length, so match on this much and keep the whole text for `store`.
MAX_MATCH_CHARS = 600
# Longer messages are also matched sentence by sentence (the first few), since a
# question followed by a story is about the question.
LONG_MESSAGE_CHARS = 200
LONG_MESSAGE_SENTENCES = 3
LONG_MESSAGE_MIN_WORDS = 3
# Only this many intents (ranked by cheap word coverage) get the full per-example scoring.
CANDIDATE_INTENTS = 12
# A captured slot value is cut to this many characters before it is echoed or remembered.
MAX_SLOT_CHARS = 100

# How the confidence (0..1) is blended; tuned on tests/bot/cases.jsonl (docs/bot.md).
KEYWORD_WEIGHT = 0.4  # IDF-weighted word overlap with the best example (F1 of both sides)
CHAR_WEIGHT = 0.2  # character-level similarity of the sorted words (typos, merged words)
COVERAGE_WEIGHT = 0.4  # share of the message's words the intent knows from any example
# In that coverage a word counts this much plus the share of the intent's examples that
# use it (capped at 1): "account" in most delete_account examples counts fully, a word
# from one long example ("meaning") only about half.
TYPICAL_WORD_BASE = 0.5
# An unknown word weighs this fraction of the rarest known word: enough that
# "what's the capital of peru" does not look like a question about anything we know.
OOV_WEIGHT_FACTOR = 0.8
# ...and an unknown but everyday word ("able", "kind", "make") this fraction of that:
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
CIRCUMSTANCE_MIN_NOUN_SHARE = 0.5

NUMBER_TOKEN = "#"  # noqa: S105 - every run of digits matches as this one token
USER_ROLE = "user"
BOT_ROLE = "bot"
# Filled in for {user_name} when the caller does not know the user's name.
DEFAULT_USER_NAME = "there"

_DIGITS = re.compile(r"\d+\Z")
_VOWEL = re.compile(r"[aeiou]")
_PUNCTUATION = "\"'.,!?;:()[]{}"
# "17x23", "17 * 23", "17×23" and "2+2" written without words.
_ARITHMETIC_SYMBOL = re.compile(r"(?<=\d)\s*[x×*]\s*(?=\d)")
_PLUS_SYMBOL = re.compile(r"(?<=\d)\s*\+\s*(?=\d)")
_SENTENCE_END = re.compile(r"(?<=[.!?\n])\s+")


# ---------------------------------------------------------------------------- state


@dataclass
class HistoryEntry:
    """One message of the conversation with the bot (from the user or from the bot)."""

    role: str
    text: str
    at: datetime
    intent: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "text": self.text, "at": self.at, "intent": self.intent}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HistoryEntry:
        return cls(
            role=str(data["role"]),
            text=str(data["text"]),
            at=_aware(data["at"]),
            intent=data.get("intent"),
        )


@dataclass
class BotState:
    """What the bot knows about one user between messages.

    Convert with `to_dict` / `from_dict` to store it (datetimes stay `datetime`
    objects, so MongoDB stores them as dates; naive ones read back are taken as UTC).
    `respond` never changes the state it is given: it returns a new one.
    """

    context: str | None = None
    context_expires_at: datetime | None = None
    context_turns_left: int = 0
    memory: dict[str, str] = field(default_factory=dict)
    history: list[HistoryEntry] = field(default_factory=list)

    def active_context(self, now: datetime) -> str | None:
        """The context still in force at `now`, or None if there is none or it expired."""
        if self.context is None or self.context_turns_left <= 0:
            return None
        if self.context_expires_at is not None and _aware(self.context_expires_at) <= now:
            return None
        return self.context

    def to_dict(self) -> dict[str, Any]:
        return {
            "context": self.context,
            "context_expires_at": self.context_expires_at,
            "context_turns_left": self.context_turns_left,
            "memory": dict(self.memory),
            "history": [entry.to_dict() for entry in self.history],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> BotState:
        """Rebuild a state from `to_dict` output; missing keys mean a new user."""
        if not data:
            return cls()
        expires = data.get("context_expires_at")
        return cls(
            context=data.get("context"),
            context_expires_at=_aware(expires) if expires is not None else None,
            context_turns_left=int(data.get("context_turns_left", 0)),
            memory={str(k): str(v) for k, v in (data.get("memory") or {}).items()},
            history=[HistoryEntry.from_dict(e) for e in data.get("history") or []],
        )

    def copy(self) -> BotState:
        return BotState(
            context=self.context,
            context_expires_at=self.context_expires_at,
            context_turns_left=self.context_turns_left,
            memory=dict(self.memory),
            history=list(self.history),
        )


def bound_history(
    history: Sequence[HistoryEntry],
    *,
    max_messages: int,
    max_chars: int,
    max_age: timedelta,
    now: datetime,
) -> list[HistoryEntry]:
    """Return the newest part of `history` that fits every bound, oldest dropped first.

    Entries older than `max_age` go, then the oldest until at most `max_messages`
    remain and their texts total at most `max_chars`. A single entry longer than
    `max_chars` on its own is kept, cut to `max_chars` characters.
    """
    cutoff = now - max_age
    kept = [entry for entry in history if _aware(entry.at) >= cutoff]
    if len(kept) > max_messages:
        kept = kept[len(kept) - max_messages :]
    total = sum(len(entry.text) for entry in kept)
    while len(kept) > 1 and total > max_chars:
        total -= len(kept.pop(0).text)
    if kept and total > max_chars:
        only = kept[0]
        kept = [HistoryEntry(only.role, only.text[:max_chars], only.at, only.intent)]
    return kept


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Match:
    """How a message was classified, before any reply is rendered."""

    intent: Intent | None
    confidence: float
    slots: dict[str, str]
    # The best few candidates as (intent name, score), best first: for bot-eval and logs.
    ranking: tuple[tuple[str, float], ...] = ()

    @property
    def intent_name(self) -> str | None:
        return self.intent.name if self.intent is not None else None


@dataclass(frozen=True)
class Reply:
    """The bot's answer and the user's new state.

    `intent` is None when nothing matched confidently: `text` is then one of the
    catalogue's fallback replies and the caller may try a language model instead.
    `store` is ("feedback", the user's text) when the intent asks for the message to
    be kept; `action` is the intent's `action` string (e.g. "handoff") for the caller.
    """

    text: str
    intent: str | None
    confidence: float
    slots: dict[str, str]
    state: BotState
    store: tuple[str, str] | None = None
    action: str | None = None

    @property
    def is_fallback(self) -> bool:
        return self.intent is None


# ---------------------------------------------------------------------------- matching


def stem(word: str) -> str:
    """Fold inflections so "sending", "sends" and "send" meet ("messages" → "messag").

    A crude suffix stripper, applied identically to examples and messages, which is
    all matching needs: the stems are never shown to anyone.
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix, replacement in (("ies", "y"), ("ied", "y"), ("sses", "ss")):
        if word.endswith(suffix):
            return word[: -len(suffix)] + replacement
    for suffix in ("ing", "ed"):
        if suffix == "ed" and word.endswith("eed"):
            # "agreed" is "agree" + "d", but "speed" and "bleed" are no past tense:
            # nothing before their "eed" has a vowel.
            if _VOWEL.search(word[:-3]):
                word = word[:-1]
            break
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            if len(word) >= 4 and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]  # "chatting" → "chat", but "called" → "call"
            break
    else:
        if (word.endswith("es") and word[-3] in "sxz") or word.endswith(("ches", "shes")):
            word = word[:-2]
        elif word.endswith("s") and word[-2] not in "sui":
            word = word[:-1]
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


def fold(word: str) -> str:
    """The matching form of a normalised word: stop words as they are, others stemmed."""
    return word if word in STOP_WORDS else stem(word)


@dataclass(frozen=True)
class _Example:
    tokens: frozenset[str]
    weight: float  # sum of the token weights
    text: str  # canonical tokens joined, for character-level scoring


@dataclass(frozen=True)
class _IntentIndex:
    intent: Intent
    examples: tuple[_Example, ...]
    # token -> how typical it is of the intent (TYPICAL_WORD_BASE + share of examples)
    vocabulary: Mapping[str, float]


@dataclass
class _Message:
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


class IntentEngine:
    """Matches messages to a catalogue's intents and renders replies.

    Everything that does not depend on the message (normalised examples, token sets,
    IDF weights, the synonym table, the typo vocabulary) is computed here, once.
    The engine holds no per-user state: pass a `BotState` to `respond`.
    """

    def __init__(self, catalogue: Catalogue, *, rng: random.Random | None = None,
                 semantic: SemanticIndex | None = None) -> None:
        self.catalogue = catalogue
        self._rng = rng or random.Random()
        # Sentence meaning, consulted when the words fall back (semantic.py); optional.
        self.semantic = semantic
        bot = catalogue.bot

        # Surface words the examples and synonyms use: typos are corrected towards them.
        surface: dict[str, int] = {}
        for intent in catalogue.intents:
            for example in intent.examples:
                for word in tokenize(example):
                    surface[word] = surface.get(word, 0) + 1
        lexicon_phrases = [p for group in LEXICON.related for p in group]
        for table in (DEFAULT_SYNONYMS, bot.synonyms):
            for canonical, variants in table.items():
                lexicon_phrases += [canonical, *variants]
        for phrase in lexicon_phrases:
            for word in tokenize(phrase):
                surface.setdefault(word, 1)
        # Typos are only worth correcting towards words the catalogue knows; most
        # frequent first, so a tie between two corrections picks the common word.
        self._correction_choices = sorted(surface, key=lambda w: (-surface[w], w))
        # The same by stem (the most frequent form stands for it), and by consonants.
        self._stem_surface: dict[str, str] = {}
        self._skeletons: dict[str, list[str]] = {}
        for word in self._correction_choices:
            if word.isalpha():
                self._stem_surface.setdefault(fold(word), word)
                skeleton = _VOWEL.sub("", word)
                if len(skeleton) >= 3 and skeleton != word:
                    self._skeletons.setdefault(skeleton, []).append(word)
        self._stem_choices = [s for s in self._stem_surface if len(s) >= 4]
        self._known_stems = frozenset(fold(w) for w in surface)
        # Everyday words are never corrected: "life" is not a typo of "like".
        self._squeeze_vocabulary = frozenset(surface) | STOP_WORDS | COMMON_WORDS
        self._common_stems = frozenset(fold(w) for w in COMMON_WORDS)
        self._guard_stems = self._common_stems | frozenset(fold(w) for w in GUARD_WORDS)
        self._guard_words = COMMON_WORDS | GUARD_WORDS
        self._synonyms = self._synonym_table(bot.synonyms)

        self._correct = lru_cache(maxsize=4096)(self._correct_uncached)

        # Canonical example token lists; slot values become "<slot>" tokens.
        scorable = [i for i in catalogue.intents if not i.catch_all]
        example_tokens: dict[str, list[list[str]]] = {}
        for intent in scorable:
            lists = []
            for example in intent.examples:
                tokens = [t for t, _ in self._canonical(example, correct=False)]
                if intent.slots:
                    tokens = self._mark_slots(intent, example, tokens)
                lists.append(tokens)
            example_tokens[intent.name] = lists

        # IDF over intents: a word that names one intent outweighs one that all share.
        n_intents = max(len(scorable), 1)
        frequency: dict[str, int] = {}
        for lists in example_tokens.values():
            for token in {t for tokens in lists for t in tokens}:
                frequency[token] = frequency.get(token, 0) + 1
        self._facts = _facts_by_fold(load_wordnet())
        self._weights: dict[str, float] = {}
        for token, df in frequency.items():
            self._weights[token] = _stop_factor(token) * math.log(1.0 + n_intents / df)
        self._oov_weight = OOV_WEIGHT_FACTOR * math.log(1.0 + n_intents)

        indexes: list[_IntentIndex] = []
        self._postings: dict[str, list[int]] = {}
        for intent in scorable:
            examples = tuple(
                _Example(
                    tokens=frozenset(tokens),
                    weight=sum(self._weights[t] for t in set(tokens)),
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
                self._postings.setdefault(token, []).append(len(indexes))
            indexes.append(_IntentIndex(intent, examples, vocabulary))
        self._indexes = tuple(indexes)
        self._context_positions = tuple(
            p for p, index in enumerate(indexes) if index.intent.context_in is not None
        )
        self._slot_positions = tuple(p for p, index in enumerate(indexes) if index.intent.slots)
        self._catch_all = {i.context_in: i for i in catalogue.intents if i.catch_all}

        # Related words (lexicon [related]), read through the same pipeline as the
        # examples; a message token is also read as each related token the catalogue
        # uses. Members that fold to several tokens (a catalogue's own multi-word
        # canonical phrase) take no part.
        related: dict[str, set[str]] = {}
        for group in LEXICON.related:
            members = set()
            for member in group:
                folded = [t for t, _ in self._canonical(member, correct=False)]
                if len(folded) == 1:
                    members.add(folded[0])
            for member in members:
                related.setdefault(member, set()).update(members - {member})
        self._related: dict[str, tuple[tuple[str, float], ...]] = {}
        for token, others in related.items():
            known = tuple((t, RELATED_SIMILARITY) for t in sorted(others) if t in self._weights)
            if known:
                self._related[token] = known
        # Catalogue words by their first letters, to find derived forms of a word.
        self._by_prefix: dict[str, list[str]] = {}
        for token in self._weights:
            if len(token) >= DERIVED_MIN_PREFIX and token.isalpha():
                self._by_prefix.setdefault(token[:DERIVED_MIN_PREFIX], []).append(token)
        self._derived = lru_cache(maxsize=4096)(self._derived_uncached)
        self._wordnet_index(surface)
        self._meaning = lru_cache(maxsize=4096)(self._meaning_uncached)
        self._vector_index()
        self._neighbours = lru_cache(maxsize=4096)(self._neighbours_uncached)

    # -- public API

    def match(self, text: str, context: str | None = None) -> Match:
        """Classify `text` with `context` active (None: no context).

        Intents with `context_in` are only candidates while their context is active,
        and one that clears the threshold is preferred to any other intent. A
        catch-all intent takes every message in its context that no other
        `context_in` intent claims. Intents with slots are only candidates when every
        slot's regular expression finds a value. Below the threshold, when the two
        best intents are too close to call (`margin`), or when the message is best
        explained by an intent whose context is not active ("cancel" with nothing to
        cancel), the result has `intent=None`.
        """
        if len(text) <= LONG_MESSAGE_CHARS:
            found = self._match_text(text, context)
        else:
            # A long message dilutes its question: also try its first sentences alone,
            # if they say something ("Hi!" before the question is not what it is about).
            sentences = _SENTENCE_END.split(text, LONG_MESSAGE_SENTENCES)[:-1]
            parts = [text[:MAX_MATCH_CHARS]]
            parts += [p for p in sentences if len(p.split()) >= LONG_MESSAGE_MIN_WORDS]
            matches = [self._match_text(part[:MAX_MATCH_CHARS], context) for part in parts]
            found = max(matches, key=lambda m: (m.intent is not None, m.confidence))
        if self.semantic is not None:
            return self._match_meaning(text[:MAX_MATCH_CHARS], context, found)
        return found

    def _match_meaning(self, text: str, context: str | None, words: Match) -> Match:
        """The sentence reader's second opinion (semantic.py), where the words need one:
        a message they could not place, or an intent they found with little to spare.
        """
        from whatsease.bot.semantic import needs_review

        assert self.semantic is not None
        if words.intent is not None:
            intent = words.intent
            if intent.context_in is not None or intent.catch_all:
                return words  # the conversation asked for this answer
            if not needs_review(words.confidence):
                return words
        elif words.ranking:
            # "cancel" with nothing to cancel: the words found what it means, and it
            # means nothing now. Meaning must not find it something else to do.
            name, score = words.ranking[0]
            wanted = self.catalogue.intent(name).context_in
            if wanted is not None and wanted != context and score >= self.catalogue.bot.threshold:
                return words
        # Intents with slots are candidates only when their slots find values.
        slots: dict[str, dict[str, str]] = {}
        missing = set()
        for position in self._slot_positions:
            slotted = self._indexes[position].intent
            values = _capture_slots(slotted, text)
            if values is None:
                missing.add(slotted.name)
            else:
                slots[slotted.name] = values
        reading = self.semantic.read(text, context, missing)
        if reading is None:
            return words
        if words.intent is None:
            answer = reading.intent if reading.answers else None
        else:
            verdict = reading.overrules(words.intent.name)
            if verdict is None:
                return words
            answer = verdict or None
        if answer is None:
            return Match(None, words.confidence, {}, words.ranking) if words.intent else words
        return Match(self.catalogue.intent(answer), _clamp(reading.probability),
                     slots.get(answer, {}), words.ranking)

    def _match_text(self, text: str, context: str | None) -> Match:
        bot = self.catalogue.bot
        raw = text
        tokens = self._canonical(raw, correct=True)
        # The words as typed, by folded form: "nicked" folds to "nick" (a name), but
        # its vector and its frequency are those of "nicked".
        spelled = {fold(w): w for w in tokenize(raw, self._squeeze_vocabulary)}
        message = self._message(tokens, spelled)

        # Stage 1: cheap coverage of the message by each intent's vocabulary.
        # Only intents sharing a word with the message, and those with slots, can
        # score at all, so the rest are never looked at.
        coverage: dict[int, float] = {}
        for token, credits in message.hits.items():
            weight = max(credits.values())
            for position in self._postings.get(token, ()):
                coverage[position] = coverage.get(position, 0.0) + weight

        # Intents waiting for a context that is not active.
        gated = {
            p for p in self._context_positions if self._indexes[p].intent.context_in != context
        }
        slot_values: dict[int, dict[str, str]] = {}
        skipped: set[int] = set()
        for position in self._slot_positions:
            if position in gated:
                continue
            values = _capture_slots(self._indexes[position].intent, raw)
            if values is None:
                skipped.add(position)
            else:
                slot_values[position] = values
                coverage.setdefault(position, 0.0)
        pool = sorted(p for p in coverage if p not in skipped)
        candidates = heapq.nlargest(CANDIDATE_INTENTS, pool, key=coverage.__getitem__)
        # Slot intents and those of the active context always get a full look: their
        # evidence is not only in the words.
        chosen = set(candidates)
        for position in (*slot_values, *self._context_positions):
            if position not in chosen and position not in gated and position not in skipped:
                candidates.append(position)
                chosen.add(position)

        # Stage 2: full scoring of the candidates.
        scores: list[tuple[float, int]] = []
        for position in candidates:
            index = self._indexes[position]
            scored = message
            if position in slot_values:
                scored = self._message(
                    self._substitute_slots(tokens, slot_values[position]), spelled
                )
            scores.append((self._score(index, scored), position))
        scores.sort(key=lambda pair: -pair[0])
        ranking = tuple((self._indexes[p].intent.name, round(s, 4)) for s, p in scores[:5])

        def found(score: float, position: int) -> Match:
            intent = self._indexes[position].intent
            return Match(intent, _clamp(score), slot_values.get(position, {}), ranking)

        open_scores = [(score, p) for score, p in scores if p not in gated]
        if context is not None:
            for score, position in open_scores:
                if self._indexes[position].intent.context_in == context:
                    if score >= bot.threshold * CONTEXT_THRESHOLD_FACTOR:
                        return found(score, position)
                    break
            catch_all = self._catch_all.get(context)
            if catch_all is not None:
                return Match(catch_all, 1.0, {}, ranking)

        best = open_scores[0][0] if open_scores else 0.0
        if best < bot.threshold:
            return Match(None, _clamp(best), {}, ranking)
        if scores[0][1] in gated and scores[0][0] >= best + GATED_MARGIN:
            return Match(None, _clamp(best), {}, ranking)
        runner_up = open_scores[1][0] if len(open_scores) > 1 else 0.0
        if best - runner_up < bot.margin:
            return Match(None, _clamp(best), {}, ranking)
        if open_scores[0][1] not in slot_values and message.strangers - {
            fold(name) for name in _proper_nouns(raw)
        }:
            return Match(None, _clamp(best), {}, ranking)
        return found(*open_scores[0])

    def respond(
        self,
        text: str,
        state: BotState | None = None,
        *,
        now: datetime | None = None,
        user_name: str = "",
        rng: random.Random | None = None,
    ) -> Reply:
        """Answer `text` from a user whose state is `state` (None: a new user).

        `now` defaults to the current UTC time; pass it to test expiry, and pass a
        time in the user's time zone to have {time} and {date} read in it. `rng`
        picks among response variants (seed one for repeatable tests). The given
        state is not modified; the reply carries the new one.
        """
        bot = self.catalogue.bot
        now = _aware(now) if now is not None else datetime.now(UTC)
        new = state.copy() if state is not None else BotState()
        context = new.active_context(now)

        found = self.match(text, context)
        intent = found.intent

        # A context lasts a few user messages; one that a context_in intent answered
        # has done its job.
        if context is None or (intent is not None and intent.context_in == context):
            _clear_context(new)
        else:
            new.context_turns_left -= 1
            if new.context_turns_left <= 0:
                _clear_context(new)
        if intent is not None and intent.context_out is not None:
            new.context = intent.context_out
            new.context_expires_at = now + timedelta(minutes=bot.context_minutes)
            new.context_turns_left = bot.context_turns

        if intent is not None:
            for key in intent.remember:
                if key in found.slots:
                    new.memory[key] = found.slots[key]
            for key in intent.forget:
                new.memory.pop(key, None)

        reply_text = self._render(intent, found.slots, new.memory, now, user_name, rng)
        new.history.append(HistoryEntry(USER_ROLE, text, now, None))
        intent_name = intent.name if intent is not None else None
        new.history.append(HistoryEntry(BOT_ROLE, reply_text, now, intent_name))
        new.history = bound_history(
            new.history,
            max_messages=bot.history_max_messages,
            max_chars=bot.history_max_chars,
            max_age=timedelta(minutes=bot.history_max_minutes),
            now=now,
        )
        return Reply(
            text=reply_text,
            intent=intent.name if intent is not None else None,
            confidence=found.confidence,
            slots=found.slots,
            state=new,
            store=(intent.store, text) if intent is not None and intent.store else None,
            action=intent.action if intent is not None else None,
        )

    # -- internals

    def _synonym_table(
        self, own: Mapping[str, tuple[str, ...]]
    ) -> dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]]:
        """Synonym phrases on folded words, keyed by their first word, longest first.

        The catalogue's synonyms win over the defaults, its canonical words are never
        rewritten, and chains resolve ("look up" → "find" → "search" when the
        catalogue folds "find" into "search").
        """

        def phrase(text: str) -> tuple[str, ...]:
            return tuple(fold(w) for w in tokenize(text))

        mapping: dict[tuple[str, ...], tuple[str, ...]] = {}
        # Multi-word expressions of the related groups become one token ("bank
        # transfer" is not "transfer"), unless a synonym below says otherwise.
        for group in LEXICON.related:
            for member in group:
                source = phrase(member)
                if len(source) > 1:
                    mapping[source] = (PHRASE_JOINER.join(source),)
        for synonyms in (DEFAULT_SYNONYMS, own):
            for canonical, variants in synonyms.items():
                target = phrase(canonical)
                for variant in variants:
                    source = phrase(variant)
                    if source and source != target:
                        mapping[source] = target
        for canonical in own:
            mapping.pop(phrase(canonical), None)
        table: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = {}
        for source, target in mapping.items():
            seen = {source}
            while target in mapping and target not in seen:
                seen.add(target)
                target = mapping[target]
            table.setdefault(source[0], []).append((source, target))
        for options in table.values():
            options.sort(key=lambda pair: -len(pair[0]))
        return table

    def _canonical(self, text: str, *, correct: bool) -> list[tuple[str, float]]:
        """Normalise, correct typos, stem and fold synonyms: (token, similarity) pairs."""
        text = _ARITHMETIC_SYMBOL.sub(" times ", _PLUS_SYMBOL.sub(" plus ", text))
        words = _aspect(tokenize(text, self._squeeze_vocabulary))
        names = _proper_nouns(text) if correct else frozenset()
        pairs: list[tuple[str, float]] = []
        for i, word in enumerate(words):
            if word in ARITHMETIC_WORDS and _next_to_number(words, i):
                pairs.append((ARITHMETIC_TOKEN, 1.0))
                continue
            similarity = 1.0
            if correct and word not in names:
                word, similarity = self._correct(word)
            pairs.append((fold(word), similarity))
        folded: list[tuple[str, float]] = []
        i = 0
        while i < len(pairs):
            for source, target in self._synonyms.get(pairs[i][0], ()):
                n = len(source)
                if tuple(t for t, _ in pairs[i : i + n]) == source:
                    similarity = min(s for _, s in pairs[i : i + n])
                    folded.extend((t, similarity) for t in target)
                    i += n
                    break
                # A phrasal verb may have its object inside: "pick it up", "call me back",
                # "push my appointment back".
                inside = _object_length(pairs, i + 1) if n == 2 and source[1] in PARTICLES else 0
                if inside and i + 1 + inside < len(pairs) and pairs[i + 1 + inside][0] == source[1]:
                    similarity = min(pairs[i][1], pairs[i + 1 + inside][1])
                    folded.extend((t, similarity) for t in target)
                    folded.extend(pairs[i + 1 : i + 1 + inside])
                    i += 2 + inside
                    break
            else:
                token, similarity = pairs[i]
                folded.append((NUMBER_TOKEN if _DIGITS.match(token) else token, similarity))
                i += 1
        return folded

    def _correct_uncached(self, word: str) -> tuple[str, float]:
        """The nearest known word to an unknown one, with their similarity (0..1)."""
        if word in self._squeeze_vocabulary or fold(word) in self._known_stems:
            return word, 1.0
        if word in self._guard_words or fold(word) in self._guard_stems:
            return word, 1.0
        if not word.isalpha() or len(word) < 3:
            return word, 1.0
        if not _VOWEL.search(word):
            # Chat drops vowels ("hlp", "crds", "whn"): read the word as the most
            # frequent catalogue word with these consonants.
            spelled = self._skeletons.get(word)
            return (spelled[0], SKELETON_SIMILARITY) if spelled else (word, 1.0)
        candidate = _nearest(word, self._correction_choices)
        if candidate is not None:
            return candidate, fuzz.ratio(word, candidate) / 100.0
        # A typo in an inflected word ("hleped", "couons") is one edit from the stem
        # of a catalogue word, not from any of its forms.
        stemmed = fold(word)
        if stemmed != word and len(stemmed) >= 4:
            candidate = _nearest(stemmed, self._stem_choices)
            if candidate is not None:
                return self._stem_surface[candidate], fuzz.ratio(stemmed, candidate) / 100.0
        return word, 1.0

    def _derived_uncached(self, token: str) -> tuple[tuple[str, float], ...]:
        """Catalogue words that look like another form of `token`, with their similarity.

        "cancellation" and "cancel", "registration" and "register", "arrival" and
        "arrive" share a long beginning: at least DERIVED_MIN_PREFIX letters and
        DERIVED_MIN_SHARE of the shorter word (so "experience" is not "experiment").
        """
        if len(token) < DERIVED_MIN_PREFIX or not token.isalpha():
            return ()
        found = []
        for known in self._by_prefix.get(token[:DERIVED_MIN_PREFIX], ()):
            shared = len(os.path.commonprefix((known, token)))  # noqa: RUF071 - words
            if shared >= DERIVED_MIN_SHARE * min(len(known), len(token)):
                found.append((known, DERIVED_SIMILARITY))
        if not found:
            # A prefixed word is about its root ("disconnecting" is about connecting,
            # "unpaid" about paying), though it may mean the opposite: less credit.
            for prefix in AFFIX_PREFIXES:
                root = token[len(prefix) :]
                if token.startswith(prefix) and len(root) >= AFFIX_MIN_ROOT:
                    if root in self._weights:
                        found.append((root, AFFIX_SIMILARITY))
                    else:
                        found += [(r, AFFIX_SIMILARITY) for r, _ in self._derived(root)]
                    break
        return tuple(found)

    def _wordnet_index(self, surface: Mapping[str, int]) -> None:
        """Catalogue words by WordNet synset: each word's senses, derived forms and
        hypernyms, looked up through the spellings the catalogue uses."""
        wordnet = load_wordnet()
        lemmas: dict[str, set[str]] = {}
        for word in surface:
            token = fold(word)
            if token in self._weights and token not in STOP_WORDS:
                lemmas.setdefault(token, set()).update(wordnet.lemmas_of(word))
        # synset -> {catalogue token: True for its own sense, False for a hypernym}
        self._synsets: dict[int, dict[str, bool]] = {}
        for token, names in lemmas.items():
            for name in names:
                entry = wordnet.lemmas[name]
                for synset in entry.core(CATALOGUE_SENSES):
                    self._synsets.setdefault(synset, {})[token] = True
                for synset in entry.hypernyms:
                    self._synsets.setdefault(synset, {}).setdefault(token, False)
        self._wordnet = wordnet
        self._fold_lemmas = _lemmas_by_fold(wordnet)

    def _meaning_uncached(self, token: str) -> tuple[tuple[str, float], ...]:
        """Catalogue words WordNet relates to `token` (a folded message word)."""
        if token in STOP_WORDS or token in QUESTION_WORDS or not token.isalpha():
            return ()
        found: dict[str, float] = {}
        for name in self._fold_lemmas.get(token, ()):
            entry = self._wordnet.lemmas[name]
            for synset in entry.core(MESSAGE_SENSES):
                for known, own in self._synsets.get(synset, {}).items():
                    value = WORDNET_SYNONYM_SIMILARITY if own else WORDNET_HYPERNYM_SIMILARITY
                    if value > found.get(known, 0.0):
                        found[known] = value
            for synset in entry.hypernyms:
                for known, own in self._synsets.get(synset, {}).items():
                    if own and found.get(known, 0.0) < WORDNET_HYPERNYM_SIMILARITY:
                        found[known] = WORDNET_HYPERNYM_SIMILARITY
        found.pop(token, None)
        return tuple(sorted(found.items()))

    def _vector_index(self) -> None:
        """The catalogue's topic words that have a word vector, packed for comparison."""
        vectors = load_vectors()
        self._vector_spelling = _vector_spellings(self._wordnet, vectors)
        keys: list[str] = []
        rows: list[Sequence[int]] = []
        for token in sorted(self._weights):
            if token in STOP_WORDS or token in QUESTION_WORDS or not token.isalpha():
                continue
            vector = vectors.vector(self._vector_spelling.get(token, token))
            if vector is not None:
                keys.append(token)
                rows.append(vector)
        self._vectors = vectors
        self._vector_table = VectorTable(keys, rows)

    def _neighbours_uncached(self, token: str, word: str) -> tuple[tuple[str, float], ...]:
        """Catalogue words whose vectors are close to `token`'s (a folded message word;
        `word` is it as typed, or "" when not known)."""
        if token in STOP_WORDS or token in QUESTION_WORDS or not token.isalpha():
            return ()
        if VECTOR_SIMILARITY <= 0 or token in self._common_stems:
            return ()
        if not word or word not in self._vectors:
            word = self._vector_spelling.get(token, token)
        # Everyday words frame the sentence, and their neighbours are associations
        # ("brother" / "friend"), not paraphrases.
        zipf = self._wordnet.zipf.get(word)
        facts = self._facts.get(token)
        if zipf is not None and zipf > VECTOR_MAX_ZIPF:
            return ()
        if facts is not None and facts[2] in VECTOR_SKIP_KINDS:
            return ()
        vector = self._vectors.vector(word)
        if vector is None:
            return ()
        table = self._vector_table
        close = [
            (cosine, key)
            for cosine, key in zip(table.cosines(vector), table.keys, strict=True)
            if cosine >= VECTOR_MIN_COSINE and key != token
        ]
        best = heapq.nlargest(VECTOR_NEIGHBOURS, close)
        return tuple(
            (key, min(VECTOR_SIMILARITY * cosine, VECTOR_MAX_SIMILARITY)) for cosine, key in best
        )

    def _phrase_parts(self, token: str) -> tuple[tuple[str, float], ...]:
        """The catalogue words among a multi-word expression's own words."""
        parts = dict.fromkeys(token.split(PHRASE_JOINER))
        return tuple((p, PHRASE_PART_SIMILARITY) for p in parts if p in self._weights)

    def _message(
        self, tokens: Iterable[tuple[str, float]], spelled: Mapping[str, str] | None = None
    ) -> _Message:
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
                    and _infinitive(tokens[position + 1][0])
                )
            ):
                subordinate = True
            is_word = token not in STOP_WORDS and token not in QUESTION_WORDS
            seen_content = seen_content or is_word
            known_before = known_before or (is_word and token in self._weights)
            weight = self._weights.get(token)
            known = weight is not None
            related = self._related.get(token, ())
            if not known:
                related = related + self._derived(token)
            if PHRASE_JOINER in token:
                related = related + self._phrase_parts(token)
            # WordNet's readings are softer: they leave the word its own weight.
            meanings = self._meaning(token) if not known else ()
            if not known and not related and not meanings:
                # Word vectors are the last resort: they know what a word is used
                # with, not what it means ("postpone" is nearer "cancel" than
                # "reschedule"), so the lexicon and WordNet speak first.
                meanings = self._neighbours(token, spelled.get(token, ""))
            if weight is None:
                if related:
                    # An unknown word the lexicon relates to catalogue words weighs
                    # like them: it is as much about the topic as they are.
                    weight = max(self._weights[r] for r, _ in related)
                    if _circumstance(self._facts.get(token)):
                        weight *= CIRCUMSTANCE_FACTOR
                else:
                    weight = _stop_factor(token) * self._oov_weight
                    facts = self._facts.get(token)
                    factor = _salience(*facts) if facts is not None else 1.0
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
            is_content = token not in STOP_WORDS and token not in QUESTION_WORDS
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
                if is_content and reading not in STOP_WORDS and reading not in QUESTION_WORDS:
                    content.add(reading)
        shared = sum(len(credits) for credits in hits.values()) > len(units)
        strangers = frozenset(
            token
            for token in units
            if token.isalpha()
            and len(hits[token]) == 1
            and token not in self._weights
            and token not in STOP_WORDS
            and token not in self._guard_stems
            and token not in self._fold_lemmas
            and STRANGER_MIN_ZIPF <= self._facts.get(token, (0.0,))[0] <= STRANGER_MAX_ZIPF
        )
        return _Message(
            hits, total, " ".join(units), frozenset(content), frozenset(hits), shared, strangers
        )

    def _score(self, index: _IntentIndex, message: _Message) -> float:
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
        covered = _credit(hits, readings & typical.keys(), message.shared, typical)
        best = 0.0
        for example in index.examples:
            overlap = _credit(hits, readings & example.tokens, message.shared)
            if overlap > 0 and example.weight > 0:
                recall = overlap / message.total
                precision = min(overlap / example.weight, 1.0)
                keyword = 2 * precision * recall / (precision + recall)
            else:
                keyword = 0.0
            chars = fuzz.token_sort_ratio(message.text, example.text, processor=None) / 100.0
            best = max(best, KEYWORD_WEIGHT * keyword + CHAR_WEIGHT * chars)
        return penalty * (best + COVERAGE_WEIGHT * covered / message.total)

    def _mark_slots(self, intent: Intent, text: str, tokens: list[str]) -> list[str]:
        values = _capture_slots(intent, text)
        if values is None:
            return tokens
        pairs = [(t, 1.0) for t in tokens]
        return [t for t, _ in self._substitute_slots(pairs, values)]

    def _substitute_slots(
        self, tokens: list[tuple[str, float]], values: Mapping[str, str]
    ) -> list[tuple[str, float]]:
        """Replace each slot's value words with one "<slot>" token."""
        result = list(tokens)
        for slot, value in values.items():
            needle = [t for t, _ in self._canonical(value, correct=False)]
            words = [t for t, _ in result]
            for start in range(len(words) - len(needle) + 1):
                if needle and words[start : start + len(needle)] == needle:
                    result[start : start + len(needle)] = [(f"<{slot}>", 1.0)]
                    break
            else:
                result.append((f"<{slot}>", 1.0))
        return result

    def _render(
        self,
        intent: Intent | None,
        slots: Mapping[str, str],
        memory: Mapping[str, str],
        now: datetime,
        user_name: str,
        rng: random.Random | None,
    ) -> str:
        bot = self.catalogue.bot
        values: dict[str, str] = {
            "user_name": user_name.strip() or DEFAULT_USER_NAME,
            "bot_name": bot.name,
            "time": _format_time(now),
            "date": f"{now:%A} {now.day} {now:%B %Y}",
        }
        if intent is None:
            options: Sequence[str] = bot.fallback
        else:
            values.update(memory)
            values.update(slots)
            missing = intent.needs_memory - set(values)
            options = intent.responses_missing if missing else intent.responses
        template = (rng or self._rng).choice(options)
        # Placeholders were checked at load time to be bare known names.
        return template.format_map(values)


def open_reader(catalogue: Catalogue, *, required: bool,
                model: str = "") -> tuple[SemanticIndex | None, str]:
    """The catalogue's sentence reader (semantic.py) and what the engine reads with.

    `model` is a model folder or .onnx file (empty: the built-in encoder). When the
    reader cannot be had, this raises the ImportError saying why if it is
    `required` or a `model` was named, and otherwise gives words alone. The server
    (WHATSEASE_BOT_SEMANTIC) and bot-eval both decide this way; it takes seconds, so
    the server calls it off the event loop."""
    try:
        from whatsease.bot.semantic import SemanticIndex, load_encoder

        index = SemanticIndex(catalogue, load_encoder(model))
    except ImportError as e:  # not installed, or an unusable model folder
        if required or model:
            raise
        return None, f"words only ({e})"
    return index, f"words and a sentence encoder ({model or 'built-in'})"


def _capture_slots(intent: Intent, text: str) -> dict[str, str] | None:
    """Every slot's value found in `text`, or None if any slot finds nothing."""
    values: dict[str, str] = {}
    for slot, pattern in intent.slots.items():
        found = pattern.search(text)
        if found is None:
            return None
        if slot in found.groupdict() and found.group(slot) is not None:
            value = found.group(slot)
        elif pattern.groups:
            value = next((g for g in found.groups() if g is not None), found.group(0))
        else:
            value = found.group(0)
        value = value.strip()[:MAX_SLOT_CHARS]
        if not value:
            return None
        values[slot] = value
    return values


def _credit(
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


def _proper_nouns(text: str) -> frozenset[str]:
    """Words capitalised inside a sentence ("call me Dave"): names, never typos."""
    names = set()
    previous = ""
    for raw in text.split():
        word = raw.strip(_PUNCTUATION)
        if (
            previous
            and previous[-1] not in ".!?"
            and len(word) > 1
            and word[0].isupper()
            and word[1:].islower()
        ):
            names.add(word.casefold())
        previous = raw
    return frozenset(names)


def _nearest(word: str, choices: Sequence[str]) -> str | None:
    """The choice a typo of `word` most likely meant, or None (`choices` by frequency)."""
    # Short words tolerate one slip, long ones two.
    limit = 1 if len(word) <= 7 else 2
    found = process.extract(word, choices, scorer=OSA.distance, score_cutoff=limit, limit=None)
    # People rarely get the first letter wrong, so "mate" is not a typo of "date";
    # a swap of the first two letters ("hlep") still counts.
    found = [f for f in found if f[0][0] == word[0] or f[0][:2] == word[1::-1]]
    if len(word) == 3:
        # Three letters: a swap ("hwo"), or one dropped letter when only one word
        # fits ("tme" → "time", but "tak" could be "take" or "talk").
        swaps = [f for f in found if sorted(f[0]) == sorted(word)]
        dropped = [f for f in found if len(f[0]) == 4]
        found = swaps or (dropped if len(dropped) == 1 else [])
    if not found:
        return None
    # Fewest edits first; among those the closest spelling ("helo" → "hello", not
    # "help"); the choices are ordered by frequency, which breaks the last ties.
    return max(found, key=lambda f: (-f[1], fuzz.ratio(word, f[0]), -f[2]))[0]


@lru_cache(maxsize=1)
def _folded_words(wordnet: WordNetData) -> tuple[tuple[str, str], ...]:
    """(spelling, folded form) of every word listed, most frequent first (once a
    process: folding 60,000 words is most of the cost of these tables)."""
    ordered = sorted(wordnet.zipf, key=lambda w: -wordnet.zipf[w])
    return tuple((word, fold(word)) for word in ordered)


@lru_cache(maxsize=1)
def _lemmas_by_fold(wordnet: WordNetData) -> dict[str, tuple[str, ...]]:
    """WordNet lemmas by the folded form of every spelling listed (one table a process)."""
    found: dict[str, dict[str, None]] = {}
    for word, token in _folded_words(wordnet):
        names = wordnet.lemmas_of(word)
        if names:
            found.setdefault(token, {}).update(dict.fromkeys(names))
    return {token: tuple(names) for token, names in found.items()}


@lru_cache(maxsize=1)
def _facts_by_fold(wordnet: WordNetData) -> dict[str, tuple[float, float, str]]:
    """(Zipf frequency, noun share, noun class) by folded form, from its most frequent
    spelling (one table a process)."""
    found: dict[str, tuple[float, float, str]] = {}
    for word, token in _folded_words(wordnet):
        if token in found:
            continue  # a more frequent spelling came first
        kind = ""
        names = wordnet.lemmas_of(word)
        if names:
            entry = wordnet.lemmas[names[0]]
            # The noun class says what the word is only if it is used as a noun, or
            # as an adverb of the same kind ("tonight"): "have" and "great" also
            # name kinds of person, as nouns nobody means.
            if entry.noun >= CIRCUMSTANCE_MIN_NOUN_SHARE or not entry.verb_or_adjective:
                kind = entry.kind
        found[token] = (wordnet.zipf[word], wordnet.noun[word], kind)
    return found


@lru_cache(maxsize=1)
def _vector_spellings(wordnet: WordNetData, vectors: WordVectors) -> dict[str, str]:
    """The most frequent spelling with a vector of each folded form (one table a
    process): "messag" is read through "message"."""
    found: dict[str, str] = {}
    for word, token in _folded_words(wordnet):
        if token not in found and word in vectors:
            found[token] = word
    return found


def _circumstance(facts: tuple[float, float, str] | None) -> bool:
    """Whether a word's first noun sense is a time or a person ("tonight", "husband")."""
    return facts is not None and facts[2] in CIRCUMSTANCE_KINDS


def _salience(zipf: float, noun: float, kind: str) -> float:
    """How much an unknown word may name the topic, as a factor of its weight."""
    factor = 1.0 + (SALIENCE_PIVOT_ZIPF - zipf) * SALIENCE_SLOPE
    factor = max(SALIENCE_MIN, min(SALIENCE_MAX, factor))
    if kind in CIRCUMSTANCE_KINDS:
        factor *= CIRCUMSTANCE_FACTOR
    return factor


def _aspect(words: list[str]) -> list[str]:
    """Read aspect verbs before a gerund for what they say: "stopped working" is "not
    working"."""
    if not any(word in ASPECT_VERBS for word in words):
        return words
    out: list[str] = []
    for i, word in enumerate(words):
        following = words[i + 1] if i + 1 < len(words) else ""
        if (
            word in ASPECT_VERBS
            and following.endswith("ing")
            and len(following) > 5
            and following not in NOT_GERUNDS
        ):
            if ASPECT_VERBS[word]:
                out.append(ASPECT_VERBS[word])
            continue
        out.append(word)
    return out


def _infinitive(token: str) -> bool:
    """Whether `token` after "to" may start a purpose clause ("to see", not "to someone")."""
    return (
        token not in STOP_WORDS
        and token not in QUESTION_WORDS
        and token not in INDEFINITE_PRONOUNS
        and token.isalpha()
    )


def _object_length(pairs: Sequence[tuple[str, float]], i: int) -> int:
    """How many words at `i` make the object inside a phrasal verb (0: none)."""
    if i < len(pairs) and pairs[i][0] in OBJECT_PRONOUNS:
        return 1
    if i + 1 < len(pairs) and pairs[i][0] in OBJECT_DETERMINERS:
        following = pairs[i + 1][0]
        if following not in STOP_WORDS and following not in PARTICLES:
            return 2
    return 0


def _next_to_number(words: Sequence[str], i: int) -> bool:
    """Whether the word at `i` stands between numbers ("17 times 23", "divided by 4")."""
    before = i > 0 and words[i - 1].isdigit()
    after = i + 1 < len(words) and words[i + 1].isdigit()
    if not after and i + 2 < len(words) and words[i + 1] == "by":
        after = words[i + 2].isdigit()  # "multiplied by 3"
    return before and after


def _clear_context(state: BotState) -> None:
    state.context = None
    state.context_expires_at = None
    state.context_turns_left = 0


def _stop_factor(token: str) -> float:
    return STOP_WORD_WEIGHT if token in STOP_WORDS else 1.0


def _clamp(score: float) -> float:
    return max(0.0, min(1.0, score))


def _aware(moment: datetime) -> datetime:
    """Datetimes from MongoDB come back naive but mean UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _format_time(now: datetime) -> str:
    zone = now.tzname() or "UTC"
    return f"{now:%H:%M} {zone}"
