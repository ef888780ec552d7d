"""bench/db_cost.py --count: documents and index entries one message's life writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def count_rows(users: int) -> dict[str, list[str]]:
    done = subprocess.run([sys.executable, "bench/db_cost.py", "--count", "--users", str(users)],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    rows = {}
    for line in done.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] not in ("step",):
            rows[cells[0]] = cells[1:]
    return rows


def test_count_reports_each_step_of_a_message_life_per_collection() -> None:
    rows = count_rows(20)
    assert set(rows) >= {"first send", "send", "Delivered", "Read"}, rows
    life = rows["a message's life (send + Delivered + Read)"]
    # Columns: messages, conversations, activity (docs, entries each), then all docs, all entries.
    docs, entries = float(life[6]), float(life[7])
    steps = ("send", "Delivered", "Read")
    assert docs == pytest.approx(sum(float(rows[s][6]) for s in steps), abs=0.02)
    assert entries == pytest.approx(sum(float(rows[s][7]) for s in steps), abs=0.02)
    # A message: one insert, and its summary written once per step that changes it.
    assert rows["send"][0] == "1.00" and rows["send"][2] == "1.00", rows
    assert rows["Delivered"][2] == "0.00", rows  # a Delivered receipt leaves the summary alone
    # Activity: a flush of entries is one document (bench/README.md, "Database work
    # per message"), not one per entry.
    assert all(float(rows[s][4]) < 0.5 for s in steps), rows
    assert docs <= 6 and entries <= 40, life
