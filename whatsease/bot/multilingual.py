"""Which language an engine reads a message in and answers in, and a person's request
to speak a language ("speak Spanish", "हिंदी में बात करो"): the multilingual half of
`IntentEngine.respond` (engine.py), for catalogues with more than one language."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from whatsease.bot.language import (
    SWITCH_MIN_WORDS,
    guess_language,
    language_command,
    switched_line,
    unavailable_line,
)
from whatsease.bot.normalize import tokenize
from whatsease.bot.replies import Match, Reply
from whatsease.bot.state import BOT_ROLE, USER_ROLE, BotState, HistoryEntry, bound_history

if TYPE_CHECKING:
    from whatsease.bot.engine import IntentEngine

# A message of this many words whose language was detected is read in that language
# only; a shorter or undetected one that falls back is tried in the others too.
SURE_LANGUAGE_WORDS = 3
# The intent name a reply carries when the message set the bot's language.
SET_LANGUAGE_INTENT = "set_language"


def read(engine: IntentEngine, text: str, context: str | None,
         state: BotState) -> tuple[Match, IntentEngine]:
    """Match `text` in the language it is written in, and pick the reply's language.

    The reply's language is the one the user chose, else the message's when the
    message has at least SWITCH_MIN_WORDS words ("ok", "sí", "हाँ" never change it)
    and its language is sure, else the user's last one, else (a new user) the
    language that understood the message, else its sure language, else the
    catalogue's default. A message whose language is sure (by
    script, or detected surely in SURE_LANGUAGE_WORDS words or more) is read in
    it; any other is read first in the language whose examples know most of its
    words, and, if it falls back there, in the others until one answers.
    """
    from whatsease.bot.engine import MAX_MATCH_CHARS  # engine.py imports this module

    guess = guess_language(text, engine.catalogue.languages,
                           light=engine.catalogue.bot.light_detection)
    chosen = state.chosen_language if state.chosen_language in engine.engines else None
    last = state.language if state.language in engine.engines else None
    detected = guess.language
    speak = chosen
    if speak is None and guess.sure and guess.words >= SWITCH_MIN_WORDS:
        speak = detected
    order = list(dict.fromkeys(
        code for code in (detected, speak, last, *engine.catalogue.languages) if code))
    sure = guess.by_script or (guess.sure and guess.words >= SURE_LANGUAGE_WORDS)
    if not sure:
        # Short or unclear: the language whose examples use most of its words
        # first ("cancelar", "chao" and "hiii" are each one language's word).
        words = tokenize(text[:MAX_MATCH_CHARS], engine.speller.vocabulary)
        order.sort(key=lambda code: -engine.engines[code].known_share(words))
    found = engine.match(text, context, language=order[0])
    reader = order[0]
    if found.intent is None and not sure:
        for code in order[1:]:
            other = engine.match(text, context, language=code)
            if other.intent is not None:
                found, reader = other, code
                break
    if speak is None:
        # A new user's short or unclear message ("hola") speaks the language that
        # understood it; one that nobody understood, the default.
        speak = last or (reader if found.intent is not None
                         else detected if detected is not None and guess.sure
                         else engine.language)
    return found, engine.engines[speak]

def set_language(engine: IntentEngine, text: str, state: BotState,
                 now: datetime) -> Reply | None:
    """The reply to a message that asks the bot to speak a language ("speak
    Spanish", "habla inglés", "हिंदी में बात करो"), or None if it asks nothing of
    the kind. `state` becomes the new state."""
    wanted = language_command(text)
    if wanted is None:
        return None
    current = state.chosen_language or state.language or engine.language
    if current not in engine.engines:
        current = engine.language
    if wanted in engine.engines:
        state.language = state.chosen_language = wanted
        speaker = engine.engines[wanted]
        reply_text = switched_line(wanted, speaker.catalogue.bot.switched)
        intent: str | None = SET_LANGUAGE_INTENT
    else:
        wanted, speaker = "", engine.engines[current]
        reply_text = unavailable_line(current, engine.catalogue.languages)
        intent = SET_LANGUAGE_INTENT
    bot = engine.catalogue.bot
    state.history.append(HistoryEntry(USER_ROLE, text, now, None))
    state.history.append(HistoryEntry(BOT_ROLE, reply_text, now, intent))
    state.history = bound_history(
        state.history, max_messages=bot.history_max_messages,
        max_chars=bot.history_max_chars,
        max_age=timedelta(minutes=bot.history_max_minutes), now=now)
    return Reply(text=reply_text, intent=intent, confidence=1.0, slots={}, state=state,
                 language=speaker.language, chosen_language=wanted or None)
