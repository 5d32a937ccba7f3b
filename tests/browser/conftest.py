"""The durable browser store's tests: a test page (tests/browser/site/) next to the assembled
Pyodide (build/pyodide, as scripts/test makes it) on a loopback http server, and Debian's
headless Chromium driven by Playwright. Each test gets a fresh browser profile (empty IndexedDB).
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(__file__).resolve().parent / "site"
PYODIDE = Path(os.environ.get("RUNSTORE_PYODIDE_DIR", ROOT / "build" / "pyodide"))
CHROMIUM = os.environ.get("RUNSTORE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
BOOT_TIMEOUT_MS = 120_000
MIME_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm"}


class Handler(SimpleHTTPRequestHandler):
    """Serves tests/browser/site/ at / and the assembled Pyodide at /pyodide/."""

    def translate_path(self, path: str) -> str:
        clean = path.split("?", 1)[0].split("#", 1)[0]
        if clean.startswith("/pyodide/"):
            return str(PYODIDE / clean.removeprefix("/pyodide/"))
        return str(SITE / clean.lstrip("/"))

    def guess_type(self, path: str | os.PathLike[str]) -> str:
        return MIME_TYPES.get(Path(path).suffix) or super().guess_type(path)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def site_url() -> Iterator[str]:
    lock = PYODIDE / "pyodide-lock.json"
    if not lock.exists() or "runstore" not in json.loads(lock.read_text())["packages"]:
        pytest.fail(f"{PYODIDE} is not an assembled Pyodide with runstore: run scripts/test")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(SITE)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"no Chromium at {CHROMIUM}: scripts/test installs Debian's chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Tab:
    """One page of the test site, with Python ready on its main thread."""

    def __init__(self, context: BrowserContext, url: str) -> None:
        self.page: Page = context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.set_default_timeout(BOOT_TIMEOUT_MS)
        self.page.goto(url)
        self.wait_ready()

    def wait_ready(self) -> None:
        self.page.evaluate("async () => { await window.pyodideReady; }")

    def reload(self) -> None:
        self.page.reload()
        self.wait_ready()

    def run(self, code: str) -> Any:
        """Run Python (top-level await allowed); its last expression must be JSON text."""
        return json.loads(self.page.evaluate("code => window.runPython(code)", code))

    def run_in_worker(self, code: str) -> Any:
        return json.loads(self.page.evaluate("code => window.runPythonInWorker(code)", code))


class Profile:
    """A fresh browser profile (its own IndexedDB) and the tabs opened in it."""

    def __init__(self, browser: Browser, url: str) -> None:
        self.context = browser.new_context()
        self.url = url
        self.tabs: list[Tab] = []

    def tab(self) -> Tab:
        tab = Tab(self.context, self.url)
        self.tabs.append(tab)
        return tab


@pytest.fixture
def profile(browser: Browser, site_url: str) -> Iterator[Profile]:
    made = Profile(browser, site_url)
    yield made
    errors = [error for tab in made.tabs for error in tab.errors]
    made.context.close()
    assert errors == [], f"uncaught script errors: {errors}"
