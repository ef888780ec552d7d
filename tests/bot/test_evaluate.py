"""Tests for whatsease.bot.evaluate (bot-eval), and the default catalogue's quality bar."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from whatsease.bot.catalogue import DEFAULT_CATALOGUE_PATH, load_catalogue
from whatsease.bot.engine import IntentEngine
from whatsease.bot.evaluate import load_cases, main, run_baseline, run_engine, summarise

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CASES = REPO / "tests" / "bot" / "cases.jsonl"

# The bar from the issue: a regression below it fails CI.
MIN_ACCURACY = 0.95
MAX_OUT_OF_SCOPE_ANSWERED = 0.05

TINY = """
[bot]
name = "Tiny"
fallback = ["Sorry?"]

[[intents]]
name = "greet"
examples = ["hello", "hi there", "good morning"]
responses = ["Hi!"]

[[intents]]
name = "opening_hours"
examples = ["when are you open", "what are your opening hours"]
responses = ["9 to 5."]

[[intents]]
name = "order_status"
examples = ["where is my order"]
responses = ["Your order number?"]
context_out = "awaiting_order_number"

[[intents]]
name = "give_order_number"
context_in = "awaiting_order_number"
examples = ["it's 48213"]
slots = { order = '\\b\\d{5}\\b' }
responses = ["Order {order} is on its way."]
"""

TINY_CASES: list[dict[str, Any]] = [
    {"text": "hello!", "intent": "greet"},
    {"text": "when r u open", "intent": "opening_hours"},
    {"text": "good morning, when are you open?", "intent": "greet"},  # will be missed
    {"text": "48213", "intent": "give_order_number", "context": "awaiting_order_number"},
    {"text": "book me a flight", "intent": None},
    {"text": "opening hours of the louvre museum", "intent": None},  # may be answered
]


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[str, str]:
    catalogue = tmp_path / "tiny.toml"
    catalogue.write_text(TINY, encoding="utf-8")
    cases = tmp_path / "cases.jsonl"
    cases.write_text("\n".join(json.dumps(c) for c in TINY_CASES) + "\n", encoding="utf-8")
    return str(catalogue), str(cases)


def test_json_output_lists_every_case_in_order(
    tiny: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    catalogue, cases = tiny
    assert main(["--catalogue", catalogue, "--words-only", "--cases", cases, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = report["cases"]
    assert [r["text"] for r in rows] == [c["text"] for c in TINY_CASES]
    assert [r["expected"] for r in rows] == [c["intent"] for c in TINY_CASES]
    for row in rows:
        assert set(row) == {"text", "expected", "predicted", "confidence"}
        assert 0.0 <= row["confidence"] <= 1.0
    assert rows[0]["predicted"] == "greet"
    assert rows[3]["predicted"] == "give_order_number"  # evaluated with its context active
    assert rows[4]["predicted"] is None  # a fallback is null

    correct = sum(r["predicted"] == r["expected"] for r in rows)
    assert report["total"] == len(TINY_CASES)
    assert report["correct"] == correct
    assert report["accuracy"] == pytest.approx(correct / len(TINY_CASES))
    answered = sum(r["expected"] is None and r["predicted"] is not None for r in rows)
    assert report["out_of_scope"] == {
        "total": 2,
        "answered": answered,
        "rate": pytest.approx(answered / 2),
    }
    greet = report["per_intent"]["greet"]
    hits = sum(r["expected"] == r["predicted"] == "greet" for r in rows)
    assert greet["support"] == 2
    assert greet["recall"] == pytest.approx(hits / 2)
    assert "baseline" not in report


def test_text_report(tiny: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    catalogue, cases = tiny
    assert main(["--catalogue", catalogue, "--words-only", "--cases", cases]) == 0
    out = capsys.readouterr().out
    report = _json_report(catalogue, cases)
    assert f"({report['correct']}/6)" in out
    assert "out-of-scope answered" in out
    assert f"{report['out_of_scope']['answered']}/2" in out
    assert "Per intent (engine):" in out
    assert "precision" in out and "recall" in out
    for name in ("greet", "opening_hours", "give_order_number", "(fallback)"):
        assert any(line.startswith(name) for line in out.splitlines()), name
    assert "Confusions (expected → predicted: count):" in out
    for row in report["confusions"]:
        expected = row["expected"] or "(fallback)"
        predicted = row["predicted"] or "(fallback)"
        assert f"  {expected} → {predicted}: {row['count']}" in out
    # Every miss is listed by its line in the cases file, so it can be looked at.
    misses = [(number, case) for number, case in enumerate(TINY_CASES, start=1)
              if case["intent"] != _predicted(catalogue, cases)[number - 1]]
    assert misses, "the tiny set has a case the engine misses"
    listed = out.split("Misses (line: message  expected → predicted, confidence):\n")[1]
    assert len(listed.splitlines()) == len(misses)
    for number, case in misses:
        assert f'  {number}: {json.dumps(case["text"])}' in listed
    assert '"hello!"' not in listed


def test_the_text_report_lists_a_bounded_number_of_misses(
    tiny: tuple[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    catalogue, cases = tiny
    wrong = Path(cases).with_name("wrong.jsonl")
    # give_order_number waits for its context: without it, every one of these is a miss.
    wrong.write_text("".join(json.dumps({"text": t, "intent": "give_order_number"}) + "\n"
                             for t in ("hello", "hi there", "hey", "when are you open")),
                     encoding="utf-8")
    monkeypatch.setattr("whatsease.bot.evaluate.MAX_LISTED_MISSES", 2)
    assert main(["--catalogue", catalogue, "--words-only", "--cases", str(wrong)]) == 0
    listed = capsys.readouterr().out.split("confidence):\n")[1].splitlines()
    assert len(listed) == 3 and listed[2] == "  … and 2 more (--json lists every case)"


def _predicted(catalogue: str, cases: str) -> list[str | None]:
    engine_catalogue = load_catalogue(catalogue)
    return [o.predicted for o in run_engine(IntentEngine(engine_catalogue),
                                            load_cases(cases, engine_catalogue))]


def _json_report(catalogue: str, cases: str) -> dict[str, Any]:
    engine_catalogue = load_catalogue(catalogue)
    return summarise(
        run_engine(IntentEngine(engine_catalogue), load_cases(cases, engine_catalogue))
    )


def test_baseline_is_reported_beside_the_engine(
    tiny: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    catalogue, cases = tiny
    assert main(["--catalogue", catalogue, "--cases", cases, "--baseline"]) == 0
    assert "\nbaseline " in capsys.readouterr().out
    assert main(["--catalogue", catalogue, "--cases", cases, "--baseline", "--json"]) == 0
    baseline = json.loads(capsys.readouterr().out)["baseline"]
    assert len(baseline["cases"]) == len(TINY_CASES)
    assert 0.0 <= baseline["accuracy"] <= 1.0


@pytest.mark.parametrize(
    ("cases_text", "error"),
    [
        ('{"text": "hi", "intent": "greet"}\nnot json\n', "cases.jsonl:2: not valid JSON"),
        ('{"text": "hi"}\n', "cases.jsonl:1: 'intent' must be an intent name or null"),
        ('{"text": 5, "intent": null}\n', "cases.jsonl:1: 'text' must be a string"),
        ('{"text": "hi", "intent": "nope"}\n', "intent 'nope' is not in the catalogue"),
        ('{"text": "hi", "intent": null, "context": "x"}\n', "'context' must be a context"),
        ("\n", "no cases in the file"),
    ],
)
def test_bad_cases_file_exits_2(
    tiny: tuple[str, str], capsys: pytest.CaptureFixture[str], cases_text: str, error: str
) -> None:
    catalogue, cases = tiny
    Path(cases).write_text(cases_text, encoding="utf-8")
    assert main(["--catalogue", catalogue, "--cases", cases]) == 2
    captured = capsys.readouterr()
    assert error in captured.err
    assert captured.out == ""


def test_bad_catalogue_or_arguments_exit_2(
    tiny: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, cases = tiny
    missing = tmp_path / "nope.toml"
    assert main(["--catalogue", str(missing), "--cases", cases]) == 2
    assert "nope.toml: cannot read the file" in capsys.readouterr().err
    broken = tmp_path / "broken.toml"
    broken.write_text('[bot]\nname = "x"\n', encoding="utf-8")
    assert main(["--catalogue", str(broken), "--cases", cases]) == 2
    assert "[bot] 'fallback'" in capsys.readouterr().err
    assert main(["--cases", cases]) == 2  # --catalogue is required
    assert "usage: whatsease bot-eval" in capsys.readouterr().err


def test_runs_as_a_module(tiny: tuple[str, str]) -> None:
    catalogue, cases = tiny
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "whatsease.bot.evaluate",
            "--catalogue",
            catalogue,
            "--cases",
            cases,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Per intent (engine):" in done.stdout


def test_default_catalogue_meets_the_bar() -> None:
    catalogue = load_catalogue(DEFAULT_CATALOGUE_PATH)
    cases = load_cases(DEFAULT_CASES, catalogue)
    assert len(cases) >= 150
    assert sum(c.intent is None for c in cases) >= 25
    engine = summarise(run_engine(IntentEngine(catalogue), cases))
    baseline = summarise(run_baseline(catalogue, cases))
    assert engine["accuracy"] >= MIN_ACCURACY, engine["confusions"]
    assert engine["out_of_scope"]["rate"] <= MAX_OUT_OF_SCOPE_ANSWERED, engine["confusions"]
    # The engine must clearly beat plain nearest-example matching.
    assert engine["accuracy"] >= baseline["accuracy"] + 0.1


# The other catalogues' figures when they were last measured (docs/bot.md), less a
# case or two of margin: a change that loses more fails here and must be looked at.
# Shop, the clinic and the internet provider were each held out at first (91.0%,
# 90.8%, and 84.1% with 7 of 28 out-of-scope answered, measured once) and have since
# been used for tuning. Last measured: 119/122 (0), 135/142 (1), 135/151 (3).
OTHER_CATALOGUES = [
    # (catalogue, cases, minimum correct, maximum out-of-scope answered)
    ("examples/catalogues/shop.toml", "tests/bot/shop_cases.jsonl", 117, 0),
    ("examples/catalogues/clinic.toml", "tests/bot/clinic_cases.jsonl", 134, 1),
    # Below the 95% bar: this floor only guards against losing more.
    ("examples/catalogues/isp.toml", "tests/bot/isp_cases.jsonl", 133, 4),
    # Held out, never tuned on (75.0%, 1 of 33; 70.9%, 2 of 34): far below the bar.
    ("examples/catalogues/bank.toml", "tests/bot/bank_cases.jsonl", 121, 2),
    ("examples/catalogues/travel.toml", "tests/bot/travel_cases.jsonl", 115, 3),
]


# Held out from everything, the sentence reader included (headers of the files): the
# figures last measured (words 96/118, 95/116 and 95/113; reader 102/118, 100/116
# and 107/113, with 0, 2 and 1 out-of-scope answered), less a case or two. Below the
# 95% bar; the words beat the baseline by only 4 points on energy (81.4% against
# 77.1%).
HELD_OUT = [
    # (catalogue, cases, words: min correct, max out-of-scope answered; reader: the same)
    ("examples/catalogues/energy.toml", "tests/bot/energy_cases.jsonl", 94, 2, 100, 0),
    ("examples/catalogues/gym.toml", "tests/bot/gym_cases.jsonl", 93, 4, 98, 2),
    ("examples/catalogues/council.toml", "tests/bot/council_cases.jsonl", 93, 3, 105, 1),
    ("examples/catalogues/delivery.toml", "tests/bot/delivery_cases.jsonl", 79, 4, 91, 3),
    # Written blind (docs/bot.md): words 68/116, reader 100/116, none of 31 answered.
    ("examples/catalogues/university.toml", "tests/bot/university_cases.jsonl", 66, 0, 98, 0),
    # Blind too: words 87/120 and 80/119, reader 102/120 and 101/119.
    ("examples/catalogues/insurance.toml", "tests/bot/insurance_cases.jsonl", 85, 1, 100, 1),
    ("examples/catalogues/hotel.toml", "tests/bot/hotel_cases.jsonl", 78, 0, 99, 2),
]


@pytest.mark.parametrize(("catalogue_path", "cases_path", "correct", "answered",
                          "read_correct", "read_answered"), HELD_OUT)
def test_held_out_catalogues_keep_their_figures(
    catalogue_path: str, cases_path: str, correct: int, answered: int,
    read_correct: int, read_answered: int,
) -> None:
    from whatsease.bot.semantic import SemanticIndex

    catalogue = load_catalogue(REPO / catalogue_path)
    cases = load_cases(REPO / cases_path, catalogue)
    assert len(cases) >= 100
    assert sum(c.intent is None for c in cases) >= 25
    words = summarise(run_engine(IntentEngine(catalogue), cases))
    baseline = summarise(run_baseline(catalogue, cases))
    assert words["correct"] >= correct, words["confusions"]
    assert words["out_of_scope"]["answered"] <= answered, words["confusions"]
    assert words["accuracy"] > baseline["accuracy"]
    reader = IntentEngine(catalogue, semantic=SemanticIndex(catalogue))
    read = summarise(run_engine(reader, cases))
    assert read["correct"] >= read_correct, read["confusions"]
    assert read["out_of_scope"]["answered"] <= read_answered, read["confusions"]


@pytest.mark.parametrize(("catalogue_path", "cases_path", "correct", "answered"), OTHER_CATALOGUES)
def test_other_catalogues_keep_their_figures(
    catalogue_path: str, cases_path: str, correct: int, answered: int
) -> None:
    catalogue = load_catalogue(REPO / catalogue_path)
    cases = load_cases(REPO / cases_path, catalogue)
    assert len(cases) >= 100
    assert sum(c.intent is None for c in cases) >= 25
    engine = summarise(run_engine(IntentEngine(catalogue), cases))
    baseline = summarise(run_baseline(catalogue, cases))
    assert engine["correct"] >= correct, engine["confusions"]
    assert engine["out_of_scope"]["answered"] <= answered, engine["confusions"]
    assert engine["accuracy"] >= baseline["accuracy"] + 0.1


# The same six sets with the sentence reader (WHATSEASE_BOT_SEMANTIC, --semantic),
# calibrated on all six and the validation splits of CLINC150 and BANKING77, so none
# of them is held out for it. Last measured: default 231/234 (1 of 38 answered), shop
# 119/122 (0), clinic 134/142 (1), isp 143/151 (4), bank 138/164 (0), travel
# 143/165 (1). The default set has 37 more cases since (what WhatsEase cannot do, the
# feedback trap, empty messages): 266/271, 3 of 43 answered, two of them "can i send
# money / flowers" read as the photos-and-files intent.
SEMANTIC_FIGURES = [
    ("whatsease/bot/catalogue.toml", "tests/bot/cases.jsonl", 264, 3),
    ("examples/catalogues/shop.toml", "tests/bot/shop_cases.jsonl", 117, 0),
    ("examples/catalogues/clinic.toml", "tests/bot/clinic_cases.jsonl", 132, 1),
    ("examples/catalogues/isp.toml", "tests/bot/isp_cases.jsonl", 141, 4),
    ("examples/catalogues/bank.toml", "tests/bot/bank_cases.jsonl", 136, 0),
    ("examples/catalogues/travel.toml", "tests/bot/travel_cases.jsonl", 141, 1),
]


@pytest.mark.parametrize(("catalogue_path", "cases_path", "correct", "answered"), SEMANTIC_FIGURES)
def test_semantic_layer_keeps_its_figures(
    catalogue_path: str, cases_path: str, correct: int, answered: int
) -> None:
    from whatsease.bot.semantic import SemanticIndex

    catalogue = load_catalogue(REPO / catalogue_path)
    cases = load_cases(REPO / cases_path, catalogue)
    engine = IntentEngine(catalogue, semantic=SemanticIndex(catalogue))
    result = summarise(run_engine(engine, cases))
    assert result["correct"] >= correct, result["confusions"]
    assert result["out_of_scope"]["answered"] <= answered, result["confusions"]


def test_the_report_says_which_reader_read(
    tiny: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    catalogue_path, cases_path = tiny
    # By default bot-eval reads as the server does by default: with the sentence
    # reader when it is installed (it is, for the tests).
    for flags in ([], ["--semantic"]):
        assert main(["--catalogue", catalogue_path, "--cases", cases_path, *flags]) == 0
        out = capsys.readouterr().out
        assert "\nreader: words and a sentence encoder (built-in)\n" in out
        assert "\nsemantic " in out
    assert main(["--catalogue", catalogue_path, "--cases", cases_path, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["semantic"] is True
    assert main(["--catalogue", catalogue_path, "--cases", cases_path, "--words-only"]) == 0
    out = capsys.readouterr().out
    assert "\nreader: words only (--words-only)\n" in out
    assert "\nengine " in out and "\nsemantic " not in out
    assert main(["--catalogue", catalogue_path, "--cases", cases_path, "--words-only",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["semantic"] is False
    assert main(["--catalogue", catalogue_path, "--cases", cases_path, "--words-only",
                 "--semantic"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
