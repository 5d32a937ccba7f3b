"""Schema version 3 (messages v2, forks): a populated schema-2 file is upgraded in place with
every row kept, and works with the new operations afterwards."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from export_formats import as_format_3

from runstore import DataStorage, InMemoryDataStorage, SqliteDataStorage
from runstore._sqlite_sql import SCHEMA_VERSION

FIXTURES = Path(__file__).parent / "fixtures"


def pragma(path: Path, statement: str) -> list[tuple[object, ...]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(statement).fetchall()
    finally:
        connection.close()


def expected_export(imported: bool = False) -> dict[str, Any]:
    """What schema 2's runstore exported from the fixture (format 1), as format 3."""
    document = json.loads((FIXTURES / "runstore-v2.export.json").read_text(encoding="utf-8"))
    return as_format_3(document, imported=imported)


@pytest.mark.parametrize("driver", ["sqlite3", "aiosqlite"])
async def test_a_version_2_file_is_upgraded_keeping_every_row(tmp_path: Path, driver: str) -> None:
    path = tmp_path / "v2.sqlite"
    shutil.copy(FIXTURES / "runstore-v2.sqlite", path)
    assert pragma(path, "PRAGMA user_version") == [(2,)]
    async with SqliteDataStorage(path, driver=driver) as store:
        document = await store.export_data()
        assert document == expected_export()
        assert len(document["messages"]) == 6
        sessions = await store.list_sessions(workflow_name="chat")
        assert [s.id for s in sessions] == ["s1", "s2"]
        # The new operations on the upgraded rows.
        [agent] = [a for a in await store.list_agents() if a.name == "chat"]
        popped = await store.pop_message("s1")
        assert popped is not None and (popped.seq, popped.role) == (3, "system")
        added = await store.add_chat_message(
            agent_id=agent.id,
            session_id="s1",
            run_id="r1",
            role="user",
            content="new",
            metadata={"k": 1},
            token_count=2,
            idempotency_key="k",
        )
        assert added.seq == 4  # seq 3 was given out before
        fork = await store.fork_session("s1", through_seq=2)
        history = await store.get_chat_history(fork.id)
        assert [(m.seq, m.content, m.run_id) for m in history] == [
            (1, "hello", None),
            (2, "hi there 🌍", None),
        ]
        assert await store.delete_sessions(external_id="user-1") == 3  # s1, its fork, s3
    assert pragma(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert pragma(path, "PRAGMA integrity_check") == [("ok",)]
    indexes = {row[0] for row in pragma(path, "SELECT name FROM sqlite_master WHERE type='index'")}
    assert "sessions_by_agent" not in indexes and "messages_by_key" in indexes


@pytest.mark.parametrize("driver", ["sqlite3", "aiosqlite", "memory"])
async def test_format_1_documents_still_import(tmp_path: Path, driver: str) -> None:
    """The committed format-1 export of the fixture imports into a new store (and into the
    in-memory store) and exports as format 3."""
    document = json.loads((FIXTURES / "runstore-v2.export.json").read_text(encoding="utf-8"))
    assert document["version"] == 1
    store: DataStorage = (
        InMemoryDataStorage()
        if driver == "memory"
        else SqliteDataStorage(tmp_path / "new.sqlite", driver=driver)
    )
    async with store:
        await store.import_data(document)
        assert await store.export_data() == expected_export(imported=True)
        [agent] = [a for a in await store.list_agents() if a.name == "chat"]
        added = await store.add_chat_message(
            agent_id=agent.id, session_id="s1", run_id="r1", role="user", content="new"
        )
        assert added.seq == 4
