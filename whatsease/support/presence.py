"""Which agents have the console open, per org. Pure bookkeeping; no I/O.

An agent is *online* while at least one console socket is open. After the last
one closes they stay *available* for a grace period, so a page reload does not
take their conversations away from them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class AgentState:
    role: str
    name: str
    sockets: int = 0
    offline_since: float | None = None


class AgentPresence:
    def __init__(self, grace_secs: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.grace_secs = grace_secs
        self.clock = clock
        self._orgs: dict[str, dict[str, AgentState]] = {}

    def connect(self, org: str, email: str, *, role: str, name: str) -> bool:
        """Count a console socket in; True if the agent just came online."""
        agents = self._orgs.setdefault(org, {})
        state = agents.get(email)
        if state is None:
            state = agents[email] = AgentState(role=role, name=name)
        state.role, state.name = role, name
        state.sockets += 1
        state.offline_since = None
        return state.sockets == 1

    def disconnect(self, org: str, email: str) -> bool:
        """Count a console socket out; True if it was the agent's last one."""
        state = self._orgs.get(org, {}).get(email)
        if state is None or state.sockets == 0:
            return False
        state.sockets -= 1
        if state.sockets:
            return False
        state.offline_since = self.clock()
        return True

    def forget(self, org: str, email: str) -> None:
        """Drop an agent at once (removed from the org): no grace period."""
        self._orgs.get(org, {}).pop(email, None)

    def online(self, org: str) -> dict[str, AgentState]:
        """Agents with a console open, by email."""
        return {email: s for email, s in self._orgs.get(org, {}).items() if s.sockets}

    def is_online(self, org: str, email: str) -> bool:
        state = self._orgs.get(org, {}).get(email)
        return state is not None and state.sockets > 0

    def available(self, org: str, email: str) -> bool:
        """Online, or offline for less than the grace period."""
        state = self._orgs.get(org, {}).get(email)
        if state is None:
            return False
        if state.sockets:
            return True
        return (state.offline_since is not None
                and self.clock() - state.offline_since < self.grace_secs)

    def prune(self, org: str, email: str) -> None:
        """Forget an agent who has been offline past the grace period."""
        state = self._orgs.get(org, {}).get(email)
        if state is not None and not self.available(org, email):
            del self._orgs[org][email]
            if not self._orgs[org]:
                del self._orgs[org]
