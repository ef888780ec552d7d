"""Prometheus metrics, defined once per process and served at ``/metrics``."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry


class LabelCounts:
    """A Prometheus counter by one label, counted in plain ints and read at scrape time.

    For counts bumped on every WebSocket frame: a prometheus_client `Counter`
    child takes a lock and adds a float on each `inc`; here an increment is
    one dict update, and `collect` (called by the registry for ``/metrics``)
    reports exactly the counts so far. Only the event loop's thread may call
    `inc`. The label's values must come from a bounded set (frame types).
    """

    def __init__(self, name: str, documentation: str, label: str,
                 registry: CollectorRegistry | None = REGISTRY) -> None:
        self.name = name
        self.documentation = documentation
        self.label = label
        self.counts: dict[str, int] = {}
        if registry is not None:
            registry.register(self)

    def inc(self, value: str) -> None:
        counts = self.counts
        counts[value] = counts.get(value, 0) + 1

    def get(self, value: str) -> int:
        """The count for one label value so far (0 if never counted)."""
        return self.counts.get(value, 0)

    def describe(self) -> list[Metric]:
        # The names the registry reserves for this collector (it refuses duplicates).
        return [CounterMetricFamily(self.name, self.documentation, labels=[self.label])]

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=[self.label])
        # A copy made in C, under the GIL: a scrape on another thread sees a consistent set.
        for value, count in list(self.counts.items()):
            family.add_metric([value], count)
        yield family


LATENCY_BUCKETS_SECS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

HTTP_REQUESTS = Counter("whatsease_http_requests_total", "HTTP requests by route and status.",
                        ["method", "route", "status"])
HTTP_LATENCY = Histogram("whatsease_http_request_seconds", "HTTP request latency by route.",
                         ["method", "route"], buckets=LATENCY_BUCKETS_SECS)

SOCKETS_OPEN = Gauge("whatsease_ws_sockets_open", "Open authenticated WebSockets.")
USERS_ONLINE = Gauge("whatsease_ws_users_online", "Users with at least one open WebSocket.")
# Counted on every frame: plain ints, read at scrape time.
FRAMES_IN = LabelCounts("whatsease_ws_frames_in_total", "Client frames received by type.", "type")
FRAMES_OUT = LabelCounts("whatsease_ws_frames_out_total", "Frames queued to sockets by type.",
                         "type")
SEND_QUEUE_OVERFLOWS = Counter("whatsease_ws_send_queue_overflows_total",
                               "Sockets closed with 4008 because their send queue was full.")
RATE_LIMITED = Counter("whatsease_ws_rate_limited_total", "Frames refused by the rate limit.")
MESSAGES = Counter("whatsease_messages_total", "Messages by status reached.", ["status"])
SEND_ACK_LATENCY = Histogram("whatsease_send_ack_seconds",
                             "From a send frame's arrival to its ack being queued.",
                             buckets=LATENCY_BUCKETS_SECS)
SEND_DELIVERED_LATENCY = Histogram("whatsease_send_delivered_seconds",
                                   "From a message's timestamp to its Delivered receipt.",
                                   buckets=LATENCY_BUCKETS_SECS)
LOOP_LAG = Gauge("whatsease_event_loop_lag_seconds", "Event-loop lag at the last probe.")
BATCH_SIZE = Histogram("whatsease_db_batch_size", "Items per batched database write.", ["kind"],
                       buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000))
BOT_REPLIES = Counter("whatsease_bot_replies_total", "Bot replies by outcome.", ["outcome"])
SUPPORT_SESSIONS = Counter("whatsease_support_sessions_total",
                           "Support widget sessions started and ended, by event.", ["event"])
SUPPORT_ASSIGNMENTS = Counter("whatsease_support_assignments_total",
                              "Support conversations assigned to an agent, by strategy.",
                              ["strategy"])
SUPPORT_QUEUED = Counter("whatsease_support_queued_total",
                         "Support conversations queued because no agent was online.")
SUPPORT_HANDOFFS = Counter("whatsease_support_handoffs_total",
                           "Bot/agent handoffs: customer_request, takeover, handback.", ["kind"])
SUPPORT_TRANSFERS = Counter("whatsease_support_transfers_total",
                            "Support conversations transferred between agents.")
SUPPORT_BOT_REPLIES = Counter("whatsease_support_bot_replies_total",
                              "Support chatbot replies by source.", ["source"])
SUPPORT_FIRST_RESPONSE = Histogram(
    "whatsease_support_first_response_seconds",
    "From a customer needing a person to an agent's first reply.",
    buckets=(5, 15, 30, 60, 120, 300, 600, 1800, 3600))

CLUSTER_MEMBERS = Gauge("whatsease_cluster_members", "Members in this instance's ring.")
CLUSTER_FORWARDS_OUT = Counter("whatsease_cluster_forwards_out_total",
                               "Frames forwarded to another instance, by peer.", ["peer"])
CLUSTER_FORWARDS_IN = Counter("whatsease_cluster_forwards_in_total",
                              "Frames received from another instance, by peer.", ["peer"])
CLUSTER_FORWARD_LATENCY = Histogram(
    "whatsease_cluster_forward_seconds",
    "From a frame's forward to its arrival on the peer (one-way, the peers' clocks).",
    buckets=LATENCY_BUCKETS_SECS)
CLUSTER_REPLAYS = Counter("whatsease_cluster_replays_total",
                          "Socket upgrades answered with fly-replay to their owner.")
CLUSTER_MOVED = Counter("whatsease_cluster_moved_sockets_total",
                        "Sockets closed with 4012 (moved) after a ring change.")
CLUSTER_RESTAMPS = Counter("whatsease_cluster_restamps_total",
                           "Changes given a fresh sync rev because their write was overdue.")
CLUSTER_RESTAMPS_GIVEN_UP = Counter(
    "whatsease_cluster_restamps_given_up_total",
    "Overdue changes left with an overdue rev after the last restamp (see revisions.py).")
CLUSTER_CATCH_UP_TOLD = Counter("whatsease_cluster_catch_up_told_total",
                                "Users told to sync because a lost member owed them a frame.")
CLUSTER_LINK_RECONNECTS = Counter("whatsease_cluster_link_reconnects_total",
                                  "Internal links (re)established, by peer.", ["peer"])
CLUSTER_DROPPED = Counter("whatsease_cluster_dropped_total",
                          "Frames not forwarded (peer queue full or link down), by peer.",
                          ["peer"])

GC_PAUSE = Histogram("whatsease_gc_pause_seconds",
                     "Garbage-collector pauses (the event loop stands still) by generation.",
                     ["generation"], buckets=LATENCY_BUCKETS_SECS)
_GC_PAUSE_BY_GENERATION = [GC_PAUSE.labels(str(g)) for g in range(3)]
_gc_started = 0.0


def _time_gc(phase: str, info: dict[str, Any]) -> None:
    global _gc_started
    if phase == "start":
        _gc_started = time.perf_counter()
    else:
        _GC_PAUSE_BY_GENERATION[info["generation"]].observe(time.perf_counter() - _gc_started)


def watch_gc() -> None:
    """Time every collection into `GC_PAUSE` (idempotent)."""
    if _time_gc not in gc.callbacks:
        gc.callbacks.append(_time_gc)


# How often the loop-lag probe wakes, in seconds.
LOOP_LAG_INTERVAL_SECS = 0.5


async def probe_loop_lag(interval: float = LOOP_LAG_INTERVAL_SECS) -> None:
    """Measure how late the event loop wakes a sleeper; runs until cancelled."""
    while True:
        start = time.perf_counter()
        await asyncio.sleep(interval)
        LOOP_LAG.set(max(0.0, time.perf_counter() - start - interval))
