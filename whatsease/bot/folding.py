"""Words in their matching form: stems, the synonym and phrase table, and a message's
canonical tokens (normalised, typo-corrected, stemmed, synonyms folded)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from whatsease.bot.lexicon import QUESTION_WORDS, Lexicon, stop_words
from whatsease.bot.normalize import tokenize

if TYPE_CHECKING:
    from whatsease.bot.spelling import Speller

# Multi-word expressions are read as one token: their words joined by this.
PHRASE_JOINER = "_"
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
NUMBER_TOKEN = "#"  # noqa: S105 - every run of digits matches as this one token

_DIGITS = re.compile(r"\d+\Z")
VOWEL = re.compile(r"[aeiou]")
_PUNCTUATION = "\"'.,!?;:()[]{}"
# "17x23", "17 * 23", "17×23" and "2+2" written without words.
_ARITHMETIC_SYMBOL = re.compile(r"(?<=\d)\s*[x×*]\s*(?=\d)")
_PLUS_SYMBOL = re.compile(r"(?<=\d)\s*\+\s*(?=\d)")

# A message that starts with one of these and then one of the next asks about
# something ("can i send photos", "is there video chat", "does it work offline"); "can
# you add dark mode" is a request.
AUXILIARIES: frozenset[str] = frozenset(
    {"can", "could", "do", "does", "did", "is", "are", "will", "would", "should", "may",
     "am", "have", "has"}
)  # fmt: skip
ASKING_SUBJECTS: frozenset[str] = frozenset({"i", "we", "there", "it", "my", "me", "this"})

# Synonym phrases on folded words, keyed by their first word: (source, target) pairs.
SynonymTable = dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]]


# Hindi inflections, longest first (after Ramanathan and Rao's light stemmer, 2003):
# "भेजूं", "भेजें", "भेजो" and "भेजना" all meet at "भेज". The candrabindu is already
# folded into the anusvara by normalisation.
HINDI_SUFFIXES: tuple[str, ...] = tuple(sorted(
    """ाएंगी ाएंगे ाऊंगी ाऊंगा ाइयां ाइयों ाएगी ाएगा ाओगी ाओगे एंगी ेंगी एंगे ेंगे ूंगी ूंगा
    ातीं नाओं नाएं ताओं ताएं ियां ियों ाकर ाइए ाईं ाया ेगी ेगा ोगी ोगे ाने ाना ाते ाती ाता
    तीं ाओं ाएं ुओं ुएं कर ाओ िए ाई ाए ने नी ना ते ीं ती ता ां ों ें ूं ो े ू ु ी ि ा""".split(),  # noqa: SIM905 - a word list reads better as text
    key=len, reverse=True))  # fmt: skip
# A Hindi stem keeps at least this many characters (code points): "ना" is no stem.
HINDI_MIN_STEM = 2
_DEVANAGARI = re.compile(r"[\u0900-\u097f]")


def stem(word: str) -> str:
    """Fold inflections so "sending", "sends" and "send" meet ("messages" → "messag").

    A crude suffix stripper, applied identically to examples and messages, which is
    all matching needs: the stems are never shown to anyone. Devanagari words lose
    a Hindi inflection instead (`HINDI_SUFFIXES`).
    """
    if _DEVANAGARI.match(word):
        for suffix in HINDI_SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= HINDI_MIN_STEM:
                return word[: -len(suffix)]
        return word
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix, replacement in (("ies", "y"), ("ied", "y"), ("sses", "ss")):
        if word.endswith(suffix):
            return word[: -len(suffix)] + replacement
    for suffix in ("ing", "ed"):
        if suffix == "ed" and word.endswith("eed"):
            # "agreed" is "agree" + "d", but "speed" and "bleed" are no past tense:
            # nothing before their "eed" has a vowel.
            if VOWEL.search(word[:-3]):
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


# Spanish inflections, longest first, cut after the English stemmer (which already
# took a final "-s" and "-e"): "borro", "borrar", "borrando" and "borrado" meet at
# "borr", "envío", "enviar" and "enviado" at "envi". Light on purpose (no
# derivations): "cuenta" and "cuento" meeting is the price of "mandé" meeting "mandar".
SPANISH_SUFFIXES: tuple[str, ...] = tuple(sorted(
    """amiento imiento aciones acion iendo ieron aremos eremos iremos ando aron amos emos
    imos aste iste aban ados adas idos idas ado ada ido ida aba ian ia ar er ir an en as
    o a i""".split(),  # noqa: SIM905 - a word list reads better as text
    key=len, reverse=True))  # fmt: skip
# A Spanish stem keeps at least this many letters: "mando" is "mand", not "m".
SPANISH_MIN_STEM = 3


def spanish_stem(token: str) -> str:
    """A folded token's Spanish stem (see SPANISH_SUFFIXES); stop words, short words,
    numbers and multi-word tokens stay as they are."""
    if len(token) <= SPANISH_MIN_STEM or not token.isalpha() or not token.isascii():
        return token
    if token in stop_words():
        return token
    for suffix in SPANISH_SUFFIXES:
        if token.endswith(suffix) and len(token) - len(suffix) >= SPANISH_MIN_STEM:
            return token[: -len(suffix)]
    return token


# The stemmer each language applies after `fold` (the English stemmer, and the Hindi
# one for Devanagari): only for languages whose words it knows.
LANGUAGE_STEMMERS: Mapping[str, Callable[[str], str]] = {"es": spanish_stem}


def fold(word: str) -> str:
    """The matching form of a normalised word: stop words as they are, others stemmed."""
    return word if word in stop_words() else stem(word)


def is_question(text: str) -> bool:
    """Whether `text` reads as a question: it has a question mark, starts with a
    question word, or with an auxiliary verb before "I", "we", "there", "it"…"""
    if "?" in text:
        return True
    words = tokenize(text)
    if not words:
        return False
    if words[0] in QUESTION_WORDS:
        return True
    return words[0] in AUXILIARIES and len(words) > 1 and words[1] in ASKING_SUBJECTS


def synonym_table(lexicon: Lexicon, own: Mapping[str, tuple[str, ...]],
                  stemmer: Callable[[str], str] | None = None) -> SynonymTable:
    """Synonym phrases on folded words, keyed by their first word, longest first.

    The catalogue's synonyms win over the defaults, its canonical words are never
    rewritten, and chains resolve ("look up" → "find" → "search" when the
    catalogue folds "find" into "search"). `stemmer`: the language's, after `fold`
    (LANGUAGE_STEMMERS).
    """

    def phrase(text: str) -> tuple[str, ...]:
        if stemmer is None:
            return tuple(fold(w) for w in tokenize(text))
        return tuple(stemmer(fold(w)) for w in tokenize(text))

    mapping: dict[tuple[str, ...], tuple[str, ...]] = {}
    # Multi-word expressions of the related groups become one token ("bank
    # transfer" is not "transfer"), unless a synonym below says otherwise.
    for group in lexicon.related:
        for member in group:
            source = phrase(member)
            if len(source) > 1:
                mapping[source] = (PHRASE_JOINER.join(source),)
    for synonyms in (lexicon.synonyms, own):
        for canonical, variants in synonyms.items():
            target = phrase(canonical)
            for variant in variants:
                source = phrase(variant)
                if source and source != target:
                    mapping[source] = target
    for canonical in own:
        mapping.pop(phrase(canonical), None)
    table: SynonymTable = {}
    for source, target in mapping.items():
        seen = {source}
        while target in mapping and target not in seen:
            seen.add(target)
            target = mapping[target]
        table.setdefault(source[0], []).append((source, target))
    for options in table.values():
        options.sort(key=lambda pair: -len(pair[0]))
    return table


class TextFolder:
    """Turns text into canonical (token, similarity) pairs for one catalogue: its
    synonyms fold in, and typos are corrected towards its words by `speller`."""

    def __init__(self, synonyms: SynonymTable, speller: Speller,
                 stemmer: Callable[[str], str] | None = None) -> None:
        self.synonyms = synonyms
        self.speller = speller
        # The language's stemmer after `fold` (LANGUAGE_STEMMERS), if it has one.
        self.stemmer = stemmer

    def fold(self, word: str) -> str:
        """A normalised word's matching form in this catalogue's language."""
        folded = fold(word)
        return folded if self.stemmer is None else self.stemmer(folded)

    def canonical(self, text: str, *, correct: bool) -> list[tuple[str, float]]:
        """Normalise, correct typos, stem and fold synonyms: (token, similarity) pairs."""
        text = _ARITHMETIC_SYMBOL.sub(" times ", _PLUS_SYMBOL.sub(" plus ", text))
        words = aspect(tokenize(text, self.speller.vocabulary))
        names = proper_nouns(text) if correct else frozenset()
        pairs: list[tuple[str, float]] = []
        for i, word in enumerate(words):
            if word in ARITHMETIC_WORDS and _next_to_number(words, i):
                pairs.append((ARITHMETIC_TOKEN, 1.0))
                continue
            similarity = 1.0
            if correct and word not in names:
                word, similarity = self.speller.correct(word)
            pairs.append((self.fold(word), similarity))
        folded: list[tuple[str, float]] = []
        i = 0
        while i < len(pairs):
            for source, target in self.synonyms.get(pairs[i][0], ()):
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


def proper_nouns(text: str) -> frozenset[str]:
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


def aspect(words: list[str]) -> list[str]:
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


def _object_length(pairs: Sequence[tuple[str, float]], i: int) -> int:
    """How many words at `i` make the object inside a phrasal verb (0: none)."""
    if i < len(pairs) and pairs[i][0] in OBJECT_PRONOUNS:
        return 1
    if i + 1 < len(pairs) and pairs[i][0] in OBJECT_DETERMINERS:
        following = pairs[i + 1][0]
        if following not in stop_words() and following not in PARTICLES:
            return 2
    return 0


def _next_to_number(words: Sequence[str], i: int) -> bool:
    """Whether the word at `i` stands between numbers ("17 times 23", "divided by 4")."""
    before = i > 0 and words[i - 1].isdigit()
    after = i + 1 < len(words) and words[i + 1].isdigit()
    if not after and i + 2 < len(words) and words[i + 1] == "by":
        after = words[i + 2].isdigit()  # "multiplied by 3"
    return before and after
