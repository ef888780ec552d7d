"""bench/command_cost.py: one command's cost in the server, by command and client option."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_a_short_run_times_every_command_for_each_variant_asked() -> None:
    done = subprocess.run(
        [sys.executable, "bench/command_cost.py", "--calls", "10", "--rounds", "1",
         "--variants", "as the server runs,sync client on a thread"],
        cwd=REPO, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert rows[0] == "| variant | insert 1 | insert 8 | update | bulk 8 | find |", done.stdout
    assert [row.split("|")[1].strip() for row in rows[1:]] == [
        "as the server runs", "sync client on a thread"], done.stdout
    for row in rows[1:]:
        for cell in row.strip("|").split("|")[1:]:
            cpu, wall, _db = (float(v) for v in cell.split("/"))
            assert cpu > 0 and wall > 0, row


def test_an_unknown_variant_is_named_in_the_refusal() -> None:
    done = subprocess.run(
        [sys.executable, "bench/command_cost.py", "--calls", "10", "--rounds", "1",
         "--variants", "warp drive"],
        cwd=REPO, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode != 0 and "warp drive" in done.stderr, done.stderr
