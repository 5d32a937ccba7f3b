"""runstore's own backends, driven through the public ``DataStorage`` API only.

Sessions are pre-filled with ``import_data`` (one document per batch of sessions); the turn
is ``add_chat_message`` (user), ``get_chat_history(session_id, 50)``, ``add_chat_message``
(assistant), every message belonging to the session's run.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from runstore import DataStorage, InMemoryDataStorage, RunHandle

from .workload import REPLY_TEXT, USER_TEXT, WINDOW, Subject, Unavailable, runstore_document

AGENT_ID = "bench-agent"
BATCH_MESSAGES = 200_000  # messages per import_data document while pre-filling


class RunstoreSubject(Subject):
    """Shared by every runstore backend: only ``make`` differs."""

    floor = "bare list"

    def __init__(self) -> None:
        self._batches = itertools.count()
        self.store: DataStorage | None = None

    async def make(self, workdir: Path) -> DataStorage:
        raise NotImplementedError

    async def open(self, workdir: Path) -> None:
        self.store = await self.make(workdir)

    async def add_sessions(self, count: int, size: int) -> list[Any]:
        assert self.store is not None
        per_batch = max(1, BATCH_MESSAGES // max(size, 1))
        handles: list[RunHandle] = []
        while len(handles) < count:
            batch = min(per_batch, count - len(handles))
            tag = f"b{next(self._batches)}"
            await self.store.import_data(runstore_document(batch, size, AGENT_ID, tag))
            handles.extend(RunHandle(AGENT_ID, f"{tag}-s{n}", f"{tag}-r{n}") for n in range(batch))
        return handles

    async def turn(self, session: Any) -> None:
        store = self.store
        assert store is not None
        await store.add_chat_message(
            agent_id=session.agent_id,
            session_id=session.session_id,
            run_id=session.run_id,
            role="user",
            content=USER_TEXT,
        )
        await store.get_chat_history(session.session_id, WINDOW)
        await store.add_chat_message(
            agent_id=session.agent_id,
            session_id=session.session_id,
            run_id=session.run_id,
            role="assistant",
            content=REPLY_TEXT,
        )

    async def close(self) -> None:
        if self.store is not None:
            await self.store.close()


class RunstoreMemory(RunstoreSubject):
    name = "runstore in-memory"

    async def make(self, workdir: Path) -> DataStorage:
        return InMemoryDataStorage()


def sqlite_store(path: Path, driver: str) -> DataStorage:
    """``SqliteDataStorage(path, driver=driver)``, or ``Unavailable`` saying why not."""
    try:
        from runstore import SqliteDataStorage
    except (ImportError, AttributeError) as exc:
        raise Unavailable(f"runstore.SqliteDataStorage is missing ({exc})") from None
    try:
        store: DataStorage = SqliteDataStorage(str(path), driver=driver)
    except ImportError as exc:
        raise Unavailable(f"driver {driver!r} is not installed ({exc})") from None
    return store


class RunstoreSqlite(RunstoreSubject):
    def __init__(self, driver: str) -> None:
        super().__init__()
        self.driver = driver
        self.name = f"runstore SQLite, {driver} driver (WAL file)"
        self.floor = "raw sqlite3 (WAL file)" if driver == "sqlite3" else "raw aiosqlite (WAL file)"

    async def make(self, workdir: Path) -> DataStorage:
        return sqlite_store(workdir / f"runstore-{self.driver}.sqlite3", self.driver)


def postgres_store(
    dsn: str | None, schema: str, pooler: str | None = None, why_not: str = "no PostgreSQL server"
) -> DataStorage:
    if dsn is None:
        raise Unavailable(why_not)
    try:
        from runstore import PostgresDataStorage
    except (ImportError, AttributeError) as exc:
        raise Unavailable(f"runstore.PostgresDataStorage is missing ({exc})") from None
    store: DataStorage = PostgresDataStorage(dsn, schema=schema, pooler=pooler)
    return store


async def drop_schema(dsn: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


_schemas = itertools.count()


class RunstorePostgres(RunstoreSubject):
    """``PostgresDataStorage(dsn, schema=...)`` with its default pool (10 connections), in a
    schema of its own that is dropped afterwards."""

    name = "runstore Postgres"
    floor = "raw asyncpg"
    pooler: str | None = None
    why_not = "no PostgreSQL server"

    def __init__(self, dsn: str | None) -> None:
        super().__init__()
        self.dsn = dsn
        self.schema = f"runstore_bench_{next(_schemas)}"

    async def make(self, workdir: Path) -> DataStorage:
        store = postgres_store(self.dsn, self.schema, self.pooler, self.why_not)
        assert self.dsn is not None
        await drop_schema(self.dsn, self.schema)
        return store

    async def close(self) -> None:
        await super().close()
        if self.store is not None and self.dsn is not None:
            await drop_schema(self.dsn, self.schema)


class RunstorePostgresPgBouncer(RunstorePostgres):
    """The same, through PgBouncer in transaction pooling mode in front of the same server
    (``pooler="transaction"``: no prepared-statement cache, so each statement is parsed
    again). Its floor is raw asyncpg straight to the server: the ratio is the whole cost of
    the pooler."""

    name = "runstore Postgres via PgBouncer (transaction pooling)"
    pooler = "transaction"
    why_not = "no PgBouncer (scripts/test installs it; or set RUNSTORE_BENCH_PGBOUNCER_DSN)"
