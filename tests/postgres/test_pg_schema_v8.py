"""Migration 8 (per-session counters for stats): a populated migration-4 schema, written through
the API of the runstore of that version, is migrated with every session's counters filled in,
so stats equals a recount of what reads return."""

from __future__ import annotations

import sys
from pathlib import Path

from pg_helpers import server
from test_pg_schema_v5 import load_version_4

from runstore import ChatMsg, PostgresDataStorage

sys.path.insert(0, str(Path(__file__).parents[1] / "contract"))
from helpers import recount

SCOPES = ("app", "langgraph", "adk")


async def test_a_version_4_schema_gets_counters_that_match_a_recount() -> None:
    dsn, schema = server()
    await load_version_4(dsn, schema)
    async with PostgresDataStorage(dsn, schema=schema) as store:
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
