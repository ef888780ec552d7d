"""bench/ws_load.py --find-ceiling against the bare relay: steps, stops and reports."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_find_ceiling_steps_the_rate_up_to_the_cap_and_reports_the_ceiling() -> None:
    done = subprocess.run(
        [sys.executable, "bench/ws_load.py", "--find-ceiling", "--target", "relay",
         "--users", "10", "--step-secs", "1", "--ceiling-start", "10",
         "--ceiling-factor", "1.5", "--ceiling-max", "25", "--ceiling-p99-ms", "5000"],
        cwd=REPO, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if re.match(r"\| \d", line)]
    # 10, 15, 22 msg/s (the next, 33, is over the cap): all passed, none lost.
    assert [row.split("|")[1].strip() for row in rows] == ["10", "15", "22"], done.stdout
    assert all(row.split("|")[4].strip() == "0" for row in rows)
    assert "ceiling relay: 22 msg/s (not reached: --ceiling-max)" in done.stdout, done.stdout
    # The warm-up step at the starting rate ran first and is not among the scored rows.
    assert re.search(r"relay warm-up: 10 msg/s, .*\(not scored\)", done.stderr), done.stderr


def test_find_ceiling_refuses_a_rate_that_would_flood_each_socket() -> None:
    done = subprocess.run(
        [sys.executable, "bench/ws_load.py", "--find-ceiling", "--users", "10",
         "--ceiling-max", "5000"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "at most one message per socket every 10 ms" in done.stderr


def test_gc_pauses_count_the_sending_window_apart_from_the_whole_run() -> None:
    sys.path.insert(0, str(REPO / "bench"))
    import ws_load

    before = {"count": 100.0, "sum": 2.0, "le=0.01": 90.0, "le=0.025": 97.0, "le=0.05": 99.0}
    after = {"count": 160.0, "sum": 2.3, "le=0.01": 148.0, "le=0.025": 157.0, "le=0.05": 159.0}
    assert ws_load.gc_pauses(after) == "160, 2300 ms in all, over 10 / 25 / 50 ms: 12 / 3 / 1"
    # 60 pauses while sending: 2 over 10 ms, none over 25.
    assert ws_load.gc_pauses(after, before) == \
        "60, 300 ms in all, over 10 / 25 / 50 ms: 2 / 0 / 0"
    assert ws_load.gc_pauses(before, before) == "-"


def test_gc_generations_say_which_generation_the_long_pauses_come_from() -> None:
    sys.path.insert(0, str(REPO / "bench"))
    import ws_load

    text = "\n".join([
        'whatsease_gc_pause_seconds_bucket{generation="0",le="0.025"} 40.0',
        'whatsease_gc_pause_seconds_count{generation="0"} 40.0',
        'whatsease_gc_pause_seconds_bucket{generation="2",le="0.025"} 1.0',
        'whatsease_gc_pause_seconds_count{generation="2"} 3.0',
    ])
    counts = ws_load.parse_gc_counts(text)
    assert ws_load.gc_generations(counts) == "40 / 0 / 3, over 25 ms: 0 / 0 / 2"


def test_spy_summary_adds_up_self_time_by_area_and_function() -> None:
    sys.path.insert(0, str(REPO / "bench"))
    import spy_summary

    lines = [
        "thread (11);run (asyncio/events.py:80);on_message (whatsease/realtime/handler.py:40);"
        "loads (orjson.py:1) 30",
        "thread (11);run (asyncio/events.py:80);_flush (whatsease/realtime/transport.py:300) 50",
        "thread (12);worker (pymongo/pool.py:9) 20",
    ]
    stacks = spy_summary.parse(lines, "11")
    assert [n for _, n in stacks] == [30, 50]
    text = spy_summary.summarise(stacks, top=5)
    assert "80 samples" in text
    assert "62.5%  whatsease.realtime" in text and "37.5%  other" in text
    assert "100.0%  run (events.py)" in text  # inclusive: on every stack


def test_gc_trace_summary_tells_wall_time_from_cpu_time(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "bench"))
    import gc_trace

    trace = tmp_path / "gc.txt"
    # time, generation, wall ms, CPU ms, objects walked, frozen, collected
    trace.write_text("1.0 0 3.0 2.9 700 10 0\n2.0 0 60.0 12.0 900 10 5\n"
                     "3.0 2 25.0 24.0 90000 10 40\n")
    table = gc_trace.summary(trace).splitlines()
    assert table[2] == "| 0 | 2 | 63 | 15 | 60.0 / 12.0 | 800 / 900 | 1 / 1 | 1 / 0 | 1 / 0 |"
    assert table[3].startswith("| 2 | 1 | 25 | 24 |")


def test_a_small_whatsease_run_counts_database_commands_per_message(tmp_path: Path) -> None:
    # --server-root names the checkout whose server runs: here a copy of this one's
    # package elsewhere, so the server cannot have come from the default path.
    root = tmp_path / "checkout"
    root.mkdir()
    subprocess.run(["cp", "-r", str(REPO / "whatsease"), str(root / "whatsease")], check=True)
    done = subprocess.run(
        [sys.executable, "bench/ws_load.py", "--target", "whatsease", "--users", "10",
         "--interval-ms", "500", "--duration", "2", "--server-root", str(root)],
        cwd=REPO, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines()
               if line.startswith("| database commands per message"))
    insert, update, query, other = (float(v) for v in row.split("|")[2].split("/"))
    assert insert > 0 and min(update, query, other) >= 0, row
    lost = next(line for line in done.stdout.splitlines() if line.startswith("| lost "))
    assert lost.split("|")[2].strip() == "0", done.stdout


def test_client_procs_spread_whole_pairs_and_their_counts_add_up() -> None:
    sys.path.insert(0, str(REPO / "bench"))
    import ws_load

    parts = ws_load.split_pairs(14, 3)
    assert [(p.start, p.stop) for p in parts] == [(0, 4), (4, 8), (8, 14)]
    assert all(p.start % 2 == 0 and len(p) % 2 == 0 for p in parts)
    one = ws_load.Stats(sent=3, delivered=2, errors={"rate_limited": 1}, delivery_ms=[1.0, 2.0])
    two = ws_load.Stats(sent=4, delivered=4, duplicated=1, errors={"rate_limited": 2, "x": 1},
                        delivery_ms=[3.0])
    merged = ws_load.merge_stats([ws_load.stats_of(ws_load.stats_report(s)) for s in (one, two)])
    assert (merged.sent, merged.delivered, merged.duplicated) == (7, 6, 1)
    assert merged.errors == {"rate_limited": 3, "x": 1}
    assert sorted(merged.delivery_ms) == [1.0, 2.0, 3.0]
    # The parts themselves are left as they were.
    assert one.errors == {"rate_limited": 1} and one.delivery_ms == [1.0, 2.0]


def test_a_run_over_two_client_processes_merges_their_counts_and_lags() -> None:
    done = subprocess.run(
        [sys.executable, "bench/ws_load.py", "--target", "relay", "--users", "12",
         "--interval-ms", "500", "--duration", "2", "--client-procs", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr

    def cell(label: str) -> str:
        row = next(line for line in done.stdout.splitlines() if line.startswith(f"| {label}"))
        return row.split("|")[2].strip()

    assert cell("sockets connected") == "12 (failed 0)", done.stdout
    sent = int(cell("messages sent"))
    # 12 sockets, one message every 0.5 s for 2 s: about 4 each (the start is jittered).
    assert sent >= 12 * 3, done.stdout
    assert int(cell("delivered")) == sent and int(cell("acked")) == sent, done.stdout
    assert int(cell("Delivered statuses back to sender")) == sent, done.stdout
    assert cell("lost") == "0" and cell("duplicated") == "0", done.stdout
    lags = cell("load client worst loop lag ms (per process)").split(" / ")
    assert len(lags) == 2 and all(lag.isdigit() for lag in lags), done.stdout


def test_client_procs_are_refused_beyond_one_per_pair_and_with_find_ceiling() -> None:
    for extra in (["--users", "4", "--client-procs", "3"],
                  ["--users", "10", "--client-procs", "2", "--find-ceiling"]):
        done = subprocess.run([sys.executable, "bench/ws_load.py", *extra], cwd=REPO,
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 2 and "--client-procs" in done.stderr, done.stderr


def test_senders_are_whole_pairs_spread_evenly_and_idle_means_none() -> None:
    sys.path.insert(0, str(REPO / "bench"))
    import ws_load

    senders = [i for i in range(20) if ws_load.is_sender(i, 20, 4)]
    assert senders == [0, 1, 10, 11]  # two pairs of ten, every fifth pair
    assert all(ws_load.is_sender(i, 20, 20) for i in range(20))
    assert not any(ws_load.is_sender(i, 20, 0) for i in range(20))
    assert ws_load.parse_args(["--users", "20", "--idle"]).senders == 0
    assert ws_load.parse_args(["--users", "20"]).senders == 20
    for extra in (["--senders", "3"], ["--senders", "6"], ["--idle", "--senders", "4"],
                  ["--senders", "4", "--find-ceiling"]):
        done = subprocess.run([sys.executable, "bench/ws_load.py", "--users", "20", *extra],
                              cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 2 and "--senders" in done.stderr, (extra, done.stderr)


def test_a_run_where_only_some_sockets_send_and_an_idle_run() -> None:
    def cells(*extra: str) -> dict[str, str]:
        done = subprocess.run(
            [sys.executable, "bench/ws_load.py", "--target", "relay", "--users", "12",
             "--interval-ms", "500", "--duration", "2", "--client-procs", "2", *extra],
            cwd=REPO, capture_output=True, text=True, timeout=180, check=False)
        assert done.returncode == 0, done.stderr
        return {line.split("|")[1].strip(): line.split("|")[2].strip()
                for line in done.stdout.splitlines() if line.startswith("| ")}

    some = cells("--senders", "4")
    assert some["sockets connected"] == "12 (failed 0)", some
    # 4 of the 12 sockets, one message every 0.5 s for 2 s: at most 5 each.
    assert 4 * 3 <= int(some["messages sent"]) <= 4 * 5, some
    assert some["lost"] == "0" and int(some["delivered"]) == int(some["messages sent"]), some
    idle = cells("--idle")
    assert idle["sockets connected"] == "12 (failed 0)" and idle["messages sent"] == "0", idle
    assert float(idle["server CPU ms per second per 1,000 sockets"]) >= 0, idle
