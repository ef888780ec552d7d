"""Run a module with every garbage collection written to a file: which ones pause, and why.

    python bench/gc_trace.py FILE -m whatsease          (ws_load --gc-trace FILE does this)
    python bench/gc_trace.py FILE --summary              (read FILE back: a table per generation)

One line per collection: the Unix time it ended, its generation, its wall
and CPU milliseconds (the two differ when the process was not on a core: on a
shared machine a 10 ms collection can stand the loop still for 50), the
objects in the generations it walked (counted before it started), the frozen
objects it did not walk (after full collections only, else -1), and how many it
freed. Counting the objects costs about as much as the collection itself; it is
outside the timed part, but a pause measured by the server's own metrics
(``whatsease_gc_pause_seconds``) includes it.
"""

from __future__ import annotations

import gc
import os
import runpy
import sys
import time
from pathlib import Path
from typing import Any, TextIO

# Pauses are tallied against these bounds, in milliseconds (the 20 ms among them).
BOUNDS_MS = (10.0, 20.0, 50.0)


class Tracer:
    """A ``gc.callbacks`` hook writing one line per collection to ``out``."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.walked = 0
        self.wall = 0.0
        self.cpu = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            generation = info["generation"]
            self.walked = sum(len(gc.get_objects(g)) for g in range(generation + 1))
            self.cpu = time.thread_time()
            self.wall = time.perf_counter()
            return
        wall = (time.perf_counter() - self.wall) * 1000
        cpu = (time.thread_time() - self.cpu) * 1000
        # Counting the frozen objects walks them all (30 ms for 3 million): only
        # after a full collection, which is long anyway.
        frozen = gc.get_freeze_count() if info["generation"] == 2 else -1
        self.out.write(f"{time.time():.3f} {info['generation']} {wall:.2f} {cpu:.2f} "
                       f"{self.walked} {frozen} {info['collected']}\n")


def summary(path: Path) -> str:
    rows: dict[int, list[tuple[float, float, int]]] = {0: [], 1: [], 2: []}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 7:
            rows[int(parts[1])].append((float(parts[2]), float(parts[3]), int(parts[4])))
    out = ["| generation | collections | wall ms in all | CPU ms in all | longest wall / CPU ms "
           "| objects walked (mean / max) | " + " | ".join(f"over {b:g} ms wall / CPU"
                                                      for b in BOUNDS_MS) + " |",
           "|---|---:|---:|---:|---:|---:|" + "---:|" * len(BOUNDS_MS)]
    for generation, values in rows.items():
        if not values:
            continue
        walls = [w for w, _, _ in values]
        cpus = [c for _, c, _ in values]
        walked = [n for _, _, n in values]
        over = " | ".join(f"{sum(w > b for w in walls)} / {sum(c > b for c in cpus)}"
                          for b in BOUNDS_MS)
        out.append(f"| {generation} | {len(values)} | {sum(walls):.0f} | {sum(cpus):.0f} "
                   f"| {max(walls):.1f} / {max(cpus):.1f} "
                   f"| {sum(walked) // len(walked)} / {max(walked)} | {over} |")
    return "\n".join(out)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[2] == "--summary":
        print(summary(Path(sys.argv[1])))
        return
    if len(sys.argv) < 4 or sys.argv[2] != "-m":
        raise SystemExit(__doc__)
    out = open(sys.argv[1], "w", buffering=1)  # noqa: SIM115 (open for the process's life)
    gc.callbacks.append(Tracer(out))
    module = sys.argv[3]
    sys.argv = [module, *sys.argv[4:]]
    sys.path[0] = os.getcwd()  # as ``python -m`` has it, not this script's folder
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
