"""The intent engine: matches a message against a catalogue and renders the reply, purely."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from whatsease.bot.catalogue import Catalogue, Intent
from whatsease.bot.normalize import COMMON_WORDS, tokenize

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

# Everyday synonyms every catalogue gets; a catalogue adds its own in [bot] synonyms.
# Keys are the canonical spelling, values the words and phrases folded into it.
DEFAULT_SYNONYMS: dict[str, tuple[str, ...]] = {
    "hello": ("hi", "hey", "hiya", "howdy", "heya", "hallo", "greetings", "yo", "sup",
              "good morning", "good afternoon", "good evening", "good day", "morning"),
    "bye": ("goodbye", "good bye", "bye bye", "farewell", "see you", "see you later",
            "ciao", "take care", "good night", "goodnight", "night night"),
    "thanks": ("thank you", "thank", "thankyou", "appreciate it", "appreciated",
               "thanks you", "many thanks"),
    "delete": ("remove", "erase", "get rid of", "wipe", "wipe out"),
    "change": ("modify", "edit", "update", "alter", "switch", "amend"),
    "help": ("assist", "assistance", "support me"),
    "picture": ("photo", "image", "pic"),
    "message": ("text", "dm"),
    "find": ("look for", "look up", "lookup", "locate", "search for"),
    "talk": ("speak", "chat with", "talk with", "speak with", "have a word with"),
    "person": ("human", "human being", "real person", "individual"),
    "funny": ("hilarious", "amusing", "humorous"),
    "buy": ("purchase",),
    "cost": ("price", "fee", "charge", "how much"),
    "how": ("how can", "how to", "how do", "how would", "how should"),
    "problem": ("issue", "bug", "error", "glitch", "fault", "not working", "does not work",
                "broken", "crash", "crashes", "crashed"),
    "wrong": ("incorrect", "mistake", "typo", "misspelled", "misspelt"),
    "feature": ("option", "function", "functionality", "capability"),
    "start": ("begin",),
    "quit": ("leave", "stop using"),
    "contact": ("reach", "get in touch with", "get hold of", "reach out to"),
    "connect": ("transfer", "put through", "put me through", "forward"),
    "email": ("e mail", "mail", "email address"),
    "app": ("application", "website", "site"),
    "phone": ("mobile", "cell", "cellphone", "smartphone"),
    "computer": ("laptop", "pc", "desktop"),
    "money": ("cash", "funds"),
    "refund": ("money back", "reimbursement", "reimburse"),
    "fast": ("quick", "quickly", "rapid", "speedy"),
    "now": ("right now", "at the moment", "currently", "at present"),
    "today": ("this day",),
}  # fmt: skip

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

NUMBER_TOKEN = "#"  # noqa: S105 - every run of digits matches as this one token
USER_ROLE = "user"
BOT_ROLE = "bot"
# Filled in for {user_name} when the caller does not know the user's name.
DEFAULT_USER_NAME = "there"

_DIGITS = re.compile(r"\d+\Z")
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
    weights: dict[str, float]  # token -> weight x similarity (typo-corrected words < 1)
    total: float  # sum of the token weights, unscaled
    text: str
    content: frozenset[str]  # the tokens that name a topic (not stop or question words)


class IntentEngine:
    """Matches messages to a catalogue's intents and renders replies.

    Everything that does not depend on the message (normalised examples, token sets,
    IDF weights, the synonym table, the typo vocabulary) is computed here, once.
    The engine holds no per-user state: pass a `BotState` to `respond`.
    """

    def __init__(self, catalogue: Catalogue, *, rng: random.Random | None = None) -> None:
        self.catalogue = catalogue
        self._rng = rng or random.Random()
        bot = catalogue.bot

        # Surface words the examples and synonyms use: typos are corrected towards them.
        surface: dict[str, int] = {}
        for intent in catalogue.intents:
            for example in intent.examples:
                for word in tokenize(example):
                    surface[word] = surface.get(word, 0) + 1
        for table in (DEFAULT_SYNONYMS, bot.synonyms):
            for canonical, variants in table.items():
                for phrase in (canonical, *variants):
                    for word in tokenize(phrase):
                        surface.setdefault(word, 1)
        # Typos are only worth correcting towards words the catalogue knows; most
        # frequent first, so a tie between two corrections picks the common word.
        self._correction_choices = sorted(surface, key=lambda w: (-surface[w], w))
        self._known_stems = frozenset(fold(w) for w in surface)
        # Everyday words are never corrected: "life" is not a typo of "like".
        self._squeeze_vocabulary = frozenset(surface) | STOP_WORDS | COMMON_WORDS
        self._common_stems = frozenset(fold(w) for w in COMMON_WORDS)
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
        self._catch_all = {i.context_in: i for i in catalogue.intents if i.catch_all}

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
            return self._match_text(text, context)
        # A long message dilutes its question: also try its first sentences alone, if
        # they say something ("Hi!" before the question is not what it is about).
        sentences = _SENTENCE_END.split(text, LONG_MESSAGE_SENTENCES)[:-1]
        parts = [text[:MAX_MATCH_CHARS]]
        parts += [p for p in sentences if len(p.split()) >= LONG_MESSAGE_MIN_WORDS]
        matches = [self._match_text(part[:MAX_MATCH_CHARS], context) for part in parts]
        return max(matches, key=lambda m: (m.intent is not None, m.confidence))

    def _match_text(self, text: str, context: str | None) -> Match:
        bot = self.catalogue.bot
        raw = text
        tokens = self._canonical(raw, correct=True)
        message = self._message(tokens)

        # Stage 1: cheap coverage of the message by each intent's vocabulary.
        coverage = [0.0] * len(self._indexes)
        for token, weight in message.weights.items():
            for position in self._postings.get(token, ()):
                coverage[position] += weight

        gated: set[int] = set()  # waiting for a context that is not active
        slot_values: dict[int, dict[str, str]] = {}
        pool: list[int] = []
        for position, index in enumerate(self._indexes):
            intent = index.intent
            if intent.context_in is not None and intent.context_in != context:
                gated.add(position)
            elif intent.slots:
                values = _capture_slots(intent, raw)
                if values is None:
                    continue
                slot_values[position] = values
            if coverage[position] > 0 or position in slot_values:
                pool.append(position)
        pool.sort(key=lambda p: -coverage[p])
        candidates = pool[:CANDIDATE_INTENTS]
        # Slot intents and those of the active context always get a full look: their
        # evidence is not only in the words.
        for position in pool[CANDIDATE_INTENTS:]:
            if position in slot_values or (
                position not in gated and self._indexes[position].intent.context_in
            ):
                candidates.append(position)

        # Stage 2: full scoring of the candidates.
        scores: list[tuple[float, int]] = []
        for position in candidates:
            index = self._indexes[position]
            scored = message
            if position in slot_values:
                scored = self._message(self._substitute_slots(tokens, slot_values[position]))
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
                    if score >= bot.threshold:
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
        pairs: list[tuple[str, float]] = []
        for word in tokenize(text, self._squeeze_vocabulary):
            similarity = 1.0
            if correct:
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
            else:
                token, similarity = pairs[i]
                folded.append((NUMBER_TOKEN if _DIGITS.match(token) else token, similarity))
                i += 1
        return folded

    def _correct_uncached(self, word: str) -> tuple[str, float]:
        """The nearest known word to an unknown one, with their similarity (0..1)."""
        if word in self._squeeze_vocabulary or fold(word) in self._known_stems:
            return word, 1.0
        if fold(word) in self._common_stems:
            return word, 1.0
        if not word.isalpha() or len(word) < 3:
            return word, 1.0
        # Short words tolerate one slip (a swap for three letters: "hwo"), long ones two.
        limit = 1 if len(word) <= 7 else 2
        found = process.extract(
            word, self._correction_choices, scorer=OSA.distance, score_cutoff=limit, limit=None
        )
        # People rarely get the first letter wrong, so "mate" is not a typo of "date";
        # a swap of the first two letters ("hlep") still counts.
        found = [f for f in found if f[0][0] == word[0] or f[0][:2] == word[1::-1]]
        if len(word) == 3:
            found = [f for f in found if sorted(f[0]) == sorted(word)]
        if not found:
            return word, 1.0
        # Fewest edits first; among those the closest spelling ("helo" → "hello", not
        # "help"); the choices are ordered by frequency, which breaks the last ties.
        candidate = max(found, key=lambda f: (-f[1], fuzz.ratio(word, f[0]), -f[2]))[0]
        return candidate, fuzz.ratio(word, candidate) / 100.0

    def _message(self, tokens: Iterable[tuple[str, float]]) -> _Message:
        weights: dict[str, float] = {}
        total = 0.0
        for token, similarity in tokens:
            weight = self._weights.get(token)
            if weight is None:
                weight = _stop_factor(token) * self._oov_weight
                if token in self._common_stems:
                    weight *= OOV_COMMON_FACTOR
            if token in weights:
                weights[token] = max(weights[token], weight * similarity)
                if token not in self._weights:
                    total += weight  # each unknown word is more the catalogue cannot explain
                continue
            weights[token] = weight * similarity
            total += weight
        content = frozenset(t for t in weights if t not in STOP_WORDS | QUESTION_WORDS)
        return _Message(weights, total, " ".join(weights), content)

    def _score(self, index: _IntentIndex, message: _Message) -> float:
        if message.total <= 0:
            return 0.0
        weights = message.weights
        typical = index.vocabulary
        # An intent that shares only function words with a message that has topic
        # words ("what is the meaning of life") is probably not what it is about.
        penalty = 1.0
        if message.content and message.content.isdisjoint(typical):
            penalty = CONTENT_MISS_FACTOR
        covered = sum(w * typical[t] for t, w in weights.items() if t in typical)
        best = 0.0
        for example in index.examples:
            overlap = sum(weights[t] for t in example.tokens if t in weights)
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
