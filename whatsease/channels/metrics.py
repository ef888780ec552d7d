"""Prometheus metrics of the external channels (WhatsApp, Telegram, loopback, third parties)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, Histogram

from whatsease.metrics import LATENCY_BUCKETS_SECS

if TYPE_CHECKING:
    from whatsease.channels.base import SendResult

CHANNEL_IN = Counter("whatsease_channel_messages_in_total",
                     "Messages received from an external channel, by channel and kind.",
                     ["channel", "kind"])
CHANNEL_OUT = Counter("whatsease_channel_messages_out_total",
                      "Messages sent to an external channel, by channel and outcome.",
                      ["channel", "outcome"])
CHANNEL_STATUSES = Counter("whatsease_channel_statuses_total",
                           "Delivery receipts received from a channel, by status.",
                           ["channel", "status"])
WEBHOOK_REFUSED = Counter("whatsease_channel_webhook_refused_total",
                          "Webhook requests refused (bad or missing signature or secret).",
                          ["channel"])
WEBHOOK_DUPLICATES = Counter("whatsease_channel_webhook_duplicates_total",
                             "Redelivered webhook events skipped by de-duplication.", ["channel"])
WEBHOOK_DROPPED = Counter("whatsease_channel_webhook_dropped_total",
                          "Webhook events dropped because the processing queue was full.",
                          ["channel"])
API_LATENCY = Histogram("whatsease_channel_api_seconds",
                        "Latency of calls to a platform's API (Graph, Telegram Bot API).",
                        ["channel", "operation"], buckets=LATENCY_BUCKETS_SECS)
API_ERRORS = Counter("whatsease_channel_api_errors_total",
                     "Failed calls to a platform's API, by HTTP status (or 'network').",
                     ["channel", "operation", "status"])


def observe_api(channel: str, operation: str, seconds: float, result: SendResult) -> None:
    """Record one API call's latency, and its failure if it failed."""
    API_LATENCY.labels(channel, operation).observe(seconds)
    if not result.ok:
        status = str(result.status_code) if result.status_code is not None else "network"
        API_ERRORS.labels(channel, operation, status).inc()


def count_out(channel: str, outcome: str) -> None:
    CHANNEL_OUT.labels(channel, outcome).inc()


def count_in(channel: str, kind: str) -> None:
    CHANNEL_IN.labels(channel, kind).inc()
