"""add_chat_messages and replace_history (docs/contract.md, "Batch append and replace")."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from helpers import NewStore, say, snapshot, start

from runstore import ChatMsg, DataStorage, InvalidDataError, NotFoundError


def _texts(messages: list[ChatMsg]) -> list[tuple[int | None, str | None]]:
    return [(m.seq, m.content) for m in messages]


async def test_add_chat_messages_appends_all_with_the_next_seqs(store: DataStorage) -> None:
    run = await start(store)
    await say(store, run, "first")
    stored = await store.add_chat_messages(
        run.session_id,
        [
            ChatMsg("user", "a", metadata={"type": "message", "n": [1, 2]}, token_count=3),
            ChatMsg("tool", None, run_id=run.run_id, metadata={"call": "x"}),
            ChatMsg("assistant", "c"),
        ],
    )
    assert [m.seq for m in stored] == [2, 3, 4]
    assert stored[0].metadata == {"type": "message", "n": [1, 2]}
    assert stored[0].token_count == 3
    assert stored[1].run_id == run.run_id
    history = await store.get_chat_history(run.session_id, limit=None)
    assert history[1:] == stored
    assert await store.add_chat_messages(run.session_id, []) == []


async def test_add_chat_messages_is_all_or_nothing(new_store: NewStore) -> None:
    store = await new_store()
    run = await start(store)
    other = await start(store, "other")
    await say(store, run, "kept")
    before = await snapshot(store)
    good = ChatMsg("user", "x")
    cases: list[tuple[list[object], type[Exception], str | None]] = [
        ([good, ChatMsg("", "y")], InvalidDataError, "messages[1].role"),
        ([good, ChatMsg("user", "y", metadata={"bad": float("nan")})], InvalidDataError, None),
        ([good, ChatMsg("user", "y", token_count=-1)], InvalidDataError, "messages[1].token_count"),
        ([good, ChatMsg("user", "y", seq=7)], InvalidDataError, "messages[1].seq"),
        (
            [ChatMsg("user", "y", created_at=datetime.now(UTC))],
            InvalidDataError,
            "messages[0].created_at",
        ),
        ([good, ("user", "y")], InvalidDataError, "messages[1]"),
        ([good, ChatMsg("user", "y", run_id=other.run_id)], InvalidDataError, "run_id"),
        ([good, ChatMsg("user", "y", run_id="no-such-run")], NotFoundError, None),
        ([ChatMsg("user", "y", run_id=other.run_id)], InvalidDataError, "run_id"),
        ([ChatMsg("user", "y", run_id="no-such-run")], NotFoundError, None),
    ]
    for messages, error, field in cases:
        with pytest.raises(error) as raised:
            await store.add_chat_messages(run.session_id, messages)  # type: ignore[arg-type]
        if field is not None:
            assert raised.value.field == field  # type: ignore[attr-defined]
        assert await snapshot(store) == before
    with pytest.raises(NotFoundError):
        await store.add_chat_messages("no-such-session", [good])
    with pytest.raises(InvalidDataError) as raised:
        await store.add_chat_messages(run.session_id, "not a list")  # type: ignore[arg-type]
    assert raised.value.field == "messages"
    assert await snapshot(store) == before


async def test_replace_history_removes_the_newest_and_appends(store: DataStorage) -> None:
    run = await start(store)
    for text in ["a", "b", "c", "d"]:
        await say(store, run, text)
    stored = await store.replace_history(
        run.session_id, after_seq=2, messages=[ChatMsg("assistant", "summary", metadata={"k": 1})]
    )
    assert stored is not None
    assert _texts(stored) == [(5, "summary")]  # seqs are never given out twice
    history = await store.get_chat_history(run.session_id, limit=None)
    assert _texts(history) == [(1, "a"), (2, "b"), (5, "summary")]
    assert history[-1].metadata == {"k": 1}
    assert await store.replace_history(run.session_id, after_seq=0, messages=[]) == []
    assert await store.get_chat_history(run.session_id) == []
    with pytest.raises(InvalidDataError) as raised:
        await store.replace_history(run.session_id, after_seq=-1, messages=[])
    assert raised.value.field == "after_seq"
    with pytest.raises(NotFoundError):
        await store.replace_history("no-such-session", after_seq=0, messages=[])


async def test_replace_history_if_newest_seq_is_a_compare_and_swap(new_store: NewStore) -> None:
    store = await new_store()
    run = await start(store)
    assert await store.replace_history(
        run.session_id, after_seq=0, messages=[ChatMsg("user", "a")], if_newest_seq=0
    ) == [ChatMsg("user", "a", 1, None, (await store.get_chat_history(run.session_id))[0][4])]
    await say(store, run, "b")
    before = await snapshot(store)
    for stale in (0, 1, 3):
        assert (
            await store.replace_history(
                run.session_id, after_seq=1, messages=[ChatMsg("user", "x")], if_newest_seq=stale
            )
            is None
        )
    assert await snapshot(store) == before
    # The newest seq names the whole history: after a pop and an append it is new.
    await store.pop_message(run.session_id)
    await say(store, run, "b again")
    assert (
        await store.replace_history(run.session_id, after_seq=1, messages=[], if_newest_seq=2)
        is None
    )
    replaced = await store.replace_history(
        run.session_id, after_seq=1, messages=[ChatMsg("assistant", "s")], if_newest_seq=3
    )
    assert replaced is not None
    assert _texts(await store.get_chat_history(run.session_id)) == [(1, "a"), (4, "s")]
    with pytest.raises(InvalidDataError) as raised:
        await store.replace_history(run.session_id, after_seq=0, messages=[], if_newest_seq=-2)
    assert raised.value.field == "if_newest_seq"


async def test_racing_replacements_of_one_snapshot_let_one_win(store: DataStorage) -> None:
    run = await start(store)
    for text in ["a", "b", "c"]:
        await say(store, run, text)
    results = await asyncio.gather(
        *(
            store.replace_history(
                run.session_id,
                after_seq=1,
                messages=[ChatMsg("assistant", f"summary {i}"), ChatMsg("user", "next")],
                if_newest_seq=3,
            )
            for i in range(10)
        )
    )
    winners = [result for result in results if result is not None]
    assert len(winners) == 1
    history = await store.get_chat_history(run.session_id)
    assert _texts(history) == [(1, "a"), *_texts(winners[0])]


async def test_replace_history_drop_through_seq_also_removes_the_oldest(
    new_store: NewStore,
) -> None:
    store = await new_store()
    run = await start(store)
    stored = await store.add_chat_messages(
        run.session_id, [ChatMsg("user", f"m{i}", metadata={"i": i}) for i in range(1, 9)]
    )
    assert [m.seq for m in stored] == list(range(1, 9))
    before = (await store.get_session(run.session_id)).updated_at  # type: ignore[union-attr]
    replaced = await store.replace_history(
        run.session_id,
        after_seq=6,
        messages=[ChatMsg("assistant", "summary")],
        if_newest_seq=8,
        drop_through_seq=3,
    )
    assert replaced is not None and _texts(replaced) == [(9, "summary")]
    history = await store.get_chat_history(run.session_id, limit=None)
    assert _texts(history) == [(4, "m4"), (5, "m5"), (6, "m6"), (9, "summary")]
    assert [m.metadata for m in history[:3]] == [{"i": 4}, {"i": 5}, {"i": 6}]
    page = await store.get_chat_history_after(run.session_id, limit=2)
    assert _texts(page) == [(4, "m4"), (5, "m5")]
    page[0].metadata["i"] = 99  # type: ignore[index]
    assert (await store.get_chat_history_after(run.session_id, limit=1))[0].metadata == {"i": 4}
    after = (await store.get_session(run.session_id)).updated_at  # type: ignore[union-attr]
    assert after > before
    # Only a prefix: every message up to after_seq goes, the next seq still continues.
    assert (
        await store.replace_history(run.session_id, after_seq=9, messages=[], drop_through_seq=9)
        == []
    )
    assert await store.get_chat_history(run.session_id) == []
    await store.add_chat_messages(run.session_id, [ChatMsg("user", "next")])
    assert _texts(await store.get_chat_history(run.session_id)) == [(10, "next")]


async def test_replace_history_dropping_nothing_is_not_activity(new_store: NewStore) -> None:
    store = await new_store()
    run = await start(store)
    await store.add_chat_messages(run.session_id, [ChatMsg("user", "a"), ChatMsg("user", "b")])
    await store.truncate_history(run.session_id, after_seq=1)  # seq 1 stays, 2 is gone
    await store.replace_history(run.session_id, after_seq=1, messages=[], drop_through_seq=1)
    before = await snapshot(store)
    for drop in (0, 1):  # nothing left at or below either
        assert (
            await store.replace_history(
                run.session_id, after_seq=2, messages=[], drop_through_seq=drop
            )
            == []
        )
    assert await snapshot(store) == before


async def test_replace_history_drop_is_part_of_the_compare_and_swap(new_store: NewStore) -> None:
    store = await new_store()
    run = await start(store)
    for text in ["a", "b", "c", "d"]:
        await say(store, run, text)
    before = await snapshot(store)
    for stale in (0, 3, 5):
        assert (
            await store.replace_history(
                run.session_id,
                after_seq=3,
                messages=[ChatMsg("assistant", "s")],
                if_newest_seq=stale,
                drop_through_seq=2,
            )
            is None
        )
    assert await snapshot(store) == before


async def test_bad_drop_through_seq_is_refused_and_changes_nothing(new_store: NewStore) -> None:
    store = await new_store()
    run = await start(store)
    for text in ["a", "b", "c"]:
        await say(store, run, text)
    before = await snapshot(store)
    for bad in (3, 4, 2**63, -1, "1", 1.0, True):
        with pytest.raises(InvalidDataError) as raised:
            await store.replace_history(
                run.session_id,
                after_seq=2,
                messages=[ChatMsg("user", "x")],
                if_newest_seq=3,
                drop_through_seq=bad,  # type: ignore[arg-type]
            )
        assert raised.value.field == "drop_through_seq"
        assert await snapshot(store) == before
    with pytest.raises(NotFoundError):
        await store.replace_history("no-such-session", after_seq=2, messages=[], drop_through_seq=1)


async def test_a_drop_and_appends_racing_keep_every_append(store: DataStorage) -> None:
    """What a compaction that prunes expired items relies on: the messages read up to a seq
    are exactly the ones still there up to it, less those removed meanwhile, so dropping
    through that seq never loses a message appended since."""
    run = await start(store)
    for text in ["old 1", "old 2", "kept"]:
        await say(store, run, text)
    expired = await store.get_chat_history_after(run.session_id, limit=2)
    through = expired[-1].seq
    assert through == 2
    results = await asyncio.gather(
        store.replace_history(
            run.session_id, after_seq=3, messages=[], if_newest_seq=3, drop_through_seq=through
        ),
        *(say(store, run, f"new {i}") for i in range(5)),
    )
    history = await store.get_chat_history(run.session_id, limit=None)
    texts = [m.content for m in history]
    assert sorted(t for t in texts if t and t.startswith("new")) == [f"new {i}" for i in range(5)]
    if results[0] is None:  # an append came first: nothing was dropped
        assert texts[:3] == ["old 1", "old 2", "kept"]
    else:
        assert texts[0] == "kept"
