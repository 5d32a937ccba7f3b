"""Schema version 8 (per-session counters for stats): a populated schema-4 file, written through
the API of the runstore of that schema, is upgraded with every row kept and every session's
counters filled in, so stats equals a recount of what reads return."""

from __future__ import annotations

import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

from runstore import ChatMsg, SqliteDataStorage
from runstore._sqlite_sql import SCHEMA_VERSION

sys.path.insert(0, str(Path(__file__).parents[1] / "contract"))
from helpers import recount

FIXTURES = Path(__file__).parent / "fixtures"
SCOPES = ("app", "langgraph", "adk")


@pytest.mark.parametrize("driver", ["sqlite3", "aiosqlite"])
async def test_a_version_4_file_gets_counters_that_match_a_recount(
    tmp_path: Path, driver: str
) -> None:
    path = tmp_path / "v4.sqlite"
    shutil.copy(FIXTURES / "runstore-v4.sqlite", path)
    async with SqliteDataStorage(path, driver=driver) as store:
        everything = await store.stats()
        assert everything.messages > 0 and everything.runs > 0 and everything.bytes > 0
        for external_id in (None, "user-1", "user-2"):
            expected = await recount(store, external_id, scopes=SCOPES)
            assert await store.stats(external_id=external_id) == expected
        [session, *_] = await store.list_sessions(external_id="user-1")
        await store.add_chat_messages(session.id, [ChatMsg("user", "after ✓")])
        await store.pop_message(session.id)
        await store.pop_message(session.id)
        assert await store.stats() == await recount(store, scopes=SCOPES)
    connection = sqlite3.connect(path)
    try:
        [(version,)] = connection.execute("PRAGMA user_version").fetchall()
    finally:
        connection.close()
    assert version == SCHEMA_VERSION
