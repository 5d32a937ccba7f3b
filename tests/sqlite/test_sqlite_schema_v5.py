"""Schema version 5 (entries' owner and expiry): a populated schema-4 file, written through
the API of the runstore of that schema, is upgraded in place with every row kept."""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from export_formats import as_format_3

from runstore import NewEntry, SqliteDataStorage
from runstore._sqlite_sql import SCHEMA_VERSION

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
from make_v4 import snapshot  # noqa: E402


def pragma(path: Path, statement: str) -> list[tuple[object, ...]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(statement).fetchall()
    finally:
        connection.close()


def expected() -> dict[str, Any]:
    """What schema 4's runstore read back from the fixture; its export as format 3 (entries
    included) gives the same rows."""
    found: dict[str, Any] = json.loads(
        (FIXTURES / "runstore-v4.expected.json").read_text(encoding="utf-8")
    )
    found["export"] = as_format_3(found["export"], found["entries"])
    return found


@pytest.mark.parametrize("driver", ["sqlite3", "aiosqlite"])
async def test_a_version_4_file_is_upgraded_keeping_every_row(tmp_path: Path, driver: str) -> None:
    path = tmp_path / "v4.sqlite"
    shutil.copy(FIXTURES / "runstore-v4.sqlite", path)
    assert pragma(path, "PRAGMA user_version") == [(4,)]
    async with SqliteDataStorage(path, driver=driver) as store:
        assert await snapshot(store) == expected()
        for scope in ("app", "langgraph", "adk"):
            for entry in await store.list_entries(scope):
                assert (entry.owner, entry.expires_at) == (None, None)
        # the new fields on the upgraded table
        later = datetime(9000, 1, 1, tzinfo=UTC)
        await store.put_entries(
            "adk", [NewEntry("mine", {"a": 1}, owner="user-1", expires_at=later)]
        )
        entry = await store.get_entry("adk", "mine")
        assert entry is not None and (entry.owner, entry.expires_at) == ("user-1", later)
    assert pragma(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert pragma(path, "PRAGMA integrity_check") == [("ok",)]
    indexes = {row[0] for row in pragma(path, "SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"entries_by_owner", "entries_by_expiry"} <= indexes
