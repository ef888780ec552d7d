"""Measure the intent engine on CLINC150, a public benchmark it was never tuned on.

CLINC150 (Larson et al., 2019; github.com/clinc/oos-eval, CC BY 3.0) has 150
intents in 10 domains, written by crowd workers, with out-of-scope queries. The data
is not shipped with WhatsEase: download `data/data_small.json` and
`data/domains.json` from that repository and pass the folder.

The protocol (fixed before the first run, never tuned on): one catalogue per domain,
its 15 intents, each with the first 10 training utterances as examples, as an
operator would write them; cases are all 30 test utterances of each intent, plus
100 of CLINC's out-of-scope test queries and 50 test queries of the other domains'
intents (both out of scope for this catalogue), sampled with the domain's name as
the seed. Each domain is measured with the words-only engine, with the sentence
encoder (--semantic, if installed) and with the token_set_ratio baseline.

    python scripts/clinc_eval.py --data path/to/oos-eval/data [--semantic-model FOLDER]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from whatsease.bot.catalogue import Catalogue, loads_catalogue
from whatsease.bot.engine import IntentEngine
from whatsease.bot.evaluate import Case, run_baseline, run_engine, summarise

EXAMPLES_PER_INTENT = 10
OUT_OF_SCOPE_CASES = 100
OTHER_DOMAIN_CASES = 50


def domain_sets(data: dict[str, Any], domains: dict[str, list[str]]
                ) -> list[tuple[str, Catalogue, list[Case]]]:
    train: dict[str, list[str]] = {}
    test: dict[str, list[str]] = {}
    for text, intent in data["train"]:
        train.setdefault(intent, []).append(text)
    for text, intent in data["test"]:
        test.setdefault(intent, []).append(text)
    out_of_scope = [text for text, _ in data["oos_test"]]
    sets = []
    for name, intents in domains.items():
        rng = random.Random(name)
        lines = ["[bot]", f'name = "CLINC {name}"', 'fallback = ["Sorry?"]', ""]
        for intent in intents:
            lines += ["[[intents]]", f'name = "{intent}"',
                      f"examples = {json.dumps(train[intent][:EXAMPLES_PER_INTENT])}",
                      'responses = ["ok"]', ""]
        catalogue = loads_catalogue("\n".join(lines), source=f"<clinc {name}>")
        cases = [Case(text, intent) for intent in intents for text in test[intent]]
        others = [text for other, names in domains.items() if other != name
                  for intent in names for text in test[intent]]
        cases += [Case(text, None) for text in rng.sample(out_of_scope, OUT_OF_SCOPE_CASES)]
        cases += [Case(text, None) for text in rng.sample(others, OTHER_DOMAIN_CASES)]
        sets.append((name, catalogue, cases))
    return sets


def _cell(result: dict[str, Any]) -> str:
    oos = result["out_of_scope"]
    return f"{100 * result['accuracy']:5.1f}% {oos['answered']:>4}/{oos['total']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path,
                        help="folder with CLINC150's data_small.json and domains.json")
    add_model_argument(parser)
    args = parser.parse_args(argv)
    try:
        data = json.loads((args.data / "data_small.json").read_text(encoding="utf-8"))
        domains = json.loads((args.data / "domains.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        print(f"clinc_eval: cannot read the CLINC150 data: {e}", file=sys.stderr)
        return 2
    measure(domain_sets(data, domains),
            "CLINC150 by domain: accuracy, out-of-scope answered (never tuned on)",
            args.semantic_model)
    return 0


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--semantic-model", metavar="FOLDER", default="",
                        help="read with this sentence-transformers model exported to ONNX "
                        "(its folder, or one .onnx file in it) instead of the built-in "
                        "encoder (WHATSEASE_BOT_SEMANTIC_MODEL)")


def measure(sets: list[tuple[str, Catalogue, list[Case]]], title: str, model: str = "") -> None:
    """Print each set's figures with the words, the sentence reader (if installed;
    `model` as WHATSEASE_BOT_SEMANTIC_MODEL) and the token_set_ratio baseline, then
    the totals."""
    try:
        from whatsease.bot.semantic import SemanticIndex, load_encoder

        encoder = load_encoder(model)
        semantic = True
    except ImportError as e:  # not installed, or an unusable model folder
        if model:
            print(f"{Path(sys.argv[0]).stem}: {e}", file=sys.stderr)
            raise SystemExit(2) from e
        semantic = False
    methods = ["words", *(["semantic"] if semantic else []), "baseline"]
    print(title)
    print(f"{'set':<20}" + "".join(f"{m:>18}" for m in methods))
    totals = {m: [0, 0, 0, 0] for m in methods}
    for name, catalogue, cases in sets:
        results = {"words": summarise(run_engine(IntentEngine(catalogue), cases))}
        if semantic:
            engine = IntentEngine(catalogue, semantic=SemanticIndex(catalogue, encoder))
            results["semantic"] = summarise(run_engine(engine, cases))
        results["baseline"] = summarise(run_baseline(catalogue, cases))
        print(f"{name:<20}" + "".join(f"{_cell(results[m]):>18}" for m in methods))
        for method, result in results.items():
            total = totals[method]
            total[0] += result["correct"]
            total[1] += result["total"]
            total[2] += result["out_of_scope"]["answered"]
            total[3] += result["out_of_scope"]["total"]
    if len(sets) > 1:
        cells = []
        for method in methods:
            correct, count, answered, oos = totals[method]
            cells.append(f"{100 * correct / count:5.1f}% {answered:>4}/{oos}")
        print(f"{'all':<20}" + "".join(f"{c:>18}" for c in cells))

if __name__ == "__main__":
    sys.exit(main())
