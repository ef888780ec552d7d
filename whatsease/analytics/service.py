"""The analytics report: who may see which scope, the figures for a range, and their cache.

`Analytics.report` shapes one JSON-ready report for a range and the previous
period of the same length: bucket starts, series (one list per metric,
aligned with the buckets), totals, the previous period's totals, response
times, top intents and fallbacks, agents, languages and sentiment.

Every figure comes per quarter hour (`slots`): those that can no longer
change are computed once and kept in ``analytics_slots``; a report computes
the rest (the open end of the range, and the parts of quarter hours its edges
cut) in one pipeline per source.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from whatsease.analytics import buckets, fold, sentiment, slot_runs, slots
from whatsease.analytics.memory import Kept, Memory
from whatsease.analytics.report import ReportBuilder
from whatsease.analytics.scope import Scope, fallback_replies
from whatsease.analytics.slots import Piece
from whatsease.errors import NotFound
from whatsease.services import Services
from whatsease.storage.analytics import (
    ID_SLACK,
    SLOT,
    AnalyticsRepo,
    Plan,
    Spans,
    Window,
    plan_names,
    slot_plan,
    slot_plans,
)
from whatsease.storage.support import MESSAGES
from whatsease.timeutil import isoformat, utcnow

logger = logging.getLogger(__name__)

# Customer messages whose sentiment is scored: the newest ones of each source
# in each quarter hour. VADER reads about 10,000 short messages a second.
SENTIMENT_PER_SLOT = 50
# A quarter hour is kept once it ended this long ago (`ID_SLACK` unless named
# here): a message is found by its `_id` within `ID_SLACK` of its timestamp,
# so none can arrive for it later; a turn or a conversation's start or end is
# written when it happens. A handoff's first response and queue wait are set
# later: its quarter hour is kept once a day old (a first reply to a handoff
# later than that is not counted).
CLOSE_AFTER: dict[str, timedelta] = {"support_handoffs": timedelta(days=1)}
# The hot sources and their collections: their messages since this long ago are
# read by the conversations that had one (an index walk); a report's other
# edges in them are counted in whole quarter hours (the nearest boundary).
HOT = {"messenger_messages": "messages", "support_messages": MESSAGES}
RECENT = timedelta(hours=2)
# How long a report waits for figures being computed (a cold start computes
# months of history in the background; the page shows what it has meanwhile).
WAIT_SECS = 3.0
# A backfill's parts: each read is sized to take about `PART_SECS`, starting
# from these (conversations whose messages one read takes; days of an indexed
# collection), within these bounds.
PART_SECS = 0.1
CONVERSATIONS_PER_READ, MAX_CONVERSATIONS_PER_READ = 100, 20_000
# Past this many conversations, a read walks the index from the first to the
# last of its part instead of looking each up.
WALK_PAST = 400
INDEXED_PER_READ = timedelta(days=2)
MIN_INDEXED_PER_READ, MAX_INDEXED_PER_READ = timedelta(hours=1), timedelta(days=120)
# After each part of a backfill it pauses this share of the time the part took
# (at most `MAX_PAUSE_SECS`): the database is the chat path's half of the time
# at least. (At 0.5, the probe of a 200,000-message backfill on the loaded
# machine had a p50 of 62 ms against 8 before it: bench/README.md.)
PAUSE_RATIO = 1.0
MAX_PAUSE_SECS = 1.0
# A computation of at most this many parts (the open end of a report) reads
# them at once; a longer one (a backfill) takes turns and pauses.
SMALL_READ_PARTS = 4
# Past this many whole quarter hours not kept yet (two hours), a source's history
# is computed in the background while reports answer at once without it.
OPEN_END_SLOTS = 8
# A whole day's figures are kept under its day's key and this.
DAY_SUFFIX = "|day"
# Part of every kept quarter hour's key: raise it when what a pipeline computes
# changes, and every report computes its quarter hours afresh.
CACHE_VERSION = 2


class Analytics:
    """Computes reports from the stored history; one per process."""

    def __init__(self, services: Services, repo: AnalyticsRepo,
                 clock: Callable[[], datetime] = utcnow, wait: float = WAIT_SECS,
                 history_wait: float = 0.0) -> None:
        self.services = services
        self.repo = repo
        self.clock = clock
        # How long a report waits for its open end, and for history being
        # computed (by default not at all: the page shows what is kept).
        self.wait = wait
        self.history_wait = history_wait
        # History being computed, one per source and scope (by key prefix).
        self._backfills: dict[str, asyncio.Task[tuple[set[datetime],
                                                       dict[datetime, Piece]]]] = {}
        self._memory = Memory()
        # Computations under way, by what they compute: a report waits for
        # them at most `wait` seconds, and they finish (and keep what they
        # computed) whether or not anyone still waits.
        self._jobs: dict[tuple[Any, ...], asyncio.Task[dict[slots.Key, Piece]]] = {}
        # Reads of many parts (a backfill) take turns, one part at a time.
        self._lane = asyncio.Lock()

    async def report(self, scope: Scope, start: datetime, end: datetime, unit: str,
                     tz_name: str) -> dict[str, Any]:
        """The report for ``[start, end)``; raises a 422 for a bad zone, unit or range.

        Returns within about `wait` seconds: figures still being computed
        then are left out, named in ``computing`` (``complete`` is false),
        and are there in a later report.
        """
        tz = buckets.zone(tz_name)
        edges = buckets.edges(start, end, unit, tz)
        previous_start = start - (end - start)
        fallback_texts = await fallback_replies(self.services, scope)
        pieces, computing = await self._pieces(scope, previous_start, start, end,
                                               fallback_texts, edges)
        report = ReportBuilder(len(edges) - 1)
        # One bucket for the whole previous period.
        earlier = ReportBuilder(1)
        tallies: list[dict[str, float]] = []
        for name, by_slot in pieces.items():
            for (slot, now), piece in by_slot.items():
                if now:
                    at = max(slot, slots.utc(start))
                    report.add_piece(name, bisect.bisect_right(edges, at) - 1, piece)
                    tallies.append(piece.sentiment)
                else:
                    earlier.add_piece(name, 0, piece)
        body: dict[str, Any] = {
            "scope": {"org": scope.org}, "from": isoformat(start), "to": isoformat(end),
            "bucket": unit, "tz": tz_name, "complete": not computing, "computing": computing,
            "buckets": [isoformat(edge) for edge in edges[:-1]],
            "series": report.finish(), "totals": report.totals(),
        }
        earlier.finish()
        body["previous"] = {"from": isoformat(previous_start), "to": isoformat(start),
                            "totals": earlier.totals()}
        body.update(report.details())
        body["sentiment"] = sentiment.finish(tallies)
        body["sentiment"]["languages_scored"] = list(sentiment.SCORED_LANGUAGES)
        body["generated_at"] = isoformat(self.clock())
        return body

    @staticmethod
    def key_prefix(name: str, scope: Scope, fallback_texts: list[str]) -> str:
        """What the keys of ``name``'s kept days for ``scope`` start with (the day follows)."""
        # What a support bot's fallback is can change with a catalogue: it is
        # part of the key, so a changed catalogue computes its quarter hours anew.
        digest = hashlib.sha256("\n".join(fallback_texts).encode()).hexdigest()[:12]
        return f"v{CACHE_VERSION}|{name}|{scope.org or '*'}|{digest}|"

    async def idle(self) -> None:
        """Wait until every computation under way has finished (tests, the bench)."""
        while self._jobs or self._backfills:
            await asyncio.wait([*self._jobs.values(), *self._backfills.values()])

    async def _pieces(self, scope: Scope, start: datetime, split: datetime, end: datetime,
                      fallback_texts: list[str], edges: list[datetime]
                      ) -> tuple[dict[str, dict[slots.Key, Piece]], list[str]]:
        """Every source's figures for ``[start, end)`` by quarter hour and side of
        ``split``, and the sources still being computed.

        Kept quarter hours are read by key; the rest is computed (in the
        background, see `report`), and the whole quarter hours among it that
        can no longer change are kept for the next report.
        """
        now = self.clock()
        names = plan_names(scope.org)
        results = await asyncio.gather(*(
            self._one(name, scope, start, split, end, fallback_texts, now, edges)
            for name in names))
        pieces = {name: found for name, (found, _done) in zip(names, results, strict=True)}
        return pieces, [name for name, (_found, done) in zip(names, results, strict=True)
                        if not done]

    async def _one(self, name: str, scope: Scope, start: datetime, split: datetime,
                   end: datetime, fallback_texts: list[str], now: datetime,
                   edges: list[datetime]
                   ) -> tuple[dict[slots.Key, Piece], bool]:
        recent = now - RECENT
        begins = split  # where the current period's first bucket begins counting
        if name in HOT:
            # Only recent messages are read exactly to the moment; an older
            # edge is counted in whole quarter hours, which are kept.
            start, split, end = (slots.nearest(t) if t < recent else t
                                 for t in (start, split, end))
        days = slot_runs.whole_by_day(start, split, end, now - CLOSE_AFTER.get(name, ID_SLACK))
        prefix = self.key_prefix(name, scope, fallback_texts)
        by_day = dict(days)

        def in_one_bucket(low: datetime, high: datetime) -> bool:
            if high <= split:  # the previous period is one bucket
                return True
            if low < split:
                return False
            last = high - timedelta(microseconds=1)
            return (bisect.bisect_right(edges, max(low, begins))
                    == bisect.bisect_right(edges, last))

        pieces: dict[slots.Key, Piece] = {}
        # What is kept, as runs of quarter hours (a year is 70,000 of them: whole
        # days are taken at once), and the quarter hours of days read one by one.
        covered: list[tuple[datetime, datetime]] = []
        kept: set[datetime] = set()
        summed_days: set[str] = set()
        # A whole kept day that falls in one bucket is read as one figure, kept
        # in a document of its own (small: the page reads those by the dozen).
        whole_days = {day for day, members in by_day.items()
                      if len(members) == slots.PER_DAY
                      and in_one_bucket(members[0][0], members[0][0] + timedelta(days=1))}
        summed = await self._kept_days(
            [prefix + day + DAY_SUFFIX for day in sorted(whole_days)])
        for day in whole_days:
            found = summed.get(prefix + day + DAY_SUFFIX)
            if found is not None:
                members = by_day.pop(day)
                first = members[0][0]
                covered.append((first, members[-1][0] + SLOT))
                if found.day is not None:
                    pieces[(first, first >= split)] = found.day
        kept_days = await self._kept_days([prefix + day for day in by_day])
        rollups: dict[str, dict[str, Any]] = {}
        for day, members in by_day.items():
            figures = kept_days.get(prefix + day)
            if figures is None:
                continue
            if day in whole_days and len(figures.slots) >= slots.PER_DAY:
                piece = Piece()
                for one in figures.slots.values():
                    if one is not None:
                        piece.merge(one)
                rollup = piece.to_doc()
                rollups[prefix + day + DAY_SUFFIX] = rollup
                self._memory.put(prefix + day + DAY_SUFFIX, Kept(day=piece if rollup else None))
            if len(figures.slots) >= slots.PER_DAY:
                # A day that can no longer change: its quarter hours in one bucket
                # (an hour, a local day's part of it) are added up once, and the
                # sums held with it in memory.
                groups: dict[tuple[bool, int], list[tuple[datetime, str]]] = {}
                for slot, slot_name in members:
                    side = slot >= split
                    bucket = bisect.bisect_right(edges, max(slot, begins)) if side else -1
                    groups.setdefault((side, bucket), []).append((slot, slot_name))
                for (side, _bucket), group in groups.items():
                    covered += slot_runs.exact_runs([slot for slot, _name in group])
                    summed_piece = figures.sum([slot_name for _slot, slot_name in group])
                    if summed_piece is not None:
                        pieces[(group[0][0], side)] = summed_piece
                summed_days.add(day)
                continue
            for slot, slot_name in members:
                if slot_name in figures.slots:
                    kept.add(slot)
                    one = figures.slots[slot_name]
                    if one is not None:  # an empty quarter hour is kept as {}
                        pieces[(slot, slot >= split)] = one
        if rollups:
            await self.repo.keep_day(rollups, now)
        todo = [slot for day, members in by_day.items() if day not in summed_days
                for slot, _name in members if slot not in kept]
        covered += slot_runs.exact_runs(sorted(kept))
        present = set(kept_days)
        history_done = True
        if len(todo) > OPEN_END_SLOTS:
            # History (a cold start, or a long pause): computed in the
            # background, one computation per source and scope at a time;
            # the report goes on with the rest at once.
            history, history_done = await self._history(
                name, scope, todo, fallback_texts, prefix, present, now)
            for slot, piece in history.items():
                pieces[(slot, slot >= split)] = piece
            covered += slot_runs.exact_runs(todo)
            todo = []
        ranges = slots.uncovered_runs(start, end, covered)
        if not ranges:
            return pieces, history_done
        job = (prefix, tuple(ranges), split)
        task = self._jobs.get(job)
        if task is None:
            task = asyncio.create_task(self._compute(
                name, scope, ranges, split, todo, fallback_texts, prefix, present, now))
            self._jobs[job] = task
            task.add_done_callback(lambda done: self._finished(job, done))
        # The wait starts here, once what is kept has been read (a year's first
        # page reads thousands of kept documents).
        await asyncio.wait([task], timeout=self.wait)
        if not task.done() or task.cancelled() or task.exception() is not None:
            return pieces, False
        # Past `slots.MAX_RANGES` gaps one covering range is computed: what it
        # holds of kept quarter hours (perhaps added up per bucket) is not added.
        runs = sorted(covered)
        lows = [low for low, _high in runs]
        for key, piece in task.result().items():
            at = bisect.bisect_right(lows, key[0]) - 1
            if at < 0 or key[0] >= runs[at][1]:
                pieces[key] = piece
        return pieces, history_done

    async def _history(self, name: str, scope: Scope, todo: list[datetime],
                       fallback_texts: list[str], prefix: str, present: set[str],
                       now: datetime) -> tuple[dict[datetime, Piece], bool]:
        """The figures of the whole quarter hours ``todo`` (none kept yet) by quarter hour,
        as far as computed within `history_wait`, and whether all of them were.

        One computation per source and scope runs at a time (a later report
        whose quarter hours it does not hold starts its own once it ends), so
        reports asked while history is computed do not read it again.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.history_wait
        found: dict[datetime, Piece] = {}
        left = set(todo)
        while left:
            task = self._backfills.get(prefix)
            started = task is None
            if task is None:
                wanted = sorted(left)
                task = asyncio.create_task(self._backfill(
                    name, scope, wanted, fallback_texts, prefix, present, now))
                self._backfills[prefix] = task
                task.add_done_callback(lambda done: self._backfilled(prefix, done))
            await asyncio.wait([task], timeout=max(0.0, deadline - loop.time()))
            if not task.done() or task.cancelled() or task.exception() is not None:
                return found, False
            if self._backfills.get(prefix) is task:
                del self._backfills[prefix]
            covered, result = task.result()
            for slot in [s for s in left if s in covered]:
                if slot in result:
                    found[slot] = result[slot]
                left.discard(slot)
            if started:
                break
        return found, not left

    async def _backfill(self, name: str, scope: Scope, todo: list[datetime],
                        fallback_texts: list[str], prefix: str, present: set[str],
                        now: datetime) -> tuple[set[datetime], dict[datetime, Piece]]:
        """Compute and keep the whole quarter hours ``todo`` (in order); those, and the
        figures of the ones that hold any."""
        ranges = slot_runs.runs(todo)
        split = ranges[0][0]  # every quarter hour on the same side: keyed by slot alone
        fresh = await self._compute(name, scope, ranges, split, todo, fallback_texts, prefix,
                                    present, now)
        wanted = set(todo)
        return wanted, {slot: piece for (slot, _now), piece in fresh.items() if slot in wanted}

    def _backfilled(self, prefix: str, task: asyncio.Task[Any]) -> None:
        if self._backfills.get(prefix) is task:
            del self._backfills[prefix]
        if not task.cancelled() and task.exception() is not None:
            logger.error("analytics: computing the history of %s failed", prefix,
                         exc_info=task.exception())

    async def _kept_days(self, keys: list[str]) -> dict[str, Kept]:
        """The kept documents among ``keys``, parsed: from memory when they can no longer
        change (a whole day's figures, or all 96 quarter hours of a day), else read."""
        found: dict[str, Kept] = {}
        missing: list[str] = []
        for key in keys:
            one = self._memory.get(key)
            if one is None:
                missing.append(key)
            else:
                found[key] = one
        for key, doc in (await self.repo.kept(missing)).items() if missing else ():
            if "day" in doc:
                day = doc["day"]
                one = Kept(day=Piece.from_doc(day) if day else None)
            else:
                one = Kept(slots={name: Piece.from_doc(v) if v else None
                                  for name, v in doc.items()})
            found[key] = one
            if one.day is not None or "day" in doc or len(one.slots) >= slots.PER_DAY:
                self._memory.put(key, one)
        return found

    def _finished(self, job: tuple[Any, ...], task: asyncio.Task[Any]) -> None:
        self._jobs.pop(job, None)
        if not task.cancelled() and task.exception() is not None:
            logger.error("analytics: computing %s failed", job[0],
                         exc_info=task.exception())

    async def _compute(self, name: str, scope: Scope, ranges: list[tuple[datetime, datetime]],
                       split: datetime, todo: list[datetime], fallback_texts: list[str],
                       prefix: str, present: set[str],
                       now: datetime) -> dict[slots.Key, Piece]:
        """``name``'s figures for ``ranges``; keeps the whole quarter hours ``todo``."""
        fresh, texts = await self._read(name, scope, ranges, split, fallback_texts, now)
        if texts:
            loop = asyncio.get_running_loop()
            scored = await loop.run_in_executor(
                None, lambda: {key: sentiment.tally(values) for key, values in texts.items()})
            for key, tally in scored.items():
                fresh.setdefault(key, Piece()).sentiment = tally
        new: dict[str, dict[str, Any]] = {}
        for slot in todo:
            day, slot_name = slots.day_and_name(slot)
            piece = fresh.get((slot, slot >= split))
            new.setdefault(prefix + day, {})[slot_name] = {} if piece is None else piece.to_doc()
        await self.repo.keep(new, present, now)
        # A whole day computed at once (history) is also kept as one figure, which
        # the next report reads instead of its 96 quarter hours.
        rollups = slots.whole_days(new, suffix=DAY_SUFFIX)
        if rollups:
            await self.repo.keep_day(rollups, now)
        return fresh

    async def _read(self, name: str, scope: Scope, ranges: list[tuple[datetime, datetime]],
                    split: datetime, fallback_texts: list[str],
                    now: datetime) -> tuple[dict[slots.Key, Piece], slots.Texts]:
        """Run ``name``'s pipeline over ``ranges`` in parts, and add the parts up.

        Messages are read by the conversations that had one since the first
        range began, some at a time; the other sources some days of history
        at a time. Each part's size is adapted so that it takes about
        `PART_SECS`. Past `SMALL_READ_PARTS` parts (a backfill, not a
        report's open end) a computation takes its turn in one lane and
        pauses after each part as long as the part took (`PAUSE_RATIO`), so it
        never holds the database for long or for more than half the time.
        """
        pieces: dict[slots.Key, Piece] = {}
        texts: slots.Texts = {}
        loop = asyncio.get_running_loop()
        done = 0

        async def run(spans: Spans) -> float:
            nonlocal done
            plan = slot_plan(name, spans, fallback_texts=fallback_texts,
                             sample=SENTIMENT_PER_SLOT)
            done += 1
            began = loop.time()
            if done <= SMALL_READ_PARTS:
                rows = await self.repo.run(plan)
                took = loop.time() - began
            else:
                async with self._lane:
                    began = loop.time()
                    rows = await self.repo.run(plan)
                    took = loop.time() - began
                    await asyncio.sleep(min(MAX_PAUSE_SECS, took * PAUSE_RATIO))
            found, sample = fold.fold_source(name, rows, spans, fallback_texts=fallback_texts,
                                             sample=SENTIMENT_PER_SLOT)
            for key, piece in found.items():
                if key in pieces:
                    pieces[key].merge(piece)
                else:
                    pieces[key] = piece
            for key, values in sample.items():
                texts[key] = (texts.get(key, []) + values)[:SENTIMENT_PER_SLOT]
            # The next part's size, relative to this one's.
            return min(4.0, max(0.25, PART_SECS / max(took, 0.001)))

        if name in HOT:
            ids: list[str] = []
            async for batch in self.repo.active(HOT[name], scope.org, ranges[0][0], now):
                ids += batch
            # Many conversations (a backfill) are read as ranges of the index:
            # one walk each, where looking each up costs about a millisecond.
            walk = len(ids) > WALK_PAST
            ids.sort()
            size, i = float(CONVERSATIONS_PER_READ), 0
            while i < len(ids):
                count = max(1, min(MAX_CONVERSATIONS_PER_READ, int(size)))
                chunk = ids[i:i + count]
                spans = Spans(tuple(ranges), split=split, org=scope.org,
                              between=(chunk[0], chunk[-1]) if walk else None,
                              conversations=() if walk else tuple(chunk))
                size = count * await run(spans)
                i += count
        else:
            span, low = INDEXED_PER_READ, ranges[0][0]
            while low < ranges[-1][1]:
                high = min(low + span, ranges[-1][1])
                part = [(max(a, low), min(b, high)) for a, b in ranges if a < high and b > low]
                if part:
                    span = span * await run(Spans(tuple(part), split=split, org=scope.org))
                    span = min(max(span, MIN_INDEXED_PER_READ), MAX_INDEXED_PER_READ)
                low = high
        return pieces, texts


def plans_for(window: Window, conversations: tuple[str, ...] = ()) -> list[Plan]:
    """Every pipeline of one report computed afresh, nothing kept, no fallback texts, the
    hot collections' for ``conversations`` (for the bench's explain and the tests)."""
    spans = Spans(((window.start, window.end),), split=window.start, org=window.org,
                  conversations=conversations)
    return slot_plans(spans, fallback_texts=[], sample=SENTIMENT_PER_SLOT)


def get_analytics(services: Services) -> Analytics:
    analytics = services.analytics
    if analytics is None:
        raise NotFound("Analytics are not enabled on this server.")
    return analytics


async def setup(services: Services) -> None:
    """Build the analytics service (its indexes are created with the store's)."""
    services.analytics = Analytics(services, AnalyticsRepo(services.store.db))
