"""Retention: ``prune(keep_last=50)`` over 1,000,000 messages (1,000 sessions of 1,000) on
SQLite and PostgreSQL, with a concurrent writer: one task adds a message to another session
in a loop while prune runs, and the longest time one ``add_chat_message`` took is reported
(the contract: a writer waits for at most one batch). Filled in bulk (SQLite executemany,
PostgreSQL COPY) into runstore's own tables after its migrations.

    python -m bench.retention [--sessions 100]   # a quick run; PostgreSQL on a throwaway cluster
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runstore import DataStorage, SqliteDataStorage

from .turns import log

SESSIONS = 1_000
PER_SESSION = 1_000
KEEP = 50
TEXT = "a message of some forty characters, or so"


async def _sessions(store: DataStorage, count: int) -> tuple[str, list[str]]:
    ids = []
    for n in range(count):
        handle = await store.initialize_run(workflow_name="retention", external_id=f"u{n}")
        ids.append(handle.session_id)
    return handle.agent_id, ids


async def add_until(store: DataStorage, agent_id: str, session_id: str, done: asyncio.Event) -> Any:
    """Adds messages until ``done``; returns (adds, longest seconds one add took)."""
    adds, longest = 0, 0.0
    while not done.is_set():
        started = time.perf_counter()
        await store.add_chat_message(
            agent_id=agent_id, session_id=session_id, run_id=None, role="user", content=TEXT
        )
        longest = max(longest, time.perf_counter() - started)
        adds += 1
        await asyncio.sleep(0)
    return adds, longest


async def _prune(store: DataStorage, agent_id: str, writer_session: str) -> str:
    done = asyncio.Event()
    writer = asyncio.create_task(add_until(store, agent_id, writer_session, done))
    await asyncio.sleep(0)
    started = time.perf_counter()
    report = await store.prune(keep_last=KEEP)
    seconds = time.perf_counter() - started
    done.set()
    adds, longest = await writer
    return (
        f"{seconds:.1f} s | {report.messages:,} | {report.messages / seconds:,.0f} | "
        f"{adds:,} | {longest * 1000:.1f} ms |"
    )


async def sqlite_line(sessions: int, workdir: Path) -> str:
    path = workdir / "retention.sqlite"
    started = time.perf_counter()
    async with SqliteDataStorage(path, driver="sqlite3") as store:
        agent_id, ids = await _sessions(store, sessions + 1)
    log(f"  sessions: {time.perf_counter() - started:.1f} s")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")  # the fill only: no fsync per WAL checkpoint
    now = int(datetime.now(UTC).timestamp() * 1_000_000)
    # runstore's per-insert trigger (it bumps the session's last_seq and its counters) is set
    # aside for the fill, then the sessions are given what it would have set
    [(trigger,)] = db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'messages_bump_session'"
    ).fetchall()
    db.execute("BEGIN")
    db.execute("DROP TRIGGER messages_bump_session")
    db.executemany(
        "INSERT INTO messages (session_id, seq, role, content, created_at) VALUES (?, ?, ?, ?, ?)",
        ((sid, seq, "user", TEXT, now) for sid in ids[:-1] for seq in range(1, PER_SESSION + 1)),
    )
    db.execute(
        "UPDATE sessions SET last_seq = ?, updated_at = ?, message_count = ?, content_bytes = ?"
        " WHERE id != ?",
        (PER_SESSION, now, PER_SESSION, PER_SESSION * len(TEXT.encode()), ids[-1]),
    )
    db.execute(trigger)
    db.execute("COMMIT")
    db.close()
    log(f"  filled: {time.perf_counter() - started:.1f} s")
    async with SqliteDataStorage(path, driver="sqlite3") as store:
        return f"| SQLite (sqlite3) | {await _prune(store, agent_id, ids[-1])}"


async def postgres_line(sessions: int, dsn: str) -> str:
    import asyncpg

    from runstore import PostgresDataStorage

    from .runstore_stores import drop_schema

    schema = f"bench_retention_{int(time.time())}"
    try:
        async with PostgresDataStorage(dsn, schema=schema) as store:
            agent_id, ids = await _sessions(store, sessions + 1)
            conn = await asyncpg.connect(dsn)
            try:
                now = datetime.now(UTC)
                rows = [
                    (sid, seq, agent_id, "user", TEXT, now)
                    for sid in ids[:-1]
                    for seq in range(1, PER_SESSION + 1)
                ]
                columns = ["session_id", "seq", "agent_id", "role", "content", "created_at"]
                await conn.copy_records_to_table(
                    "messages", schema_name=schema, columns=columns, records=rows
                )
                await conn.execute(
                    f'UPDATE "{schema}".sessions SET last_seq = $1, message_count = $1,'
                    " content_bytes = $2 WHERE id <> $3",
                    PER_SESSION,
                    PER_SESSION * len(TEXT.encode()),
                    ids[-1],
                )
                await conn.execute(f'ANALYZE "{schema}".sessions, "{schema}".messages')
            finally:
                await conn.close()
            return f"| PostgreSQL | {await _prune(store, agent_id, ids[-1])}"
    finally:
        await drop_schema(dsn, schema)


async def measure(dsn: str | None, why_not: str | None, sessions: int = SESSIONS) -> list[str]:
    """Markdown lines: a table of one row per backend."""
    lines = [
        f"`prune(keep_last={KEEP})` over {sessions * PER_SESSION:,} messages ({sessions:,} "
        f"sessions of {PER_SESSION:,}) while one task adds messages to another session "
        "(`bench/retention.py`).",
        "",
        "| backend | prune took | messages removed | removed/s | adds meanwhile | longest add |",
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="runstore-retention-") as folder:
        lines.append(await sqlite_line(sessions, Path(folder)))
        log("  prune on SQLite: done")
    if dsn is None:
        lines.append(f"| PostgreSQL | not available: {why_not} | | | | |")
    else:
        lines.append(await postgres_line(sessions, dsn))
        log("  prune on PostgreSQL: done")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=SESSIONS)
    args = parser.parse_args()
    from .postgres import Server

    server = Server()
    server.start()
    try:
        lines = asyncio.run(measure(server.dsn, server.why_not, args.sessions))
    finally:
        server.stop()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
