"""Measure the intent engine on BANKING77, a public benchmark it was never tuned on.

BANKING77 (Casanueva et al., 2020; github.com/PolyAI-LDN/task-specific-datasets,
CC BY 4.0) has 77 fine-grained intents of an online bank's customer support,
written by crowd workers. It has no out-of-scope queries, so those come from
CLINC150 (github.com/clinc/oos-eval, CC BY 3.0). Neither is shipped with WhatsEase:
pass the folder holding BANKING77's `train.csv` and `test.csv`, and CLINC150's data
folder.

The protocol (fixed before the first run, never tuned on): one catalogue of the 77
intents, each with the first 10 training utterances as examples, as an operator
would write them; cases are all 3,080 test utterances, plus CLINC150's 100
out-of-scope test queries (the first 100) and 200 of its test queries from domains other than
banking and credit cards, sampled with the seed "banking77".

    python scripts/banking77_eval.py --data path/to/banking_data --clinc path/to/oos-eval/data \
        [--semantic-model FOLDER]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.clinc_eval import EXAMPLES_PER_INTENT, add_model_argument, measure
from whatsease.bot.catalogue import Catalogue, loads_catalogue
from whatsease.bot.evaluate import Case

CLINC_OUT_OF_SCOPE = 100
CLINC_OTHER_DOMAINS = 200
# CLINC150's domains whose queries a bank's support could be asked.
CLINC_NEAR_DOMAINS = ("banking", "credit_cards")


def read_csv(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        # Two categories are spelt "Refund_not_showing_up" and "reverted_card_payment?":
        # intent names are lower-case identifiers.
        return [(row["text"], re.sub(r"\W", "", row["category"].lower()))
                for row in csv.DictReader(f)]


def banking_set(train: list[tuple[str, str]], test: list[tuple[str, str]],
                clinc: dict[str, Any], domains: dict[str, list[str]]
                ) -> tuple[Catalogue, list[Case]]:
    examples: dict[str, list[str]] = {}
    for text, intent in train:
        examples.setdefault(intent, []).append(text)
    lines = ["[bot]", 'name = "BANKING77"', 'fallback = ["Sorry?"]', ""]
    for intent, texts in examples.items():
        lines += ["[[intents]]", f'name = "{intent}"',
                  f"examples = {json.dumps(texts[:EXAMPLES_PER_INTENT])}",
                  'responses = ["ok"]', ""]
    catalogue = loads_catalogue("\n".join(lines), source="<banking77>")
    cases = [Case(text, intent) for text, intent in test]
    rng = random.Random("banking77")
    far = {i for d, names in domains.items() if d not in CLINC_NEAR_DOMAINS for i in names}
    others = [text for text, intent in clinc["test"] if intent in far]
    out_of_scope = [text for text, _ in clinc["oos_test"]]
    cases += [Case(text, None) for text in out_of_scope[:CLINC_OUT_OF_SCOPE]]
    cases += [Case(text, None) for text in rng.sample(others, CLINC_OTHER_DOMAINS)]
    return catalogue, cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path,
                        help="folder with BANKING77's train.csv and test.csv")
    parser.add_argument("--clinc", required=True, type=Path,
                        help="folder with CLINC150's data_small.json and domains.json")
    add_model_argument(parser)
    args = parser.parse_args(argv)
    try:
        train = read_csv(args.data / "train.csv")
        test = read_csv(args.data / "test.csv")
        clinc = json.loads((args.clinc / "data_small.json").read_text(encoding="utf-8"))
        domains = json.loads((args.clinc / "domains.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError) as e:
        print(f"banking77_eval: cannot read the data: {e}", file=sys.stderr)
        return 2
    catalogue, cases = banking_set(train, test, clinc, domains)
    measure([("banking77", catalogue, cases)],
            "BANKING77: accuracy, out-of-scope answered (never tuned on)", args.semantic_model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
