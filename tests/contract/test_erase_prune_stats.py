"""erase, prune and stats (docs/contract.md, "Erasure", "Retention", "Accounting")."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from helpers import say, start

from runstore import (
    DataStorage,
    ErasureReport,
    InvalidDataError,
    NewEntry,
    PruneReport,
    StoreStats,
    WorkflowState,
)

PAST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE = datetime(9000, 1, 1, tzinfo=UTC)


async def two_users(store: DataStorage) -> None:
    """User x: two sessions under two agents (one of them forked), an owned entry of each
    kind; user y: one session and an owned entry; plus a session and entries of nobody."""
    x1 = await start(store, "alpha", external_id="x")
    await say(store, x1, "x secret one")
    await say(store, x1, "x secret two", role="assistant")
    await store.save_state(x1.run_id, WorkflowState("w", data={"note": "x secret state"}))
    x2 = await start(store, "beta", external_id="x")
    await say(store, x2, "x secret three")
    await store.fork_session(x2.session_id)
    y = await start(store, "alpha", external_id="y")
    await say(store, y, "y words")
    nobody = await start(store, "beta")
    await say(store, nobody, "shared")
    await store.put_entries(
        "app",
        [
            NewEntry("x/1", {"text": "x secret entry"}, owner="x"),
            NewEntry("x/2", data=b"x secret bytes", owner="x", expires_at=PAST),
            NewEntry("y/1", {"text": "y entry"}, owner="y"),
            NewEntry("shared", {"text": "everyone"}),
        ],
    )
    await store.merge_entry("other", "x/state", {"text": "x secret merged"}, owner="x")


async def test_erase_removes_every_trace_of_one_user(store: DataStorage) -> None:
    await two_users(store)
    before_y = await store.stats(external_id="y")
    report = await store.erase("x")
    assert report == ErasureReport(sessions=3, runs=2, messages=4, entries=2)  # 1 expired
    assert "x secret" not in json.dumps(await store.export_data())
    assert await store.list_sessions(external_id="x") == []
    for scope in ("app", "other"):
        for entry in await store.list_entries(scope):
            assert entry.owner != "x" and "x secret" not in json.dumps(entry.value)
    assert await store.stats(external_id="x") == StoreStats()
    assert await store.stats(external_id="y") == before_y
    assert [e.key for e in await store.list_entries("app")] == ["shared", "y/1"]
    assert [a.name for a in await store.list_agents()] == ["alpha", "beta"]
    assert await store.erase("x") == ErasureReport()


async def test_erase_needs_an_external_id(store: DataStorage) -> None:
    await two_users(store)
    before = await store.export_data()
    for bad in (None, 5, "nul\x00", "x" * 257):
        with pytest.raises(InvalidDataError) as caught:
            await store.erase(bad)  # type: ignore[arg-type]
        assert caught.value.field == "external_id"
    assert await store.export_data() == before


async def test_stats_count_what_reads_return(store: DataStorage) -> None:
    assert await store.stats() == StoreStats()
    await two_users(store)
    # x: 3 sessions (one a fork with one copied message), 2 runs, 5 messages; bytes: message
    # contents (UTF-8) and entries' data; the expired entry is not counted.
    contents = ["x secret one", "x secret two", "x secret three", "x secret three"]
    x_bytes = sum(len(c.encode()) for c in contents)
    assert await store.stats(external_id="x") == StoreStats(3, 2, 4, 2, x_bytes)
    everything = await store.stats()
    assert (everything.sessions, everything.runs, everything.messages) == (5, 4, 6)
    assert everything.entries == 4  # x/1, y/1, shared, other x/state
    assert everything.bytes == x_bytes + len(b"y words") + len(b"shared")
    [alpha] = [a for a in await store.list_agents() if a.name == "alpha"]
    by_agent = await store.stats(agent_id=alpha.id)
    assert by_agent == StoreStats(2, 2, 3, 0, len("x secret onex secret twoy words"))
    both = await store.stats(external_id="y", agent_id=alpha.id)
    assert both == StoreStats(1, 1, 1, 1, len("y words"))
    await store.put_entries("app", [NewEntry("unicode", data=b"\x00" * 7, owner="y")])
    await say(store, await start(store, "alpha", external_id="y"), "é😀")
    assert (await store.stats(external_id="y")).bytes == len("y words") + 7 + 6
    assert await store.stats(agent_id="no such agent") == StoreStats()
    with pytest.raises(InvalidDataError) as caught:
        await store.stats(external_id=5)  # type: ignore[arg-type]
    assert caught.value.field == "external_id"
    with pytest.raises(InvalidDataError) as caught:
        await store.stats(agent_id="")
    assert caught.value.field == "agent_id"


async def test_prune_keep_last_keeps_the_newest_messages(store: DataStorage) -> None:
    long = await start(store, external_id="u")
    for n in range(7):
        await say(store, long, f"m{n}")
    short = await start(store)
    await say(store, short, "only")
    report = await store.prune(keep_last=3)
    assert report == PruneReport(messages=4)
    history = await store.get_chat_history(long.session_id, None)
    assert [(m.seq, m.content) for m in history] == [(5, "m4"), (6, "m5"), (7, "m6")]
    assert [m.content for m in await store.get_chat_history(short.session_id, None)] == ["only"]
    assert (await say(store, long, "next")) == 8  # seqs are never given out again
    assert await store.prune(keep_last=0) == PruneReport(messages=5)
    assert await store.get_chat_history(long.session_id, None) == []
    assert (await say(store, long, "after")) == 9
    assert (await store.stats()).messages == 1


async def test_prune_idle_sessions_and_expired_entries(store: DataStorage) -> None:
    old = await start(store, external_id="u")
    await say(store, old, "old")
    await store.save_state(old.run_id, WorkflowState("w"))
    stored = await store.get_session(old.session_id)
    assert stored is not None
    cut = stored.updated_at + timedelta(microseconds=1)  # the next activity is at cut or later
    fresh = await start(store, external_id="v")
    await say(store, fresh, "fresh")
    await store.put_entries(
        "s", [NewEntry("gone", expires_at=PAST), NewEntry("kept", expires_at=FUTURE)]
    )
    assert await store.prune(idle_before=cut, expired_entries=False) == PruneReport(1, 1, 1, 0)
    assert await store.get_session(old.session_id) is None
    assert await store.load_state(old.run_id) is None
    assert await store.get_session(fresh.session_id) is not None
    assert await store.prune() == PruneReport(entries=1)
    assert [e.key for e in await store.list_entries("s")] == ["kept"]
    assert await store.prune() == PruneReport()


async def test_prune_refuses_bad_arguments(store: DataStorage) -> None:
    run = await start(store)
    await say(store, run, "kept")
    before = await store.export_data()
    bad: list[tuple[dict[str, object], str]] = [
        ({"idle_before": datetime(2030, 1, 1)}, "idle_before"),
        ({"idle_before": "2030"}, "idle_before"),
        ({"keep_last": -1}, "keep_last"),
        ({"keep_last": True}, "keep_last"),
        ({"expired_entries": 1}, "expired_entries"),
    ]
    for kwargs, field in bad:
        with pytest.raises(InvalidDataError) as caught:
            await store.prune(**kwargs)  # type: ignore[arg-type]
        assert caught.value.field == field
    assert await store.export_data() == before
