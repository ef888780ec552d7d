"""Text normalisation for intent matching: case, accents, punctuation, chat spelling, fillers."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable

# Chat spellings and contractions, applied per token after apostrophes are dropped
# ("what's" arrives here as "whats"). Values may be several words.
ABBREVIATIONS: dict[str, str] = {
    "u": "you",
    "ya": "you",
    "yu": "you",
    "r": "are",
    "ur": "your",
    "urs": "yours",
    "pls": "please",
    "plz": "please",
    "plis": "please",
    "pleas": "please",
    "thx": "thanks",
    "thnx": "thanks",
    "thanx": "thanks",
    "thks": "thanks",
    "tnx": "thanks",
    "ty": "thanks",
    "tysm": "thanks so much",
    "tyvm": "thanks very much",
    "msg": "message",
    "msgs": "messages",
    "idk": "i do not know",
    "btw": "by the way",
    "whats": "what is",
    "wats": "what is",
    "wat": "what",
    "wht": "what",
    "hows": "how is",
    "whos": "who is",
    "wheres": "where is",
    "whens": "when is",
    "thats": "that is",
    "theres": "there is",
    "its": "it is",
    "im": "i am",
    "ive": "i have",
    "youre": "you are",
    "youve": "you have",
    "dont": "do not",
    "doesnt": "does not",
    "didnt": "did not",
    "cant": "can not",
    "cannot": "can not",
    "wont": "will not",
    "isnt": "is not",
    "arent": "are not",
    "wasnt": "was not",
    "werent": "were not",
    "havent": "have not",
    "hasnt": "has not",
    "couldnt": "could not",
    "shouldnt": "should not",
    "wouldnt": "would not",
    "wanna": "want to",
    "gonna": "going to",
    "gotta": "got to",
    "lemme": "let me",
    "gimme": "give me",
    "dunno": "do not know",
    "pic": "picture",
    "pics": "pictures",
    "pw": "password",
    "pwd": "password",
    "acct": "account",
    "convo": "conversation",
    "convos": "conversations",
    "b4": "before",
    "2day": "today",
    "tmrw": "tomorrow",
    "tmr": "tomorrow",
    "2moro": "tomorrow",
    "rn": "right now",
    "ppl": "people",
    "sth": "something",
    "smth": "something",
    "abt": "about",
    "cuz": "because",
    "coz": "because",
    "bc": "because",
    "thru": "through",
    "nvm": "never mind",
    "np": "no problem",
    "yw": "you are welcome",
    "hru": "how are you",
    "wbu": "what about you",
    "wyd": "what are you doing",
    "cya": "see you",
    "l8r": "later",
    "gr8": "great",
    "k": "ok",
    "kk": "ok",
    "okay": "ok",
    "okey": "ok",
    "yeah": "yes",
    "yea": "yes",
    "yep": "yes",
    "yup": "yes",
    "nope": "no",
    "nah": "no",
    "whr": "where",
    "wen": "when",
    "y": "why",
    "info": "information",
}

# Removed wherever they stand: they carry tone, not meaning.
FILLERS: frozenset[str] = frozenset(
    {
        "um", "umm", "uh", "uhh", "uhm", "er", "erm", "hmm", "hm", "ah", "ahh", "eh",
        "oh", "ooh", "please", "just", "actually", "basically", "literally", "kinda",
        "sorta", "lol", "haha", "hahaha", "hehe", "lmao",
    }
)  # fmt: skip

# Removed only as the first word of a longer message ("so how do I…", "well, what…"):
# elsewhere "so much", "as well" and "ok" mean something.
LEADING_FILLERS: frozenset[str] = frozenset({"so", "well", "ok", "anyway", "right", "alright"})

# A greeting in front of a real question ("hey there, how do I search?") is dropped
# when at least this many words remain, so the question decides the intent.
GREETING_PREFIXES: tuple[tuple[str, ...], ...] = (
    ("hey", "there"), ("hi", "there"), ("hello", "there"), ("hey",), ("hi",), ("hello",),
    ("yo",), ("hiya",),
)  # fmt: skip
GREETING_PREFIX_MIN_REST_WORDS = 2

# "like" is a filler after most words ("how do I, like, send…") but a verb after these.
_LIKE_AS_VERB_AFTER: frozenset[str] = frozenset(
    {
        "i", "you", "we", "they", "he", "she", "would", "do", "does", "did", "not", "to",
        "it", "feel", "feels", "look", "looks", "sound", "sounds", "seem", "seems", "is",
        "was", "what", "really", "also", "d",
    }
)  # fmt: skip

# Symbols people type instead of words; everything else that is not a letter or digit
# becomes a space.
SYMBOLS: dict[str, str] = {
    "✓": " tick ",
    "✔": " tick ",
    "☑": " tick ",
    "👋": " hello ",
    "🙏": " thanks ",
    "👍": " ok ",
    "&": " and ",
    "@": " at ",
}

# Words people stretch for emphasis; knowing them lets "sooo" become "so" rather than "soo".
COMMON_WORDS: frozenset[str] = frozenset(
    {
        "hello", "hi", "hey", "please", "so", "good", "cool", "yes", "no", "thanks", "thank",
        "you", "ok", "bye", "sorry", "need", "see", "too", "soon", "nice", "great", "what",
        "why", "really", "well", "love", "help", "now", "wow", "oh", "hmm", "lol",
        "awesome", "sweet", "morning", "night", "yay", "hooray", "all", "off", "will",
        "still", "call", "tell", "sleep", "feel", "free", "agree", "book",
    }
)  # fmt: skip

_APOSTROPHES = re.compile(r"['’‘`´]")
# Split on anything that is not a letter or digit in any script.
_NON_WORD = re.compile(r"[\W_]+")
_RUN = re.compile(r"([^\W\d_])\1{2,}")  # three or more of the same letter
_LETTERS_RUN = re.compile(r"([^\W\d_])\1+")


def strip_accents(text: str) -> str:
    """Return `text` with diacritics removed ("café" → "cafe")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def squeeze_repeats(word: str, vocabulary: Collection[str] = COMMON_WORDS) -> str:
    """Undo stretched spelling: "helloooo" → "hello", "pleeease" → "please".

    Runs of three or more letters are shortened; each run may end as one or two
    letters, and the first spelling found in `vocabulary` (or `COMMON_WORDS`) wins.
    With no known spelling every run becomes one letter, which fuzzy matching then
    treats as a typo.
    """
    if not _RUN.search(word):
        return word
    runs = [m for m in _LETTERS_RUN.finditer(word) if len(m.group(0)) >= 2]
    # Two choices per run: short runs (two letters) may stay or halve, long ones
    # become one or two letters. Cap the search: words with many stretched runs are rare.
    runs = runs[:6]
    candidates: list[str] = []
    for mask in range(1 << len(runs)):
        parts: list[str] = []
        last = 0
        for i, run in enumerate(runs):
            parts.append(word[last : run.start()])
            parts.append(run.group(1) * (2 if mask >> i & 1 else 1))
            last = run.end()
        parts.append(word[last:])
        candidates.append("".join(parts))
    # Prefer spellings that keep original doubles ("hello", "good") over squeezing them.
    candidates.sort(key=len, reverse=True)
    for candidate in candidates:
        if candidate in vocabulary or candidate in COMMON_WORDS:
            return candidate
    return _RUN.sub(r"\1", word)


def _drop_fillers(words: list[str]) -> list[str]:
    kept: list[str] = []
    for i, word in enumerate(words):
        if word in FILLERS:
            continue
        if word == "like" and i > 0 and words[i - 1] not in _LIKE_AS_VERB_AFTER:
            continue
        kept.append(word)
    while len(kept) > 1 and kept[0] in LEADING_FILLERS:
        kept.pop(0)
    for prefix in GREETING_PREFIXES:
        n = len(prefix)
        if tuple(kept[:n]) == prefix and len(kept) - n >= GREETING_PREFIX_MIN_REST_WORDS:
            kept = kept[n:]
            break
    # A message made only of fillers ("please", "lol") keeps its words: an empty
    # message would match nothing, and the words may still mean something.
    return kept if kept else [w for w in words if w]


def tokenize(text: str, vocabulary: Collection[str] = COMMON_WORDS) -> list[str]:
    """Return the normalised words of `text` (see `normalize`)."""
    text = strip_accents(text.casefold())
    for symbol, word in SYMBOLS.items():
        if symbol in text:
            text = text.replace(symbol, word)
    text = _APOSTROPHES.sub("", text)
    words: list[str] = []
    for raw in _NON_WORD.split(text):
        if not raw:
            continue
        word = squeeze_repeats(raw, vocabulary)
        expansion = ABBREVIATIONS.get(word)
        if expansion is None:
            words.append(word)
        else:
            words.extend(expansion.split())
    return _drop_fillers(words)


def normalize(text: str, vocabulary: Collection[str] = COMMON_WORDS) -> str:
    """Normalise a chat message for matching.

    Lower-cases, strips accents and punctuation, undoes stretched letters,
    expands chat abbreviations and contractions ("whats" → "what is", "u" → "you")
    and removes filler words ("um", "just", a leading "so" or "hey there"), but keeps
    words that carry meaning such as "not", "no" and question words.
    """
    return " ".join(tokenize(text, vocabulary))


def join_words(words: Iterable[str]) -> str:
    """Join normalised words back into matching text."""
    return " ".join(words)
