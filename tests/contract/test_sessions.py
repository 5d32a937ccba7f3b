"""Listing, paging, deleting and purging sessions and agents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from helpers import EMPTY_EXPORT, say, start

from runstore import DataStorage, InvalidDataError, NotFoundError


async def test_sessions_are_listed_by_latest_activity(store: DataStorage) -> None:
    a = await start(store, session_id="a")
    await start(store, session_id="b")
    await start(store, session_id="c")
    assert [s.id for s in await store.list_sessions()] == ["c", "b", "a"]
    await say(store, a, "back to a")
    assert [s.id for s in await store.list_sessions()] == ["a", "c", "b"]
    await start(store, session_id="b")
    assert [s.id for s in await store.list_sessions()] == ["b", "a", "c"]
    await store.update_run(a.run_id, output_data={"x": 1})
    assert [s.id for s in await store.list_sessions()] == ["a", "b", "c"]
    session = await store.get_session("a")
    assert session is not None and session.updated_at > session.created_at


async def test_list_sessions_filters_and_pages(store: DataStorage) -> None:
    for i in range(7):
        await start(
            store,
            "chat" if i % 2 == 0 else "other",
            session_id=f"s{i}",
            external_id="u1" if i < 4 else "u2",
        )
    newest_first = [f"s{i}" for i in reversed(range(7))]
    pages: list[list[str]] = []
    before = None
    while True:
        page = await store.list_sessions(limit=3, before=before)
        if not page:
            break
        pages.append([s.id for s in page])
        before = page[-1].id
    assert pages == [newest_first[0:3], newest_first[3:6], newest_first[6:]]
    assert [s.id for s in await store.list_sessions(workflow_name="chat")] == [
        "s6",
        "s4",
        "s2",
        "s0",
    ]
    assert [s.id for s in await store.list_sessions(external_id="u1")] == ["s3", "s2", "s1", "s0"]
    assert [
        s.id for s in await store.list_sessions(workflow_name="chat", external_id="u1", limit=1)
    ] == ["s2"]
    assert [s.id for s in await store.list_sessions(workflow_name="chat", before="s4")] == [
        "s2",
        "s0",
    ]
    assert await store.list_sessions(workflow_name="nobody") == []
    assert await store.list_sessions(before="unknown") == []
    assert await store.list_sessions(limit=0) == []
    assert len(await store.list_sessions(limit=None)) == 7
    with pytest.raises(InvalidDataError) as caught:
        await store.list_sessions(limit=-1)
    assert caught.value.field == "limit"


async def test_session_record_fields(store: DataStorage) -> None:
    run = await start(store, external_id="ext")
    session = await store.get_session(run.session_id)
    assert session is not None
    assert (session.id, session.agent_id, session.external_id) == (
        run.session_id,
        run.agent_id,
        "ext",
    )
    assert session.created_at.tzinfo is not None
    assert await store.get_session("unknown") is None


async def test_delete_session_takes_runs_states_and_messages(store: DataStorage) -> None:
    from runstore import WorkflowState

    keep = await start(store, session_id="keep")
    await say(store, keep, "kept")
    gone = await start(store, session_id="gone")
    await say(store, gone, "bye")
    await store.save_state(gone.run_id, WorkflowState("chat"))
    await store.delete_session("gone")
    assert await store.get_session("gone") is None
    assert await store.get_run(gone.run_id) is None
    assert await store.load_state(gone.run_id) is None
    assert await store.get_chat_history("gone") == []
    assert await store.list_runs("gone") == []
    assert [m.content for m in await store.get_chat_history("keep")] == ["kept"]
    with pytest.raises(NotFoundError):
        await store.delete_session("gone")
    again = await start(store, session_id="gone")  # the id can be used again, from scratch
    assert await say(store, again, "new") == 1


async def test_delete_agent_takes_its_sessions(store: DataStorage) -> None:
    a = await start(store, "a")
    await say(store, a, "x")
    b = await start(store, "b")
    await store.delete_agent("a")
    assert [agent.name for agent in await store.list_agents()] == ["b"]
    assert await store.get_session(a.session_id) is None
    assert await store.get_run(a.run_id) is None
    assert await store.get_session(b.session_id) is not None
    with pytest.raises(NotFoundError):
        await store.delete_agent("a")
    await store.delete_agent("b")
    assert await store.export_data() == EMPTY_EXPORT


async def test_purge_sessions_by_last_activity(store: DataStorage) -> None:
    old = await start(store, session_id="old")
    await start(store, session_id="middle")
    cutoff = datetime.now(UTC) + timedelta(seconds=1)
    assert await store.purge_sessions(datetime.now(UTC) - timedelta(days=1)) == 0
    assert await store.purge_sessions(cutoff) == 2
    assert await store.list_sessions() == []
    assert await store.get_run(old.run_id) is None
    assert len(await store.list_agents()) == 1  # agents stay
    await start(store, session_id="recent")
    assert await store.purge_sessions(datetime(2000, 1, 1, tzinfo=UTC)) == 0
    assert await store.get_session("recent") is not None
    with pytest.raises(InvalidDataError) as caught:
        await store.purge_sessions(datetime(2030, 1, 1))  # naive
    assert caught.value.field == "older_than"


async def test_agents_are_listed_by_name(store: DataStorage) -> None:
    for name in ["zeta", "alpha", "Mid"]:
        await start(store, name)
    assert [a.name for a in await store.list_agents()] == sorted(["zeta", "alpha", "Mid"])
