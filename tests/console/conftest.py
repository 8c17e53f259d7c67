"""Fixtures for the console's browser tests: a real `ferry dev` stack and a headless Chromium.

`stack` (one per session) is a `ferry dev` (tests/support/ferry_dev.py) with a viewer token
besides its admin token, stopped at the end of the session.

`browser` is Debian's chromium driven by Playwright (`playwright install` cannot download
browsers here, so the executable is always /usr/bin/chromium, with --no-sandbox to run as
root). Each test gets a fresh context (so a fresh sessionStorage) whose page fails the test on
any JavaScript error or Content-Security-Policy violation in the console.

Screenshots go to tests/artifacts/console/ (FERRY_TEST_ARTIFACTS/console), gitignored.

Environment:
  FERRY_BIN             the ferry binary (default $CARGO_TARGET_DIR/debug/ferry)
  FERRY_CHROMIUM        the browser (default /usr/bin/chromium)
  FERRY_TEST_ARTIFACTS  where artifacts go (default <repo>/tests/artifacts)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests" / "support"))
from ferry_dev import FerryDev  # noqa: E402  (the path above first)

ARTIFACTS = Path(os.environ.get("FERRY_TEST_ARTIFACTS", REPO_ROOT / "tests" / "artifacts")) / "console"
CHROMIUM = os.environ.get("FERRY_CHROMIUM", "/usr/bin/chromium")


class Stack(FerryDev):
    """The console tests' `ferry dev`, logging to tests/artifacts/console/ferry-dev.log."""

    def __init__(self) -> None:
        super().__init__(ARTIFACTS / "ferry-dev.log")
        self.viewer_token = self.mint("viewer")


@pytest.fixture(scope="session")
def stack():
    s = Stack()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (or set FERRY_CHROMIUM)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, stack, request):
    """A fresh browser context on the stack's origin; fails the test on any page error."""
    context = browser.new_context(base_url=stack.url, viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.url)
    context.set_default_timeout(15_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    pg.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" and not expected_console_error(msg.text) else None)
    try:
        yield pg
    finally:
        if request.node.rep_call_failed if hasattr(request.node, "rep_call_failed") else False:
            shot(pg, f"FAILED-{request.node.name}")
        context.close()
    assert not errors, f"the console logged errors: {errors}"


def expected_console_error(text: str) -> bool:
    """The browser logs every non-2xx fetch; those are the API answering, which tests expect."""
    return "Failed to load resource: the server responded with a status of" in text


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call_failed = report.failed


def shot(page, name: str) -> Path:
    """Saves a full-page screenshot as tests/artifacts/console/NAME.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page, token: str) -> None:
    page.goto("/console")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", level=1, name="Clusters").wait_for()


def wait_until(predicate, timeout_s: float, what: str, interval_s: float = 0.25):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})")
