"""The intent engine: matches a message against a catalogue and renders the reply, purely.

`IntentEngine.match` is the front door. The work is done by the modules beside this
one: lexicon.py (word knowledge), folding.py and spelling.py (text to canonical
tokens), index.py (the catalogue's examples and weights), expansion.py (readings of a
word), scoring.py (confidence), replies.py (slots and replies), state.py (the
conversation's state) and multilingual.py (which language a message is read and
answered in).
"""

from __future__ import annotations

import heapq
import random
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from whatsease.bot.catalogue import Catalogue
from whatsease.bot.expansion import Expander
from whatsease.bot.folding import (
    LANGUAGE_STEMMERS,
    TextFolder,
    fold,
    is_question,
    proper_nouns,
    stem,
    synonym_table,
)
from whatsease.bot.index import CatalogueIndex
from whatsease.bot.lexicon import (
    LANGUAGE_STOP_WORDS,
    LEXICON_PATH,
    Lexicon,
    LexiconError,
    default_lexicon,
    load_lexicon,
)
from whatsease.bot.multilingual import SET_LANGUAGE_INTENT, SURE_LANGUAGE_WORDS, read, set_language
from whatsease.bot.normalize import tokenize
from whatsease.bot.replies import (
    Match,
    Reply,
    capture_slots,
    render,
    render_line,
    substitute_slots,
)
from whatsease.bot.romanised import with_romanised
from whatsease.bot.scoring import Scorer
from whatsease.bot.spelling import Speller, surface_words
from whatsease.bot.state import (
    BOT_ROLE,
    USER_ROLE,
    BotState,
    HistoryEntry,
    aware,
    bound_history,
    clear_context,
)

if TYPE_CHECKING:  # the encoder's module needs numpy, an optional dependency
    from whatsease.bot.semantic import SemanticIndex

__all__ = [
    "CONTEXT_THRESHOLD_FACTOR",
    "LEXICON_PATH",
    "SET_LANGUAGE_INTENT",
    "SURE_LANGUAGE_WORDS",
    "BotState",
    "HistoryEntry",
    "IntentEngine",
    "Lexicon",
    "LexiconError",
    "Match",
    "Reply",
    "bound_history",
    "default_lexicon",
    "fold",
    "load_lexicon",
    "open_reader",
    "stem",
]

# A message that fits an intent of an inactive context ("cancel" with nothing to cancel)
# better than any available intent, by at least this much, falls back: the available
# intent is then a poor guess. Closer than that, the available intent wins.
GATED_MARGIN = 0.1
# The bot has just asked for what an intent of the active context answers, so such an
# intent needs only this fraction of the threshold: the question makes it likely.
CONTEXT_THRESHOLD_FACTOR = 0.85
# While a catch-all waits for free text (feedback), a message that is no question
# answers another intent instead only when matched at least this surely ("hi",
# "thanks"): free text often shares words with some intent ("the ticks are confusing").
INTERRUPT_CONFIDENCE = 0.9

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

_SENTENCE_END = re.compile(r"(?<=[.!?\n।])\s+")


class IntentEngine:
    """Matches messages to a catalogue's intents and renders replies.

    Everything that does not depend on the message (normalised examples, token sets,
    IDF weights, the synonym table, the typo vocabulary) is computed here, once.
    The engine holds no per-user state: pass a `BotState` to `respond`.
    """

    def __init__(self, catalogue: Catalogue, *, rng: random.Random | None = None,
                 semantic: SemanticIndex | None = None) -> None:
        # A Hindi engine also reads Hindi typed in Latin letters (romanised.py).
        catalogue = with_romanised(catalogue)
        self.catalogue = catalogue
        self._rng = rng or random.Random()
        # Sentence meaning, consulted when the words fall back (semantic.py); optional.
        self.semantic = semantic
        lexicon = default_lexicon()
        surface = surface_words(catalogue, lexicon)
        stemmer = LANGUAGE_STEMMERS.get(catalogue.language)
        self.speller = Speller(surface, stemmer)
        self.folder = TextFolder(synonym_table(lexicon, catalogue.bot.synonyms, stemmer),
                                 self.speller, stemmer)
        # The language's own function words weigh like English ones (lexicon.py).
        stop = frozenset(self.folder.fold(word)
                         for word in LANGUAGE_STOP_WORDS.get(catalogue.language, ()))
        self.index = CatalogueIndex(catalogue, self.folder, stop)
        self.expander = Expander(lexicon, self.folder, self.index.weights, surface,
                                 self.speller.common_stems)
        self.scorer = Scorer(self.index, self.expander, self.speller, stop)
        # One engine per language the catalogue speaks, this one for its default; each
        # reads its own language's examples (the sentence reader is this one's only).
        self.language = catalogue.language
        self._own_words = frozenset(
            word for intent in catalogue.intents for example in intent.examples
            for word in tokenize(example))
        self.engines: dict[str, IntentEngine] = {self.language: self}
        for code, translated in catalogue.translations.items():
            self.engines[code] = IntentEngine(translated, rng=self._rng)

    def known_share(self, words: list[str]) -> float:
        """The share of `words` (normalised) this language's examples use."""
        return sum(word in self._own_words for word in words) / len(words) if words else 0.0

    def match(self, text: str, context: str | None = None, *,
              language: str | None = None) -> Match:
        """Classify `text` with `context` active (None: no context), reading it against
        the examples of `language` (None: the catalogue's default language).

        See `_match_default` for how; raises `KeyError` for a language the catalogue
        does not speak.
        """
        if language is not None and language != self.language:
            return self.engines[language].match(text, context)
        return self._match_default(text, context)

    def _match_default(self, text: str, context: str | None = None) -> Match:
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
        if not tokenize(text[:MAX_MATCH_CHARS], self.speller.vocabulary):
            # Nothing to read (blank, punctuation, fillers): no intent can be meant, and
            # it is no text a waiting flow asked for either.
            return Match(None, 0.0, {}, ())
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
            found = self._match_meaning(text[:MAX_MATCH_CHARS], context, found)
            catch_all = self.index.catch_all.get(context) if context is not None else None
            if found.intent is None and catch_all is not None:
                # The reader ruled out the question the words heard: then it is the
                # free text the context waits for.
                return Match(catch_all, 1.0, {}, found.ranking)
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
        for position in self.index.slot_positions:
            slotted = self.index.intents[position].intent
            values = capture_slots(slotted, text)
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
        tokens = self.folder.canonical(raw, correct=True)
        # The words as typed, by folded form: "nicked" folds to "nick" (a name), but
        # its vector and its frequency are those of "nicked".
        spelled = {self.folder.fold(w): w for w in tokenize(raw, self.speller.vocabulary)}
        message = self.scorer.message(tokens, spelled)

        # Stage 1: cheap coverage of the message by each intent's vocabulary.
        # Only intents sharing a word with the message, and those with slots, can
        # score at all, so the rest are never looked at.
        coverage: dict[int, float] = {}
        for token, credits in message.hits.items():
            weight = max(credits.values())
            for position in self.index.postings.get(token, ()):
                coverage[position] = coverage.get(position, 0.0) + weight

        # Intents waiting for a context that is not active.
        intents = self.index.intents
        gated = {p for p in self.index.context_positions if intents[p].intent.context_in != context}
        slot_values: dict[int, dict[str, str]] = {}
        skipped: set[int] = set()
        for position in self.index.slot_positions:
            if position in gated:
                continue
            values = capture_slots(self.index.intents[position].intent, raw)
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
        for position in (*slot_values, *self.index.context_positions):
            if position not in chosen and position not in gated and position not in skipped:
                candidates.append(position)
                chosen.add(position)

        # Stage 2: full scoring of the candidates.
        scores: list[tuple[float, int]] = []
        for position in candidates:
            index = self.index.intents[position]
            scored = message
            if position in slot_values:
                scored = self.scorer.message(
                    substitute_slots(self.folder, tokens, slot_values[position]), spelled
                )
            scores.append((self.scorer.score(index, scored), position))
        scores.sort(key=lambda pair: -pair[0])
        ranking = tuple((self.index.intents[p].intent.name, round(s, 4)) for s, p in scores[:5])

        def found(score: float, position: int) -> Match:
            intent = self.index.intents[position].intent
            return Match(intent, _clamp(score), slot_values.get(position, {}), ranking)

        # An intent with a threshold of its own is no candidate below it.
        open_scores = [
            (score, p) for score, p in scores
            if p not in gated and score >= (intents[p].intent.threshold or 0.0)
        ]
        if context is not None:
            for score, position in open_scores:
                if self.index.intents[position].intent.context_in == context:
                    if score >= bot.threshold * CONTEXT_THRESHOLD_FACTOR:
                        return found(score, position)
                    break
            catch_all = self.index.catch_all.get(context)
            if catch_all is not None:
                asked = self._interruption(open_scores, context, raw, message.strangers)
                if asked is None:
                    return Match(catch_all, 1.0, {}, ranking)
                return found(*asked)

        best = open_scores[0][0] if open_scores else 0.0
        floor = bot.threshold
        if open_scores:
            floor = intents[open_scores[0][1]].intent.threshold or bot.threshold
        if best < floor:
            return Match(None, _clamp(best), {}, ranking)
        if scores[0][1] in gated and scores[0][0] >= best + GATED_MARGIN:
            return Match(None, _clamp(best), {}, ranking)
        runner_up = open_scores[1][0] if len(open_scores) > 1 else 0.0
        if best - runner_up < bot.margin:
            return Match(None, _clamp(best), {}, ranking)
        if open_scores[0][1] not in slot_values and message.strangers - {
            self.folder.fold(name) for name in proper_nouns(raw)
        }:
            return Match(None, _clamp(best), {}, ranking)
        return found(*open_scores[0])

    def _interruption(self, open_scores: list[tuple[float, int]], context: str, raw: str,
                      strangers: frozenset[str]) -> tuple[float, int] | None:
        """The (score, position) of the intent a message asks about while `context`'s
        catch-all waits for free text, or None if the message is that free text.

        A question ("?", a question word, "can I", "is there"…) that another intent
        answers confidently is that question, not the awaited text; without a question's
        signs it takes a near-certain match (INTERRUPT_CONFIDENCE). Intents that start
        this same flow do not count: "I have feedback" while feedback is awaited is
        feedback.
        """
        intents = self.index.intents
        other = next(
            ((score, p) for score, p in open_scores
             if intents[p].intent.context_in is None and intents[p].intent.context_out != context),
            None,
        )
        if other is None:
            return None
        score, position = other
        intent = intents[position].intent
        if score < (intent.threshold or self.catalogue.bot.threshold):
            return None
        if strangers - {self.folder.fold(name) for name in proper_nouns(raw)}:
            return None  # about something the catalogue does not know
        if score >= INTERRUPT_CONFIDENCE or is_question(raw):
            return score, position
        return None

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
        now = aware(now) if now is not None else datetime.now(UTC)
        new = state.copy() if state is not None else BotState()
        context = new.active_context(now)

        speaker = self
        if len(self.engines) > 1:
            switched = set_language(self, text, new, now)
            if switched is not None:
                return switched
            found, speaker = read(self, text, context, new)
            new.language = speaker.language
            if found.intent is not None:
                # The intent as the reply's language words it.
                found = Match(speaker.catalogue.intent(found.intent.name), found.confidence,
                              found.slots, found.ranking)
        else:
            found = self.match(text, context)
        intent = found.intent

        # A context lasts a few user messages; one that a context_in intent answered
        # has done its job.
        if context is None or (intent is not None and intent.context_in == context):
            clear_context(new)
        else:
            new.context_turns_left -= 1
            if new.context_turns_left <= 0:
                clear_context(new)
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

        reply_text = render(speaker.catalogue.bot, intent, found.slots, new.memory, now, user_name,
                            rng or self._rng)
        waiting = speaker.index.catch_all.get(context) if context is not None else None
        if (
            waiting is not None
            and waiting.reminder
            and intent is not None
            and intent.context_in != context
            and new.active_context(now) == context
        ):
            # A question asked while the flow waited was answered; the flow is still open.
            reminder = render_line(bot, waiting.reminder, now, user_name, rng or self._rng)
            reply_text = f"{reply_text}\n\n{reminder}"
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
            language=speaker.language,
        )


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


def _clamp(score: float) -> float:
    return max(0.0, min(1.0, score))
