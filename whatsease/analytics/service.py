"""The analytics report: who may see which scope, the figures for a range, and their cache.

`Analytics.report` runs the storage pipelines for a range and its previous
period of the same length, and shapes one JSON-ready report: bucket starts,
series (one list per metric, aligned with the buckets), totals, the previous
period's totals, response times, top intents and fallbacks, agents,
languages and sentiment. A range that has ended cannot change any more, so
its report is kept (bounded LRU); an open one is computed on every call.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from whatsease.analytics import buckets, sentiment
from whatsease.analytics.stats import rate, summary
from whatsease.errors import Forbidden, NotFound
from whatsease.services import Services
from whatsease.storage.analytics import AnalyticsRepo, Plan, Window, plans
from whatsease.storage.models import User
from whatsease.support.orgs import is_member, is_platform_admin
from whatsease.timeutil import isoformat, utcnow

# Closed ranges kept; a report is a few kilobytes to a few hundred.
CACHE_ENTRIES = 64
# Customer messages whose sentiment is scored per range: the newest ones of
# each source. VADER reads about 10,000 short messages a second, so this
# keeps one report's scoring around a tenth of a second.
SENTIMENT_SAMPLE = 500
# How many intents, fallback messages and agents the lists show.
TOP = 10
# The orgs whose fallback replies are recognised for the whole messenger.
MAX_ORGS = 500
CHANNELS_ALWAYS = ("web", "widget")


@dataclass(frozen=True)
class Scope:
    """An organisation's figures, or (``org`` None) the whole messenger's."""

    org: str | None


def scope_for(user: User, org: str | None) -> Scope:
    """What ``user`` may see for the ``org`` asked (None: their own, or everything).

    Platform admins see any org or the whole messenger; an org's agents and
    admins see their org only (another org is `NotFound`, as elsewhere);
    everyone else is `Forbidden`.
    """
    if is_platform_admin(user):
        return Scope(org)
    if user.role not in ("agent", "admin") or not user.org:
        raise Forbidden("Only operators and organisations' agents and admins see analytics.")
    if org is not None and not is_member(user, org):
        raise NotFound("No such organisation.")
    return Scope(user.org)


class Analytics:
    """Computes reports from the stored history; one per process."""

    def __init__(self, services: Services, repo: AnalyticsRepo,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.services = services
        self.repo = repo
        self.clock = clock
        self._cache: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()

    async def report(self, scope: Scope, start: datetime, end: datetime, unit: str,
                     tz_name: str) -> dict[str, Any]:
        """The report for ``[start, end)``; raises a 422 for a bad zone, unit or range."""
        tz = buckets.zone(tz_name)
        edges = buckets.edges(start, end, unit, tz)
        current = await self._period(scope, start, end, unit, tz_name, edges)
        previous_start = start - (end - start)
        previous_edges = [previous_start, start]
        previous = await self._period(scope, previous_start, start, unit, tz_name,
                                      previous_edges, whole=True)
        body = dict(current)
        body["previous"] = {"from": isoformat(previous_start), "to": isoformat(start),
                            "totals": previous["totals"]}
        return body

    async def _period(self, scope: Scope, start: datetime, end: datetime, unit: str,
                      tz_name: str, edges: list[datetime], *,
                      whole: bool = False) -> dict[str, Any]:
        key = (scope.org, start, end, unit, tz_name, whole)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        closed = end <= self.clock()
        body = await self._compute(scope, start, end, unit, tz_name, edges, whole=whole)
        if closed:
            self._cache[key] = body
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return body

    async def _fallback_texts(self, scope: Scope) -> list[str]:
        """The fallback replies of the support bots in scope (how a fallback is recognised)."""
        support = self.services.support
        if support is None:
            return []
        chatbot = support.chatbot
        texts = set(chatbot.default_catalogue.bot.fallback)
        if scope.org is not None:
            one = await support.store.orgs.get(scope.org)
            if one is None:
                raise NotFound("No such organisation.")
            orgs = [one]
        else:
            orgs = await support.store.orgs.find(limit=MAX_ORGS)
        for org in orgs:
            if org.settings.chatbot.kind == "builtin":
                texts.update(chatbot.engine_for(org).catalogue.bot.fallback)
        return sorted(texts)

    async def _compute(self, scope: Scope, start: datetime, end: datetime, unit: str,
                       tz_name: str, edges: list[datetime], *, whole: bool) -> dict[str, Any]:
        window = Window(start=start, end=end, unit=unit, tz=tz_name, org=scope.org)
        todo = plans(window, fallback_texts=await self._fallback_texts(scope),
                     sample=0 if whole else SENTIMENT_SAMPLE, top=TOP)
        results = await asyncio.gather(*(self.repo.run(plan) for plan in todo))
        raw = {plan.name: rows for plan, rows in zip(todo, results, strict=True)}
        if whole:
            # One bucket for the whole previous period: its bucket key is
            # whatever the database truncated to, so every row goes to slot 0.
            position: Callable[[Any], int | None] = lambda _t: 0  # noqa: E731
            count = 1
        else:
            slots = {edge: i for i, edge in enumerate(edges[:-1])}
            position = lambda t: slots.get(_utc(t))  # noqa: E731
            count = len(edges) - 1
        report = _Builder(count, position)
        samples = report.add(raw)
        body: dict[str, Any] = {
            "scope": {"org": scope.org}, "from": isoformat(start), "to": isoformat(end),
            "bucket": unit, "tz": tz_name,
            "buckets": [isoformat(edge) for edge in edges[:-1]] if not whole else [],
            "series": report.series, "totals": report.totals(),
        }
        if whole:
            return body
        body.update(report.details())
        loop = asyncio.get_running_loop()
        body["sentiment"] = await loop.run_in_executor(None, sentiment.score, samples)
        body["sentiment"]["languages_scored"] = list(sentiment.SCORED_LANGUAGES)
        body["generated_at"] = isoformat(self.clock())
        return body


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _facet(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return rows[0] if rows else {}


class _Builder:
    """Folds the pipelines' rows into series aligned with the buckets, and the lists."""

    def __init__(self, count: int, position: Callable[[Any], int | None]) -> None:
        self.count = count
        self.position = position
        self.series: dict[str, list[float | int | None]] = {}
        self.people_total = 0
        self.intents: list[dict[str, Any]] = []
        self.fallbacks: list[dict[str, Any]] = []
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

    def _bump(self, name: str, t: Any, n: int) -> None:
        slot = self.position(t)
        if slot is not None:
            line = self._line(name)
            line[slot] = int(line[slot] or 0) + int(n)

    def add(self, raw: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str]]:
        """Fold every pipeline's rows in; returns the texts to score for sentiment."""
        samples: list[tuple[str, str]] = []
        for name in ("messenger_messages", "support_messages"):
            facet = _facet(raw.get(name, []))
            for row in facet.get("counts", []):
                key = row["_id"]
                self._bump(f"messages.{key['c']}.{key['d']}", key["t"], row["n"])
            for row in facet.get("people", []):
                self._bump("people.active", row["_id"], row["n"])
            self.people_total += sum(int(r["n"]) for r in facet.get("people_total", []))
            for row in facet.get("bot", []):
                key = row["_id"]
                self._bump("bot.fallbacks" if key["fallback"] else "bot.replies", key["t"],
                           row["n"])
            self._languages(facet.get("languages", []))
            samples += [(s["text"], s["language"]) for s in facet.get("sample", [])]
        turns = _facet(raw.get("bot_turns", []))
        for row in turns.get("counts", []):
            key = row["_id"]
            self._bump("bot.fallbacks" if key["fallback"] else "bot.replies", key["t"], row["n"])
        self.intents = [{"intent": r["_id"], "count": int(r["n"])}
                        for r in turns.get("intents", [])]
        self.fallbacks = [{"message": r["_id"], "count": int(r["n"]),
                           "last": isoformat(_utc(r["last"]))}
                          for r in turns.get("fallbacks", [])]
        to_bots = _facet(raw.get("messenger_to_bots", []))
        self._languages(to_bots.get("languages", []))
        samples += [(s["text"], s["language"]) for s in to_bots.get("sample", [])]
        for row in raw.get("support_started", []):
            self._bump("conversations.started", row["_id"]["t"], row["n"])
        for row in raw.get("support_closed", []):
            self._bump("conversations.closed", row["t"], 1)
            slot = self.position(row["t"])
            if slot is not None and row.get("agent"):
                self.resolutions.append((slot, row["agent"], float(row["secs"])))
        for row in raw.get("support_handoffs", []):
            self._bump("handoffs", row["t"], 1)
            slot = self.position(row["t"])
            if slot is None:
                continue
            if row.get("first") is not None:
                self.first.append((slot, row.get("responder"), float(row["first"])))
            if row.get("wait") is not None:
                self.waits.append((slot, float(row["wait"])))
        self._time_series()
        return samples

    def _languages(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.languages[row["_id"]] = self.languages.get(row["_id"], 0) + int(row["n"])

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
            "top_intents": self.intents, "top_fallbacks": self.fallbacks,
            "languages": [{"language": k, "count": v} for k, v in
                          sorted(self.languages.items(), key=lambda kv: (-kv[1], kv[0]))],
        }


def plans_for(window: Window) -> list[Plan]:
    """The pipelines of one report without fallback texts (for the bench's explain)."""
    return plans(window, fallback_texts=[], sample=SENTIMENT_SAMPLE, top=TOP)


def get_analytics(services: Services) -> Analytics:
    analytics = services.analytics
    if analytics is None:
        raise NotFound("Analytics are not enabled on this server.")
    return analytics


async def setup(services: Services) -> None:
    """Build the analytics service (its indexes are created with the store's)."""
    services.analytics = Analytics(services, AnalyticsRepo(services.store.db))
