"""add_chat_message and get_chat_history."""

from __future__ import annotations

import asyncio

import pytest
from helpers import say, start

from runstore import DataStorage, InvalidDataError, NotFoundError

HOSTILE = [
    "'; DROP TABLE chat_messages; --",
    '" OR 1=1 --',
    "שלום עולם \u202e evil",
    "emoji 🧪🚀👩‍💻",
    "tab\tnew\nline\r\n",
    "back\\slash %s %(x)s ? $1",
    "",
]


async def test_seq_starts_at_one_and_increases(store: DataStorage) -> None:
    run = await start(store)
    assert [await say(store, run, f"m{i}") for i in range(5)] == [1, 2, 3, 4, 5]
    other = await start(store)
    assert await say(store, other, "x") == 1  # seq is per session


async def test_seq_is_unique_under_gather(store: DataStorage) -> None:
    run = await start(store)
    seqs = await asyncio.gather(*(say(store, run, f"m{i}") for i in range(50)))
    assert sorted(seqs) == list(range(1, 51))
    history = await store.get_chat_history(run.session_id, limit=None)
    assert [m.seq for m in history] == list(range(1, 51))
    assert sorted(m.content or "" for m in history) == sorted(f"m{i}" for i in range(50))


async def test_returned_message_matches_history(store: DataStorage) -> None:
    run = await start(store)
    sent = await store.add_chat_message(
        agent_id=run.agent_id,
        session_id=run.session_id,
        run_id=run.run_id,
        role="assistant",
        content="hello",
    )
    [stored] = await store.get_chat_history(run.session_id)
    assert stored == sent
    assert (sent.role, sent.content, sent.seq, sent.run_id) == ("assistant", "hello", 1, run.run_id)
    assert sent.created_at is not None and sent.created_at.tzinfo is not None


async def test_history_is_the_newest_messages_oldest_first(store: DataStorage) -> None:
    run = await start(store)
    for i in range(1, 61):
        await say(store, run, f"m{i}")
    history = await store.get_chat_history(run.session_id)  # default limit 50
    assert [m.content for m in history] == [f"m{i}" for i in range(11, 61)]
    assert [m.seq for m in await store.get_chat_history(run.session_id, 3)] == [58, 59, 60]
    assert len(await store.get_chat_history(run.session_id, None)) == 60
    assert await store.get_chat_history(run.session_id, 0) == []
    assert len(await store.get_chat_history(run.session_id, 1000)) == 60


@pytest.mark.parametrize("bad", [-1, -50, 1.5, "3", True])
async def test_bad_limit_is_refused(store: DataStorage, bad: object) -> None:
    run = await start(store)
    await say(store, run, "x")
    with pytest.raises(InvalidDataError) as caught:
        await store.get_chat_history(run.session_id, bad)  # type: ignore[arg-type]
    assert caught.value.field == "limit"


async def test_history_after_pages_forward_oldest_first(store: DataStorage) -> None:
    run = await start(store)
    for i in range(1, 11):
        await say(store, run, f"m{i}")
    await store.truncate_history(run.session_id, after_seq=8)  # seqs 9, 10 are never reused
    await say(store, run, "m11")
    pages, after = [], 0
    while page := await store.get_chat_history_after(run.session_id, after_seq=after, limit=3):
        pages.append([m.seq for m in page])
        after = page[-1].seq or 0
    assert pages == [[1, 2, 3], [4, 5, 6], [7, 8, 11]]
    everything = await store.get_chat_history_after(run.session_id, limit=None)
    assert everything == await store.get_chat_history(run.session_id, None)
    assert [m.content for m in everything][:2] == ["m1", "m2"]
    assert len(await store.get_chat_history_after(run.session_id)) == 9  # default limit 50
    assert [m.seq for m in await store.get_chat_history_after(run.session_id, after_seq=7)] == [
        8,
        11,
    ]
    assert await store.get_chat_history_after(run.session_id, after_seq=11) == []
    assert await store.get_chat_history_after(run.session_id, after_seq=2**63 - 1) == []
    assert await store.get_chat_history_after(run.session_id, limit=0) == []
    assert await store.get_chat_history_after("nothing-here") == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("after_seq", -1),
        ("after_seq", "3"),
        ("after_seq", None),
        ("after_seq", 2**63),
        ("limit", -1),
        ("limit", 1.5),
        ("session_id", ""),
    ],
)
async def test_bad_history_after_arguments_are_refused(
    store: DataStorage, field: str, value: object
) -> None:
    run = await start(store)
    await say(store, run, "x")
    arguments: dict[str, object] = {"session_id": run.session_id, "after_seq": 0, "limit": 5}
    arguments[field] = value
    with pytest.raises(InvalidDataError) as caught:
        await store.get_chat_history_after(**arguments)  # type: ignore[arg-type]
    assert caught.value.field == field


async def test_max_chars_keeps_a_contiguous_newest_window(store: DataStorage) -> None:
    run = await start(store)
    for content in ["aaaa", "bb", None, "cccccc", "d"]:
        await say(store, run, content)
    window = await store.get_chat_history(run.session_id, max_chars=7)
    assert [m.content for m in window] == [None, "cccccc", "d"]  # None counts as 0 chars
    window = await store.get_chat_history(run.session_id, max_chars=9)
    assert [m.content for m in window] == ["bb", None, "cccccc", "d"]
    assert await store.get_chat_history(run.session_id, max_chars=0) == []
    everything = await store.get_chat_history(run.session_id, max_chars=10_000)
    assert len(everything) == 5
    limited = await store.get_chat_history(run.session_id, 2, max_chars=10_000)
    assert [m.content for m in limited] == ["cccccc", "d"]
    with pytest.raises(InvalidDataError) as caught:
        await store.get_chat_history(run.session_id, max_chars=-1)
    assert caught.value.field == "max_chars"


async def test_exclude_run_id_leaves_out_that_runs_messages(store: DataStorage) -> None:
    first = await start(store, session_id="s")
    await say(store, first, "q1")
    await say(store, first, "a1", role="assistant")
    second = await start(store, session_id="s")
    await say(store, second, "q2")
    history = await store.get_chat_history("s", exclude_run_id=second.run_id)
    assert [m.content for m in history] == ["q1", "a1"]
    last = await store.get_chat_history("s", 1, exclude_run_id=second.run_id)
    assert [m.content for m in last] == ["a1"]
    assert len(await store.get_chat_history("s", exclude_run_id="unknown-run")) == 3


async def test_message_without_run(store: DataStorage) -> None:
    run = await start(store)
    message = await store.add_chat_message(
        agent_id=run.agent_id, session_id=run.session_id, run_id=None, role="system", content=None
    )
    assert (message.run_id, message.content) == (None, None)
    assert await store.get_chat_history(run.session_id) == [message]


async def test_hostile_strings_round_trip(store: DataStorage) -> None:
    run = await start(store, "名前 'quoted'; --", external_id="ext \"'; --")
    for text in HOSTILE:
        await say(store, run, text, role="user 'role'")
    history = await store.get_chat_history(run.session_id, None)
    assert [m.content for m in history] == HOSTILE
    assert {m.role for m in history} == {"user 'role'"}
    [agent] = await store.list_agents()
    assert agent.name == "名前 'quoted'; --"
    [session] = await store.list_sessions(external_id="ext \"'; --")
    assert session.id == run.session_id


async def test_unknown_or_mismatched_ids_are_refused(store: DataStorage) -> None:
    run = await start(store)
    other = await start(store, "other")
    before = await store.export_data()

    async def add(**changes: object) -> None:
        fields: dict[str, object] = dict(
            agent_id=run.agent_id,
            session_id=run.session_id,
            run_id=run.run_id,
            role="user",
            content="x",
        )
        fields.update(changes)
        await store.add_chat_message(**fields)  # type: ignore[arg-type]

    with pytest.raises(NotFoundError):
        await add(session_id="no-such-session")
    with pytest.raises(InvalidDataError) as caught:
        await add(agent_id=other.agent_id)
    assert caught.value.field == "agent_id"
    with pytest.raises(NotFoundError):
        await add(run_id="no-such-run")
    with pytest.raises(InvalidDataError) as caught:
        await add(run_id=other.run_id)
    assert caught.value.field == "run_id"
    for field, value in [
        ("role", ""),
        ("role", None),
        ("content", 5),
        ("content", "nul\x00"),
        ("content", "lone \ud800"),
        ("session_id", ""),
        ("agent_id", 3),
    ]:
        with pytest.raises(InvalidDataError) as caught:
            await add(**{field: value})
        assert caught.value.field == field
    assert await store.export_data() == before


async def test_history_of_unknown_session_is_empty(store: DataStorage) -> None:
    assert await store.get_chat_history("nothing-here") == []
    assert await store.list_sessions() == []
