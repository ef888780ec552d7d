"""Kept analytics documents that can no longer change, parsed and held in memory.

A warm page reads the same closed days again on every refresh: once parsed
(`Kept`), they are held here, the least recently used dropped past a bound on
how many figures they hold, with the sums of their quarter hours per bucket.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from whatsease.analytics.slots import Piece

# Kept documents that can no longer change are held in memory once read, up to
# this many figures (people, fallback messages, response times...; about 100
# bytes each): a 30-day page's whole days, many times over.
MEMORY_FIGURES = 1_000_000


@dataclass
class Kept:
    """One kept document, parsed: a whole day's figures (``day``; None when empty), or a
    day's quarter hours by name (an empty one is None)."""

    day: Piece | None = None
    slots: dict[str, Piece | None] = field(default_factory=dict)
    # Sums of consecutive quarter hours already asked for, by first, last and count.
    sums: dict[tuple[str, str, int], Piece | None] = field(default_factory=dict)

    def sum(self, names: list[str]) -> Piece | None:
        """The figures of the consecutive quarter hours ``names`` added up (None: all empty).

        Only for a day that can no longer change: the sum is held with it.
        """
        if len(names) == 1:
            return self.slots.get(names[0])
        key = (names[0], names[-1], len(names))
        if key not in self.sums:
            total: Piece | None = None
            for name in names:
                one = self.slots.get(name)
                if one is not None:
                    if total is None:
                        total = Piece()
                    total.merge(one)
            self.sums[key] = total
        return self.sums[key]

    def weight(self) -> int:
        """About how many figures this holds (what `Memory` bounds)."""
        return 1 + sum(_weight(p) for p in (self.day, *self.slots.values()) if p is not None)


def _weight(piece: Piece) -> int:
    return (len(piece.people) + len(piece.fallbacks) + len(piece.intents) + len(piece.closed)
            + len(piece.handoffs) + len(piece.counts) + len(piece.languages))


class Memory:
    """Kept documents by key, the least recently used dropped past `MEMORY_FIGURES`."""

    def __init__(self, limit: int = MEMORY_FIGURES) -> None:
        self.limit = limit
        self.weight = 0
        self._items: OrderedDict[str, tuple[Kept, int]] = OrderedDict()

    def get(self, key: str) -> Kept | None:
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: str, value: Kept) -> None:
        weight = value.weight()
        if weight > self.limit:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.weight -= old[1]
        self._items[key] = (value, weight)
        self.weight += weight
        while self.weight > self.limit:
            _key, (_value, dropped) = self._items.popitem(last=False)
            self.weight -= dropped

    def __len__(self) -> int:
        return len(self._items)
