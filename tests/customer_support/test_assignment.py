"""The assignment policy: least busy with round-robin ties, random; and the service applying it."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tests.customer_support.conftest import current, go_online, make_agent, make_org
from whatsease.services import Services
from whatsease.support.assignment import choose_agent, pick_least_busy, pick_random
from whatsease.support.service import SupportService

# Seeded randomized trials standing in for a property-based test (no hypothesis here).
TRIALS = 400
SEED = 20261122


def test_least_busy_picks_the_agent_with_fewest_conversations() -> None:
    assert pick_least_busy({"a@x": 3, "b@x": 1, "c@x": 2}, None) == "b@x"
    assert pick_least_busy({"a@x": 3, "b@x": 1, "c@x": 2}, "b@x") == "b@x"


def test_ties_go_round_robin_after_the_last_pick() -> None:
    loads = {"c@x": 0, "a@x": 0, "b@x": 0}
    picks, last = [], None
    for _ in range(7):
        last = pick_least_busy(loads, last)
        picks.append(last)
    assert picks == ["a@x", "b@x", "c@x", "a@x", "b@x", "c@x", "a@x"]
    # Only the tied agents take part in the rotation.
    assert pick_least_busy({"a@x": 1, "b@x": 0, "c@x": 0}, "b@x") == "c@x"
    assert pick_least_busy({"a@x": 1, "b@x": 0, "c@x": 0}, "c@x") == "b@x"
    # The last pick may have gone offline: rotation continues after its place.
    assert pick_least_busy({"a@x": 0, "c@x": 0}, "b@x") == "c@x"


def test_random_mode_ignores_load_and_reaches_everyone() -> None:
    rng = random.Random(SEED)
    loads = {"a@x": 50, "b@x": 0, "c@x": 0}
    seen = Counter(choose_agent("random", loads, None, rng) for _ in range(600))
    assert set(seen) == set(loads)
    assert all(150 <= n <= 250 for n in seen.values()), seen  # ~200 each
    assert pick_random({"only@x": 9}, rng) == "only@x"


def test_no_agents_and_unknown_strategies_are_errors() -> None:
    with pytest.raises(ValueError):
        pick_least_busy({}, None)
    with pytest.raises(ValueError):
        pick_random({}, random.Random(1))
    with pytest.raises(ValueError):
        choose_agent("cheapest", {"a@x": 0}, None, random.Random(1))


def test_property_with_equal_agents_loads_never_differ_by_more_than_one() -> None:
    rng = random.Random(SEED)
    for _ in range(TRIALS):
        agents = [f"agent{n}@x" for n in rng.sample(range(100), rng.randint(1, 9))]
        loads = dict.fromkeys(agents, 0)
        last = None
        for _ in range(rng.randint(0, 80)):
            last = choose_agent("least_busy", loads, last, rng)
            loads[last] += 1
            assert max(loads.values()) - min(loads.values()) <= 1, loads


def test_property_each_pick_is_least_loaded_and_ties_rotate() -> None:
    """With conversations also ending at random, every pick is a least-loaded agent,
    and among agents that stay tied nobody is picked twice before the others."""
    rng = random.Random(SEED + 1)
    for _ in range(TRIALS):
        agents = sorted(f"agent{n}@x" for n in rng.sample(range(100), rng.randint(2, 8)))
        loads = dict.fromkeys(agents, 0)
        last = None
        for _ in range(rng.randint(1, 60)):
            if rng.random() < 0.35 and any(loads.values()):
                busy = rng.choice([a for a in agents if loads[a]])
                loads[busy] -= 1
                continue
            fewest = min(loads.values())
            tied = sorted(a for a in agents if loads[a] == fewest)
            pick = choose_agent("least_busy", loads, last, rng)
            assert loads[pick] == fewest
            after = [a for a in tied if last is not None and a > last]
            assert pick == (after[0] if after else tied[0])
            loads[pick] += 1
            last = pick


async def test_the_service_spreads_conversations_evenly_over_online_agents(
        support: SupportService, services: Services) -> None:
    org = await make_org(support, routing="agent")
    agents = [await make_agent(services, support, org, name) for name in ("Al", "Bo", "Cy")]
    for agent in agents:
        await go_online(support, agent)
    picks = []
    for n in range(10):
        conversation, _, _ = await support.start_session(org, f"C{n}", f"c{n}@x.test")
        picks.append(conversation.agent)
        loads = await support.store.conversations.loads(org.org_id, [a.email for a in agents])
        assert max(loads.values()) - min(loads.values()) <= 1, loads
    order = sorted(a.email for a in agents)
    assert picks[:6] == order + order, "equal loads: round-robin in a stable order"
    # An agent whose conversations ended gets the next ones until loads even out.
    for conversation in await support.list_conversations(agents[0], scope="mine"):
        await support.close(agents[0], conversation.conversation_id)
    conversation, _, _ = await support.start_session(org, "Dee", "dee@x.test")
    assert conversation.agent == agents[0].email


async def test_the_service_can_assign_at_random(support: SupportService,
                                                services: Services) -> None:
    org = await make_org(support, routing="agent", assignment="random")
    agents = [await make_agent(services, support, org, name) for name in ("Al", "Bo")]
    for agent in agents:
        await go_online(support, agent)
    picks: Counter[str | None] = Counter()
    for n in range(16):
        conversation, _, _ = await support.start_session(org, f"C{n}", f"c{n}@x.test")
        picks[(await current(support, conversation.conversation_id)).agent] += 1
    assert set(picks) == {a.email for a in agents}, picks
