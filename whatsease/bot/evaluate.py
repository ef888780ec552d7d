"""bot-eval: measures a catalogue against a file of labelled messages."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

from rapidfuzz import fuzz, process
from rapidfuzz.utils import default_process

from whatsease.bot.catalogue import Catalogue, CatalogueError, load_catalogue
from whatsease.bot.engine import BotState, IntentEngine, open_reader
from whatsease.bot.language import guess_language

# The baseline answers with the nearest example's intent when token_set_ratio (0..100)
# reaches this; below it falls back. 60 is the usual "looks related" cut for that scorer.
BASELINE_THRESHOLD = 60.0
# Every case is evaluated at this instant, so runs are repeatable.
EVAL_NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
FALLBACK_LABEL = "(fallback)"
# Language detection is scored on messages of at least this many words (the target is
# set for them; shorter ones fall back to the person's language by design).
DETECTION_MIN_WORDS = 3


class CasesError(ValueError):
    """A cases file is unreadable or has a malformed line."""


@dataclass(frozen=True)
class Case:
    """One labelled message: `intent` None means the bot must fall back."""

    text: str
    intent: str | None
    context: str | None = None
    line: int = 0  # in the cases file; 0 when not read from one
    # The language the message is written in (ISO 639-1): the case's "lang", else the
    # file's (see `file_language`).
    lang: str = ""
    source: str = ""  # the cases file's name, when several are measured together


@dataclass(frozen=True)
class Outcome:
    case: Case
    predicted: str | None
    confidence: float
    language: str = ""  # the reply's language
    detected: str | None = None  # the message's language as detection tells it


def file_language(path: str | Path, catalogue: Catalogue) -> str:
    """The language of a cases file's messages: the `_xx` ending of its name when xx is
    one of the catalogue's languages ("cases_es.jsonl" → "es"), else the catalogue's
    default language."""
    stem = Path(path).stem
    code = stem.rsplit("_", 1)[-1] if "_" in stem else ""
    return code if code in catalogue.languages else catalogue.languages[0]


def load_cases(path: str | Path, catalogue: Catalogue, *, lang: str = "",
               source: str = "") -> list[Case]:
    """Read a JSON-lines cases file; raises `CasesError` naming the line at fault.

    A case's language is its "lang" field, else `lang`, else `file_language`.
    """
    default_lang = lang or file_language(path, catalogue)
    if default_lang not in catalogue.languages:
        raise CasesError(f"{path}: language '{default_lang}' is not one of the catalogue's "
                         f"({', '.join(catalogue.languages)})")
    names = {intent.name for intent in catalogue.intents}
    contexts = catalogue.contexts
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise CasesError(f"{path}: cannot read the file ({e})") from e
    cases: list[Case] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as e:
            raise CasesError(f"{where}: not valid JSON ({e.msg})") from e
        if not isinstance(data, dict):
            raise CasesError(f"{where}: expected an object with 'text' and 'intent'")
        text, intent, context = data.get("text"), data.get("intent"), data.get("context")
        if not isinstance(text, str):
            raise CasesError(f"{where}: 'text' must be a string")
        if "intent" not in data or not (intent is None or isinstance(intent, str)):
            raise CasesError(f"{where}: 'intent' must be an intent name or null")
        if intent is not None and intent not in names:
            raise CasesError(f"{where}: intent '{intent}' is not in the catalogue")
        if context is not None and (not isinstance(context, str) or context not in contexts):
            raise CasesError(f"{where}: 'context' must be a context some intent sets")
        case_lang = data.get("lang", default_lang)
        if case_lang not in catalogue.languages:
            raise CasesError(f"{where}: 'lang' must be one of the catalogue's languages "
                             f"({', '.join(catalogue.languages)})")
        cases.append(Case(text, intent, context, number, case_lang, source))
    if not cases:
        raise CasesError(f"{path}: no cases in the file")
    return cases


def run_engine(engine: IntentEngine, cases: Sequence[Case]) -> list[Outcome]:
    """Classify every case as `respond` would, with the case's context active."""
    outcomes = []
    for case in cases:
        state = BotState()
        if case.context is not None:
            state = BotState(
                context=case.context,
                context_expires_at=EVAL_NOW + timedelta(minutes=1),
                context_turns_left=engine.catalogue.bot.context_turns,
            )
        reply = engine.respond(case.text, state, now=EVAL_NOW, rng=Random(0))
        detected = guess_language(case.text, engine.catalogue.languages,
                                  light=engine.catalogue.bot.light_detection).language
        outcomes.append(Outcome(case, reply.intent, reply.confidence, reply.language, detected))
    return outcomes


class BaselineMatcher:
    """Nearest example by plain rapidfuzz `token_set_ratio`, with the same context rules.

    What a first version would do: no normalisation beyond rapidfuzz's default
    processing, no weighting, no typo handling. Context intents only match in their
    context, and a catch-all intent takes what nothing in its context matched, so
    the comparison with the engine is about matching alone.
    """

    def __init__(self, catalogue: Catalogue, threshold: float = BASELINE_THRESHOLD) -> None:
        self.threshold = threshold
        self._examples: list[tuple[str, str, str | None]] = []  # (text, intent, context_in)
        for intent in catalogue.intents:
            if intent.catch_all:
                continue
            for example in intent.examples:
                self._examples.append((default_process(example), intent.name, intent.context_in))
        self._catch_all = {i.context_in: i.name for i in catalogue.intents if i.catch_all}

    def predict(self, text: str, context: str | None) -> tuple[str | None, float]:
        query = default_process(text)
        if context is not None:
            found = self._best(query, lambda c: c == context)
            if found is not None and found[1] >= self.threshold:
                return found[0], found[1] / 100.0
            if context in self._catch_all:
                return self._catch_all[context], 1.0
        found = self._best(query, lambda c: c is None)
        if found is None or found[1] < self.threshold:
            return None, (found[1] / 100.0 if found else 0.0)
        return found[0], found[1] / 100.0

    def _best(self, query: str,
              allowed: Callable[[str | None], bool]) -> tuple[str, float] | None:
        choices = [(t, name) for t, name, c in self._examples if allowed(c)]
        if not choices or not query:
            return None
        result = process.extractOne(
            query, [t for t, _ in choices], scorer=fuzz.token_set_ratio, processor=None
        )
        if result is None:
            return None
        _, score, position = result
        return choices[position][1], float(score)


def run_baseline(catalogue: Catalogue, cases: Sequence[Case]) -> list[Outcome]:
    """The baseline on each case, against the examples of the case's language."""
    matchers = {code: BaselineMatcher(catalogue.in_language(code))
                for code in catalogue.languages}
    default = catalogue.languages[0]
    return [Outcome(case, *matchers[case.lang or default].predict(case.text, case.context))
            for case in cases]


def summarise(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Accuracy, out-of-scope answers, per-intent precision/recall and confusions."""
    total = len(outcomes)
    correct = sum(o.predicted == o.case.intent for o in outcomes)
    out_of_scope = [o for o in outcomes if o.case.intent is None]
    answered = sum(o.predicted is not None for o in out_of_scope)
    labels = sorted(
        {o.case.intent for o in outcomes} | {o.predicted for o in outcomes},
        key=lambda name: (name is None, name or ""),
    )
    per_intent: dict[str, dict[str, Any]] = {}
    for label in labels:
        expected = sum(o.case.intent == label for o in outcomes)
        predicted = sum(o.predicted == label for o in outcomes)
        hits = sum(o.case.intent == label and o.predicted == label for o in outcomes)
        per_intent[label if label is not None else FALLBACK_LABEL] = {
            "precision": hits / predicted if predicted else None,
            "recall": hits / expected if expected else None,
            "support": expected,
        }
    confusions = Counter(
        (o.case.intent, o.predicted) for o in outcomes if o.predicted != o.case.intent
    )
    return {
        "total": total,
        "correct": correct,
        "accuracy": correct / total if total else 0.0,
        "out_of_scope": {
            "total": len(out_of_scope),
            "answered": answered,
            "rate": answered / len(out_of_scope) if out_of_scope else 0.0,
        },
        "per_intent": per_intent,
        "confusions": [
            {"expected": expected, "predicted": predicted, "count": count}
            for (expected, predicted), count in sorted(
                confusions.items(), key=lambda item: (-item[1], str(item[0]))
            )
        ],
    }


def summarise_languages(outcomes: Sequence[Outcome]) -> dict[str, dict[str, Any]]:
    """Per language of the cases: accuracy and out-of-scope answers, language detection
    on messages of DETECTION_MIN_WORDS words or more, and how many replies spoke the
    message's language (from a new conversation, as bot-eval measures every case)."""
    languages: dict[str, dict[str, Any]] = {}
    for code in dict.fromkeys(o.case.lang for o in outcomes):
        subset = [o for o in outcomes if o.case.lang == code]
        overall = summarise(subset)
        long = [o for o in subset if _words(o.case.text) >= DETECTION_MIN_WORDS]
        detected = sum(o.detected == code for o in long)
        replied = sum(o.language == code for o in subset)
        languages[code] = {
            "total": overall["total"],
            "correct": overall["correct"],
            "accuracy": overall["accuracy"],
            "out_of_scope": overall["out_of_scope"],
            "detection": {"min_words": DETECTION_MIN_WORDS, "total": len(long),
                          "correct": detected,
                          "accuracy": detected / len(long) if long else None},
            "reply_language": {"total": len(subset), "correct": replied,
                               "accuracy": replied / len(subset) if subset else None},
        }
    return languages


def _words(text: str) -> int:
    return sum(1 for part in text.split() if any(ch.isalnum() for ch in part))


def _case_rows(outcomes: Sequence[Outcome], *, languages: bool = False) -> list[dict[str, Any]]:
    """One row per case; with `languages`, the case's, the reply's and the detected
    language too."""
    rows: list[dict[str, Any]] = []
    for o in outcomes:
        row: dict[str, Any] = {
            "text": o.case.text,
            "expected": o.case.intent,
            "predicted": o.predicted,
            "confidence": round(o.confidence, 4),
        }
        if languages:
            row.update(lang=o.case.lang, reply_language=o.language, detected=o.detected)
        rows.append(row)
    return rows


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


# The text report lists at most this many misses (--json lists every case).
MAX_LISTED_MISSES = 100


def format_report(
    summary: dict[str, Any], baseline: dict[str, Any] | None, catalogue: str, cases: str,
    *, semantic: bool = False, outcomes: Sequence[Outcome] = (), reader: str = "",
    languages: dict[str, dict[str, Any]] | None = None,
) -> str:
    """The human-readable report bot-eval prints; with `outcomes`, the misses too;
    with `reader`, a line saying what read the messages; with `languages` (from
    `summarise_languages`), a table per language."""
    lines = [f"bot-eval: {catalogue} on {cases} ({summary['total']} cases)"]
    if reader:
        lines.append(f"reader: {reader}")
    lines.append("")
    lines.append(f"{'method':<10} {'accuracy':>18}   out-of-scope answered")
    engine = "semantic" if semantic else "engine"
    for name, result in ((engine, summary), ("baseline", baseline)):
        if result is None:
            continue
        oos = result["out_of_scope"]
        accuracy = f"{_percent(result['accuracy'])} ({result['correct']}/{result['total']})"
        answered = f"{oos['answered']}/{oos['total']} ({_percent(oos['rate'])})"
        lines.append(f"{name:<10} {accuracy:>18}   {answered}")
    if languages:
        lines += ["", "Per language (engine):",
                  f"{'lang':<5} {'accuracy':>18}   {'out-of-scope answered':<21}   "
                  f"{'detected (≥' + str(DETECTION_MIN_WORDS) + ' words)':>22}   reply language"]
        for code, row in languages.items():
            oos = row["out_of_scope"]
            detection, replied = row["detection"], row["reply_language"]
            accuracy = f"{_percent(row['accuracy'])} ({row['correct']}/{row['total']})"
            answered = f"{oos['answered']}/{oos['total']} ({_percent(oos['rate'])})"
            detected = (f"{_percent(detection['accuracy'])} "
                        f"({detection['correct']}/{detection['total']})")
            spoke = f"{_percent(replied['accuracy'])} ({replied['correct']}/{replied['total']})"
            lines.append(f"{code:<5} {accuracy:>18}   {answered:<21}   {detected:>22}   {spoke}")
    width = max(len(name) for name in summary["per_intent"]) + 2
    header = f"{'intent':<{width}} {'precision':>9} {'recall':>7} {'n':>4}"
    lines += ["", "Per intent (engine):", header]
    for name, row in summary["per_intent"].items():
        lines.append(
            f"{name:<{width}} {_percent(row['precision']):>9} "
            f"{_percent(row['recall']):>7} {row['support']:>4}"
        )
    lines += ["", "Confusions (expected → predicted: count):"]
    if not summary["confusions"]:
        lines.append("  none")
    for row in summary["confusions"]:
        expected = row["expected"] or FALLBACK_LABEL
        predicted = row["predicted"] or FALLBACK_LABEL
        lines.append(f"  {expected} → {predicted}: {row['count']}")
    if outcomes:
        misses = [o for o in outcomes if o.predicted != o.case.intent]
        lines += ["", "Misses (line: message  expected → predicted, confidence):"]
        lines += [_miss_line(o) for o in misses[:MAX_LISTED_MISSES]] or ["  none"]
        if len(misses) > MAX_LISTED_MISSES:
            lines.append(f"  … and {len(misses) - MAX_LISTED_MISSES} more "
                         "(--json lists every case)")
    return "\n".join(lines)


def _miss_line(outcome: Outcome) -> str:
    case = outcome.case
    # json.dumps quotes the message and escapes control characters in it.
    text = json.dumps(case.text, ensure_ascii=False)
    context = f" [context {case.context}]" if case.context else ""
    expected = case.intent or FALLBACK_LABEL
    predicted = outcome.predicted or FALLBACK_LABEL
    where = f"{case.source}:{case.line}" if case.source else str(case.line)
    return f"  {where}: {text}{context}  {expected} → {predicted}, {outcome.confidence:.2f}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="whatsease bot-eval",
        description="Measure a bot catalogue on labelled messages (one JSON object a line: "
        '{"text": ..., "intent": NAME or null, "context": optional}).',
    )
    parser.add_argument("--catalogue", required=True, metavar="FILE", help="TOML catalogue")
    parser.add_argument("--cases", required=True, metavar="FILE", action="append",
                        help="JSON-lines cases; give it several times to measure several "
                        "files (e.g. one per language) together")
    parser.add_argument(
        "--lang", default="", metavar="CODE",
        help="the language of the cases' messages when a case has no \"lang\" (default: "
        "the file name's _xx ending if xx is a catalogue language, as in cases_es.jsonl, "
        "else the catalogue's default language)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help=f"also run a plain token_set_ratio nearest-example baseline "
        f"(threshold {BASELINE_THRESHOLD:g})",
    )
    readers = parser.add_mutually_exclusive_group()
    readers.add_argument(
        "--words-only",
        action="store_true",
        help="read with the words alone, as the server does with "
        "WHATSEASE_BOT_SEMANTIC=false (by default the sentence reader is used unless "
        "its encoder package is missing, as the server does)",
    )
    readers.add_argument(
        "--semantic",
        action="store_true",
        help="require the sentence reader (exit 2 if it is not installed), as the "
        "server does with WHATSEASE_BOT_SEMANTIC=true",
    )
    readers.add_argument(
        "--semantic-model",
        metavar="FOLDER",
        default="",
        help="with the sentence reader, use this sentence-transformers model exported "
        "to ONNX (its folder, or one .onnx file in it) instead of the built-in encoder "
        "(implies --semantic), as the server does with WHATSEASE_BOT_SEMANTIC_MODEL",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run bot-eval; returns 0 when it ran, 2 for bad arguments or unreadable files."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse has printed the usage or the help
        return e.code if isinstance(e.code, int) else 2
    try:
        catalogue = load_catalogue(args.catalogue)
        several = len(args.cases) > 1
        cases = [case for path in args.cases for case in load_cases(
            path, catalogue, lang=args.lang, source=Path(path).name if several else "")]
    except (CatalogueError, CasesError) as e:
        print(f"whatsease bot-eval: {e}", file=sys.stderr)
        return 2

    semantic, reader = None, "words only (--words-only)"
    if not args.words_only:
        try:
            semantic, reader = open_reader(catalogue, required=args.semantic,
                                           model=args.semantic_model)
        except ImportError as e:  # required, and not installed or an unusable model
            print(f"whatsease bot-eval: {e}", file=sys.stderr)
            return 2
    args.semantic = semantic is not None
    outcomes = run_engine(IntentEngine(catalogue, semantic=semantic), cases)
    summary = summarise(outcomes)
    multilingual = len(catalogue.languages) > 1 or len({c.lang for c in cases}) > 1
    languages = summarise_languages(outcomes) if multilingual else None
    baseline_outcomes = run_baseline(catalogue, cases) if args.baseline else None
    baseline = summarise(baseline_outcomes) if baseline_outcomes is not None else None

    if args.json:
        document: dict[str, Any] = {
            "catalogue": args.catalogue,
            "cases_file": args.cases[0] if not several else args.cases,
            "semantic": args.semantic,
            "semantic_model": args.semantic_model or None,
            "reader": reader,
            **summary,
            **({"languages": languages} if languages is not None else {}),
            "cases": _case_rows(outcomes, languages=languages is not None),
        }
        if baseline is not None and baseline_outcomes is not None:
            document["baseline"] = {**baseline, "cases": _case_rows(baseline_outcomes)}
        print(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        print(format_report(summary, baseline, args.catalogue, ", ".join(args.cases),
                            semantic=args.semantic, outcomes=outcomes, reader=reader,
                            languages=languages))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
