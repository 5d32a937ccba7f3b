"""The two ways runstore talks to SQLite, behind one small async interface.

- ``sqlite3``: the standard library module called inline. No thread, so it works in
  Pyodide; each call blocks the event loop for as long as SQLite works (microseconds for
  runstore's indexed statements).
- ``aiosqlite``: the same module on aiosqlite's worker thread (extra ``runstore[sqlite]``).

``import runstore`` never imports aiosqlite: it is imported when a connection is opened.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import sqlite3
import sys
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .errors import StorageError

if TYPE_CHECKING:
    import aiosqlite

Params = Sequence[Any]
Row = tuple[Any, ...]
DRIVERS = ("sqlite3", "aiosqlite")
BUSY_TIMEOUT_SECONDS = 30.0


class Connection(Protocol):
    """What the store needs from a connection. Transactions are explicit (BEGIN/COMMIT)."""

    @property
    def in_transaction(self) -> bool: ...

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def execute(self, sql: str, params: Params = ()) -> None: ...

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None: ...

    async def settle(self) -> None:
        """Wait until every statement sent so far, even by a cancelled call, has run."""

    async def close(self) -> None: ...


@functools.cache
def threads_work() -> bool:
    """Whether this interpreter can start a thread (not in Pyodide). Joins the probe."""
    if sys.platform in ("emscripten", "wasi"):
        return False
    try:
        probe = threading.Thread(target=lambda: None)
        probe.start()
        probe.join()
    except RuntimeError:
        return False
    return True


def _aiosqlite_missing() -> bool:
    return importlib.util.find_spec("aiosqlite") is None  # looks without importing it


def choose(driver: str | None) -> str:
    """Check ``driver``; ``None`` picks aiosqlite when it is installed and threads work."""
    if driver is None:
        return "aiosqlite" if threads_work() and not _aiosqlite_missing() else "sqlite3"
    if driver not in DRIVERS:
        raise ValueError(f"driver: must be one of {DRIVERS} or None, not {driver!r}")
    if driver == "aiosqlite" and _aiosqlite_missing():
        raise ImportError(
            "driver='aiosqlite' needs the aiosqlite package (runstore's sqlite extra): "
            "pip install aiosqlite"
        )
    return driver


def _connect_sqlite3(path: str) -> sqlite3.Connection:
    # isolation_level=None: the module issues no BEGIN of its own; runstore does.
    return sqlite3.connect(
        path,
        timeout=BUSY_TIMEOUT_SECONDS,
        isolation_level=None,
        check_same_thread=False,
        uri=is_uri(path),
    )


def is_uri(path: str) -> bool:
    """A SQLite URI (``file:a.db?mode=ro``) rather than a file name."""
    return path.startswith("file:")


def _failure(exc: sqlite3.Error) -> StorageError:
    """SQLite's own errors (a locked file past the timeout, a full disk...) as StorageError."""
    return StorageError(f"SQLite: {exc}")


class InlineConnection:
    """The stdlib module, called on the event loop's thread."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    @property
    def in_transaction(self) -> bool:
        return self._connection.in_transaction

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            return self._connection.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise _failure(exc) from exc

    async def execute(self, sql: str, params: Params = ()) -> None:
        try:
            self._connection.execute(sql, params)
        except sqlite3.Error as exc:
            raise _failure(exc) from exc

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        try:
            self._connection.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise _failure(exc) from exc

    async def settle(self) -> None:
        return  # every call has finished by the time it returns

    async def close(self) -> None:
        self._connection.close()


class ThreadConnection:
    """aiosqlite: every call is one round trip to the connection's worker thread."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    @property
    def in_transaction(self) -> bool:
        return self._connection.in_transaction

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            return list(await self._connection.execute_fetchall(sql, params))  # type: ignore[arg-type]
        except sqlite3.Error as exc:
            raise _failure(exc) from exc

    async def execute(self, sql: str, params: Params = ()) -> None:
        try:
            await self._connection.execute(sql, params)
        except sqlite3.Error as exc:
            raise _failure(exc) from exc

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        try:
            await self._connection.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise _failure(exc) from exc

    async def settle(self) -> None:
        # The worker runs requests in order: once this one is answered, all earlier ones are.
        await self._connection.execute_fetchall("SELECT 1")

    async def close(self) -> None:
        await self._connection.close()


async def connect(path: str, driver: str) -> Connection:
    """Open ``path`` with the chosen driver (see ``choose``)."""
    try:
        if driver == "sqlite3":
            return InlineConnection(_connect_sqlite3(path))
        import aiosqlite

        connection = aiosqlite.connect(
            path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, uri=is_uri(path)
        )
        # aiosqlite's worker thread would keep the interpreter from exiting if a store is never
        # closed. As a daemon it just stops at exit: every call that returned was committed.
        worker = getattr(connection, "_thread", None)
        if isinstance(worker, threading.Thread) and not worker.is_alive():
            worker.daemon = True
        try:
            await connection
        except sqlite3.Error:
            if isinstance(worker, threading.Thread):
                await _ended(worker)
            raise
    except sqlite3.Error as exc:
        raise _failure(exc) from exc
    return ThreadConnection(connection)


async def _ended(worker: threading.Thread) -> None:
    """After a failed connect aiosqlite stops its worker with a future nobody awaits: let the
    worker end while this loop runs, else it later posts that future to a closed loop."""
    for _ in range(1000):  # it ends at once; at most about a second
        if not worker.is_alive():
            return
        await asyncio.sleep(0.001)
