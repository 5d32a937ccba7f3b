"""pytest plugin, used INSIDE Pyodide in a browser: runs each async test on Pyodide's WebLoop.

The durable store awaits IndexedDB, so its tests need the browser's own event loop (the
never-blocking loop of tests/pyodide/noio_loop.py cannot deliver JavaScript events). The
WebLoop's ``run_until_complete`` blocks through JavaScript Promise Integration (JSPI, on by
default in Chromium) when Python was entered with ``runPythonAsync``, so pytest-asyncio can
drive it from the synchronous ``pytest.main``. asyncio refuses to start a loop while another is
marked running, and a new WebLoop marks itself running: the plugin clears that mark for the
session and after each new loop is made. Loaded with ``-p webloop_runner``.

A WebLoop's ``run_until_complete`` runs the coroutine on the loop ``asyncio.get_event_loop()``
gives, not on itself; under this plugin's policy (no default loop) that is a new WebLoop per
call. So the tests that drive their own loop (test_model.py, the Hypothesis properties) call
the store from one loop after another, which a store must take (docs/contract.md).
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Mapping
from typing import Any

import pytest
from pyodide.ffi import can_run_sync
from pyodide.webloop import WebLoop, WebLoopPolicy

_saved: list[tuple[asyncio.AbstractEventLoop | None, Any]] = []


def new_web_loop() -> WebLoop:
    loop = WebLoop()
    asyncio._set_running_loop(None)
    return loop


class _Policy(WebLoopPolicy):  # type: ignore[misc]
    def new_event_loop(self) -> WebLoop:
        return new_web_loop()


def pytest_configure(config: pytest.Config) -> None:
    if not can_run_sync():
        raise pytest.UsageError(
            "no stack switching: run pytest.main from runPythonAsync in Chromium"
        )
    with warnings.catch_warnings():  # the policy API is deprecated in Python 3.14, still in use
        warnings.simplefilter("ignore", DeprecationWarning)
        _saved.append((asyncio._get_running_loop(), asyncio.get_event_loop_policy()))
        asyncio._set_running_loop(None)
        asyncio.set_event_loop_policy(_Policy())


def pytest_unconfigure(config: pytest.Config) -> None:
    running, policy = _saved.pop()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop_policy(policy)
    asyncio._set_running_loop(running)


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Any]:
    return {"webloop": new_web_loop}
