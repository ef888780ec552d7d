"""Where the front sends: the instances it knows, and how it picks one for a new request.

Used by the front (``whatsease/cluster/front.py``), the development stand-in
for Fly's proxy: a fixed mapping or a file of ``id=url`` lines re-read when it
changes (``LocalCluster`` keeps one), a least-connections or round-robin
`Balancer`, and the counters the front keeps. No Tornado here.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

logger = logging.getLogger("whatsease.cluster.front")

BALANCING = ("least-connections", "round-robin")


class Backends(Protocol):
    """The instances the front may send to: id -> base URL (``http://host:port``)."""

    def current(self) -> Mapping[str, str]:
        ...


class StaticBackends:
    """A fixed set of instances."""

    def __init__(self, backends: Mapping[str, str]) -> None:
        self._backends = dict(backends)

    def current(self) -> Mapping[str, str]:
        return self._backends


class FileBackends:
    """Instances listed in a file, one ``id=url`` a line; re-read when the file changes.

    A missing or unreadable file leaves the last list in force.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._backends: dict[str, str] = {}

    def current(self) -> Mapping[str, str]:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                self._backends = parse_backends(self.path.read_text())
                self._stamp = stamp
        except OSError as exc:
            logger.warning("front: cannot read %s, keeping the last list: %s", self.path, exc)
        return self._backends


def parse_backends(text: str) -> dict[str, str]:
    """``id=url`` pairs, one a line or comma-separated; blank lines and ``#`` comments skipped."""
    backends: dict[str, str] = {}
    for entry in re.split(r"[\n,]", text):
        entry = entry.split("#", 1)[0].strip()
        if not entry:
            continue
        name, sep, url = entry.partition("=")
        if not sep or not name.strip() or not url.strip().startswith(("http://", "https://")):
            continue
        backends[name.strip()] = url.strip().rstrip("/")
    return backends


@dataclass
class FrontStats:
    """What the front did, for tests, logs and the bench."""

    requests: int = 0
    upgrades: int = 0
    replays: int = 0
    replay_failures: int = 0
    connect_failures: int = 0
    open_pipes: int = 0
    per_instance: dict[str, int] = field(default_factory=dict)


class Balancer:
    """Chooses an instance for a new request: least connections (ties in turn) or round-robin."""

    def __init__(self, mode: str = "least-connections") -> None:
        if mode not in BALANCING:
            raise ValueError(f"balancing must be one of {', '.join(BALANCING)}")
        self.mode = mode
        self.active: dict[str, int] = {}
        self._turn = itertools.count()

    def pick(self, candidates: Iterable[str]) -> str | None:
        ids = sorted(candidates)
        if not ids:
            return None
        if self.mode == "least-connections":
            fewest = min(self.active.get(i, 0) for i in ids)
            ids = [i for i in ids if self.active.get(i, 0) == fewest]
        return ids[next(self._turn) % len(ids)]

    def acquire(self, instance: str) -> None:
        self.active[instance] = self.active.get(instance, 0) + 1

    def release(self, instance: str) -> None:
        left = self.active.get(instance, 0) - 1
        if left > 0:
            self.active[instance] = left
        else:
            self.active.pop(instance, None)
