"""pytest plugin, used INSIDE Pyodide only: runs each async test on a plain asyncio loop.

Pyodide's default loop is the browser's WebLoop, which cannot block, so pytest-asyncio cannot
drive it from the synchronous ``pytest.main``. asyncio's SelectorEventLoop needs a socketpair,
which Emscripten lacks. ``NoIOEventLoop`` is asyncio's own ``BaseEventLoop`` with a selector that
never waits on file descriptors: callbacks, tasks, futures and timers work; sockets, pipes,
subprocesses and threads do not (runstore needs none of them). Loaded with ``-p noio_loop``.

For the pytest session the plugin also (1) clears Pyodide's top-level "running loop" mark (the
WebLoop), since asyncio refuses to start a loop while another runs, and (2) makes
``asyncio.new_event_loop()`` return a ``NoIOEventLoop`` (tests that drive their own loop, like the
model-based test, call it); both are restored afterwards.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Mapping
from typing import Any

import pytest


class _NoIOSelector:
    """Stands in for a selector: nothing to watch, so waiting is just sleeping until a timer."""

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is None:
            raise RuntimeError("event loop would wait forever: no I/O can wake it in Pyodide")
        if timeout > 0:
            time.sleep(timeout)
        return []

    def close(self) -> None:
        pass


class NoIOEventLoop(asyncio.BaseEventLoop):
    def __init__(self) -> None:
        super().__init__()
        self._selector = _NoIOSelector()

    def _process_events(self, event_list: list[Any]) -> None:
        pass

    def _write_to_self(self) -> None:
        pass


_saved: list[tuple[asyncio.AbstractEventLoop | None, Any]] = []


def pytest_configure(config: pytest.Config) -> None:
    with warnings.catch_warnings():  # the policy API is deprecated in Python 3.14, still in use
        warnings.simplefilter("ignore", DeprecationWarning)
        policy = asyncio.get_event_loop_policy()

        class NoIOPolicy(type(policy)):  # type: ignore[misc]
            def new_event_loop(self) -> asyncio.AbstractEventLoop:
                return NoIOEventLoop()

        _saved.append((asyncio._get_running_loop(), policy))
        asyncio._set_running_loop(None)
        asyncio.set_event_loop_policy(NoIOPolicy())


def pytest_unconfigure(config: pytest.Config) -> None:
    running, policy = _saved.pop()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop_policy(policy)
    asyncio._set_running_loop(running)


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Any]:
    return {"noio": NoIOEventLoop}
