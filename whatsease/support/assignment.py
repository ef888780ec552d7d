"""The assignment policy: which online agent gets a conversation. Pure; no I/O.

``least_busy`` picks an agent with the fewest active conversations; when several
tie, it goes round-robin: the first tied agent (in email order) after the one
picked last, wrapping around. Starting from equal loads and only assigning,
loads therefore never differ by more than one. ``random`` picks uniformly among
the online agents, whatever their load.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

LEAST_BUSY = "least_busy"
RANDOM = "random"
STRATEGIES = (LEAST_BUSY, RANDOM)


def pick_least_busy(loads: Mapping[str, int], last: str | None) -> str:
    """The least loaded agent; ties go to the first one after ``last`` in email order.

    Raises `ValueError` if ``loads`` is empty.
    """
    if not loads:
        raise ValueError("no agent to choose from")
    fewest = min(loads.values())
    tied = sorted(agent for agent, load in loads.items() if load == fewest)
    if last is not None:
        for agent in tied:
            if agent > last:
                return agent
    return tied[0]


def pick_random(agents: Mapping[str, int], rng: random.Random) -> str:
    """Any one of the agents, uniformly. Raises `ValueError` if there are none."""
    if not agents:
        raise ValueError("no agent to choose from")
    return rng.choice(sorted(agents))


def choose_agent(strategy: str, loads: Mapping[str, int], last: str | None,
                 rng: random.Random) -> str:
    """Apply ``strategy`` to the online agents' ``loads`` (agent → active conversations)."""
    if strategy == RANDOM:
        return pick_random(loads, rng)
    if strategy == LEAST_BUSY:
        return pick_least_busy(loads, last)
    raise ValueError(f"unknown assignment strategy {strategy!r}; expected one of "
                     f"{', '.join(STRATEGIES)}")
