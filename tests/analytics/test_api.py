"""The analytics API: who sees what, the limits, and the CSV holding exactly the JSON's figures."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from tests.analytics.conftest import People
from tests.support import Client, ServerThread

RANGE = "from=2026-03-02T00:00:00Z&to=2026-03-05T00:00:00Z&bucket=day"
API = "/api/v1/analytics"


def test_no_token_is_401_and_a_plain_person_is_403(seeded: ServerThread,
                                                     people: People) -> None:
    res = Client(seeded.port).get(f"{API}?{RANGE}")
    assert res.status == 401
    assert people.person.client.get(f"{API}?{RANGE}").status == 403
    assert people.person.client.get(f"{API}/export.csv?{RANGE}").status == 403


def test_an_agent_sees_their_organisation_only(seeded: ServerThread, people: People) -> None:
    for query in (RANGE, f"{RANGE}&org=acme"):
        res = people.acme_agent.client.get(f"{API}?{query}")
        assert res.status == 200, res.body
        assert res.json["scope"] == {"org": "acme"}
        assert res.json["totals"]["messages_in"] == 4
    assert people.acme_agent.client.get(f"{API}?{RANGE}&org=other").status == 404
    assert people.acme_admin.client.get(f"{API}?{RANGE}&org=other").status == 404
    assert people.acme_admin.client.get(f"{API}?{RANGE}").json["scope"] == {"org": "acme"}


def test_an_operator_sees_the_whole_messenger_or_any_organisation(seeded: ServerThread,
                                                                  people: People) -> None:
    whole = people.operator.client.get(f"{API}?{RANGE}")
    assert whole.status == 200
    assert whole.json["scope"] == {"org": None}
    assert whole.json["series"]["messages.whatsapp.in"] == [0, 1, 0]
    other = people.operator.client.get(f"{API}?{RANGE}&org=other")
    assert other.json["series"]["conversations.started"] == [0, 1, 0]
    assert people.operator.client.get(f"{API}?{RANGE}&org=nope").status == 404
    assert people.operator.client.get(f"{API}?{RANGE}&org=Bad%20Org").status == 404


@pytest.mark.parametrize(("query", "field", "words"), [
    ("from=2025-01-01T00:00:00Z&to=2026-01-03T00:00:00Z&bucket=week", "to", "366 days"),
    ("from=2026-01-01T00:00:00Z&to=2026-04-01T00:00:00Z&bucket=hour", "bucket", "2000"),
    ("from=2026-03-05T00:00:00Z&to=2026-03-02T00:00:00Z", "to", "later than from"),
    (f"{RANGE}&tz=Mars/Olympus", "tz", "IANA"),
    ("from=2026-03-02T00:00:00Z&to=2026-03-05T00:00:00Z&bucket=month", "bucket", "hour, day"),
    ("from=2026-03-02T00:00:00&to=2026-03-05T00:00:00Z", "from", "offset"),
    ("from=yesterday&to=2026-03-05T00:00:00Z", "from", "ISO-8601"),
])
def test_bad_ranges_are_422_naming_the_field_and_limit(seeded: ServerThread, people: People,
                                                       query: str, field: str,
                                                       words: str) -> None:
    res = people.operator.client.get(f"{API}?{query}")
    assert res.status == 422, res.body
    assert res.json["errors"][0]["field"] == field
    assert words in res.json["detail"]


def test_dates_mean_midnight_in_the_time_zone(seeded: ServerThread, people: People) -> None:
    res = people.acme_agent.client.get(
        f"{API}?from=2026-03-02&to=2026-03-05&bucket=day&tz=Europe/Paris")
    assert res.status == 200
    assert res.json["from"] == "2026-03-01T23:00:00.000Z"
    assert res.json["series"]["conversations.started"] == [2, 0, 1]


def _csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_the_csv_holds_exactly_the_json_figures(seeded: ServerThread, people: People) -> None:
    client = people.operator.client
    report: dict[str, Any] = client.get(f"{API}?{RANGE}").json
    res = client.get(f"{API}/export.csv?{RANGE}")
    assert res.status == 200
    assert (res.header("Content-Type") or "").startswith("text/csv")
    table = _csv(res.body.decode())
    assert table[0] == ["section", "bucket", "key", "value"]
    assert table[1] == ["range", report["from"], report["to"], "day UTC"]
    series: dict[str, dict[str, str]] = {}
    sections: dict[str, dict[str, str]] = {}
    for section, bucket, key, value in table[2:]:
        if section == "series":
            series.setdefault(key, {})[bucket] = value
        else:
            sections.setdefault(section, {})[key] = value
    assert set(series) == set(report["series"])
    for name, values in report["series"].items():
        for bucket, value in zip(report["buckets"], values, strict=True):
            assert series[name][bucket] == ("" if value is None else str(value)), name
    for name, value in report["totals"].items():
        assert sections["totals"][name] == ("" if value is None else str(value))
    assert sections["top_intents"] == {i["intent"]: str(i["count"])
                                       for i in report["top_intents"]}
    assert sections["top_fallbacks"] == {f["message"]: str(f["count"])
                                         for f in report["top_fallbacks"]}
    assert sections["response_times"]["first_response.median"] == "150.0"


def test_the_page_is_served_with_a_strict_policy(seeded: ServerThread) -> None:
    res = Client(seeded.port).get("/analytics")
    assert res.status == 200
    assert "script-src 'self' 'nonce-" in (res.header("Content-Security-Policy") or "")
    assert b"<title>Analytics" in res.body
