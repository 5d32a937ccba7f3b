"""What is left of an end user after ``erase``: every text the store holds, read the way the
data lies (SQLite: every column of every table of the file; PostgreSQL: every row of every
table of every schema, as text), and through the API (export, every entry of the scopes)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from runstore import DataStorage, SqliteDataStorage


def _sqlite_texts(path: str) -> list[str]:
    db = sqlite3.connect(path)
    try:
        tables = [
            row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        found = []
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):  # names from the file itself
                for value in row:
                    if isinstance(value, bytes):
                        found.append(value.decode("utf-8", "replace"))
                    elif value is not None:
                        found.append(str(value))
        return found
    finally:
        db.close()


async def _postgres_texts() -> list[str]:
    import asyncpg
    from pg_server import shared_dsn

    conn = await asyncpg.connect(shared_dsn())
    try:
        tables = await conn.fetch(
            """SELECT table_schema, table_name FROM information_schema.tables
            WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
              AND table_type = 'BASE TABLE'"""
        )
        found = []
        for schema, table in tables:
            quoted = f'"{schema}"."{table}"'  # names from the catalog itself
            for row in await conn.fetch(f"SELECT t::text AS r FROM {quoted} t"):
                found.append(row["r"])
            byteas = await conn.fetch(
                """SELECT column_name FROM information_schema.columns
                WHERE table_schema = $1 AND table_name = $2 AND data_type = 'bytea'""",
                schema,
                table,
            )
            for (column,) in byteas:
                for row in await conn.fetch(f'SELECT "{column}" AS b FROM {quoted}'):
                    if row["b"] is not None:
                        found.append(bytes(row["b"]).decode("utf-8", "replace"))
        return found
    finally:
        await conn.close()


async def stored_texts(store: DataStorage, scopes: list[str]) -> str:
    """Everything the store holds, as one text to search."""
    parts: list[Any] = [json.dumps(await store.export_data())]
    for scope in scopes:
        for entry in await store.list_entries(scope):
            parts.append(json.dumps(entry.value))
            if entry.data is not None:
                parts.append(entry.data.decode("utf-8", "replace"))
    if isinstance(store, SqliteDataStorage):
        parts += _sqlite_texts(store.path)
    elif type(store).__name__ == "PostgresDataStorage":
        parts += await _postgres_texts()
    return "\n".join(parts)
