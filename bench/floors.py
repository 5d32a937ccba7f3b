"""The floors: the least work that does the same turn, with no storage layer around it.

- bare list: a Python list per session; append a tuple, slice the last 50, append.
- minimal async store: the bare list behind runstore's call shape (``await`` of async methods
  taking the same keyword arguments), checking nothing: the least any async store API costs.
- raw sqlite3 / raw aiosqlite: one table with a UNIQUE (session_id, seq) index on a WAL file
  with ``synchronous=NORMAL`` (runstore's durability setting); each add is one INSERT that
  takes ``seq`` in the same statement, in its own transaction (autocommit: INSERT+COMMIT);
  the read is one ``ORDER BY seq DESC LIMIT 50`` query, reversed to oldest first.
- raw asyncpg: the same statements on PostgreSQL, through an asyncpg pool of the size
  runstore's Postgres store uses by default (1 to 10 connections).
"""

from __future__ import annotations

import itertools
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .workload import REPLY_TEXT, USER_TEXT, WINDOW, Subject, Unavailable, prefill_text

SQLITE_SCHEMA = """
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (session_id, seq)
)
"""
SQLITE_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")
SQLITE_INSERT = (
    "INSERT INTO messages (session_id, seq, role, content, created_at) "
    "SELECT ?1, coalesce(max(seq), 0) + 1, ?2, ?3, ?4 FROM messages WHERE session_id = ?1"
)
SQLITE_READ = (
    "SELECT seq, role, content, created_at FROM messages "
    "WHERE session_id = ? ORDER BY seq DESC LIMIT ?"
)
SQLITE_FILL = (
    "INSERT INTO messages (session_id, seq, role, content, created_at) VALUES (?, ?, ?, ?, ?)"
)

PG_SCHEMA = """
DROP SCHEMA IF EXISTS bench_floor CASCADE;
CREATE SCHEMA bench_floor;
CREATE TABLE bench_floor.messages (
    id BIGSERIAL PRIMARY KEY,
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (session_id, seq)
)
"""
PG_INSERT = (
    "INSERT INTO bench_floor.messages (session_id, seq, role, content, created_at) "
    "SELECT $1, coalesce(max(seq), 0) + 1, $2, $3, $4 FROM bench_floor.messages "
    "WHERE session_id = $1"
)
PG_READ = (
    "SELECT seq, role, content, created_at FROM bench_floor.messages "
    "WHERE session_id = $1 ORDER BY seq DESC LIMIT $2"
)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _fill_rows(session_ids: list[str], size: int) -> list[tuple[str, int, str, str, str]]:
    stamp = _now()
    texts = [prefill_text(i) for i in range(size)]
    return [
        (sid, seq, role, content, stamp)
        for sid in session_ids
        for seq, (role, content) in enumerate(texts, start=1)
    ]


class BareList(Subject):
    name = "bare list"
    is_async = False

    async def add_sessions(self, count: int, size: int) -> list[Any]:
        texts = [prefill_text(i) for i in range(size)]
        return [list(texts) for _ in range(count)]

    def turn(self, session: Any) -> None:
        session.append(("user", USER_TEXT))
        session[-WINDOW:]
        session.append(("assistant", REPLY_TEXT))


class _NothingChecked:
    """runstore's ``add_chat_message``/``get_chat_history`` signatures over a dict of lists."""

    def __init__(self) -> None:
        self.sessions: dict[str, list[tuple[str, str | None]]] = {}

    async def add_chat_message(
        self,
        *,
        agent_id: str,
        session_id: str,
        run_id: str | None,
        role: str,
        content: str | None,
    ) -> None:
        self.sessions[session_id].append((role, content))

    async def get_chat_history(
        self, session_id: str, limit: int = WINDOW
    ) -> list[tuple[str, str | None]]:
        return self.sessions[session_id][-limit:]


class MinimalAsyncStore(Subject):
    name = "minimal async store (no checks)"
    floor = "bare list"

    def __init__(self) -> None:
        self.store = _NothingChecked()
        self._ids = itertools.count()

    async def add_sessions(self, count: int, size: int) -> list[Any]:
        texts = [prefill_text(i) for i in range(size)]
        ids = [f"s{next(self._ids)}" for _ in range(count)]
        for session_id in ids:
            self.store.sessions[session_id] = list(texts)
        return ids

    async def turn(self, session: Any) -> None:
        store = self.store
        await store.add_chat_message(
            agent_id="a", session_id=session, run_id="r", role="user", content=USER_TEXT
        )
        await store.get_chat_history(session, WINDOW)
        await store.add_chat_message(
            agent_id="a", session_id=session, run_id="r", role="assistant", content=REPLY_TEXT
        )


class RawSqlite3(Subject):
    name = "raw sqlite3 (WAL file)"
    is_async = False

    def __init__(self) -> None:
        self._ids = itertools.count()
        self._db: sqlite3.Connection | None = None

    async def open(self, workdir: Path) -> None:
        self._db = sqlite3.connect(workdir / "raw.sqlite3", isolation_level=None)
        for pragma in SQLITE_PRAGMAS:
            self._db.execute(pragma)
        self._db.execute(SQLITE_SCHEMA)

    async def add_sessions(self, count: int, size: int) -> list[Any]:
        assert self._db is not None
        ids = [f"s{next(self._ids)}" for _ in range(count)]
        self._db.execute("BEGIN")
        self._db.executemany(SQLITE_FILL, _fill_rows(ids, size))
        self._db.execute("COMMIT")
        return ids

    def add(self, session: str, role: str, content: str) -> None:
        assert self._db is not None
        self._db.execute(SQLITE_INSERT, (session, role, content, _now()))

    def turn(self, session: Any) -> None:
        assert self._db is not None
        self.add(session, "user", USER_TEXT)
        self._db.execute(SQLITE_READ, (session, WINDOW)).fetchall().reverse()
        self.add(session, "assistant", REPLY_TEXT)

    async def close(self) -> None:
        if self._db is not None:
            self._db.close()


class RawAiosqlite(Subject):
    name = "raw aiosqlite (WAL file)"

    def __init__(self) -> None:
        self._ids = itertools.count()
        self._db: Any = None

    async def open(self, workdir: Path) -> None:
        try:
            import aiosqlite
        except ImportError as exc:
            raise Unavailable(f"aiosqlite is not installed ({exc})") from None
        self._db = await aiosqlite.connect(workdir / "raw.aiosqlite", isolation_level=None)
        for pragma in SQLITE_PRAGMAS:
            await self._db.execute(pragma)
        await self._db.execute(SQLITE_SCHEMA)

    async def add_sessions(self, count: int, size: int) -> list[Any]:
        ids = [f"s{next(self._ids)}" for _ in range(count)]
        await self._db.execute("BEGIN")
        await self._db.executemany(SQLITE_FILL, _fill_rows(ids, size))
        await self._db.execute("COMMIT")
        return ids

    async def add(self, session: str, role: str, content: str) -> None:
        await self._db.execute(SQLITE_INSERT, (session, role, content, _now()))

    async def turn(self, session: Any) -> None:
        await self.add(session, "user", USER_TEXT)
        async with self._db.execute(SQLITE_READ, (session, WINDOW)) as cursor:
            (await cursor.fetchall()).reverse()
        await self.add(session, "assistant", REPLY_TEXT)

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()


class RawAsyncpg(Subject):
    name = "raw asyncpg"

    def __init__(self, dsn: str | None, pool_size: int = 10) -> None:
        self._dsn = dsn
        self._pool_size = pool_size
        self._ids = itertools.count()
        self.pool: Any = None

    async def open(self, workdir: Path) -> None:
        if self._dsn is None:
            raise Unavailable("no PostgreSQL server")
        try:
            import asyncpg
        except ImportError as exc:
            raise Unavailable(f"asyncpg is not installed ({exc})") from None
        self.pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=self._pool_size)
        await self.pool.execute(PG_SCHEMA)

    async def add_sessions(self, count: int, size: int) -> list[Any]:
        ids = [f"s{next(self._ids)}" for _ in range(count)]
        stamp = datetime.now(UTC)
        texts = [prefill_text(i) for i in range(size)]
        records = [
            (sid, seq, role, content, stamp)
            for sid in ids
            for seq, (role, content) in enumerate(texts, start=1)
        ]
        async with self.pool.acquire() as conn:
            await conn.copy_records_to_table(
                "messages",
                schema_name="bench_floor",
                records=records,
                columns=["session_id", "seq", "role", "content", "created_at"],
            )
            await conn.execute("ANALYZE bench_floor.messages")
        return ids

    async def turn(self, session: Any) -> None:
        pool = self.pool
        await pool.execute(PG_INSERT, session, "user", USER_TEXT, datetime.now(UTC))
        (await pool.fetch(PG_READ, session, WINDOW)).reverse()
        await pool.execute(PG_INSERT, session, "assistant", REPLY_TEXT, datetime.now(UTC))

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
