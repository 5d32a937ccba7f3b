"""Migration 7 (session metadata): a populated migration-6 schema, written through the API of
the runstore of that version, is migrated with every row kept."""

from __future__ import annotations

import sys
from pathlib import Path

import asyncpg
from pg_helpers import server

from runstore import PostgresDataStorage
from runstore._postgres_sql import MIGRATIONS, Statements

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(Path(__file__).parents[1] / "sqlite"))
sys.path.insert(0, str(Path(__file__).parents[1] / "sqlite" / "fixtures"))
from make_v6 import snapshot  # noqa: E402
from test_sqlite_schema_v7 import expected  # noqa: E402


async def load_version_6(dsn: str, schema: str) -> None:
    """``schema`` at migration version 6 holding the rows of fixtures/runstore-v6.sql."""
    quoted = f'"{schema}"'
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(Statements(schema).migrations_table)
        for version, migration in MIGRATIONS:
            if version <= 6:
                await connection.execute(migration.replace("{s}", quoted))
        rows = (FIXTURES / "runstore-v6.sql").read_text(encoding="utf-8")
        await connection.execute(rows.replace("{s}", quoted))
    finally:
        await connection.close()


async def test_a_version_6_schema_is_migrated_keeping_every_row() -> None:
    dsn, schema = server()
    await load_version_6(dsn, schema)
    async with PostgresDataStorage(dsn, schema=schema) as store:
        assert await snapshot(store) == expected(FIXTURES)
        [hit] = await store.search_messages("anonymous")  # the search index came along
        assert hit.session.metadata == {}
        record = await store.update_session(hit.session.id, metadata={"title": "kept"})
        assert record.metadata == {"title": "kept"}
        run = await store.initialize_run(workflow_name="chat", session_metadata={"t": 1})
        assert (await store.get_session(run.session_id)).metadata == {"t": 1}  # type: ignore[union-attr]
        # without metadata, the function of v1 (as a process of an older runstore calls it)
        again = await store.initialize_run(workflow_name="chat", session_id=run.session_id)
        assert again.session_id == run.session_id
        assert (await store.get_session(run.session_id)).metadata == {"t": 1}  # type: ignore[union-attr]
    connection = await asyncpg.connect(dsn)
    try:
        versions = await connection.fetch(f'SELECT version FROM "{schema}".runstore_migrations')
        await connection.fetchrow(
            f'SELECT * FROM "{schema}".runstore_initialize_run('
            "'chat', NULL, NULL, NULL, NULL, $1, NULL, NULL, now(), 'a', 'b', 'r-old')",
            run.session_id,
        )
    finally:
        await connection.close()
    assert sorted(row[0] for row in versions) == [version for version, _ in MIGRATIONS]
