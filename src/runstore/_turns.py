"""``Turns``: calls on one store take turns, whichever event loop or thread they come from.

An ``asyncio.Lock`` belongs to the first loop that waits on it, so a store that kept one
failed once a second loop used it (``asyncio.run`` twice, ``Runner.run_sync``, a worker
thread with its own loop). Here each loop gets its own ``asyncio.Lock`` (calls of one loop
queue fairly, without polling), and one ``threading.Lock`` orders the loops. A loop that
finds another loop (another thread) holding the store polls for it every millisecond:
that only happens when two threads use one store at the same time. Nothing here starts a
thread, so it works in Pyodide.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from types import TracebackType

_POLL_SECONDS = 0.001


class Turns:
    """``async with turns:`` runs the block while no other call of this store runs."""

    __slots__ = ("_held", "_loop", "_loop_lock", "_loop_locks", "_turn_lock")

    def __init__(self) -> None:
        self._held = threading.Lock()
        # The last loop seen and its lock (the usual case: one loop), then all the others.
        self._loop: asyncio.AbstractEventLoop | None = None  # None: no running loop
        self._loop_lock = asyncio.Lock()
        self._loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._turn_lock: asyncio.Lock | None = None  # the loop lock of the call holding the store

    def _lock_of_running_loop(self) -> asyncio.Lock:
        # None when driven without a loop (the sqlite3 driver never suspends: coro.send works).
        loop = asyncio._get_running_loop()
        if loop is self._loop:
            return self._loop_lock
        lock = self._loop_locks.get(loop) if loop is not None else None
        if lock is None:
            lock = asyncio.Lock()
            if loop is not None:
                self._loop_locks[loop] = lock
        self._loop, self._loop_lock = loop, lock
        return lock

    async def __aenter__(self) -> None:
        lock = self._lock_of_running_loop()
        await lock.acquire()
        try:
            # An asyncio.Event cannot be set from another thread's loop: poll.
            while not self._held.acquire(blocking=False):  # noqa: ASYNC110
                await asyncio.sleep(_POLL_SECONDS)  # another thread's loop has the store
        except BaseException:
            lock.release()
            raise
        self._turn_lock = lock

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        lock, self._turn_lock = self._turn_lock, None
        self._held.release()
        assert lock is not None
        lock.release()
