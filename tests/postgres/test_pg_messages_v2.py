"""Migration 3 (messages v2, forks): a populated migration-1 schema is upgraded with every row
kept; one idempotency key stores one message across separate pools."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import asyncpg
from export_formats import as_format_3
from pg_helpers import server

from runstore import PostgresDataStorage
from runstore._postgres_sql import MIGRATIONS, Statements

FIXTURES = Path(__file__).parent / "fixtures"


async def load_version_1(dsn: str, schema: str) -> None:
    """``schema`` at migration version 1 holding the rows of fixtures/runstore-v1.sql."""
    quoted = f'"{schema}"'
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(Statements(schema).migrations_table)
        await connection.execute(MIGRATIONS[0][1].replace("{s}", quoted))
        rows = (FIXTURES / "runstore-v1.sql").read_text(encoding="utf-8")
        await connection.execute(rows.replace("{s}", quoted))
    finally:
        await connection.close()


def expected_export(imported: bool = False) -> dict[str, Any]:
    """What migration 1's runstore exported from the fixture (format 1), as format 3."""
    document = json.loads((FIXTURES / "runstore-v1.export.json").read_text(encoding="utf-8"))
    return as_format_3(document, imported=imported)


async def test_a_version_1_schema_is_migrated_keeping_every_row() -> None:
    dsn, schema = server()
    await load_version_1(dsn, schema)
    async with PostgresDataStorage(dsn, schema=schema) as store:
        assert await store.export_data() == expected_export()
        [agent] = [a for a in await store.list_agents() if a.name == "chat"]
        popped = await store.pop_message("s1")
        assert popped is not None and popped.seq == 3
        added = await store.add_chat_message(
            agent_id=agent.id,
            session_id="s1",
            run_id="r1",
            role="user",
            content="new",
            metadata={"k": [1]},
            token_count=5,
            idempotency_key="k",
        )
        assert (added.seq, added.metadata, added.token_count) == (4, {"k": [1]}, 5)
        fork = await store.fork_session("s1")
        assert [m.seq for m in await store.get_chat_history(fork.id)] == [1, 2, 4]
        assert await store.delete_sessions(external_id="user-1") == 3
    connection = await asyncpg.connect(dsn)
    try:
        versions = await connection.fetch(f'SELECT version FROM "{schema}".runstore_migrations')
    finally:
        await connection.close()
    assert sorted(row[0] for row in versions) == [version for version, _ in MIGRATIONS]


async def test_one_key_stores_one_message_from_separate_stores() -> None:
    """Separate pools (as separate processes would have) racing with one idempotency key."""
    dsn, schema = server()
    stores = [await PostgresDataStorage(dsn, schema=schema).open() for _ in range(4)]
    try:
        run = await stores[0].initialize_run(workflow_name="chat", session_id="s")

        async def add(store: PostgresDataStorage) -> int | None:
            message = await store.add_chat_message(
                agent_id=run.agent_id,
                session_id="s",
                run_id=run.run_id,
                role="user",
                content="once",
                idempotency_key="retry-1",
            )
            return message.seq

        seqs = await asyncio.gather(*(add(stores[i % 4]) for i in range(20)))
        assert set(seqs) == {1}
        assert [m.content for m in await stores[1].get_chat_history("s")] == ["once"]
    finally:
        for store in stores:
            await store.close()


async def test_format_1_documents_still_import() -> None:
    """The committed format-1 export of the fixture imports into a new schema and exports as
    format 3."""
    dsn, schema = server()
    document = json.loads((FIXTURES / "runstore-v1.export.json").read_text(encoding="utf-8"))
    assert document["version"] == 1
    async with PostgresDataStorage(dsn, schema=schema) as store:
        await store.import_data(document)
        assert await store.export_data() == expected_export(imported=True)
        assert [m.seq for m in await store.get_chat_history("s1")] == [1, 2, 3]
