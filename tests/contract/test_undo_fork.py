"""pop_message, truncate_history, fork_session and delete_sessions (erasure)."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import say, start

from runstore import ChatMsg, DataStorage, InvalidDataError, NotFoundError, RunHandle, WorkflowState


async def add(store: DataStorage, run: RunHandle, content: str, **more: Any) -> ChatMsg:
    return await store.add_chat_message(
        agent_id=run.agent_id,
        session_id=run.session_id,
        run_id=run.run_id,
        role=more.pop("role", "user"),
        content=content,
        **more,
    )


async def contents(store: DataStorage, session_id: str) -> list[str | None]:
    return [m.content for m in await store.get_chat_history(session_id, None)]


async def test_pop_removes_and_returns_the_newest_message(store: DataStorage) -> None:
    run = await start(store)
    await say(store, run, "q")
    answer = await add(store, run, "a", role="assistant", metadata={"k": [1]}, token_count=4)
    assert await store.pop_message(run.session_id) == answer
    assert await contents(store, run.session_id) == ["q"]
    assert (await store.pop_message(run.session_id) or ChatMsg("", "")).content == "q"
    assert await store.pop_message(run.session_id) is None
    assert await contents(store, run.session_id) == []


async def test_a_seq_is_never_given_out_twice(store: DataStorage) -> None:
    run = await start(store)
    for i in range(5):
        await say(store, run, f"m{i}")
    await store.pop_message(run.session_id)
    assert await say(store, run, "after pop") == 6
    assert await store.truncate_history(run.session_id, after_seq=2) == 3  # 3, 4, 6
    assert await say(store, run, "after truncate") == 7
    assert await store.truncate_history(run.session_id, after_seq=0) == 3
    assert await say(store, run, "after clearing") == 8
    history = await store.get_chat_history(run.session_id)
    assert [(m.seq, m.content) for m in history] == [(8, "after clearing")]


async def test_truncate_history_removes_the_messages_after_a_seq(store: DataStorage) -> None:
    run = await start(store)
    for i in range(1, 6):
        await say(store, run, f"m{i}")
    assert await store.truncate_history(run.session_id, after_seq=5) == 0
    assert await store.truncate_history(run.session_id, after_seq=99) == 0
    assert await store.truncate_history(run.session_id, after_seq=3) == 2
    assert await contents(store, run.session_id) == ["m1", "m2", "m3"]
    for bad in (-1, None, 1.0, "2", True):
        with pytest.raises(InvalidDataError) as caught:
            await store.truncate_history(run.session_id, after_seq=bad)  # type: ignore[arg-type]
        assert caught.value.field == "after_seq"
    assert await contents(store, run.session_id) == ["m1", "m2", "m3"]


async def test_undo_of_an_unknown_session_raises(store: DataStorage) -> None:
    with pytest.raises(NotFoundError):
        await store.pop_message("no-such-session")
    with pytest.raises(NotFoundError):
        await store.truncate_history("no-such-session", after_seq=0)
    assert await store.list_sessions() == []


async def test_undo_is_activity_only_when_it_removes_something(store: DataStorage) -> None:
    first = await start(store)
    await say(store, first, "x")
    second = await start(store)
    assert [s.id for s in await store.list_sessions()] == [second.session_id, first.session_id]
    await store.pop_message(first.session_id)
    assert [s.id for s in await store.list_sessions()] == [first.session_id, second.session_id]
    before = await store.get_session(second.session_id)
    assert await store.pop_message(second.session_id) is None
    assert await store.truncate_history(second.session_id, after_seq=0) == 0
    assert await store.get_session(second.session_id) == before


async def test_an_undone_idempotency_key_appends_again(store: DataStorage) -> None:
    run = await start(store)
    first = await add(store, run, "q", idempotency_key="k")
    await store.pop_message(run.session_id)
    again = await add(store, run, "different now", idempotency_key="k")
    assert (first.seq, again.seq) == (1, 2)
    assert await add(store, run, "different now", idempotency_key="k") == again


async def test_fork_copies_the_messages_up_to_a_seq(store: DataStorage) -> None:
    run = await start(store, external_id="user-1")
    sent = [
        await add(store, run, "q1", metadata={"t": "msg"}, token_count=2, idempotency_key="k1"),
        await add(store, run, "a1", role="assistant", token_count=5),
        await add(store, run, "q2"),
    ]
    parent_before = await store.export_data(run.session_id)
    fork = await store.fork_session(run.session_id, through_seq=2)
    assert fork.id != run.session_id and fork.agent_id == run.agent_id
    assert (fork.external_id, fork.parent_session_id, fork.forked_from_seq) == (
        "user-1",
        run.session_id,
        2,
    )
    assert fork.created_at == fork.updated_at
    copies = await store.get_chat_history(fork.id)
    assert copies == [m._replace(run_id=None) for m in sent[:2]]
    assert await store.export_data(run.session_id) == parent_before  # the parent is untouched
    assert await store.list_runs(fork.id) == []
    assert [s.id for s in await store.list_sessions()] == [fork.id, run.session_id]
    assert await store.get_session(fork.id) == fork
    parent = await store.get_session(run.session_id)
    assert parent is not None
    assert (parent.parent_session_id, parent.forked_from_seq) == (None, None)


async def test_a_fork_lives_on_its_own(store: DataStorage) -> None:
    run = await start(store)
    for i in range(1, 5):
        await say(store, run, f"m{i}")
    await store.pop_message(run.session_id)  # the parent has used seq 4
    fork = await store.fork_session(run.session_id, new_session_id="my-fork")
    assert (fork.id, fork.forked_from_seq) == ("my-fork", 3)
    on_fork = await start(store, session_id="my-fork")
    assert await say(store, on_fork, "fork 4") == 4  # never given out in the fork
    assert await say(store, run, "parent 5") == 5
    await store.pop_message("my-fork")
    await store.pop_message("my-fork")
    assert await contents(store, "my-fork") == ["m1", "m2"]
    assert await contents(store, run.session_id) == ["m1", "m2", "m3", "parent 5"]
    await store.delete_session(run.session_id)
    kept = await store.get_session("my-fork")
    assert kept is not None and kept.parent_session_id == run.session_id
    grandchild = await store.fork_session("my-fork", through_seq=0, external_id="other")
    assert (grandchild.forked_from_seq, grandchild.external_id) == (0, "other")
    assert await contents(store, grandchild.id) == []
    assert await say(store, await start(store, session_id=grandchild.id), "first") == 1


async def test_fork_keeps_idempotency_keys(store: DataStorage) -> None:
    run = await start(store)
    first = await add(store, run, "q", idempotency_key="k")
    fork = await store.fork_session(run.session_id)
    on_fork = await start(store, session_id=fork.id)
    repeat = await store.add_chat_message(
        agent_id=run.agent_id,
        session_id=fork.id,
        run_id=None,
        role="user",
        content="q",
        idempotency_key="k",
    )
    assert repeat == first._replace(run_id=None)
    assert await say(store, on_fork, "next") == 2


async def test_fork_refusals_change_nothing(store: DataStorage) -> None:
    run = await start(store, session_id="taken")
    await say(store, run, "x")
    before = await store.export_data()
    with pytest.raises(NotFoundError):
        await store.fork_session("no-such-session")
    with pytest.raises(InvalidDataError) as caught:
        await store.fork_session("taken", new_session_id="taken")
    assert caught.value.field == "new_session_id"
    for field, value in [
        ("through_seq", -1),
        ("through_seq", "1"),
        ("new_session_id", ""),
        ("external_id", 5),
    ]:
        with pytest.raises(InvalidDataError) as caught:
            await store.fork_session("taken", **{field: value})
        assert caught.value.field == field
    assert await store.export_data() == before


async def test_delete_sessions_erases_one_end_user_everywhere(store: DataStorage) -> None:
    a = await start(store, "alpha", external_id="user-1")
    b = await start(store, "beta", external_id="user-1")
    again = await start(store, "alpha", external_id="user-1", session_id="pinned")
    keep = await start(store, "alpha", external_id="user-2")
    unkeyed = await start(store, "beta")
    for run in (a, b, again, keep, unkeyed):
        await say(store, run, "hello")
        await store.save_state(run.run_id, WorkflowState("w"))
    fork = await store.fork_session(keep.session_id, external_id="user-1")
    assert await store.delete_sessions(external_id="user-1") == 4
    for run in (a, b, again):
        assert await store.get_session(run.session_id) is None
        assert await store.get_run(run.run_id) is None
        assert await store.load_state(run.run_id) is None
        assert await store.get_chat_history(run.session_id) == []
    assert await store.get_session(fork.id) is None
    remaining = {s.id for s in await store.list_sessions()}
    assert remaining == {keep.session_id, unkeyed.session_id}
    assert [agent.name for agent in await store.list_agents()] == ["alpha", "beta"]
    assert await store.delete_sessions(external_id="user-1") == 0
    assert await store.load_state(keep.run_id) == WorkflowState("w")


async def test_delete_sessions_needs_an_external_id(store: DataStorage) -> None:
    await start(store, external_id="u")
    before = await store.export_data()
    for bad in (None, 5, "nul\x00"):
        with pytest.raises(InvalidDataError) as caught:
            await store.delete_sessions(external_id=bad)  # type: ignore[arg-type]
        assert caught.value.field == "external_id"
    assert await store.export_data() == before
