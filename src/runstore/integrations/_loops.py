"""Sync methods over async ones, for the adapters whose framework calls both (LangGraph).

``LoopBridge.note()`` (called by every async method) remembers the event loop the store is
used from; ``LoopBridge.run(coroutine)`` runs a coroutine for a sync method: on that loop when
it runs in another thread (LangGraph runs sync nodes in threads while its loop runs), else on a
private loop. Called inside a running loop it raises, unless made with ``in_loop=True``: then
the private loop runs in a short-lived thread while the caller blocks (as a sync store does),
which only serves a store that is not tied to one loop (memory, SQLite). With ``tied=True`` (a
PostgreSQL store, whose pool serves one loop) there is no private loop: a sync call needs the
store's loop running in another thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopBridge:
    def __init__(self, owner: str, *, in_loop: bool = False, tied: bool = False) -> None:
        self._owner = owner  # the class named in errors
        self._in_loop = in_loop and not tied
        self._tied = tied
        self._loop: asyncio.AbstractEventLoop | None = None
        self._own_loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def note(self) -> None:
        """Remember the running loop (an async method is running on it)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if loop is not self._own_loop:
            self._loop = loop

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            if not self._in_loop:
                coroutine.close()
                raise RuntimeError(
                    f"{self._owner}'s sync methods cannot run inside an event loop: use the "
                    "a* methods (graph.ainvoke / astream)"
                )
            return self._in_thread(coroutine)
        loop = self._loop
        if loop is not None and loop.is_running():
            return asyncio.run_coroutine_threadsafe(coroutine, loop).result()
        if self._tied:
            coroutine.close()
            raise RuntimeError(
                f"{self._owner}'s sync methods need the store's event loop running in another "
                f"thread (make the {self._owner} in that loop, or call an a* method there first)"
            )
        return self._private(coroutine)

    def close(self) -> None:
        """Close the private loop (if one was made); a later sync call makes another."""
        with self._lock:
            if self._own_loop is not None:
                self._own_loop.close()
                self._own_loop = None

    def _private(self, coroutine: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            if self._own_loop is None:
                self._own_loop = asyncio.new_event_loop()
            return self._own_loop.run_until_complete(coroutine)

    def _in_thread(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """The private loop, run in a thread of its own while this (loop) thread waits."""
        outcome: list[tuple[bool, Any]] = []

        def work() -> None:
            try:
                outcome.append((True, self._private(coroutine)))
            except BaseException as exc:  # handed to the caller below
                outcome.append((False, exc))

        thread = threading.Thread(target=work, name=f"{self._owner} sync call")
        thread.start()
        thread.join()
        done, result = outcome[0]
        if not done:
            raise result
        value: T = result
        return value
