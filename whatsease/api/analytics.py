"""REST for analytics (JSON and CSV) and the ``/analytics`` page.

Operators (platform admins) see any organisation or the whole messenger; an
organisation's agents and admins see their own; anyone else gets 403, and
another organisation answers 404 as if it did not exist.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from tornado.routing import URLSpec

from whatsease.analytics import buckets
from whatsease.analytics.scope import scope_for
from whatsease.analytics.service import get_analytics
from whatsease.api.base import BaseHandler, route
from whatsease.api.openapi import problems
from whatsease.api.pages import ModulePage
from whatsease.errors import NotFound, invalid
from whatsease.services import Services

DEFAULT_RANGE = timedelta(days=30)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ORG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
MAX_PARAM_CHARS = 64


def _moment(value: str, field: str, tz_name: str) -> datetime:
    """An ISO-8601 time with an offset, or a date meaning its midnight in ``tz_name``."""
    if len(value) > MAX_PARAM_CHARS:
        raise invalid(field, "is too long")
    try:
        if _DATE.match(value):
            day = datetime.fromisoformat(value)
            return day.replace(tzinfo=buckets.zone(tz_name)).astimezone(UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(field, "must be an ISO-8601 time such as 2026-11-01T00:00:00Z or a date "
                             "such as 2026-11-01") from None
    if moment.tzinfo is None:
        raise invalid(field, "needs a time zone offset (Z or +01:00) or to be a plain date")
    return moment.astimezone(UTC)


class AnalyticsHandler(BaseHandler):
    async def _report(self) -> dict[str, Any]:
        principal = await self.authenticate()
        org = self.get_query_argument("org", None) or None
        if org is not None and not _ORG.match(org):
            raise NotFound("No such organisation.")
        scope = scope_for(principal.user, org)
        tz_name = self.get_query_argument("tz", "UTC")[:MAX_PARAM_CHARS]
        buckets.zone(tz_name)
        unit = self.get_query_argument("bucket", "day")
        raw_to = self.get_query_argument("to", None)
        end = _moment(raw_to, "to", tz_name) if raw_to else datetime.now(UTC)
        raw_from = self.get_query_argument("from", None)
        start = _moment(raw_from, "from", tz_name) if raw_from else end - DEFAULT_RANGE
        return await get_analytics(self.services).report(scope, start, end, unit, tz_name)

    async def get(self) -> None:
        self.write_json(await self._report())


class AnalyticsCsvHandler(AnalyticsHandler):
    async def get(self) -> None:
        report = await self._report()
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", 'attachment; filename="analytics.csv"')
        self.finish(to_csv(report).encode())


def rows(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The report as ``(section, bucket, key, value)`` rows: what the CSV holds, in order."""
    out: list[tuple[str, str, str, str]] = []

    def text(value: Any) -> str:
        return "" if value is None else str(value)

    for name, values in report["series"].items():
        for bucket, value in zip(report["buckets"], values, strict=True):
            out.append(("series", bucket, name, text(value)))
    for name, value in report["totals"].items():
        out.append(("totals", "", name, text(value)))
    for name, value in report["previous"]["totals"].items():
        out.append(("previous", "", name, text(value)))
    for kind, summary in report["response_times"].items():
        for stat, value in summary.items():
            out.append(("response_times", "", f"{kind}.{stat}", text(value)))
    for agent in report["agents"]:
        for kind in ("first_response", "resolution"):
            for stat, value in agent[kind].items():
                out.append(("agents", "", f"{agent['agent']}|{kind}.{stat}", text(value)))
    for item in report["top_intents"]:
        out.append(("top_intents", "", item["intent"], text(item["count"])))
    for item in report["top_fallbacks"]:
        out.append(("top_fallbacks", item["last"], item["message"], text(item["count"])))
    for item in report["languages"]:
        out.append(("languages", "", item["language"], text(item["count"])))
    for name, value in report["sentiment"].items():
        if not isinstance(value, list):
            out.append(("sentiment", "", name, text(value)))
    return out


def _cell(value: str) -> str:
    # A cell a spreadsheet would run as a formula (=, +, -, @) is quoted as text.
    if value[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(value):
        return "'" + value
    return value


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def to_csv(report: dict[str, Any]) -> str:
    """The report as CSV: a header, then one row per figure (see `rows`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["section", "bucket", "key", "value"])
    writer.writerow(["range", report["from"], report["to"], f"{report['bucket']} {report['tz']}"])
    for row in rows(report):
        writer.writerow([_cell(cell) for cell in row])
    return buffer.getvalue()


class AnalyticsPageHandler(ModulePage):
    """``/analytics``: the operators' page (it logs in like the console; the API does the rest)."""

    PAGE = "analytics/index.html"
    MODULE_DIRS = ("analytics", "agent", "shared")
    TITLE = "analytics page"


def routes(services: Services) -> list[URLSpec]:
    return [
        route("/api/v1/analytics", AnalyticsHandler, services),
        route("/api/v1/analytics/export.csv", AnalyticsCsvHandler, services),
        URLSpec(r"/analytics/?$", AnalyticsPageHandler,
                {"services": services, "route": "/analytics"}, name="/analytics"),
    ]


_PARAMETERS = [
    {"name": "from", "in": "query", "schema": {"type": "string"},
     "description": "Start (inclusive): ISO-8601 with an offset, or a date (midnight in tz). "
                    "Default: 30 days before `to`."},
    {"name": "to", "in": "query", "schema": {"type": "string"},
     "description": "End (exclusive), same forms. Default: now. At most 366 days after from."},
    {"name": "bucket", "in": "query", "schema": {"enum": list(buckets.UNITS), "default": "day"},
     "description": f"At most {buckets.MAX_POINTS} buckets per range."},
    {"name": "tz", "in": "query", "schema": {"type": "string", "default": "UTC"},
     "description": "IANA time zone the buckets follow (days start at its midnight)."},
    {"name": "org", "in": "query", "schema": {"type": "string"},
     "description": "An organisation; omitted: the caller's own, or the whole messenger "
                    "for an operator (platform admin)."},
]
_ERRORS = problems("401", "403", "404", "422")

OPENAPI: dict[str, dict[str, Any]] = {
    "/api/v1/analytics": {"get": {
        "summary": "Conversations, messages, bot, agents and sentiment over time",
        "tags": ["analytics"], "parameters": _PARAMETERS,
        "responses": {"200": {"description": "The report (docs/analytics.md)",
                              "content": {"application/json": {"schema": {
                                  "type": "object", "required": [
                                      "buckets", "series", "totals", "previous"]}}}},
                      **_ERRORS}}},
    "/api/v1/analytics/export.csv": {"get": {
        "summary": "The same report as CSV (section, bucket, key, value)",
        "tags": ["analytics"], "parameters": _PARAMETERS,
        "responses": {"200": {"description": "CSV", "content": {"text/csv": {
            "schema": {"type": "string"}}}}, **_ERRORS}}},
    "/analytics": {"get": {
        "summary": "The analytics page (HTML; it calls the API above with the login's token)",
        "tags": ["analytics"], "security": [],
        "responses": {"200": {"description": "The page", "content": {"text/html": {
            "schema": {"type": "string"}}}}}}},
}
