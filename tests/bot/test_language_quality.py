"""The default assistant's quality in each language, kept from regressing: accuracy,
out-of-scope answers and language detection on the development cases
(dev_cases_{es,hi}.jsonl), the tuning cases (cases_{es,hi}.jsonl) and the spent
held-out cases (heldout/ and heldout2/cases_{en,es,hi}.jsonl, each measured once and
kept here as regression cases since). Words only, as the Spanish and Hindi engines read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from whatsease.bot.catalogue import load_catalogue
from whatsease.bot.engine import IntentEngine
from whatsease.bot.evaluate import Outcome, load_cases, run_engine, summarise_languages

HERE = Path(__file__).parent
FILES = {
    "en": ("heldout/cases_en.jsonl", "heldout2/cases_en.jsonl"),
    "es": ("dev_cases_es.jsonl", "cases_es.jsonl", "heldout/cases_es.jsonl",
           "heldout2/cases_es.jsonl"),
    "hi": ("dev_cases_hi.jsonl", "cases_hi.jsonl", "heldout/cases_hi.jsonl",
           "heldout2/cases_hi.jsonl"),
}
# Measured on these files when the second held-out set joined them (en 87.8%, es 94.2%,
# hi 95.7%; out of scope answered 30%, 19.5%, 17.1%), with about two points of slack for
# harmless movement. Raise them when the engine gets better; never lower them to make
# a change pass.
MIN_ACCURACY = {"en": 0.86, "es": 0.92, "hi": 0.935}
MAX_OUT_OF_SCOPE_ANSWERED = {"en": 0.32, "es": 0.22, "hi": 0.2}
MIN_DETECTION = 0.98  # on messages of three words or more (the target)


@pytest.fixture(scope="module")
def outcomes() -> list[Outcome]:
    catalogue = load_catalogue()
    cases = [case for files in FILES.values() for name in files
             for case in load_cases(HERE / name, catalogue, source=name)]
    return run_engine(IntentEngine(catalogue), cases)


@pytest.fixture(scope="module")
def report(outcomes: list[Outcome]) -> dict[str, dict[str, Any]]:
    return summarise_languages(outcomes)


@pytest.mark.parametrize("language", sorted(FILES))
def test_accuracy_does_not_regress(report: dict[str, dict[str, Any]], language: str) -> None:
    figures = report[language]
    assert figures["accuracy"] >= MIN_ACCURACY[language], figures
    assert figures["out_of_scope"]["rate"] <= MAX_OUT_OF_SCOPE_ANSWERED[language], figures


@pytest.mark.parametrize("language", sorted(FILES))
def test_language_detection(report: dict[str, dict[str, Any]], language: str) -> None:
    assert report[language]["detection"]["accuracy"] >= MIN_DETECTION, report[language]


def test_spanish_and_hindi_are_within_five_points_of_english(outcomes: list[Outcome]) -> None:
    # On the sets written alike (the spent held-out ones), not the tuning sets.
    alike = summarise_languages([o for o in outcomes if o.case.source.startswith("heldout")])
    english = alike["en"]["accuracy"]
    for language in ("es", "hi"):
        assert alike[language]["accuracy"] >= english - 0.05, (language, alike[language])
