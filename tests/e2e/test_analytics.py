"""The analytics page in Chromium: the seeded figures on screen equal the API's, the pickers
drive the URL and the charts, axe-core finds nothing serious, light and dark at 360 px and wide.

Set WHATSEASE_SCREENSHOTS_DIR (e.g. docs/screenshots) to keep the screenshots.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pytest
from playwright.sync_api import Page, expect

from tests.analytics.conftest import People, people, seeded  # noqa: F401 (fixtures)
from tests.e2e.conftest import NARROW
from tests.e2e.ui import axe_violations
from tests.support import ServerThread, User

pytestmark = pytest.mark.e2e

RANGE = "from=2026-03-02T00:00:00Z&to=2026-03-05T00:00:00Z&bucket=day&tz=UTC"
# A report for a range not asked for before is computed while the page waits
# (the server here waits for every figure): seconds on a loaded machine.
REPORT_MS = 60_000


def _open(page: Page, server: ServerThread, user: User, query: str = RANGE) -> None:
    page.goto(f"{server.url}/analytics?{query}")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Log in").click()

    expect(page.locator("body[data-loaded=true]")).to_have_count(1, timeout=REPORT_MS)


def _number(value: Any) -> str:
    return f"{value:,}"


def test_the_numbers_on_screen_are_the_apis(seeded: ServerThread,  # noqa: F811
                                            people: People,  # noqa: F811
                                            new_page: Callable[..., Page]) -> None:
    report = people.operator.client.get(f"/api/v1/analytics?{RANGE}").json
    page = new_page()
    _open(page, seeded, people.operator)
    expect(page.locator("#scope-name")).to_have_text("· whole messenger")
    for metric in ("conversations_started", "conversations_closed", "messages_in",
                   "messages_out", "active_people", "handoffs"):
        expect(page.locator(f'[data-metric="{metric}"] .metric-value')).to_have_text(
            _number(report["totals"][metric]))
    rate = report["totals"]["bot_answer_rate"] * 100
    expect(page.locator('[data-metric="bot_answer_rate"] .metric-value')).to_have_text(
        f"{rate:.1f}%")
    expect(page.locator('[data-metric="first_response_median"] .metric-value')).to_have_text(
        "2.5 min")
    rows = page.locator("#fallbacks tbody tr")
    expect(rows).to_have_count(len(report["top_fallbacks"]))
    for i, item in enumerate(report["top_fallbacks"]):
        expect(rows.nth(i).locator("th")).to_have_text(item["message"])
        expect(rows.nth(i).locator("td").first).to_have_text(str(item["count"]))
    # The messages chart's table has one row per bucket, with the API's values.
    table = page.locator('[data-chart="messages"] table tbody tr')
    expect(table).to_have_count(len(report["buckets"]))
    web_in = report["series"]["messages.web.in"]
    expect(page.locator('[data-chart="messages"] table thead th').nth(1)).to_have_text("Web in")
    for i, value in enumerate(web_in):
        expect(table.nth(i).locator("td").first).to_have_text(str(value))
    expect(page.locator('[data-chart="intents"] .summary')).to_have_text(
        "Top intents: greeting 1.")


def test_the_pickers_change_the_url_and_the_charts(seeded: ServerThread,  # noqa: F811
                                                   people: People,  # noqa: F811
                                                   new_page: Callable[..., Page]) -> None:
    page = new_page()
    _open(page, seeded, people.acme_admin)
    expect(page.locator("#scope-name")).to_have_text("· acme")
    expect(page.locator('[data-chart="conversations"] table tbody tr')).to_have_count(3)
    page.get_by_label("Bucket").select_option("hour")
    expect(page).to_have_url(re.compile(r"[?&]bucket=hour(&|$)"))
    expect(page.locator('[data-chart="conversations"] table tbody tr')).to_have_count(
        72, timeout=REPORT_MS)
    page.go_back()
    expect(page.get_by_label("Bucket")).to_have_value("day")
    expect(page.locator('[data-chart="conversations"] table tbody tr')).to_have_count(3)
    page.get_by_label("Range").select_option("7d")
    expect(page).to_have_url(re.compile(r"\?range=7d&bucket=day&tz=UTC$"))
    rows = page.locator('[data-chart="conversations"] table tbody tr')
    expect(rows).not_to_have_count(3, timeout=REPORT_MS)
    # Seven days from now: seven buckets, eight when the range starts mid-day.
    assert rows.count() in (7, 8)
    page.reload()
    expect(page.get_by_label("Range")).to_have_value("7d")


def test_a_plain_person_is_told_the_page_is_not_theirs(seeded: ServerThread,  # noqa: F811
                                                       people: People,  # noqa: F811
                                                       new_page: Callable[..., Page]) -> None:
    page = new_page()
    page.goto(f"{seeded.url}/analytics?{RANGE}")
    page.get_by_label("Email").fill(people.person.email)
    page.get_by_label("Password").fill(people.person.password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#error")).to_contain_text("for operators")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_and_screenshots(seeded: ServerThread, people: People,  # noqa: F811
                             new_page: Callable[..., Page], tmp_path: Path,
                             scheme: Literal["light", "dark"]) -> None:
    shots: list[Path] = []
    for name, viewport in (("wide", None), ("narrow", NARROW)):
        page = new_page(viewport=viewport, bypass_csp=True, color_scheme=scheme)
        _open(page, seeded, people.operator)
        violations = axe_violations(page)
        assert not violations, json.dumps(violations, indent=2)
        if name == "narrow":
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= NARROW["width"], f"the page scrolls sideways at 360 px ({width})"
        path = tmp_path / f"analytics-{scheme}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        shots.append(path)
    keep = os.environ.get("WHATSEASE_SCREENSHOTS_DIR")
    if keep:
        for shot in shots:
            shutil.copy(shot, Path(keep) / shot.name)
