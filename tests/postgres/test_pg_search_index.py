"""Migration 5 (the search index): a populated older schema gets its messages indexed when it
is migrated, and the index then follows new writes."""

from __future__ import annotations

import asyncpg
from pg_helpers import server
from test_pg_messages_v2 import load_version_1

from runstore import ChatMsg, NewEntry, PostgresDataStorage


async def test_an_older_schema_has_its_messages_indexed() -> None:
    dsn, schema = server()
    await load_version_1(dsn, schema)
    async with PostgresDataStorage(dsn, schema=schema) as store:
        hits = await store.search_messages("HELLO there hi session")
        assert [(h.session.id, h.message.seq, h.score) for h in hits] == [
            ("s1", 2, 2),
            ("s2", 1, 1),  # newer than s1's first message
            ("s1", 1, 1),
        ]
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


async def _pending_pages(dsn: str, index: str) -> int:
    """Pages of a GIN index's pending list (new terms, which every search reads in full)."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        return int(await connection.fetchval("SELECT pending_pages FROM pgstatginindex($1)", index))
    finally:
        await connection.close()


def _words(tag: str) -> str:
    return " ".join(f"{tag}y{j}" for j in range(20))


async def test_searches_read_a_short_pending_list_after_many_writes() -> None:
    """Migration 11: new terms wait in a pending list of at most 256 kB (32 pages), not
    PostgreSQL's default 4 MB, so a search right after many writes stays an index lookup."""
    dsn, schema = server()
    async with PostgresDataStorage(dsn, schema=schema) as store:
        run = await store.initialize_run(workflow_name="chat", session_id="s")
        for batch in range(6):
            entries = [
                NewEntry(f"k{batch}-{i}", {"text": _words(f"e{batch}x{i}")}) for i in range(500)
            ]
            await store.put_entries("memories", entries)
            messages = [ChatMsg("user", _words(f"m{batch}x{i}")) for i in range(500)]
            await store.add_chat_messages(run.session_id, messages)
        hits = await store.search_entries("e5x499y19", scope="memories")
        assert [hit.entry.key for hit in hits] == ["k5-499"]
        [hit] = await store.search_messages("m5x499y19")
        assert hit.message.seq == 3000
    pending = {
        index: await _pending_pages(dsn, f'"{schema}".{index}')
        for index in ("entries_by_term", "messages_by_term")
    }
    assert all(pages <= 32 for pages in pending.values()), pending
