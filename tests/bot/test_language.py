"""Tests for the bot's languages: multilingual catalogues, detection, language memory
and non-Latin scripts (whatsease.bot.language, catalogue.py and engine.py)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from whatsease.bot.catalogue import CatalogueError, load_catalogue, loads_catalogue
from whatsease.bot.engine import SET_LANGUAGE_INTENT, BotState, IntentEngine
from whatsease.bot.evaluate import main
from whatsease.bot.folding import stem
from whatsease.bot.language import (
    detector_ready,
    guess_language,
    language_command,
    needs_detector,
    prepare_detector,
    script_of,
)
from whatsease.bot.normalize import is_word, strip_accents, tokenize

TRILINGUAL = """
[bot]
name = "Test"
languages = ["en", "es", "hi"]
default_language = "en"
fallback = ["Sorry, I did not get that."]

[bot.i18n.es]
fallback = ["Perdona, no te he entendido."]

[bot.i18n.hi]
fallback = ["माफ़ कीजिए, मैं समझ नहीं पाया।"]

[[intents]]
name = "greet"
examples = ["hello", "hi there", "good morning"]
responses = ["Hello!"]

[intents.i18n.es]
examples = ["hola", "buenos días", "buenas tardes"]
responses = ["¡Hola!"]

[intents.i18n.hi]
examples = ["नमस्ते", "नमस्कार", "सुप्रभात"]
responses = ["नमस्ते!"]

[[intents]]
name = "send_message"
examples = ["how do i send a message", "how to write a message to someone"]
responses = ["Type in the box and press Enter."]

[intents.i18n.es]
examples = ["cómo envío un mensaje", "cómo le escribo un mensaje a alguien"]
responses = ["Escribe en el cuadro y pulsa Intro."]

[intents.i18n.hi]
examples = ["मैं संदेश कैसे भेजूं", "किसी को मैसेज कैसे लिखें"]
responses = ["बॉक्स में लिखें और Enter दबाएँ।"]

[[intents]]
name = "thanks"
examples = ["thanks", "thank you very much"]
responses = ["You're welcome!"]

[intents.i18n.es]
examples = ["gracias", "muchas gracias"]
responses = ["¡De nada!"]

[intents.i18n.hi]
examples = ["धन्यवाद", "शुक्रिया"]
responses = ["आपका स्वागत है!"]

[[intents]]
name = "remember_name"
examples = ["my name is Sam", "call me Alex"]
slots = { name = '''(?:\\bmy\\s+name\\s+is|\\bcall\\s+me|\\bme\\s+llamo|मेरा\\s+नाम)\
\\s+(?P<name>[^\\s\\d.,!?।]{1,40})''' }
remember = ["name"]
responses = ["Nice to meet you, {name}!"]

[intents.i18n.es]
examples = ["me llamo Ana", "me llamo Luis"]
responses = ["¡Encantado, {name}!"]

[intents.i18n.hi]
examples = ["मेरा नाम प्रिया है", "मेरा नाम राहुल है"]
responses = ["आपसे मिलकर खुशी हुई, {name}!"]
"""


@pytest.fixture(scope="module")
def engine() -> IntentEngine:
    return IntentEngine(loads_catalogue(TRILINGUAL), rng=random.Random(0))


# --------------------------------------------------------------------- catalogue


def test_one_language_catalogue_is_unchanged() -> None:
    catalogue = loads_catalogue(
        '[bot]\nname = "T"\nfallback = ["?"]\n[[intents]]\nname = "a"\n'
        'examples = ["hello"]\nresponses = ["hi"]\n'
    )
    assert catalogue.languages == ("en",)
    assert catalogue.translations == {}
    assert catalogue.in_language("en") is catalogue


def test_translations_carry_each_language_texts() -> None:
    catalogue = loads_catalogue(TRILINGUAL)
    assert catalogue.languages == ("en", "es", "hi")
    spanish = catalogue.in_language("es")
    assert spanish.language == "es"
    assert spanish.intent("greet").examples == ("hola", "buenos días", "buenas tardes")
    assert spanish.bot.fallback == ("Perdona, no te he entendido.",)
    # The rest of an intent (slots, memory) is shared by every language.
    assert spanish.intent("remember_name").remember == ("name",)
    with pytest.raises(KeyError):
        catalogue.in_language("fr")


def test_default_language_comes_first() -> None:
    text = TRILINGUAL.replace('default_language = "en"', 'default_language = "es"')
    # The top-level texts are then Spanish, and [bot.i18n.es] has no place.
    with pytest.raises(CatalogueError, match=r"\[bot\] 'i18n.es': 'es' is not one of"):
        loads_catalogue(text)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('languages = ["en", "es", "hi"]', 'languages = ["en", "spanish"]',
         r"\[bot\] 'languages' must be a non-empty list of two-letter"),
        ('default_language = "en"', 'default_language = "fr"',
         r"\[bot\] 'default_language' 'fr' is not one of 'languages'"),
        ('[bot.i18n.es]\nfallback = ["Perdona, no te he entendido."]\n', '',
         r"\[bot\] 'i18n.es.fallback' is missing"),
        ('examples = ["gracias", "muchas gracias"]\n', '',
         r"intent 'thanks': 'i18n.es.examples' is missing"),
        ('responses = ["आपका स्वागत है!"]', '',
         r"intent 'thanks': 'i18n.hi.responses' is missing"),
        ('responses = ["¡Encantado, {name}!"]', 'responses = ["¡Encantado, {nombre}!"]',
         r"intent 'remember_name': 'i18n.es.responses' uses unknown placeholder \{nombre\}"),
        ('[intents.i18n.hi]\nexamples = ["धन्यवाद"', '[intents.i18n.fr]\nexamples = ["merci"]\n'
         '[intents.i18n.hi]\nexamples = ["धन्यवाद"',
         r"intent 'thanks': 'i18n.fr': 'fr' is not one of \[bot\] 'languages'"),
        ('examples = ["hola", "buenos días", "buenas tardes"]',
         'examples = ["hola"]\nslots = {}',
         r"intent 'greet': 'i18n.es.slots' is not a key a language may give"),
        ('examples = ["hola", "buenos días", "buenas tardes"]', 'examples = []',
         r"intent 'greet': 'i18n.es.examples' must be a non-empty list of strings"),
    ],
)
def test_validation_names_intent_key_and_language(old: str, new: str, message: str) -> None:
    assert old in TRILINGUAL
    with pytest.raises(CatalogueError, match=message):
        loads_catalogue(TRILINGUAL.replace(old, new, 1))


def test_i18n_needs_languages() -> None:
    text = (
        '[bot]\nname = "T"\nfallback = ["?"]\n[[intents]]\nname = "a"\n'
        'examples = ["hello"]\nresponses = ["hi"]\n[intents.i18n.es]\n'
        'examples = ["hola"]\nresponses = ["hola"]\n'
    )
    with pytest.raises(CatalogueError, match=r"intent 'a': 'i18n.es'.*\(others: none\)"):
        loads_catalogue(text)


# --------------------------------------------------------------------- scripts


def test_devanagari_and_tamil_words_stay_whole() -> None:
    assert tokenize("मेरा नाम प्रिया है।") == ["मेरा", "नाम", "प्रिया", "है"]
    assert tokenize("என் பெயர் பிரியா!") == ["என்", "பெயர்", "பிரியா"]
    assert all(is_word(word) for word in tokenize("मेरा नाम प्रिया है"))
    assert not is_word("b4")
    # Latin accents go; Indic vowel signs and viramas stay; nukta and candrabindu fold.
    assert strip_accents("inglés señor") == "ingles senor"
    assert strip_accents("ज़रूर हाँ") == "जरूर हां"
    assert strip_accents("प्रिया") == "प्रिया"


def test_script_of_text() -> None:
    assert script_of("नमस्ते दोस्त") == "DEVANAGARI"
    assert script_of("வணக்கம்") == "TAMIL"
    assert script_of("hola, ¿qué tal?") == "LATIN"
    assert script_of("123 !!") is None


# --------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("how do I send a photo", "en"),
        ("what time is it now", "en"),
        ("¿cómo cambio mi nombre?", "es"),
        ("necesito ayuda con mi cuenta", "es"),
        ("hola como estas", "es"),
        ("मेरा नाम प्रिया है", "hi"),
        ("हाँ", "hi"),
        ("sí", "es"),
    ],
)
def test_detects_short_messages(text: str, language: str) -> None:
    guess = guess_language(text, ["en", "es", "hi"])
    assert guess.language == language


def test_detection_is_restricted_to_the_catalogue_languages() -> None:
    # Tamil is no language of this catalogue: its script tells nothing.
    assert guess_language("என் பெயர் பிரியா", ["en", "es", "hi"]).language is None
    assert guess_language("என் பெயர் பிரியா", ["en", "ta"]).language == "ta"
    assert guess_language("हाँ", ["en", "hi"]).by_script


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("speak Spanish", "es"),
        ("can you talk to me in english please", "en"),
        ("habla inglés", "en"),
        ("háblame en español por favor", "es"),
        ("हिंदी में बात करो", "hi"),
        ("hindi mein baat karo", "hi"),
        ("தமிழில் பேசு", "ta"),
        ("speak French", "?"),
        ("how do I change my name", None),
        ("I speak Spanish at home, how do I send a message", None),
        ("how do I write a message in English", None),
        ("cómo escribo un mensaje en inglés", None),
        ("please reply in spanish", "es"),
    ],
)
def test_language_commands(text: str, language: str | None) -> None:
    assert language_command(text) == language


# --------------------------------------------------------------------- engine


@pytest.mark.parametrize(
    ("text", "intent", "reply"),
    [
        ("hola", "greet", "¡Hola!"),
        ("como envio un mensje", "send_message", "Escribe en el cuadro y pulsa Intro."),
        ("muchas grasias", "thanks", "¡De nada!"),
        ("नमस्ते", "greet", "नमस्ते!"),
        ("मैं संदेश कैसे भेजू", "send_message", "बॉक्स में लिखें और Enter दबाएँ।"),  # typo: ू
        ("धन्यावाद", "thanks", "आपका स्वागत है!"),  # typo: an extra vowel sign
        ("how do i sned a mesage", "send_message", "Type in the box and press Enter."),
    ],
)
def test_matches_each_language_with_typos(engine: IntentEngine, text: str, intent: str,
                                          reply: str) -> None:
    answer = engine.respond(text, BotState())
    assert (answer.intent, answer.text) == (intent, reply)


def test_slots_in_devanagari(engine: IntentEngine) -> None:
    reply = engine.respond("मेरा नाम प्रिया है", BotState())
    assert reply.intent == "remember_name"
    assert reply.slots == {"name": "प्रिया"}
    assert reply.text == "आपसे मिलकर खुशी हुई, प्रिया!"
    assert reply.state.memory == {"name": "प्रिया"}


def test_remembers_the_language_across_turns(engine: IntentEngine) -> None:
    state = BotState()
    reply = engine.respond("hola, ¿cómo envío un mensaje?", state)
    assert reply.language == "es" and reply.state.language == "es"
    # One word said in every language does not switch: the reply stays Spanish.
    reply = engine.respond("ok", reply.state)
    assert reply.language == "es"
    assert reply.text == "Perdona, no te he entendido."
    reply = engine.respond("thanks", reply.state)
    assert (reply.intent, reply.text) == ("thanks", "¡De nada!")
    # A sentence in another language does.
    reply = engine.respond("how do I send a message", reply.state)
    assert (reply.language, reply.text) == ("en", "Type in the box and press Enter.")
    reply = engine.respond("धन्यवाद", reply.state)
    assert (reply.language, reply.text) == ("en", "You're welcome!")


def test_unknown_language_falls_back_to_last_then_default(engine: IntentEngine) -> None:
    reply = engine.respond("12345", BotState())
    assert reply.language == "en"
    reply = engine.respond("12345", BotState(language="hi"))
    assert (reply.language, reply.text) == ("hi", "माफ़ कीजिए, मैं समझ नहीं पाया।")


def test_speak_spanish_sets_the_language(engine: IntentEngine) -> None:
    reply = engine.respond("speak Spanish", BotState())
    assert reply.intent == SET_LANGUAGE_INTENT
    assert reply.chosen_language == "es"
    assert reply.text == "¡Claro! A partir de ahora te hablo en español."
    # A chosen language holds even for English sentences...
    reply = engine.respond("how do I send a message", reply.state)
    assert (reply.language, reply.text) == ("es", "Escribe en el cuadro y pulsa Intro.")
    # ...until another is chosen.
    reply = engine.respond("हिंदी में बात करो", reply.state)
    assert (reply.language, reply.chosen_language) == ("hi", "hi")
    reply = engine.respond("habla inglés", reply.state)
    assert reply.state.chosen_language == "en"
    assert reply.text == "Sure, I'll speak English from now on."


def test_asking_for_a_language_the_catalogue_lacks(engine: IntentEngine) -> None:
    reply = engine.respond("háblame en francés", BotState(language="es"))
    assert reply.intent == SET_LANGUAGE_INTENT
    assert reply.chosen_language is None
    assert reply.text == "Lo siento, todavía no hablo ese idioma. Hablo: English, español, हिंदी."
    assert reply.state.language == "es"


def test_state_keeps_the_language() -> None:
    state = BotState(language="es", chosen_language="hi")
    again = BotState.from_dict(state.to_dict())
    assert (again.language, again.chosen_language) == ("es", "hi")
    assert BotState.from_dict({}).language is None


# --------------------------------------------------------------------- bot-eval


@pytest.fixture
def trilingual_files(tmp_path: Path) -> tuple[str, str, str]:
    catalogue = tmp_path / "tri.toml"
    catalogue.write_text(TRILINGUAL, encoding="utf-8")
    english = tmp_path / "cases.jsonl"
    english.write_text(
        '{"text": "how do i send a message to my friend", "intent": "send_message"}\n'
        '{"text": "thanks", "intent": "thanks"}\n'
        '{"text": "book me a flight to paris", "intent": null}\n', encoding="utf-8")
    spanish = tmp_path / "cases_es.jsonl"
    spanish.write_text(
        '{"text": "cómo le envío un mensaje a mi amiga", "intent": "send_message"}\n'
        '{"text": "muchas gracias", "intent": "thanks"}\n'
        '{"text": "resérvame un vuelo a parís", "intent": null}\n'
        '{"text": "नमस्ते", "intent": "greet", "lang": "hi"}\n', encoding="utf-8")
    return str(catalogue), str(english), str(spanish)


def test_bot_eval_reports_each_language(trilingual_files: tuple[str, str, str],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    catalogue, english, spanish = trilingual_files
    argv = ["--catalogue", catalogue, "--words-only", "--cases", english, "--cases", spanish]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    languages = report["languages"]
    assert list(languages) == ["en", "es", "hi"]
    rows = report["cases"]
    # The file name's _es says the language; a case's own "lang" wins.
    assert [r["lang"] for r in rows] == ["en", "en", "en", "es", "es", "es", "hi"]
    for code, row in languages.items():
        mine = [r for r in rows if r["lang"] == code]
        assert row["total"] == len(mine)
        assert row["correct"] == sum(r["predicted"] == r["expected"] for r in mine)
        out_of_scope = [r for r in mine if r["expected"] is None]
        assert row["out_of_scope"]["total"] == len(out_of_scope)
        long = [r for r in mine if len(r["text"].split()) >= 3]
        assert row["detection"] == {
            "min_words": 3, "total": len(long),
            "correct": sum(r["detected"] == code for r in long),
            "accuracy": pytest.approx(sum(r["detected"] == code for r in long) / len(long))
            if long else None}
        assert row["reply_language"]["correct"] == sum(r["reply_language"] == code for r in mine)
    assert languages["es"]["correct"] == 3
    assert languages["es"]["detection"]["correct"] == 2

    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Per language (engine):" in out
    table = out.split("Per language (engine):\n")[1].split("\n\n")[0].splitlines()
    assert table[0].split()[:2] == ["lang", "accuracy"]
    assert table[2].startswith("es") and "100.0% (3/3)" in table[2]
    assert "0/1 (0.0%)" in table[2]  # no out-of-scope message answered
    assert "100.0% (2/2)" in table[2]  # detection on messages of three words or more


def test_bot_eval_one_language_report_has_no_language_table(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalogue = tmp_path / "one.toml"
    catalogue.write_text('[bot]\nname = "T"\nfallback = ["?"]\n[[intents]]\nname = "a"\n'
                         'examples = ["hello"]\nresponses = ["hi"]\n', encoding="utf-8")
    cases = tmp_path / "cases_es.jsonl"  # "es" is no language of this catalogue
    cases.write_text('{"text": "hello", "intent": "a"}\n', encoding="utf-8")
    assert main(["--catalogue", str(catalogue), "--words-only", "--cases", str(cases),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "languages" not in report
    assert set(report["cases"][0]) == {"text", "expected", "predicted", "confidence"}
    assert main(["--catalogue", str(catalogue), "--words-only", "--cases", str(cases),
                 "--lang", "fr"]) == 2
    assert "language 'fr' is not one of the catalogue's (en)" in capsys.readouterr().err


# --------------------------------------------------------------------- the detector's cost


def test_the_detector_is_not_loaded_at_import() -> None:
    code = ("import sys\nimport whatsease.bot.engine, whatsease.bot.service\n"
            "from whatsease.bot.catalogue import load_catalogue\n"
            "from whatsease.bot.engine import IntentEngine\n"
            "IntentEngine(load_catalogue())\n"
            "print('lingua' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "False"


def test_prepare_builds_only_what_the_languages_need() -> None:
    assert not needs_detector(["en", "hi"])  # told apart by script alone
    assert detector_ready(["en", "hi"])
    assert needs_detector(["en", "es", "hi"])
    prepare_detector(["en", "es"], light=True)
    assert detector_ready(["en", "es", "hi"], light=True)
    assert guess_language("necesito ayuda con mi cuenta", ["en", "es"], light=True).language == "es"


def test_light_detection_is_a_catalogue_choice() -> None:
    light = loads_catalogue(TRILINGUAL.replace('default_language = "en"',
                                               'default_language = "en"\n'
                                               'language_detection = "light"'))
    assert light.bot.light_detection
    assert light.in_language("es").bot.light_detection
    assert not loads_catalogue(TRILINGUAL).bot.light_detection
    with pytest.raises(CatalogueError, match=r"\[bot\] 'language_detection' must be"):
        loads_catalogue(TRILINGUAL.replace('default_language = "en"',
                                           'language_detection = "fast"'))


# --------------------------------------------------------------------- the default assistant


def test_hindi_inflections_meet_at_one_stem() -> None:
    assert {stem(w) for w in ("भेजूं", "भेजें", "भेजो", "भेजना")} == {"भेज"}
    assert stem("नाम") == "नाम"  # nothing to strip
    assert stem("ना") == "ना"  # too short to be a stem
    assert stem("sending") == "send"  # English as before


def test_the_default_assistant_speaks_spanish_and_hindi() -> None:
    catalogue = load_catalogue()
    assert catalogue.languages == ("en", "es", "hi")
    for code in ("es", "hi"):
        translated = catalogue.in_language(code)
        for english, intent in zip(catalogue.intents, translated.intents, strict=True):
            assert intent.responses and set(intent.responses).isdisjoint(english.responses)
            # Loanwords ("facetime") may be shared; the examples are the language's own.
            assert not set(intent.examples) <= set(english.examples) or intent.catch_all
    # Hindi's own synonyms: "तुम्हारा" reads as "आपका".
    engine = IntentEngine(catalogue, rng=random.Random(0))
    reply = engine.respond("तुम्हारा नाम क्या है", BotState())
    assert (reply.intent, reply.language) == ("identity", "hi")
    reply = engine.respond("Mi nombre es Lucía", BotState())
    assert (reply.intent, reply.slots, reply.language) == ("remember_name", {"name": "Lucía"}, "es")
    reply = engine.respond("¿qué día es hoy?", BotState(), now=datetime(2026, 1, 1, tzinfo=UTC))
    assert reply.text in ("Hoy es jueves 1 de enero de 2026.",
                          "Estamos a jueves 1 de enero de 2026.")


def test_tamil_is_normalised_and_matched() -> None:
    catalogue = loads_catalogue(
        '[bot]\nname = "T"\nlanguages = ["en", "ta"]\nfallback = ["Sorry?"]\n'
        '[bot.i18n.ta]\nfallback = ["மன்னிக்கவும்?"]\n'
        '[[intents]]\nname = "greet"\nexamples = ["hello", "good morning"]\n'
        'responses = ["Hello!"]\n'
        '[intents.i18n.ta]\nexamples = ["வணக்கம்", "காலை வணக்கம்"]\nresponses = ["வணக்கம்!"]\n'
        '[[intents]]\nname = "thanks"\nexamples = ["thank you"]\nresponses = ["Welcome!"]\n'
        '[intents.i18n.ta]\nexamples = ["நன்றி", "மிக்க நன்றி"]\nresponses = ["பரவாயில்லை!"]\n')
    engine = IntentEngine(catalogue, rng=random.Random(0))
    assert engine.respond("வணக்கம்!", BotState()).text == "வணக்கம்!"
    assert engine.respond("மிக்க நன்றீ", BotState()).text == "பரவாயில்லை!"  # typo: ீ for ி
    reply = engine.respond("thank you", BotState(language="ta"))
    assert reply.text == "Welcome!"  # two English words switch
    # A catalogue without Tamil falls back on it, in the person's language.
    default = IntentEngine(load_catalogue(), rng=random.Random(0))
    reply = default.respond("என் பெயர் பிரியா", BotState(language="es"))
    assert reply.intent is None and reply.language == "es"


def test_hindi_name_requests_fill_the_slot() -> None:
    engine = IntentEngine(load_catalogue(), rng=random.Random(0))
    for text in ("मुझे अमित बुलाओ", "याद रखो मेरा नाम नीना है"):
        reply = engine.respond(text, BotState())
        assert reply.intent == "remember_name", text
    assert engine.respond("मुझे अमित बुलाओ", BotState()).slots == {"name": "अमित"}
    # "my name is what?" is no name.
    assert engine.respond("मेरा नाम क्या है", BotState()).intent == "recall_name"
