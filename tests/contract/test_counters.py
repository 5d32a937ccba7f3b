"""stats never drifts from what reads return (docs/contract.md, "Accounting"): after every kind
of write, the counts and bytes of ``stats`` equal a recount of the records read back (SQL
backends keep per-session counters that every write path must maintain)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from helpers import NewStore, recount, say, start

from runstore import ChatMsg, DataStorage, InvalidDataError, NotFoundError, StoreStats


async def agree(store: DataStorage, step: str) -> None:
    """stats of the store, of each user, of each agent and of each pair equal a recount."""
    agents = {s.agent_id for s in await store.list_sessions(limit=None)} | {"no agent"}
    for external_id in (None, "u1", "u2", "nobody"):
        for agent_id in (None, *sorted(agents)):
            expected = await recount(store, external_id, agent_id)
            got = await store.stats(external_id=external_id, agent_id=agent_id)
            assert got == expected, (step, external_id, agent_id)


async def test_stats_equal_a_recount_after_every_kind_of_write(store: DataStorage) -> None:
    await agree(store, "empty")
    a = await start(store, "alpha", external_id="u1")
    b = await start(store, "beta", external_id="u2")
    await start(store, "alpha", session_id=a.session_id)  # a second run of the session
    await agree(store, "initialize_run")
    await say(store, a, "plain")
    await say(store, a, "héllo wörld ✓ 😀", role="assistant")  # multi-byte UTF-8
    await say(store, a, None)
    await say(store, b, "b one")
    await agree(store, "add_chat_message")
    for _ in range(2):  # the repeat stores nothing
        await store.add_chat_message(
            agent_id=a.agent_id,
            session_id=a.session_id,
            run_id=None,
            role="user",
            content="keyed é",
            idempotency_key="k1",
        )
    await agree(store, "keyed add and its repeat")
    with pytest.raises(InvalidDataError):  # the session belongs to another agent
        await store.add_chat_message(
            agent_id=b.agent_id, session_id=a.session_id, run_id=None, role="user", content="x"
        )
    await agree(store, "refused add")
    await store.add_chat_messages(
        a.session_id, [ChatMsg("user", "many ü"), ChatMsg("assistant", None), ChatMsg("user", "3")]
    )
    await agree(store, "add_chat_messages")
    newest = (await store.get_chat_history(a.session_id, 1))[0].seq
    assert newest is not None
    await store.replace_history(
        a.session_id, after_seq=newest - 2, messages=[ChatMsg("assistant", "replaced ✓")]
    )
    await agree(store, "replace_history")
    await store.replace_history(
        a.session_id, after_seq=newest, messages=[ChatMsg("user", "new")], drop_through_seq=1
    )
    await agree(store, "replace_history with drop_through_seq")
    assert (
        await store.replace_history(a.session_id, after_seq=0, messages=[], if_newest_seq=999)
        is None
    )
    await agree(store, "replace_history refused")
    await store.pop_message(a.session_id)
    await agree(store, "pop_message")
    await store.truncate_history(a.session_id, after_seq=newest - 1)
    await agree(store, "truncate_history")
    await store.fork_session(a.session_id)
    await store.fork_session(a.session_id, through_seq=3, external_id="u2")
    await store.fork_session(b.session_id, new_session_id="empty-fork", through_seq=0)
    await agree(store, "fork_session")
    for n in range(5):
        await say(store, b, f"b ü {n}")
    await store.prune(keep_last=2)
    await agree(store, "prune(keep_last=2)")
    await store.prune(keep_last=0)
    await agree(store, "prune(keep_last=0)")
    await say(store, b, "after prune")
    await agree(store, "add after prune")
    await store.delete_session("empty-fork")
    await agree(store, "delete_session")
    await store.erase("u2")
    await agree(store, "erase")
    c = await start(store, "gamma", external_id="u1")
    await say(store, c, "gamma ✓")
    await store.delete_agent("gamma")
    await agree(store, "delete_agent")
    await store.delete_sessions(external_id="u1")
    await agree(store, "delete_sessions")
    d = await start(store, "alpha")
    await say(store, d, "old")
    await store.prune(idle_before=datetime.now(UTC) + timedelta(days=1))
    await agree(store, "prune(idle_before=...)")
    e = await start(store, "alpha")
    await say(store, e, "older")
    await store.purge_sessions(datetime.now(UTC) + timedelta(days=1))
    await agree(store, "purge_sessions")
    assert await store.stats() == StoreStats()


async def filled(store: DataStorage) -> None:
    a = await start(store, "alpha", external_id="u1")
    await start(store, "alpha", session_id=a.session_id)
    for n in range(7):
        await say(store, a, f"message {n} ✓")
    await say(store, a, None)
    b = await start(store, "beta", external_id="u2")
    await say(store, b, "beta é")
    await store.fork_session(a.session_id, through_seq=4)


async def test_stats_equal_a_recount_after_an_import(
    store: DataStorage, new_store: NewStore
) -> None:
    await filled(store)
    document = await store.export_data()
    copy = await new_store()
    await copy.import_data(document)
    await agree(copy, "import_data")
    assert await copy.stats() == await store.stats()
    streamed = await new_store()
    await streamed.import_records(store.export_records())
    await agree(streamed, "import_records")
    assert await streamed.stats() == await store.stats()
    one = await new_store()
    [session] = await store.list_sessions(external_id="u2")
    await one.import_data(await store.export_data(session.id))
    await agree(one, "import of one session")


async def test_stats_equal_a_recount_after_concurrent_writes(store: DataStorage) -> None:
    a = await start(store, "alpha", external_id="u1")
    b = await start(store, "alpha", external_id="u2")

    async def writer(run_session: str, agent_id: str, n: int) -> None:
        for i in range(n):
            await store.add_chat_message(
                agent_id=agent_id, session_id=run_session, run_id=None, role="user",
                content=f"w{i} ✓" * (i % 3),
            )  # fmt: skip

    async def popper(session_id: str) -> None:
        for _ in range(5):
            await store.pop_message(session_id)

    jobs: list[Callable[[], Awaitable[None]]] = [
        lambda: writer(a.session_id, a.agent_id, 20),
        lambda: writer(a.session_id, a.agent_id, 20),
        lambda: writer(b.session_id, b.agent_id, 20),
        lambda: popper(a.session_id),
    ]
    await asyncio.gather(*(job() for job in jobs))
    await agree(store, "concurrent adds and pops")
    stats = await store.stats()
    assert stats.messages == 55


async def test_stats_of_a_missing_session_write_stay_unchanged(store: DataStorage) -> None:
    a = await start(store, "alpha", external_id="u1")
    await say(store, a, "kept")
    before = await store.stats()
    for call in (
        lambda: store.pop_message("no such session"),
        lambda: store.truncate_history("no such session", after_seq=0),
        lambda: store.fork_session("no such session"),
    ):
        with pytest.raises(NotFoundError):
            await call()
    assert await store.stats() == before
    await agree(store, "refused writes")
