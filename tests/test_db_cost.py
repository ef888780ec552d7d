"""bench/db_cost.py --count: documents and index entries one message's life writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LIFE = "a message's life (send + Delivered + Read)"


def count_rows(users: int) -> dict[str, dict[str, float]]:
    """The table's rows by step, each by column header."""
    done = subprocess.run([sys.executable, "bench/db_cost.py", "--count", "--users", str(users)],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    lines = [[c.strip() for c in line.strip().strip("|").split("|")]
             for line in done.stdout.splitlines() if line.startswith("| ")]
    header, rows = lines[0], lines[1:]
    return {row[0]: {h: float(c) for h, c in zip(header[1:], row[1:], strict=True)
                     if c and "/" not in c} for row in rows}


def test_count_reports_each_step_of_a_message_life_per_collection() -> None:
    rows = count_rows(20)
    steps = ("send", "Delivered", "Read")
    assert set(rows) == {"first send", *steps, LIFE}, rows
    life = rows[LIFE]
    for column in ("all docs", "all entries"):
        assert life[column] == pytest.approx(sum(rows[s][column] for s in steps), abs=0.02)
    # A message: one insert; its summary is written when it is sent and when it is
    # read, not when it is delivered.
    assert rows["send"]["messages docs"] == 1 and rows["send"]["conversations docs"] == 1
    assert rows["Delivered"]["conversations docs"] == 0
    # bench/README.md, "Database work per message": a flush of activity entries is
    # a few entries a document, and a chat summary's update moves no index entry
    # (who is in a chat, and its quarter hour for analytics, are written when it
    # starts and then once per quarter hour).
    assert all(rows[s]["activity docs"] < 0.5 for s in steps), rows
    assert rows["send"]["conversations entries"] == 0, rows
    assert rows["first send"]["chat_members docs"] == 1
    assert rows["send"]["chat_members docs"] == 0
    # A receipt is a document of its own, made once and moved on by a Read: the
    # message's five index entries are not rewritten.
    assert rows["Delivered"]["messages docs"] == rows["Read"]["messages docs"] == 0, rows
    assert rows["Delivered"]["message_receipts entries"] == 3, rows
    assert rows["Read"]["message_receipts entries"] == 4, rows
    assert life["all docs"] <= 6 and life["all entries"] <= 20, life
