"""Which language a message is in, and which one a person asks the bot to speak.

Script decides first (Devanagari is Hindi when the catalogue speaks Hindi); among
the catalogue's languages that share a script, `lingua-language-detector` decides,
restricted to them. Its models take about 95 MiB for English and Spanish (6 MiB in
its low-accuracy mode, [bot] language_detection = "light"), so the detector is built
on the first message that needs it, never at import, and once per set of languages.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from whatsease.bot.normalize import strip_accents
from whatsease.bot.romanised import HINDI, is_romanised_hindi

if TYPE_CHECKING:
    from lingua import LanguageDetector

# Lingua's share for its best language must reach this (0..1) for the guess to be
# sure enough to change a person's language: "what time is it" is English at 0.9,
# "hello there friend" only 0.76 against Spanish, and "hola" Spanish at 0.66.
DETECT_CONFIDENCE = 0.8
# A message of fewer words never changes the language a person speaks: "ok", "sí" and
# "हाँ" are said in every language.
SWITCH_MIN_WORDS = 2
# The share of a message's letters one script must have to decide its language.
SCRIPT_SHARE = 0.5


def _word_set(text: str) -> frozenset[str]:
    """The words of a space-separated list."""
    return frozenset(text.split())


_WORD = re.compile(r"\w+")

# A message of mixed scripts is in the non-Latin one's language when at least this
# share of its words are in it.
EMBEDDED_SHARE = 0.25
# Words only one of the Latin-script languages uses, folded: they decide when the
# detector is unsure of a short message. Words both use ("no", "me", "a") are left out.
FUNCTION_WORDS: dict[str, frozenset[str]] = {
    "en": _word_set(
        "the is are was were do does did can could would will should what how where when "
        "who why which my your i you it this that of to in on for with and or not have has "
        "please"),
    "es": _word_set(
        "el la los las es son eres soy esta estas estoy que como donde cuando quien por "
        "para mi mis tu tus un una unos de del al y o pero puedo puedes quiero hay se "
        "lo le les yo usted con sin favor"),
}

# The script of each language the detector may be asked about: a language alone in
# its script among a catalogue's is known by script alone. Unlisted: Latin.
SCRIPTS: dict[str, str] = {
    "hi": "DEVANAGARI", "mr": "DEVANAGARI", "ne": "DEVANAGARI",
    "ta": "TAMIL", "te": "TELUGU", "kn": "KANNADA", "ml": "MALAYALAM", "bn": "BENGALI",
    "gu": "GUJARATI", "pa": "GURMUKHI", "ar": "ARABIC", "fa": "ARABIC", "ur": "ARABIC",
    "he": "HEBREW", "ru": "CYRILLIC", "uk": "CYRILLIC", "el": "GREEK", "th": "THAI",
    "zh": "CJK", "ja": "CJK", "ko": "HANGUL",
}  # fmt: skip

# Each language's name in itself and in the catalogue's languages, as people ask for
# it ("speak Spanish", "habla inglés", "हिंदी में बात करो"); folded (no accents).
LANGUAGE_NAMES: dict[str, tuple[str, ...]] = {
    "en": ("english", "ingles", "अंग्रेजी", "इंग्लिश", "angrezi", "ஆங்கிலம்"),
    "es": ("spanish", "espanol", "castellano", "स्पेनिश", "स्पैनिश", "ஸ்பானிஷ்"),
    "hi": ("hindi", "हिंदी", "हिन्दी", "ஹிந்தி", "இந்தி"),
    "ta": ("tamil", "तमिल", "தமிழ்", "தமிழில்"),
}
# How each language's name is said to itself, for the confirmation.
_NATIVE_NAMES = {"en": "English", "es": "español", "hi": "हिंदी", "ta": "தமிழ்"}
# Built-in confirmation when a person sets a language, used unless the catalogue's
# [bot] (or [bot.i18n.<language>]) gives `switched`.
SWITCHED: dict[str, str] = {
    "en": "Sure, I'll speak English from now on.",
    "es": "¡Claro! A partir de ahora te hablo en español.",
    "hi": "ठीक है, अब से मैं आपसे हिंदी में बात करूँगा।",
    "ta": "சரி, இனி நான் உங்களுடன் தமிழில் பேசுகிறேன்.",
}
# Said, in the person's current language, when they ask for one the catalogue lacks.
UNAVAILABLE: dict[str, str] = {
    "en": "Sorry, I can't speak that language yet. I speak: {languages}.",
    "es": "Lo siento, todavía no hablo ese idioma. Hablo: {languages}.",
    "hi": "माफ़ कीजिए, मैं अभी वह भाषा नहीं बोलता। मैं ये भाषाएँ बोलता हूँ: {languages}।",
    "ta": "மன்னிக்கவும், அந்த மொழி எனக்கு இன்னும் தெரியாது. எனக்குத் தெரிந்தவை: {languages}.",
}

# "speak spanish", "can you talk in english please", "reply in hindi", "habla inglés",
# "háblame en español", "hindi mein baat karo", "हिंदी में बात करो", "தமிழில் பேசு".
# The language name is captured as one word. The whole message must be the request,
# so "how do I write a message in english" asks no such thing.
_COMMANDS = [
    re.compile(p) for p in (
        r"^(?:(?:can|could|would|will)\s+(?:you|u)\s+|please\s+|pls\s+|lets\s+|let\s+us\s+"
        r"|i\s+want\s+(?:you\s+)?to\s+|i(?:\s+would|['’]d)\s+like\s+(?:you\s+)?to\s+)?"
        r"(?:speak|talk|reply|answer|write|respond|switch|change)\b(?:\s+\w+){0,3}?"
        r"\s+(?:in\s+|to\s+|into\s+)?(?P<name>\w+)\s*(?:please|pls|now|instead)?$",
        r"^(?:in\s+)?(?P<name>\w+)\s+(?:please|pls)$",
        r"^(?:(?:puedes|podrias|podria)\s+|por\s+favor\s+)?"
        r"(?:habla(?:me|r)?|hablemos|responde(?:me)?|contesta(?:me)?|escribe(?:me)?"
        r"|cambia(?:r)?(?:\s+(?:a|al))?)\b(?:\s+\w+){0,2}?\s+(?:en\s+)?(?P<name>\w+)"
        r"\s*(?:por\s+favor)?$",
        r"^(?:en\s+)?(?P<name>\w+)\s+por\s+favor$",
        r"^(?P<name>\S+)\s+(?:में|मे|mein|me|main)\s+(?:बात|baat|बोल|bol|जवाब|jawab|लिख|likh)",
        r"^(?P<name>\S+)\s+(?:பேசு|பேசுங்கள்|பேசவும்|பதில்)",
    )
]  # fmt: skip


@dataclass(frozen=True)
class Guess:
    """A message's language as far as it can be told."""

    language: str | None  # the likeliest language; None: no letters or no known script
    words: int  # how many words the message has
    by_script: bool = False  # decided by its letters' script, which is near certain
    confidence: float = 0.0  # the detector's share for `language` (1.0 by script)
    romanised: bool = False  # Hindi in Latin letters (romanised.py)

    @property
    def sure(self) -> bool:
        """Whether the guess is sure enough to change the language a person speaks."""
        return self.language is not None and self.confidence >= DETECT_CONFIDENCE


def script_of(text: str) -> str | None:
    """The script most of `text`'s letters are in ("LATIN", "DEVANAGARI", …), or None
    when no script has `SCRIPT_SHARE` of them (or there are no letters)."""
    counts: dict[str, int] = {}
    letters = 0
    for ch in text:
        if not ch.isalpha():
            continue
        letters += 1
        name = unicodedata.name(ch, "")
        script = name.split(" ", 1)[0]
        if script in ("CJK", "HIRAGANA", "KATAKANA"):
            script = "CJK"
        counts[script] = counts.get(script, 0) + 1
    if not letters:
        return None
    script, count = max(counts.items(), key=lambda item: item[1])
    return script if count / letters >= SCRIPT_SHARE else None


def guess_language(text: str, languages: Sequence[str], *, light: bool = False) -> Guess:
    """The language of `text` among `languages` (ISO 639-1 codes).

    A script only one of `languages` writes in decides alone; Latin letters that spell
    Hindi words are Hindi when `languages` have it (romanised.py); otherwise the
    detector decides among the languages of that script, and says how sure it is
    (`light`: its low-accuracy mode, which reads trigrams only).
    """
    words = sum(1 for part in text.split() if any(ch.isalnum() for ch in part))
    if len(languages) < 2:
        return Guess(languages[0] if languages else None, words, confidence=1.0)
    mixed = _embedded_script(text, languages)
    if mixed is not None:
        # Hindi chat keeps English words in Latin letters ("help करो please"): the
        # words in the script only one language writes say which language it is.
        return Guess(mixed, words, by_script=True, confidence=1.0)
    script = script_of(text)
    if script is None:
        return Guess(None, words)
    if script == "LATIN" and HINDI in languages and is_romanised_hindi(text):
        # Hindi typed in Latin letters, which lingua would read as English.
        return Guess(HINDI, words, confidence=1.0, romanised=True)
    same = [code for code in languages if SCRIPTS.get(code, "LATIN") == script]
    if not same:
        return Guess(None, words)
    if len(same) == 1:
        return Guess(same[0], words, by_script=True, confidence=1.0)
    detector = _detector(tuple(sorted(same)), light)
    if detector is None:
        return Guess(None, words)
    values = detector.compute_language_confidence_values(text)
    if not values or values[0].value <= 0.0:
        return Guess(None, words)
    code = values[0].language.iso_code_639_1.name.lower()
    if code not in same:
        return Guess(None, words)
    if values[0].value < DETECT_CONFIDENCE and words >= SWITCH_MIN_WORDS:
        # Unsure on a short message ("eres un bot?", "darme de baja de whatsease"):
        # its function words may tell.
        told = _by_function_words(text, same)
        if told is not None:
            return Guess(told, words, confidence=DETECT_CONFIDENCE)
    return Guess(code, words, confidence=values[0].value)


def _embedded_script(text: str, languages: Sequence[str]) -> str | None:
    """The language of a message whose words are partly in a script only that one
    of `languages` writes, at least EMBEDDED_SHARE of its words ("help करो please",
    "मेरी activity कहाँ दिखेगी"), or None."""
    counts: dict[str, int] = {}
    total = 0
    for word in text.split():
        letter = next((ch for ch in word if ch.isalpha()), None)
        if letter is None:
            continue
        total += 1
        script = unicodedata.name(letter, "").split(" ", 1)[0]
        if script in ("HIRAGANA", "KATAKANA"):
            script = "CJK"  # as script_of reads Japanese
        if script != "LATIN":
            counts[script] = counts.get(script, 0) + 1
    if not counts:
        return None
    script, count = max(counts.items(), key=lambda item: item[1])
    writers = [code for code in languages if SCRIPTS.get(code, "LATIN") == script]
    if len(writers) != 1 or count / total < EMBEDDED_SHARE:
        return None
    return writers[0]


def _by_function_words(text: str, languages: Sequence[str]) -> str | None:
    """The one of `languages` whose function words (FUNCTION_WORDS) `text` uses, when
    it uses some of one language's and none of the others', else None. Only for
    messages of SWITCH_MIN_WORDS words or more: "yo" alone is English too."""
    words = set(_WORD.findall(strip_accents(text.casefold())))
    hits = {code: len(words & FUNCTION_WORDS[code]) for code in languages
            if code in FUNCTION_WORDS}
    used = [code for code, count in hits.items() if count]
    return used[0] if len(used) == 1 else None


def language_command(text: str) -> str | None:
    """The language a message asks the bot to speak ("speak Spanish" → "es"), or None
    when it asks for none. A name no catalogue language has gives "?"."""
    folded = strip_accents(text.casefold()).strip(" .!?¡¿।")
    if len(folded) > 60:
        return None  # a request to switch is short; a long message is about something else
    for pattern in _COMMANDS:
        found = pattern.search(folded)
        if found is None:
            continue
        name = found.group("name")
        code = _by_name().get(name)
        if code is not None:
            return code
        if name in _OTHER_LANGUAGE_NAMES:
            return "?"
    return None


def switched_line(language: str, configured: Sequence[str]) -> str:
    """What the bot says when a person sets `language`."""
    if configured:
        return configured[0]
    return SWITCHED.get(language, f"OK: {native_name(language)}.")


def unavailable_line(language: str, languages: Sequence[str]) -> str:
    """What the bot says, in `language`, when asked for a language it does not speak."""
    names = ", ".join(native_name(code) for code in languages)
    return UNAVAILABLE.get(language, UNAVAILABLE["en"]).format(languages=names)


def native_name(language: str) -> str:
    """A language's name in itself ("es" → "español"), or its code if unknown."""
    return _NATIVE_NAMES.get(language, language)


# Names of languages no catalogue here speaks, so "speak French" is a request too.
_OTHER_LANGUAGE_NAMES = frozenset(
    {"french", "german", "italian", "portuguese", "chinese", "japanese", "arabic",
     "russian", "bengali", "telugu", "urdu", "marathi", "frances", "aleman", "italiano",
     "portugues", "chino", "japones", "arabe", "ruso"}
)  # fmt: skip


@lru_cache(maxsize=1)
def _by_name() -> dict[str, str]:
    return {strip_accents(name.casefold()): code
            for code, names in LANGUAGE_NAMES.items() for name in names}


def needs_detector(languages: Sequence[str]) -> bool:
    """Whether telling `languages` apart takes the detector: two of them share a script."""
    scripts = [SCRIPTS.get(code, "LATIN") for code in languages]
    return len(set(scripts)) < len(scripts)


def prepare_detector(languages: Sequence[str], *, light: bool = False) -> None:
    """Build the detectors `guess_language` will need for `languages` now (it takes a
    second and loads the models: call it off the event loop)."""
    by_script: dict[str, list[str]] = {}
    for code in languages:
        by_script.setdefault(SCRIPTS.get(code, "LATIN"), []).append(code)
    for same in by_script.values():
        if len(same) > 1:
            detector = _detector(tuple(sorted(same)), light)
            if detector is not None:
                detector.detect_language_of("hello")  # loads the models


def detector_ready(languages: Sequence[str], *, light: bool = False) -> bool:
    """Whether every detector `languages` need is built (see `prepare_detector`)."""
    by_script: dict[str, list[str]] = {}
    for code in languages:
        by_script.setdefault(SCRIPTS.get(code, "LATIN"), []).append(code)
    return all((tuple(sorted(same)), light) in _detectors
               for same in by_script.values() if len(same) > 1)


_detectors: dict[tuple[tuple[str, ...], bool], LanguageDetector | None] = {}
_detectors_lock = threading.Lock()


def _detector(languages: tuple[str, ...], light: bool) -> LanguageDetector | None:
    """The detector for `languages`, built on first use (None: lingua knows one of them
    not, or is not installed). The bot may answer on a worker thread, hence the lock."""
    key = (languages, light)
    with _detectors_lock:
        if key in _detectors:
            return _detectors[key]
        try:
            from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

            chosen = [Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper()))
                      for code in languages]
            builder = LanguageDetectorBuilder.from_languages(*chosen)
            if light:
                builder = builder.with_low_accuracy_mode()
            detector: LanguageDetector | None = builder.build()
        except (ImportError, AttributeError, ValueError):
            detector = None
        _detectors[key] = detector
        return detector
