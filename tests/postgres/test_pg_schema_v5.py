"""Migration 5 (entries' owner and expiry): a populated migration-4 schema, written through
the API of the runstore of that version, is migrated with every row kept."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from export_formats import as_format_3
from pg_helpers import server

from runstore import NewEntry, PostgresDataStorage
from runstore._postgres_sql import MIGRATIONS, Statements

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(Path(__file__).parents[1] / "sqlite" / "fixtures"))
from make_v4 import snapshot  # noqa: E402


async def load_version_4(dsn: str, schema: str) -> None:
    """``schema`` at migration version 4 holding the rows of fixtures/runstore-v4.sql."""
    quoted = f'"{schema}"'
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(Statements(schema).migrations_table)
        for version, migration in MIGRATIONS:
            if version <= 4:
                await connection.execute(migration.replace("{s}", quoted))
        rows = (FIXTURES / "runstore-v4.sql").read_text(encoding="utf-8")
        await connection.execute(rows.replace("{s}", quoted))
    finally:
        await connection.close()


async def test_a_version_4_schema_is_migrated_keeping_every_row() -> None:
    dsn, schema = server()
    await load_version_4(dsn, schema)
    text = (FIXTURES / "runstore-v4.expected.json").read_text(encoding="utf-8")
    expected: dict[str, Any] = json.loads(text)
    expected["export"] = as_format_3(expected["export"], expected["entries"])  # format 3 now
    async with PostgresDataStorage(dsn, schema=schema) as store:
        assert await snapshot(store) == expected
        for scope in ("app", "langgraph", "adk"):
            for entry in await store.list_entries(scope):
                assert (entry.owner, entry.expires_at) == (None, None)
        later = datetime(9000, 1, 1, tzinfo=UTC)
        await store.put_entries(
            "adk", [NewEntry("mine", {"a": 1}, owner="user-1", expires_at=later)]
        )
        entry = await store.get_entry("adk", "mine")
        assert entry is not None and (entry.owner, entry.expires_at) == ("user-1", later)
    connection = await asyncpg.connect(dsn)
    try:
        versions = await connection.fetch(f'SELECT version FROM "{schema}".runstore_migrations')
    finally:
        await connection.close()
    assert sorted(row[0] for row in versions) == [version for version, _ in MIGRATIONS]
