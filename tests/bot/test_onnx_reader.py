"""The sentence reader on a model folder (WHATSEASE_BOT_SEMANTIC_MODEL): loading,
pooling, errors, the engine, bot-eval and the server.

The model is a real ONNX file built here: a word-embedding table in which words
of the same meaning share a vector ("lost", "misplaced" and "vanished"; "card"
and "plastic"), read by a real tokenizer. So a paraphrase that shares no word
with the examples is near them, as it is for a trained sentence encoder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from tests.bot.test_assistant import bot_reply_to, interactions, say
from tests.support import ServerThread, register
from whatsease.bot.catalogue import Catalogue, loads_catalogue
from whatsease.bot.engine import IntentEngine
from whatsease.bot.semantic import OnnxEncoder, SemanticIndex, SemanticModelError
from whatsease.config import Config
from whatsease.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
WIDTH = 16
# Each group of words shares a meaning (a vector); every other word has its own.
MEANINGS = [
    ["lost", "misplaced", "vanished", "stolen", "nicked"],
    ["card", "plastic", "debit"],
    ["open", "opening", "hours", "shut", "closed"],
    ["branch", "branches", "office", "doors"],
    ["weather", "rain", "sunny"],
    ["pancakes", "recipe", "cook"],
]
WORDS = ["i", "my", "the", "a", "is", "are", "your", "when", "what", "how", "do", "have",
         "has", "been", "it", "today", "to", "make", "will", "tomorrow", "be", "was"]

CATALOGUE = """
[bot]
name = "Test Bank"
fallback = ["Sorry, I didn't get that."]

[[intents]]
name = "card_lost"
examples = ["i lost my card", "my card was stolen", "my debit card is lost"]
responses = ["Which card? Tell me its last four digits."]

[[intents]]
name = "branch_hours"
examples = ["when is the branch open", "branch opening hours", "what are your hours"]
responses = ["Branches open 9 to 5, Monday to Saturday."]
"""
OFFTOPIC = ["what is the weather today", "will it rain tomorrow",
            "how do i make pancakes", "a recipe to cook"]
PARAPHRASE = "my plastic has vanished"  # no word in common with card_lost's examples


def build_model(folder: Path, *, pooling: str = "mean", layout: str = "model.onnx",
                inputs: tuple[str, ...] = ("input_ids", "attention_mask")) -> Path:
    """Write a word-embedding model with its tokenizer.json into `folder`."""
    rng = np.random.default_rng(7)
    vocab = {"[UNK]": 0}
    rows = [rng.normal(size=WIDTH)]
    for group in MEANINGS:
        vector = rng.normal(size=WIDTH)
        for word in group:
            vocab[word] = len(rows)
            rows.append(vector + rng.normal(scale=0.05, size=WIDTH))
    for word in WORDS:
        vocab[word] = len(rows)
        rows.append(rng.normal(scale=0.3, size=WIDTH))  # small: function words say little
    table = numpy_helper.from_array(np.asarray(rows, np.float32), name="table")
    graph_inputs = [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "seq"])
                    for name in inputs]
    output = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                           ["batch", "seq", WIDTH])
    graph = helper.make_graph([helper.make_node("Gather", ["table", "input_ids"],
                                                ["last_hidden_state"])],
                              "words", graph_inputs, [output], initializer=[table])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / layout
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(folder / "tokenizer.json"))
    if pooling == "cls":
        (folder / "1_Pooling").mkdir()
        (folder / "1_Pooling" / "config.json").write_text(json.dumps(
            {"word_embedding_dimension": WIDTH, "pooling_mode_cls_token": True,
             "pooling_mode_mean_tokens": False}), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return loads_catalogue(CATALOGUE, source="<test bank>")


def test_vectors_are_unit_length_and_padding_changes_nothing(model_folder: Path) -> None:
    encoder = OnnxEncoder(model_folder)
    alone = encoder.encode(["my card"])
    together = encoder.encode(["my card", "when is the branch open today my card"])
    assert alone.shape == (1, WIDTH)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    # The short sentence is padded in the batch; the mask keeps the padding out.
    assert np.allclose(alone[0], together[0], atol=1e-5)
    assert not np.allclose(together[0], together[1], atol=1e-2)
    # Many texts of many lengths (batched, sorted by length inside) come back in order.
    rng = np.random.default_rng(3)
    vocabulary = [w for group in MEANINGS for w in group] + WORDS
    texts = [" ".join(rng.choice(vocabulary, size=int(rng.integers(1, 12))))
             for _ in range(75)]
    one_by_one = np.vstack([encoder.encode([t]) for t in texts])
    assert np.allclose(encoder.encode(texts), one_by_one, atol=1e-5)
    # A text with no tokens at all is read as nothing in particular, not an error.
    blank = encoder.encode(["   "])
    assert blank.shape == (1, WIDTH) and np.isfinite(blank).all()


def test_first_token_pooling_and_the_hugging_face_layout(tmp_path: Path,
                                                         model_folder: Path) -> None:
    cls = OnnxEncoder(build_model(tmp_path / "cls", pooling="cls", layout="onnx/model.onnx"))
    mean = OnnxEncoder(model_folder)
    # With first-token pooling only the first word counts.
    assert np.allclose(cls.encode(["card"])[0], cls.encode(["card is lost"])[0], atol=1e-5)
    assert not np.allclose(mean.encode(["card"])[0], mean.encode(["card is lost"])[0],
                           atol=1e-2)


def test_the_path_may_name_one_onnx_file(tmp_path: Path, model_folder: Path) -> None:
    """As Hugging Face lays out quantized variants: onnx/model_quint8_avx2.onnx beside
    onnx/model.onnx, with tokenizer.json and 1_Pooling in the folder above."""
    folder = build_model(tmp_path / "hub", pooling="cls", layout="onnx/model.onnx")
    variant = folder / "onnx" / "model_quint8_avx2.onnx"
    variant.write_bytes((folder / "onnx" / "model.onnx").read_bytes())
    (folder / "onnx" / "model.onnx").write_bytes(b"not the one asked for")
    cls = OnnxEncoder(variant)
    # The tokenizer and the pooling configuration came from the folder above.
    assert np.allclose(cls.encode(["card"])[0], cls.encode(["card is lost"])[0], atol=1e-5)
    # A file beside its tokenizer.json reads as the folder does.
    beside = OnnxEncoder(model_folder / "model.onnx")
    assert np.allclose(beside.encode(["my card"]), OnnxEncoder(model_folder).encode(["my card"]))
    with pytest.raises(SemanticModelError, match=r"tokenizer\.json: is not an \.onnx file"):
        OnnxEncoder(model_folder / "tokenizer.json")


def test_a_model_that_asks_for_token_types_gets_them(tmp_path: Path) -> None:
    folder = build_model(tmp_path / "types",
                         inputs=("input_ids", "attention_mask", "token_type_ids"))
    assert OnnxEncoder(folder).encode(["my card"]).shape == (1, WIDTH)


def test_unusable_model_folders_are_named_with_the_reason(tmp_path: Path,
                                                          model_folder: Path) -> None:
    with pytest.raises(SemanticModelError, match="no such folder"):
        OnnxEncoder(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SemanticModelError, match=r"holds no model\.onnx"):
        OnnxEncoder(empty)
    broken = build_model(tmp_path / "broken")
    (broken / "tokenizer.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(SemanticModelError, match=r"tokenizer\.json: cannot be read"):
        OnnxEncoder(broken)
    garbage = build_model(tmp_path / "garbage")
    (garbage / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(SemanticModelError, match=r"model\.onnx: cannot be loaded"):
        OnnxEncoder(garbage)
    no_mask = build_model(tmp_path / "no_mask", inputs=("input_ids",))
    with pytest.raises(SemanticModelError, match="takes no attention_mask"):
        OnnxEncoder(no_mask)


def test_the_engine_reads_a_paraphrase_by_meaning(model_folder: Path,
                                                  catalogue: Catalogue) -> None:
    words = IntentEngine(catalogue)
    reader = IntentEngine(catalogue, semantic=SemanticIndex(
        catalogue, OnnxEncoder(model_folder), offtopic=OFFTOPIC))
    assert words.match(PARAPHRASE).intent_name is None
    assert reader.match(PARAPHRASE).intent_name == "card_lost"
    assert reader.match("are your doors shut").intent_name == "branch_hours"
    for text in ("will it be sunny tomorrow", "pancakes recipe"):
        assert reader.match(text).intent_name is None, text


def _eval(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "whatsease", "bot-eval", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)


def test_bot_eval_reads_with_a_model_folder(tmp_path: Path, model_folder: Path) -> None:
    catalogue = tmp_path / "bank.toml"
    catalogue.write_text(CATALOGUE, encoding="utf-8")
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps({"text": PARAPHRASE, "intent": "card_lost"}) + "\n",
                     encoding="utf-8")
    done = _eval("--catalogue", str(catalogue), "--cases", str(cases), "--json",
                 "--semantic-model", str(model_folder))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["semantic"] is True and report["semantic_model"] == str(model_folder)
    assert report["cases"][0]["predicted"] == "card_lost"
    missing = _eval("--catalogue", str(catalogue), "--cases", str(cases),
                    "--semantic-model", str(tmp_path))
    assert missing.returncode == 2
    assert f"{tmp_path}: holds no model.onnx" in missing.stderr


def test_the_setting_names_a_folder_or_an_onnx_file_that_exists(model_folder: Path) -> None:
    model = model_folder / "model.onnx"
    assert Config.from_env({"WHATSEASE_BOT_SEMANTIC_MODEL": str(model)}
                           ).bot_semantic_model == str(model)
    with pytest.raises(ConfigError, match=r"WHATSEASE_BOT_SEMANTIC_MODEL.*no such directory"):
        Config.from_env({"WHATSEASE_BOT_SEMANTIC_MODEL": str(model_folder / "nowhere")})
    with pytest.raises(ConfigError, match=r"no such directory or \.onnx file"):
        Config.from_env({"WHATSEASE_BOT_SEMANTIC_MODEL": str(model_folder / "tokenizer.json")})


def test_the_server_reads_with_the_model_folder(
        make_server: Callable[..., ServerThread], tmp_path: Path, model_folder: Path) -> None:
    catalogue = tmp_path / "bank.toml"
    catalogue.write_text(CATALOGUE, encoding="utf-8")
    srv = make_server(bot_catalogue=str(catalogue), bot_semantic_model=str(model_folder))
    alice = register(srv.port, "onnx-reader")
    sent = say(alice, PARAPHRASE)
    reply = bot_reply_to(alice, sent)
    assert reply["content"] == "Which card? Tell me its last four digits."
    assert interactions(alice)[0]["intent"] == "card_lost"


def test_a_bad_model_folder_stops_the_server_with_the_reason(mongo_uri: str,
                                                             tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHATSEASE_")}
    env.update(WHATSEASE_MONGODB_URI=mongo_uri, WHATSEASE_DB_NAME="onnx_bad_model",
               WHATSEASE_HOST="127.0.0.1", WHATSEASE_PORT="0",
               WHATSEASE_DATA_DIR=str(tmp_path), WHATSEASE_BOT_SEMANTIC_MODEL=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "whatsease"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert f"WHATSEASE_BOT_SEMANTIC_MODEL: {tmp_path}: holds no model.onnx" in done.stderr
