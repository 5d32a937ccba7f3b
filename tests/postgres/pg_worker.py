"""A separate process that uses one PostgreSQL store, for the multi-process tests.

    python pg_worker.py BARRIER DSN SCHEMA append SESSION_ID AGENT_ID TASKS COUNT TAG
    python pg_worker.py BARRIER DSN SCHEMA open

Each worker first waits on a shared advisory lock (key BARRIER) that the test holds, so all
workers start at once when the test lets go. ``append`` runs TASKS concurrent tasks that each
add COUNT messages and prints the acknowledged ``[content, seq]`` pairs as JSON; ``open``
creates (migrates) the schema on first use and prints the versions it sees.
"""

from __future__ import annotations

import asyncio
import json
import sys

import asyncpg

from runstore import PostgresDataStorage


async def wait_for_start(dsn: str, barrier: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock_shared($1)", barrier)
        await conn.execute("SELECT pg_advisory_unlock_shared($1)", barrier)
    finally:
        await conn.close()


async def append(store: PostgresDataStorage, argv: list[str]) -> list[list[object]]:
    session_id, agent_id, tasks, count, tag = argv
    acknowledged: list[list[object]] = []

    async def task(number: int) -> None:
        for i in range(int(count)):
            content = f"{tag}-{number}-{i}"
            message = await store.add_chat_message(
                agent_id=agent_id,
                session_id=session_id,
                run_id=None,
                role="user",
                content=content,
            )
            acknowledged.append([content, message.seq])

    await asyncio.gather(*(task(n) for n in range(int(tasks))))
    return acknowledged


async def main(argv: list[str]) -> None:
    barrier, dsn, schema, command, *rest = argv
    await wait_for_start(dsn, int(barrier))
    async with PostgresDataStorage(dsn, schema=schema) as store:
        if command == "append":
            print(json.dumps(await append(store, rest)))
        elif command == "open":
            await store.open()
            run = await store.initialize_run(workflow_name="first use")
            print(json.dumps(run.session_id))
        else:
            raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
