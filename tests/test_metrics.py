"""whatsease.metrics: counters kept in plain ints are exact when scraped."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from whatsease.metrics import LabelCounts


def _samples(registry: CollectorRegistry) -> dict[str, float]:
    found = {}
    for line in generate_latest(registry).decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def test_label_counts_are_exact_at_every_scrape() -> None:
    registry = CollectorRegistry()
    frames = LabelCounts("test_frames_total", "Frames by type.", "type", registry)
    assert _samples(registry) == {}
    for _ in range(1234):
        frames.inc("send")
    frames.inc("ping")
    assert _samples(registry) == {'test_frames_total{type="send"}': 1234.0,
                                  'test_frames_total{type="ping"}': 1.0}
    frames.inc("send")
    assert _samples(registry)['test_frames_total{type="send"}'] == 1235.0
    assert frames.get("send") == 1235 and frames.get("never") == 0
    text = generate_latest(registry).decode()
    assert "# TYPE test_frames_total counter" in text
    assert "# HELP test_frames_total Frames by type." in text


def test_a_second_counter_of_the_same_name_is_refused() -> None:
    registry = CollectorRegistry()
    LabelCounts("test_twice_total", "Once.", "type", registry)
    with pytest.raises(ValueError, match="test_twice"):
        LabelCounts("test_twice_total", "Twice.", "type", registry)
