"""Browser tests of the dashboard: Playwright driving Debian's Chromium (/usr/bin/chromium; no browser is
downloaded) against one real stack per module (tests/dashboard/stack.py).

Every page is opened through `Visit`, which refuses (and records) any request that leaves 127.0.0.1 and
collects console errors and page errors, so a test can assert the page stayed on the machine and clean.
Screenshots go to `test-artifacts/dashboard/` (git-ignored; `MLPIPE_TEST_ARTIFACTS` overrides).

Where /usr/bin/chromium is absent (a laptop without Debian's package) the tests are skipped with the
reason; under CI (`CI` set) they fail instead, since CI installs it (`.ci/run`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from tests.conftest import clean_services
from tests.dashboard.stack import Stack, dashboard_stack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[3]
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


@pytest.fixture(autouse=True)
def _clean_services() -> Iterator[None]:
    """The tests of a module share one stack and its history: it is cleaned when the module ends."""
    yield


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str, chromium: Any
) -> Iterator[Stack]:
    clean_services(database_url, redis_url)
    try:
        with dashboard_stack(tmp_path_factory.mktemp("dashboard")) as running:
            yield running
    finally:
        clean_services(database_url, redis_url)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless Chromium for the module."""
    if not CHROMIUM.exists():
        reason = f"Debian's Chromium is not installed at {CHROMIUM}: `apt-get install chromium` to run these"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI must run the browser tests: .ci/run installs it)")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = Path(os.environ.get("MLPIPE_TEST_ARTIFACTS") or ROOT / "test-artifacts") / "dashboard"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Visit:
    """A browser context on the stack: loopback only, with every console error and request kept."""

    context: Any
    page: Any
    base: str
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    def open(self, path: str, *, ready: bool = True) -> Any:
        answer = self.page.goto(self.base + path)
        if ready:
            self.page.wait_for_selector("body[data-ready='1']", timeout=15_000)
        return answer

    def sign_in(self, key: str) -> Any:
        self.open("/dashboard/login", ready=False)
        self.page.fill("#key", key)
        with self.page.expect_navigation():
            self.page.click("form[action='/dashboard/login'] button[type=submit]")
        return self.page

    def clean(self) -> None:
        assert not self.blocked, f"requests left the machine: {self.blocked}"
        assert not self.errors, f"console or page errors: {self.errors}"


def open_visit(browser: Any, base: str, width: str = "desktop") -> Visit:
    w, h = WIDTHS[width]
    context = browser.new_context(viewport={"width": w, "height": h})
    visit = Visit(context=context, page=context.new_page(), base=base)

    def guard(route: Any) -> None:
        url = route.request.url
        visit.urls.append(url)
        if urlparse(url).hostname != "127.0.0.1":
            visit.blocked.append(url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", guard)
    visit.page.on("console", lambda m: visit.errors.append(m.text) if m.type == "error" else None)
    visit.page.on("pageerror", lambda exc: visit.errors.append(str(exc)))
    return visit


@pytest.fixture(scope="module")
def session_cookies(stack: Stack) -> dict[str, dict[str, Any]]:
    """One session per role, signed in through the form's POST (the browser tests of sign-in type it)."""
    found = {}
    for role, key in stack.keys.items():
        answer = httpx.post(f"{stack.url}/dashboard/login", data={"key": key, "next": "/dashboard"})
        assert answer.status_code == 303, answer.text
        found[role] = {
            "name": "mlpipe_dashboard",
            "value": answer.cookies["mlpipe_dashboard"],
            "url": f"{stack.url}/dashboard",
        }
    return found


@pytest.fixture()
def visit(chromium: Any, stack: Stack, session_cookies: dict[str, dict[str, Any]]) -> Iterator[Any]:
    """`visit("desktop" | "phone", role=None | "predict" | "operator")`: a fresh browser context, signed out
    or carrying that role's session; closed after the test."""
    opened: list[Visit] = []

    def make(width: str = "desktop", role: str | None = None) -> Visit:
        opened.append(open_visit(chromium, stack.url, width))
        if role is not None:
            opened[-1].context.add_cookies([session_cookies[role]])
        return opened[-1]

    yield make
    for v in opened:
        v.context.close()
