"""Fixtures for the playground tests: ``scripts/serve`` on loopback and headless Chromium.

The server is the README command itself (``scripts/serve --port 0``), started once per run.
Chromium is Debian's (``/usr/bin/chromium``, or ``$RUNSTORE_CHROMIUM``) driven by Playwright;
each test gets a fresh browser context, so IndexedDB and localStorage start empty.

Every action a test takes on the page ends with ``check(page)``: the page finished it, shows no
error banner, and the browser reported no console error and no uncaught exception.
"""

from __future__ import annotations

import os
import subprocess
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Error,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("RUNSTORE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",  # nothing but loopback
]
ARTIFACTS = ROOT / "build" / "playground-tests"

# Each page's browser console errors and uncaught exceptions not yet taken by a test, and
# every console message it logged (type, text).
_PROBLEMS: weakref.WeakKeyDictionary[Page, list[str]] = weakref.WeakKeyDictionary()
_CONSOLE: weakref.WeakKeyDictionary[Page, list[tuple[str, str]]] = weakref.WeakKeyDictionary()


def check(page: Page) -> None:
    """The check after every action: once the page is done with it (``<body aria-busy>`` is
    no longer true), no error banner is visible and no console error or uncaught exception
    happened."""
    expect(page.locator('body[aria-busy="true"]')).to_have_count(0, timeout=60_000)
    banner = page.locator("#error")
    assert banner.is_hidden(), f"error banner: {banner.inner_text()}"
    assert take_problems(page) == [], "browser console errors or uncaught exceptions"


def take_problems(page: Page) -> list[str]:
    """The console errors and uncaught exceptions of ``page`` since the last check (for a test
    that caused one on purpose); they no longer fail the next check."""
    problems = _PROBLEMS[page]
    taken = problems[:]
    problems.clear()
    return taken


def console_messages(page: Page) -> list[tuple[str, str]]:
    """Every console message ``page`` logged so far, as (type, text)."""
    return list(_CONSOLE[page])


@pytest.fixture(scope="session")
def site_url() -> Iterator[str]:
    """Builds the site and serves it with ``scripts/serve``; yields its URL."""
    server = subprocess.Popen(
        [str(ROOT / "scripts" / "serve"), "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        if "http://127.0.0.1:" not in first:
            raise RuntimeError(f"scripts/serve did not print its URL (exit {server.poll()})")
        yield first.split(": ", 1)[1].strip()
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"no Chromium at {CHROMIUM}: scripts/test installs Debian's chromium")
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


class Visit:
    """One fresh browser profile: its pages, requests, dialogs and script errors."""

    def __init__(self, browser: Browser, site_url: str) -> None:
        self.browser = browser
        self.url = site_url
        self.context: BrowserContext = browser.new_context(viewport={"width": 1280, "height": 900})
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.pages: list[Page] = []
        self.others: list[Visit] = []
        self.context.on("request", lambda request: self.requests.append(request.url))

    def other(self) -> Visit:
        """Another fresh profile (its own IndexedDB and localStorage), checked like this one."""
        visit = Visit(self.browser, self.url)
        self.others.append(visit)
        return visit

    def close(self) -> None:
        for visit in [self, *self.others]:
            visit.context.close()
        left = [v.problems() for v in [self, *self.others]]
        dialogs = [v.dialogs for v in [self, *self.others]]
        assert not any(left) and not any(dialogs), f"errors {left} or dialogs {dialogs} left"

    def problems(self) -> list[str]:
        """Console errors and uncaught exceptions of this profile's pages not taken by a test."""
        return [problem for page in self.pages for problem in _PROBLEMS.get(page, [])]

    def page(self) -> Page:
        page = self.context.new_page()
        self.pages.append(page)
        problems = _PROBLEMS.setdefault(page, [])
        logged = _CONSOLE.setdefault(page, [])

        def on_console(message: ConsoleMessage) -> None:
            logged.append((message.type, message.text))
            if message.type == "error":
                problems.append(f"console.error: {message.text}")

        def on_page_error(error: Error) -> None:
            problems.append(f"uncaught: {error}")

        page.on("console", on_console)
        page.on("pageerror", on_page_error)
        page.on("dialog", self._on_dialog)
        return page

    def _on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def visit(browser: Browser, site_url: str) -> Iterator[Visit]:
    visit = Visit(browser, site_url)
    yield visit
    visit.close()
