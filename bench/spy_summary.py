"""Summarise py-spy's collapsed stacks (``ws_load --spy-server``): where a server's CPU goes.

    python bench/spy_summary.py PREFIX.whatsease.txt [--top 40] [--thread MainThread]

Prints the share of samples per area (the package or library a frame's file is
in, counted once per sample at the innermost frame of ours or a library's:
self time), the functions with the most self samples, and those with the most
inclusive samples (on the stack at all). Idle samples (the event loop waiting
in ``select``/``epoll``) are left out: py-spy records only running threads
unless ``--idle`` is given, so every sample is CPU.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

# A frame as py-spy's raw format writes it: "function (path/to/file.py:line)".
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
# Areas by a path fragment, first match wins; anything else is "other".
AREAS = (
    ("whatsease/realtime/", "whatsease.realtime"),
    ("whatsease/delivery/", "whatsease.delivery"),
    ("whatsease/messaging/", "whatsease.messaging"),
    ("whatsease/storage/", "whatsease.storage"),
    ("whatsease/activity", "whatsease.activity"),
    ("whatsease/batching", "whatsease.batching"),
    ("whatsease/writelane", "whatsease.writelane"),
    ("whatsease/auth/", "whatsease.auth"),
    ("whatsease/", "whatsease (other)"),
    ("relay_baseline", "relay"),
    ("pymongo/", "pymongo"),
    ("bson/", "bson"),
    ("tornado/", "tornado"),
    ("prometheus_client/", "prometheus_client"),
    ("asyncio/", "asyncio"),
    ("uvloop", "uvloop"),
    ("logging/", "logging"),
)


def area_of(path: str) -> str:
    for fragment, area in AREAS:
        if fragment in path:
            return area
    return "other"


def parse(lines: list[str], thread: str) -> list[tuple[list[tuple[str, str]], int]]:
    """(frames outermost first as (function, file), samples) for each stack line."""
    stacks = []
    for line in lines:
        line = line.rstrip()
        if not line:
            continue
        body, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        parts = body.split(";")
        if thread and f"thread ({thread})" not in parts[:2]:
            continue
        frames = []
        for part in parts:
            if part.startswith(("thread (", "process ")):
                continue
            match = _FRAME.match(part)
            if match is not None:
                frames.append((match["func"], match["file"]))
        if frames:
            stacks.append((frames, int(count)))
    return stacks


def summarise(stacks: list[tuple[list[tuple[str, str]], int]], top: int) -> str:
    total = sum(n for _, n in stacks) or 1
    areas: Counter[str] = Counter()
    selfs: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, n in stacks:
        func, path = frames[-1]
        areas[area_of(path)] += n
        selfs[f"{func} ({Path(path).name})"] += n
        for name in {f"{f} ({Path(p).name})" for f, p in frames}:
            inclusive[name] += n
    out = [f"{total} samples", "", "self samples by area:"]
    out += [f"  {100 * n / total:5.1f}%  {area}" for area, n in areas.most_common()]
    out += ["", "self samples by function:"]
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in selfs.most_common(top)]
    out += ["", "inclusive samples by function:"]
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--thread", default="",
                        help="only the stacks of this thread (its native id: the main "
                             "thread's is the process id); see the counts by thread")
    args = parser.parse_args(argv)
    lines = Path(args.file).read_text(errors="replace").splitlines()
    threads: Counter[str] = Counter()
    for line in lines:
        body, _, count = line.rstrip().rpartition(" ")
        if count.isdigit():
            threads[body.split(";")[0]] += int(count)
    print("samples by thread:", ", ".join(f"{t}: {n}" for t, n in threads.most_common(6)))
    print(summarise(parse(lines, args.thread), args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
