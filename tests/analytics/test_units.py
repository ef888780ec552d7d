"""The pure parts: percentiles, bucket edges, sentiment by language, CSV cells."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from whatsease.analytics import buckets, sentiment
from whatsease.analytics.stats import percentile, rate, summary
from whatsease.api.analytics import _cell
from whatsease.errors import Unprocessable


def test_percentiles_interpolate_and_empty_is_none() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([10.0, 0.0, 20.0], 0.9) == 18.0
    assert summary([60.0, 240.0]) == {"count": 2, "median": 150.0, "p90": 222.0}
    assert rate(1, 3) == 0.3333 and rate(0, 0) is None


def test_days_follow_the_zone_across_dst() -> None:
    paris = buckets.zone("Europe/Paris")
    start = datetime(2026, 3, 28, 12, tzinfo=UTC)
    edges = buckets.edges(start, start + timedelta(days=2), "day", paris)
    # Mar 28 starts at 23:00 UTC the day before (UTC+1), Mar 30 at 22:00 (UTC+2).
    assert edges[:3] == [datetime(2026, 3, 27, 23, tzinfo=UTC),
                         datetime(2026, 3, 28, 23, tzinfo=UTC),
                         datetime(2026, 3, 29, 22, tzinfo=UTC)]
    kolkata = buckets.zone("Asia/Kolkata")
    hours = buckets.edges(start, start + timedelta(hours=2), "hour", kolkata)
    assert hours[0] == datetime(2026, 3, 28, 11, 30, tzinfo=UTC)


def test_limits_name_themselves() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(Unprocessable, match="366 days"):
        buckets.edges(start, start + timedelta(days=367), "week", buckets.zone("UTC"))
    with pytest.raises(Unprocessable, match="2000"):
        buckets.edges(start, start + timedelta(days=84), "hour", buckets.zone("UTC"))
    with pytest.raises(Unprocessable, match="IANA"):
        buckets.zone("Nowhere/Special")
    assert len(buckets.edges(start, start + timedelta(days=366), "day",
                             buckets.zone("UTC"))) == 367


def test_only_english_is_scored_and_others_are_counted_unscored() -> None:
    result = sentiment.score([("thanks, this is great!", "en"), ("this is awful", "en"),
                              ("where is my order", "en"), ("muy bien, gracias", "es")])
    assert (result["positive"], result["negative"], result["neutral"]) == (1, 1, 1)
    assert result["scored"] == 3 and result["unscored"] == 1
    assert sentiment.score([])["mean_compound"] is None


def test_csv_cells_that_look_like_formulas_are_quoted() -> None:
    assert _cell("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert _cell("@sum") == "'@sum"
    assert _cell("-0.5") == "-0.5"
    assert _cell("where is my parcel?") == "where is my parcel?"


def test_plan_names_are_the_pipelines_names() -> None:
    from datetime import UTC, datetime

    from whatsease.storage.analytics import Spans, plan_names, slot_plan, slot_plans

    moment = datetime(2026, 3, 2, tzinfo=UTC)
    for org in (None, "acme"):
        spans = Spans(((moment, moment),), split=moment, org=org)
        plans = slot_plans(spans, fallback_texts=["x"], sample=5)
        assert plan_names(org) == [p.name for p in plans]
        assert [slot_plan(p.name, spans, fallback_texts=["x"], sample=5) for p in plans] == plans
