"""Prometheus metrics of chatbot instances (per provider, never per instance: ids are unbounded).

Per-instance and per-conversation figures are in each instance's status
(``GET /api/v1/chatbots/{instance_id}/status``).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LLM_BUCKETS_SECS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

MESSAGES = Counter("whatsease_chatbot_messages_total",
                   "Messages reaching chatbot instances, by outcome (queued, answered, "
                   "ignored_whitelist, ignored_group, duplicate, dropped, error, handed_off, "
                   "outside_window).", ["outcome"])
QUEUE_DEPTH = Gauge("whatsease_chatbot_queue_depth",
                    "Unanswered messages waiting in chatbot instances' queues.")
QUEUE_DROPS = Counter("whatsease_chatbot_queue_drops_total",
                      "Unanswered messages dropped from a full queue (oldest first).")
LLM_TOKENS = Counter("whatsease_chatbot_llm_tokens_total",
                     "Tokens used by chatbot LLM calls, by provider and kind (prompt, completion).",
                     ["provider", "kind"])
LLM_LATENCY = Histogram("whatsease_chatbot_llm_seconds", "Latency of chatbot LLM calls.",
                        ["provider"], buckets=LLM_BUCKETS_SECS)
LLM_ERRORS = Counter("whatsease_chatbot_llm_errors_total",
                     "Chatbot LLM calls that failed (the sender got a polite answer).",
                     ["provider"])
HANDOFFS = Counter("whatsease_chatbot_handoffs_total",
                   "Conversations handed to a person because the bot stayed unsure.")
