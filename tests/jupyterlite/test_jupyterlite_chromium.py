"""The example notebook runs in a real JupyterLite kernel, in headless Chromium, offline.

The REPL app runs each ``code`` URL parameter in turn; they are the notebook's code cells, so
the first is ``%pip install runstore`` from the site's own index. A failed install prints no
error (later cells just never run), so the test asserts on what the cells print.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode, urlsplit

from example_notebook import (
    FOUND,
    INSTALL,
    RECORDED,
    code_cells,
    exported_path,
    match_output,
    stored,
)
from playwright.sync_api import Browser, Page

# A cold start (Pyodide, the kernel's packages, the install) takes 7-10 s on an idle machine and
# over a minute on a busy one: wait generously.
RUN_TIMEOUT_MS = 180_000


def repl_url(site_url: str, cells: list[str]) -> str:
    query = urlencode([("kernel", "python"), *(("code", cell) for cell in cells)])
    return f"{site_url}repl/index.html?{query}"


OUTPUTS_JS = """() => Array.from(document.querySelectorAll('.jp-OutputArea-output'))
    .map(element => element.innerText).join('\\n')"""


def run_cells(page: Page, url: str, last_line: str) -> str:
    """Open the REPL on ``url``; return the cells' printed output once it has ``last_line``."""
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(url)
    try:
        page.wait_for_function(
            f"text => ({OUTPUTS_JS})().includes(text)", arg=last_line, timeout=RUN_TIMEOUT_MS
        )
    except Exception as exc:
        page_text = page.inner_text("body")
        logged = "\n".join(console[-40:])
        raise AssertionError(
            f"{last_line!r} never printed; page:\n{page_text}\nbrowser console:\n{logged}"
        ) from exc
    output: str = page.evaluate(OUTPUTS_JS)
    return output


def test_example_notebook_runs_in_jupyterlite(browser: Browser, site_url: str) -> None:
    context = browser.new_context()
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    cells = code_cells()
    assert cells[0].strip() == INSTALL

    text = run_cells(page, repl_url(site_url, cells), "state: completed")
    found = match_output(text)
    assert stored(found) == RECORDED, text
    # The export went to the notebook's folder on JupyterLite's drive.
    assert exported_path(found).startswith("/drive/"), text
    first_history = [line for line in text.splitlines() if line[:2] in ("1 ", "2 ", "3 ", "4 ")]

    # A new kernel in a new page opens the same durable store by name and reads the
    # conversation back: no export, no import.
    reader = context.new_page()
    text = run_cells(reader, repl_url(site_url, cells), "state: completed")
    found = match_output(text)
    assert stored(found) == FOUND, text
    assert [line for line in text.splitlines() if line[:2] in ("1 ", "2 ", "3 ", "4 ")] == (
        first_history
    )

    # A kernel that goes away without closing the store lets go of it: this page's kernel
    # keeps it open, then the page is loaded again (a new kernel), which opens it again.
    keeper = context.new_page()
    kept = [*cells[:5], "print('kept open')"]
    text = run_cells(keeper, repl_url(site_url, kept), "kept open")
    assert FOUND in text, text
    text = run_cells(keeper, repl_url(site_url, kept), "kept open")
    assert FOUND in text and "StoreLockedError" not in text, text
    keeper.close()

    # Everything came from the site: no CDN, no PyPI; runstore from the site's piplite index.
    hosts = {
        urlsplit(url).hostname or "" for url in requests if url.startswith(("http:", "https:"))
    }
    assert hosts == {"127.0.0.1"}, sorted(hosts)
    wheel = re.compile(r"/pypi/runstore-[^/]+-py3-none-any\.whl")
    assert any(wheel.fullmatch(urlsplit(url).path) for url in requests), requests
    context.close()
