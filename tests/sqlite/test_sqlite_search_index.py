"""Schema version 5 (the search index): a populated older file gets its messages indexed on
upgrade, and the index then follows new writes."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from runstore import SqliteDataStorage

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("fixture", ["runstore-v1.sqlite", "runstore-v2.sqlite"])
@pytest.mark.parametrize("driver", ["sqlite3", "aiosqlite"])
async def test_an_older_file_has_its_messages_indexed(
    tmp_path: Path, driver: str, fixture: str
) -> None:
    path = tmp_path / "old.sqlite"
    shutil.copy(FIXTURES / fixture, path)
    async with SqliteDataStorage(path, driver=driver) as store:
        hits = await store.search_messages("HELLO there hi session")
        assert [(h.session.id, h.message.seq, h.score) for h in hits] == [
            ("s1", 2, 2),
            ("s2", 1, 1),  # newer than s1's first message
            ("s1", 1, 1),
        ]
        if fixture == "runstore-v2.sqlite":
            drop = await store.search_messages("drop TABLE")
            assert [(h.session.id, h.message.seq, h.score) for h in drop] == [("s3", 1, 2)]
        assert [
            h.session.id for h in await store.search_messages("hello", external_id="user-1")
        ] == ["s1"]
        [agent] = [a for a in await store.list_agents() if a.name == "chat"]
        await store.add_chat_message(
            agent_id=agent.id, session_id="s2", run_id=None, role="user", content="hello again"
        )
        assert [h.message.content for h in await store.search_messages("again")] == ["hello again"]
        await store.pop_message("s2")
        assert await store.search_messages("again") == []
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        connection.close()
