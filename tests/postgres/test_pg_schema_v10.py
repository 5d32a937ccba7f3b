"""Migration 10 (the search index of entries): a populated migration-9 schema, written through
the API of the runstore of that version, is migrated with every row kept and its entries
indexed, and the index then follows new writes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import asyncpg
from pg_helpers import server

from runstore import NewEntry, PostgresDataStorage
from runstore._postgres_sql import MIGRATIONS, Statements

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(Path(__file__).parents[1] / "sqlite"))
from test_sqlite_schema_v9 import WORDS, brute_force, found  # noqa: E402


async def load_version_9(dsn: str, schema: str) -> None:
    """``schema`` at migration version 9 holding the rows of fixtures/runstore-v9.sql."""
    quoted = f'"{schema}"'
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(Statements(schema).migrations_table)
        for version, migration in MIGRATIONS:
            if version <= 9:
                await connection.execute(migration.replace("{s}", quoted))
        rows = (FIXTURES / "runstore-v9.sql").read_text(encoding="utf-8")
        await connection.execute(rows.replace("{s}", quoted))
    finally:
        await connection.close()


async def test_a_version_9_schema_is_migrated_and_its_entries_indexed() -> None:
    dsn, schema = server()
    await load_version_9(dsn, schema)
    text = (FIXTURES / "runstore-v9.expected.json").read_text(encoding="utf-8")
    expected: dict[str, Any] = json.loads(text)
    async with PostgresDataStorage(dsn, schema=schema) as store:
        export = await store.export_data()
        assert export == expected["export"]
        for scope in ("memories", "app", "adk", "langgraph"):
            hits = await store.search_entries(WORDS, scope=scope, limit=None)
            assert [(h.entry.key, h.score) for h in hits] == brute_force(export, scope, WORDS)
        assert await found(store, "chess") == [("ada/1", 1), ("bob/1", 1)]  # ada/1 is newer
        assert await found(store, "chess", owner="bob") == [("bob/1", 1)]
        assert await found(store, "東京 go") == [("ada/1", 1), ("ada/2", 1)]
        assert await found(store, "secret expired") == []  # stored, expired: never found
        await store.put_entries("memories", [NewEntry("ada/1", {"text": "now checkers"})])
        assert await found(store, "chess checkers") == [("ada/1", 1), ("bob/1", 1)]
        await store.erase("bob")
        assert await found(store, "chess") == []
    connection = await asyncpg.connect(dsn)
    try:
        versions = await connection.fetch(f'SELECT version FROM "{schema}".runstore_migrations')
    finally:
        await connection.close()
    assert sorted(row[0] for row in versions) == [version for version, _ in MIGRATIONS]
