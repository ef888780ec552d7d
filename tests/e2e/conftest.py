"""Browser fixtures: one headless Chromium per session, a fresh context (one user) per page."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    ViewportSize,
    sync_playwright,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
WIDE: ViewportSize = {"width": 1280, "height": 800}
NARROW: ViewportSize = {"width": 360, "height": 740}
# Playwright's own timeout for each action and expectation, in milliseconds.
ACTION_TIMEOUT_MS = 10_000


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/test does)")
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


class PageErrors:
    """Uncaught script errors and console errors seen by one page."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def attach(self, page: Page) -> None:
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", lambda msg: self.errors.append(f"console: {msg.text}")
                if msg.type == "error" else None)


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    """Open a page in a new browser context, i.e. a separate user with empty storage.

    At the end of the test, any uncaught script error on any of the pages fails it.
    """
    contexts: list[tuple[BrowserContext, PageErrors]] = []

    def open_page(viewport: ViewportSize | None = None, **options: Any) -> Page:
        context = browser.new_context(viewport=viewport or WIDE, **options)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        errors = PageErrors()
        contexts.append((context, errors))
        page = context.new_page()
        errors.attach(page)
        return page

    yield open_page
    problems = [e for _, errors in contexts for e in errors.errors if _unexpected(e)]
    for context, _ in contexts:
        context.close()
    assert not problems, "script errors in the client:\n" + "\n".join(problems)


def _unexpected(error: str) -> bool:
    # Failed requests the tests cause on purpose (a stopped server, a wrong
    # password, a refused token) are logged by Chromium as console errors.
    expected = ("Failed to load resource", "WebSocket connection to", "net::ERR_")
    return not any(text in error for text in expected)
