"""Fixtures of the browser tests: the platform as `make up` runs it (with the gateway and a desk of users of each
role), Chromium driven by Playwright through its executable path, and a page logged in as a user."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tradectl.stack import Platform

from tests.browser.desk import PASSWORD, REPORTS, Desk, chromium, running_platform


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = chromium()
    if path is None:
        pytest.skip("no Chromium: install Debian's chromium package or set TRADING_CHROMIUM to its executable")
    return path


@pytest.fixture(scope="module")
def platform(chromium_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(tmp_path_factory.mktemp("browser-platform")) as run:
        yield run


@pytest.fixture(scope="module")
def desk(platform: Platform) -> Desk:
    return Desk.bootstrap(platform)


@pytest.fixture(scope="module")
def browser(chromium_path: str, platform: Platform) -> Iterator[Any]:
    """After the platform (whose start runs asyncio: Playwright's sync API keeps a loop running in this thread)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, args=["--no-sandbox"])
        yield launched
        launched.close()


class Session:
    """A browser page logged in as one user, with what its console reported."""

    def __init__(self, page: Any, url: str) -> None:
        self.page = page
        self.url = url
        self.problems: list[str] = []
        page.on("console", lambda m: self.problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))

    def go(self, page_name: str) -> None:
        """Through the navigation, as a user would (the live stream stays connected)."""
        self.page.click(f'nav a[data-page="{page_name}"]')
        self.page.wait_for_selector(f'main[data-page="{page_name}"]')

    def shot(self, name: str) -> Path:
        REPORTS.mkdir(parents=True, exist_ok=True)
        path = REPORTS / f"{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def csp_violations(self) -> list[str]:
        return [p for p in self.problems if "Content Security Policy" in p or "Refused to" in p]


@pytest.fixture
def session_as(browser: Any, desk: Desk) -> Iterator[Callable[..., Session]]:
    contexts: list[Any] = []

    def open_as(name: str, width: int = 1280, height: int = 900) -> Session:
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        session = Session(context.new_page(), desk.url)
        login(session, desk, name)
        return session

    yield open_as
    for context in contexts:
        context.close()


def login(session: Session, desk: Desk, name: str) -> None:
    user = desk[name]
    page = session.page
    page.goto(f"{desk.url}/")
    page.fill("#username", user.username)
    page.fill("#password", PASSWORD)
    if user.totp_secret:
        page.fill("#totp", user.code())
    page.click("form.login button[type=submit]")
    page.wait_for_selector('main[data-page="overview"]', timeout=20_000)
    page.wait_for_selector('.live[data-live="live"]', timeout=20_000)
