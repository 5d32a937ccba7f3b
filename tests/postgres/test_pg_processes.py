"""Several processes on one database: appends to one session, and concurrent first use."""

from __future__ import annotations

import asyncpg
from pg_helpers import Workers, server

from runstore import PostgresDataStorage

PROCESSES, TASKS, MESSAGES = 4, 8, 25


async def test_four_processes_of_eight_tasks_append_to_one_session() -> None:
    dsn, schema = server()
    workers = Workers(dsn)
    async with PostgresDataStorage(dsn, schema=schema) as store:
        run = await store.initialize_run(workflow_name="chat")
    commands = [
        [schema, "append", run.session_id, run.agent_id, str(TASKS), str(MESSAGES), f"p{n}"]
        for n in range(PROCESSES)
    ]
    acknowledged = [pair for output in await workers.run(*commands) for pair in output]

    total = PROCESSES * TASKS * MESSAGES
    assert len(acknowledged) == total
    async with PostgresDataStorage(dsn, schema=schema) as store:
        history = await store.get_chat_history(run.session_id, None)
    assert [m.seq for m in history] == list(range(1, total + 1))  # unique, no gap
    assert {m.content: m.seq for m in history} == dict(acknowledged)  # each once, same seq
    for n in range(PROCESSES):  # each task's own messages are in the order it sent them
        for t in range(TASKS):
            mine = [m.seq for m in history if (m.content or "").startswith(f"p{n}-{t}-")]
            assert mine == sorted(mine) and len(mine) == MESSAGES


async def test_concurrent_first_use_applies_each_migration_once() -> None:
    dsn, schema = server()
    workers = Workers(dsn)
    sessions = await workers.run(*([schema, "open"] for _ in range(6)))
    assert len(set(sessions)) == 6
    conn = await asyncpg.connect(dsn)
    try:
        versions = await conn.fetch(
            f'SELECT version FROM "{schema}".runstore_migrations ORDER BY version'
        )
    finally:
        await conn.close()
    from runstore._postgres_sql import MIGRATIONS

    assert [row[0] for row in versions] == [version for version, _ in MIGRATIONS]
    async with PostgresDataStorage(dsn, schema=schema) as store:
        assert [a.name for a in await store.list_agents()] == ["first use"]
        assert len(await store.list_sessions()) == 6
