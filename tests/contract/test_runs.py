"""initialize_run, update_run, get_run and list_runs."""

from __future__ import annotations

import asyncio
from datetime import UTC

import pytest
from helpers import EMPTY_EXPORT, start

from runstore import DataStorage, InvalidDataError, NotFoundError


async def test_first_run_creates_agent_session_and_run(store: DataStorage) -> None:
    run = await store.initialize_run(
        workflow_name="chat",
        description="d",
        input_schema={"type": "object"},
        output_schema={"o": 1},
        workflow={"nodes": ["a"]},
        input_data={"q": "hi"},
    )
    [agent] = await store.list_agents()
    assert (agent.id, agent.name, agent.description) == (run.agent_id, "chat", "d")
    assert (agent.input_schema, agent.output_schema, agent.workflow) == (
        {"type": "object"},
        {"o": 1},
        {"nodes": ["a"]},
    )
    record = await store.get_run(run.run_id)
    assert record is not None
    assert (record.session_id, record.agent_id, record.input_data) == (
        run.session_id,
        run.agent_id,
        {"q": "hi"},
    )
    assert (record.output_data, record.context, record.duration_seconds) == (None, None, None)
    assert record.created_at.tzinfo is not None and record.created_at.utcoffset() == UTC.utcoffset(
        None
    )


async def test_agent_is_found_by_name_and_metadata_updates(store: DataStorage) -> None:
    first = await start(store, description="old", workflow={"v": 1})
    second = await start(store, description=None, workflow={"v": 2})
    assert first.agent_id == second.agent_id
    [agent] = await store.list_agents()
    assert (agent.description, agent.workflow) == ("old", {"v": 2})
    assert agent.updated_at > agent.created_at


async def test_twenty_racing_calls_make_one_agent(store: DataStorage) -> None:
    runs = await asyncio.gather(*(start(store, "race") for _ in range(20)))
    assert len({run.agent_id for run in runs}) == 1
    assert len({run.run_id for run in runs}) == 20
    assert [a.name for a in await store.list_agents()] == ["race"]


async def test_session_rules(store: DataStorage) -> None:
    fresh = await start(store)
    again = await start(store, session_id=fresh.session_id)
    assert again.session_id == fresh.session_id and again.run_id != fresh.run_id
    pinned = await start(store, session_id="my-own-id")
    assert pinned.session_id == "my-own-id"
    assert (await store.get_session("my-own-id")) is not None
    other = await start(store)
    assert other.session_id not in (fresh.session_id, pinned.session_id)


async def test_external_id_finds_the_most_recent_session(store: DataStorage) -> None:
    a = await start(store, external_id="user-1")
    b = await start(store, external_id="user-1")
    assert a.session_id == b.session_id
    other_agent = await start(store, "other", external_id="user-1")
    assert other_agent.session_id != a.session_id
    await start(store, session_id="newer", external_id="user-1")
    latest = await start(store, external_id="user-1")
    assert latest.session_id == "newer"
    runs = await store.list_runs(a.session_id)
    assert [r.id for r in runs] == [a.run_id, b.run_id]


async def test_session_of_another_agent_is_refused(store: DataStorage) -> None:
    run = await start(store, "a")
    before = await store.export_data()
    with pytest.raises(InvalidDataError) as caught:
        await start(store, "b", session_id=run.session_id)
    assert caught.value.field == "session_id"
    assert await store.export_data() == before  # not even agent "b" was created


async def test_external_id_cannot_change_for_a_known_session(store: DataStorage) -> None:
    run = await start(store, external_id="x")
    with pytest.raises(InvalidDataError) as caught:
        await start(store, session_id=run.session_id, external_id="y")
    assert caught.value.field == "external_id"


async def test_update_run_sets_only_given_fields(store: DataStorage) -> None:
    run = await start(store, input_data={"q": 1})
    await store.update_run(run.run_id, output_data={"a": 1})
    await store.update_run(run.run_id, context={"c": True}, duration_seconds=1.5)
    await store.update_run(run.run_id)
    record = await store.get_run(run.run_id)
    assert record is not None
    assert (record.input_data, record.output_data, record.context, record.duration_seconds) == (
        {"q": 1},
        {"a": 1},
        {"c": True},
        1.5,
    )
    assert record.updated_at > record.created_at


async def test_update_run_rejects_bad_duration(store: DataStorage) -> None:
    run = await start(store)
    for bad in (-1, float("nan"), float("inf"), "3", True):
        with pytest.raises(InvalidDataError) as caught:
            await store.update_run(run.run_id, duration_seconds=bad)  # type: ignore[arg-type]
        assert caught.value.field == "duration_seconds"


async def test_list_runs_oldest_first(store: DataStorage) -> None:
    first = await start(store, session_id="s")
    ids = [first.run_id] + [(await start(store, session_id="s")).run_id for _ in range(4)]
    assert [r.id for r in await store.list_runs("s")] == ids


async def test_unknown_run_writes_raise_not_found(store: DataStorage) -> None:
    with pytest.raises(NotFoundError):
        await store.update_run("nope", output_data={"a": 1})
    with pytest.raises(NotFoundError):
        await store.update_run("nope")
    assert await store.get_run("nope") is None
    assert await store.list_runs("nope") == []
    assert await store.export_data() == EMPTY_EXPORT


async def test_same_metadata_in_another_key_order_changes_nothing(store: DataStorage) -> None:
    await start(store, workflow={"a": 1, "b": [0.0, 2]}, input_schema={"x": 1})
    [before] = await store.list_agents()
    await start(store, workflow={"b": [0.0, 2], "a": 1}, input_schema={"x": 1})
    [after] = await store.list_agents()
    assert after.updated_at == before.updated_at


async def test_metadata_that_equals_only_in_python_replaces_the_stored_one(
    store: DataStorage,
) -> None:
    # False == 0 == 0.0 in Python, but they are different JSON: each one is kept as given.
    for value in [False, 0, 0.0, True, 1]:
        await start(store, input_schema={"x": value})
        [agent] = await store.list_agents()
        assert agent.input_schema is not None
        assert type(agent.input_schema["x"]) is type(value), (agent.input_schema, value)
