"""Folding kept and fresh quarter hours into one report's series, totals and lists.

`ReportBuilder` takes `Piece`s (one source's figures for one quarter hour, see
`slots`) slot by slot and shapes what `Analytics.report` returns: series
aligned with the buckets, totals, response-time summaries, top intents and
fallbacks, agents and languages. Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from whatsease.analytics.slots import Piece
from whatsease.analytics.stats import rate, summary
from whatsease.timeutil import isoformat

# How many intents, fallback messages and agents the lists show.
TOP = 10
# Channels every report has a line for, even with nothing in them.
CHANNELS_ALWAYS = ("web", "widget")


class ReportBuilder:
    """Folds quarter hours into series aligned with the buckets, and the lists."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.series: dict[str, list[float | int | None]] = {}
        self.people_total = 0
        self.people: dict[str, list[set[str]]] = {}
        self.intents: dict[str, int] = {}
        self.fallbacks: dict[str, tuple[int, datetime]] = {}
        self.languages: dict[str, int] = {}
        self.first: list[tuple[int, str | None, float]] = []
        self.waits: list[tuple[int, float]] = []
        self.resolutions: list[tuple[int, str | None, float]] = []
        for channel in CHANNELS_ALWAYS:
            self._line(f"messages.{channel}.in")
            self._line(f"messages.{channel}.out")
        for name in ("conversations.started", "conversations.closed", "people.active",
                     "bot.replies", "bot.fallbacks", "handoffs"):
            self._line(name)

    def _line(self, name: str) -> list[float | int | None]:
        line = self.series.get(name)
        if line is None:
            line = self.series[name] = [0] * self.count
        return line

    def _bump(self, name: str, slot: int, n: int) -> None:
        line = self._line(name)
        line[slot] = int(line[slot] or 0) + n

    def add_piece(self, name: str, slot: int, piece: Piece) -> None:
        """Fold one quarter hour of ``name``'s pipeline into bucket ``slot``."""
        if not 0 <= slot < self.count:
            return
        for (channel, direction), n in piece.counts.items():
            self._bump(f"messages.{channel}.{direction}", slot, n)
        for fallback, n in piece.bot.items():
            self._bump("bot.fallbacks" if fallback else "bot.replies", slot, n)
        for language, n in piece.languages.items():
            self.languages[language] = self.languages.get(language, 0) + n
        for intent, n in piece.intents.items():
            self.intents[intent] = self.intents.get(intent, 0) + n
        for message, (n, last) in piece.fallbacks.items():
            seen, latest = self.fallbacks.get(message, (0, last))
            self.fallbacks[message] = (seen + n, max(latest, last))
        if piece.started:
            self._bump("conversations.started", slot, piece.started)
        for agent, secs in piece.closed:
            self._bump("conversations.closed", slot, 1)
            if agent:
                self.resolutions.append((slot, agent, secs))
        for responder, first, wait in piece.handoffs:
            self._bump("handoffs", slot, 1)
            if first is not None:
                self.first.append((slot, responder, first))
            if wait is not None:
                self.waits.append((slot, wait))
        if piece.people:
            # Messenger people and support conversations are counted apart (an
            # address and a conversation id never collide, but keep them honest).
            people = self.people.setdefault(name, [set() for _ in range(self.count)])
            people[slot].update(piece.people)

    def finish(self) -> dict[str, list[float | int | None]]:
        """Complete the series (people, response times) once everything is folded in."""
        active = self._line("people.active")
        for per_bucket in self.people.values():
            for slot, people in enumerate(per_bucket):
                active[slot] = int(active[slot] or 0) + len(people)
        self.people_total = sum(len(set().union(*per_bucket))
                                for per_bucket in self.people.values())
        self._time_series()
        return self.series

    def _time_series(self) -> None:
        for name, values in (("first_response", [(s, v) for s, _a, v in self.first]),
                             ("queue_wait", self.waits),
                             ("resolution", [(s, v) for s, _a, v in self.resolutions])):
            per_slot: list[list[float]] = [[] for _ in range(self.count)]
            for slot, value in values:
                per_slot[slot].append(value)
            self.series[f"{name}.median"] = [summary(v)["median"] for v in per_slot]
            self.series[f"{name}.p90"] = [summary(v)["p90"] for v in per_slot]

    def totals(self) -> dict[str, Any]:
        def total(name: str) -> int:
            return sum(int(v or 0) for v in self.series.get(name, []))

        messages_in = sum(total(n) for n in self.series if n.startswith("messages.")
                          and n.endswith(".in"))
        messages_out = sum(total(n) for n in self.series if n.startswith("messages.")
                           and n.endswith(".out"))
        replies, fallbacks = total("bot.replies"), total("bot.fallbacks")
        return {
            "conversations_started": total("conversations.started"),
            "conversations_closed": total("conversations.closed"),
            "messages_in": messages_in, "messages_out": messages_out,
            "active_people": self.people_total,
            "bot_turns": replies + fallbacks,
            "bot_answer_rate": rate(replies, replies + fallbacks),
            "bot_fallback_rate": rate(fallbacks, replies + fallbacks),
            "handoffs": total("handoffs"),
            "first_response_median": summary([v for _s, _a, v in self.first])["median"],
            "resolution_median": summary([v for _s, _a, v in self.resolutions])["median"],
            "queue_wait_median": summary([v for _s, v in self.waits])["median"],
        }

    def details(self) -> dict[str, Any]:
        agents: dict[str, dict[str, list[float]]] = {}
        for _slot, agent, value in self.first:
            if agent:
                agents.setdefault(agent, {"first": [], "resolution": []})["first"].append(value)
        for _slot, agent, value in self.resolutions:
            if agent:
                agents.setdefault(agent, {"first": [], "resolution": []})[
                    "resolution"].append(value)
        agent_rows: list[dict[str, Any]] = [
            {"agent": agent, "first_response": summary(values["first"]),
             "resolution": summary(values["resolution"])} for agent, values in agents.items()]
        agent_rows.sort(key=lambda r: (-r["first_response"]["count"] - r["resolution"]["count"],
                                       r["agent"]))
        return {
            "response_times": {
                "first_response": summary([v for _s, _a, v in self.first]),
                "resolution": summary([v for _s, _a, v in self.resolutions]),
                "queue_wait": summary([v for _s, v in self.waits])},
            "agents": agent_rows,
            "top_intents": [{"intent": i, "count": n} for i, n in sorted(
                self.intents.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]],
            "top_fallbacks": [{"message": m, "count": n, "last": isoformat(last)}
                              for m, (n, last) in sorted(
                                  self.fallbacks.items(),
                                  key=lambda kv: (-kv[1][0], -kv[1][1].timestamp(), kv[0]))[:TOP]],
            "languages": [{"language": k, "count": v} for k, v in
                          sorted(self.languages.items(), key=lambda kv: (-kv[1], kv[0]))],
        }
