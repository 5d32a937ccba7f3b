"""Schema version 7 (session metadata): a populated schema-6 file, written through the API of
the runstore of that schema, is upgraded in place with every row kept."""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from runstore import SqliteDataStorage
from runstore._sqlite_sql import SCHEMA_VERSION

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
from make_v6 import snapshot  # noqa: E402


def pragma(path: Path, statement: str) -> list[tuple[object, ...]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(statement).fetchall()
    finally:
        connection.close()


def expected(fixtures: Path) -> dict[str, Any]:
    """What schema 6's runstore read back from the fixture, each session now with the empty
    metadata it has had all along."""
    found: dict[str, Any] = json.loads(
        (fixtures / "runstore-v6.expected.json").read_text(encoding="utf-8")
    )
    for session in found["export"]["sessions"]:
        assert "metadata" not in session
        session["metadata"] = {}
    return found


@pytest.mark.parametrize("driver", ["sqlite3", "aiosqlite"])
async def test_a_version_6_file_is_upgraded_keeping_every_row(tmp_path: Path, driver: str) -> None:
    path = tmp_path / "v6.sqlite"
    shutil.copy(FIXTURES / "runstore-v6.sqlite", path)
    assert pragma(path, "PRAGMA user_version") == [(6,)]
    async with SqliteDataStorage(path, driver=driver) as store:
        assert await snapshot(store) == expected(FIXTURES)
        # the search index came along; the new column works
        [hit] = await store.search_messages("anonymous")
        assert hit.session.metadata == {}
        session_id = hit.session.id
        record = await store.update_session(session_id, metadata={"title": "kept"})
        assert record.metadata == {"title": "kept"}
        run = await store.initialize_run(workflow_name="chat", session_metadata={"t": 1})
        assert (await store.get_session(run.session_id)).metadata == {"t": 1}  # type: ignore[union-attr]
    assert pragma(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert pragma(path, "PRAGMA integrity_check") == [("ok",)]
    # the four sessions of the fixture, less the one given a title
    assert pragma(path, "SELECT count(*) FROM sessions WHERE metadata = '{}'") == [(3,)]
