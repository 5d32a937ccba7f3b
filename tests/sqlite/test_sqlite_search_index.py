"""Schema version 5 (the search index): a populated older file gets its messages indexed on
upgrade, and the index then follows new writes."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from runstore import SqliteDataStorage, StorageError

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


SEARCHES: list[tuple[str, dict[str, str]]] = [
    ("hello world", {}),
    ("HELLO", {"external_id": "ada"}),
    ("world", {"session_id": "s-grace"}),
    ("東京", {}),
    ("nothing here", {}),
]


@pytest.mark.parametrize("driver", ["sqlite3", "aiosqlite"])
async def test_search_works_on_a_read_only_database(tmp_path: Path, driver: str) -> None:
    """Search indexes new messages lazily, in a write transaction; on a database opened
    read-only (here a ``mode=ro`` URI; as a file SQLite cannot write) it matches the messages
    not indexed yet without indexing them, with the same results as a writable store."""
    path = tmp_path / "chat.sqlite"
    async with SqliteDataStorage(path, driver=driver) as store:
        for user in ("ada", "grace"):
            run = await store.initialize_run(
                workflow_name="chat", session_id=f"s-{user}", external_id=user
            )
            for text in ("hello world", "world peace", "東京都に行く"):
                await store.add_chat_message(
                    agent_id=run.agent_id,
                    session_id=run.session_id,
                    run_id=None,
                    role="user",
                    content=f"{user}: {text}",
                )
            if user == "ada":
                assert len(await store.search_messages("world")) == 2  # ada's are indexed
    assert _pending(path) == 3  # grace's messages wait for the next search
    shutil.copy(path, tmp_path / "copy.sqlite")
    async with SqliteDataStorage(tmp_path / "copy.sqlite", driver=driver) as store:
        expected = [await _hits(store, query, filters) for query, filters in SEARCHES]
    uri = path.as_uri() + "?mode=ro"
    async with SqliteDataStorage(uri, driver=driver) as store:
        found = [await _hits(store, query, filters) for query, filters in SEARCHES]
        with pytest.raises(StorageError, match="readonly"):
            await store.add_chat_message(
                agent_id=(await store.list_agents())[0].id,
                session_id="s-ada",
                run_id=None,
                role="user",
                content="not written",
            )
    assert found == expected
    assert found[0][:2] == [("s-grace", 1, 2), ("s-ada", 1, 2)] and found[-1] == []
    assert [len(hits) for hits in found] == [4, 1, 2, 2, 0]
    assert _pending(path) == 3  # nothing was written


async def _hits(
    store: SqliteDataStorage, query: str, filters: dict[str, str]
) -> list[tuple[str, int | None, int]]:
    return [
        (h.session.id, h.message.seq, h.score)
        for h in await store.search_messages(query, **filters)  # type: ignore[arg-type]
    ]


def _pending(path: Path) -> int:
    connection = sqlite3.connect(path)
    try:
        [(count,)] = connection.execute("SELECT count(*) FROM message_pending").fetchall()
        return int(count)
    finally:
        connection.close()
