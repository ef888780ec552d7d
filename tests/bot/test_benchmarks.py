"""The public-benchmark scripts build their sets and print a table (on tiny stand-ins)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from scripts import banking77_eval, clinc_eval

BALANCE = ["what is my balance", "how much money do i have", "show my balance",
           "balance please", "check my balance"]
CARD = ["my card is lost", "i lost my card", "card stolen", "block my card",
        "someone took my card"]


def clinc_data(folder: Path) -> Path:
    """CLINC150's layout: two domains, two intents each, and out-of-scope queries."""
    intents = {"balance": BALANCE, "lost_card": CARD,
               "weather": ["weather today", "is it raining", "forecast please",
                           "will it snow", "how hot is it"],
               "timer": ["set a timer", "timer for ten minutes", "start a timer",
                         "countdown five minutes", "remind me in an hour"]}
    split = [[text, intent] for intent, texts in intents.items() for text in texts]
    oos = [[f"who painted picture {i}", "oos"] for i in range(120)]
    (folder / "data_small.json").write_text(json.dumps(
        {"train": split, "val": split, "test": split * 24, "oos_train": oos,
         "oos_val": oos, "oos_test": oos}), encoding="utf-8")
    (folder / "domains.json").write_text(json.dumps(
        {"banking": ["balance", "lost_card"], "home": ["weather", "timer"]}),
        encoding="utf-8")
    return folder


def test_clinc_eval_measures_every_domain(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert clinc_eval.main(["--data", str(clinc_data(tmp_path))]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[2:]] == ["banking", "home", "all"]
    # Each domain: 100 of CLINC's out-of-scope queries and 50 of the other domain's.
    methods = lines[1].split()[1:]
    assert methods[0] == "words" and methods[-1] == "baseline"
    assert lines[-1].count("/300") == len(methods)


def test_banking77_eval_builds_one_catalogue_with_clinc_out_of_scope(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "banking"
    data.mkdir()
    for name, rows in (("train.csv", 1), ("test.csv", 2)):
        with (data / name).open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "category"])
            for _ in range(rows):
                writer.writerows([t, "Balance_check"] for t in BALANCE)
                writer.writerows([t, "card_lost?"] for t in CARD)
    clinc = clinc_data(tmp_path)
    catalogue, cases = banking77_eval.banking_set(
        banking77_eval.read_csv(data / "train.csv"), banking77_eval.read_csv(data / "test.csv"),
        json.loads((clinc / "data_small.json").read_text(encoding="utf-8")),
        {"home": ["weather", "timer"], "banking": ["balance", "lost_card"]})
    # Category names become identifiers; 5 examples each (fewer than 10 given).
    assert [i.name for i in catalogue.intents] == ["balance_check", "card_lost"]
    assert [len(i.examples) for i in catalogue.intents] == [5, 5]
    out_of_scope = [c.text for c in cases if c.intent is None]
    assert len(cases) == 20 + 300 and len(out_of_scope) == 300
    # None of CLINC's banking queries counts as out of scope for a bank.
    assert not set(out_of_scope) & set(BALANCE + CARD)
    assert banking77_eval.main(["--data", str(data), "--clinc", str(clinc)]) == 0
    assert capsys.readouterr().out.splitlines()[2].startswith("banking77")


def test_the_scripts_say_when_the_data_is_missing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert clinc_eval.main(["--data", str(tmp_path)]) == 2
    assert banking77_eval.main(["--data", str(tmp_path), "--clinc", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "cannot read the CLINC150 data" in err and "banking77_eval: cannot read" in err


def test_clinc_eval_reads_with_a_model_folder(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from tests.bot.test_onnx_reader import build_model

    model = build_model(tmp_path / "model")
    data = tmp_path / "data"
    data.mkdir()
    assert clinc_eval.main(["--data", str(clinc_data(data)),
                            "--semantic-model", str(model)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[1:] == ["words", "semantic", "baseline"]
    with pytest.raises(SystemExit) as stopped:
        clinc_eval.main(["--data", str(data), "--semantic-model", str(tmp_path / "none")])
    assert stopped.value.code == 2
    assert f"{tmp_path / 'none'}: no such folder" in capsys.readouterr().err
