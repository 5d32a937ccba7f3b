"""runstore as a framework's memory: OpenAI Agents' session API on runstore stores, beside
the SDK's own ``SQLiteSession`` (bench/peers.py), which is each row's floor.

- ``RunstoreSession`` (runstore.integrations.openai_agents) on ``InMemoryDataStorage``, on
  a ``SqliteDataStorage`` file (sqlite3 and aiosqlite drivers) and on ``PostgresDataStorage``
  (a schema of its own): one store, one session per conversation. The turn is the peer's:
  ``add_items([user])``, ``get_items(limit=50)``, ``add_items([reply])``. Pre-fill: one
  ``add_items`` with all P items.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from .runstore_stores import drop_schema, postgres_store
from .workload import REPLY_TEXT, USER_TEXT, WINDOW, Subject, Unavailable, prefill_text

_schemas = itertools.count()


class RunstoreAgentsSession(Subject):
    max_sessions = 64  # as the SQLiteSession rows it is compared with

    def __init__(self, driver: str | None, dsn: str | None = None) -> None:
        self.driver = driver  # None: InMemoryDataStorage; "postgres": PostgresDataStorage(dsn)
        self.dsn = dsn
        self.schema = f"runstore_bench_session_{next(_schemas)}"
        if driver is None:
            self.name = "runstore RunstoreSession (memory)"
            self.floor = "OpenAI Agents SQLiteSession (memory)"
        elif driver == "postgres":
            self.name = "runstore RunstoreSession (Postgres)"
            self.floor = "raw asyncpg"
        else:
            self.name = f"runstore RunstoreSession (SQLite file, {driver})"
            self.floor = "OpenAI Agents SQLiteSession (file)"
        self._ids = itertools.count()

    async def open(self, workdir: Path) -> None:
        try:
            from runstore.integrations.openai_agents import RunstoreSession
        except ImportError as exc:
            raise Unavailable(f"openai-agents is not installed ({exc})") from None
        from runstore import InMemoryDataStorage, SqliteDataStorage

        self._class = RunstoreSession
        if self.driver is None:
            self._store: Any = InMemoryDataStorage()
        elif self.driver == "postgres":
            self._store = postgres_store(self.dsn, self.schema)
            assert self.dsn is not None
            await drop_schema(self.dsn, self.schema)
            await self._store.open()
        else:
            self._store = SqliteDataStorage(workdir / "runstore.db", driver=self.driver)
            await self._store.open()

    async def add_sessions(self, count: int, size: int) -> list[Any]:
        items = [{"role": role, "content": text} for role, text in map(prefill_text, range(size))]
        handles = []
        for _ in range(count):
            session = self._class(f"s{next(self._ids)}", self._store)
            await session.add_items(items)
            handles.append(session)
        return handles

    async def turn(self, session: Any) -> None:
        await session.add_items([{"role": "user", "content": USER_TEXT}])
        await session.get_items(limit=WINDOW)
        await session.add_items([{"role": "assistant", "content": REPLY_TEXT}])

    async def close(self) -> None:
        await self._store.close()
        if self.driver == "postgres" and self.dsn is not None:
            await drop_schema(self.dsn, self.schema)
