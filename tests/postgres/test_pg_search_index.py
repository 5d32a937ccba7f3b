"""Migration 5 (the search index): a populated older schema gets its messages indexed when it
is migrated, and the index then follows new writes."""

from __future__ import annotations

from pg_helpers import server
from test_pg_messages_v2 import load_version_1

from runstore import PostgresDataStorage


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
