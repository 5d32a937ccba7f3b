"""Fixtures for the playground tests: ``scripts/serve`` on loopback and headless Chromium.

The server is the README command itself (``scripts/serve --port 0``), started once per run.
Chromium is Debian's (``/usr/bin/chromium``, or ``$RUNSTORE_CHROMIUM``) driven by Playwright;
each test gets a fresh browser context, so IndexedDB and localStorage start empty.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Dialog,
    Page,
    Playwright,
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
        self.errors: list[str] = []
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
        problems = [(v.errors, v.dialogs) for v in [self, *self.others] if v.errors or v.dialogs]
        assert problems == [], f"uncaught script errors or dialogs: {problems}"

    def page(self) -> Page:
        page = self.context.new_page()
        page.on("dialog", self._on_dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        return page

    def _on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def visit(browser: Browser, site_url: str) -> Iterator[Visit]:
    visit = Visit(browser, site_url)
    yield visit
    visit.close()
