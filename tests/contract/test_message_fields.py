"""Message metadata, token counts, max_tokens and idempotent appends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from helpers import start

from runstore import ChatMsg, DataStorage, InvalidDataError, NotFoundError, RunHandle


async def add(store: DataStorage, run: RunHandle, content: str | None, **more: Any) -> ChatMsg:
    fields: dict[str, Any] = dict(
        agent_id=run.agent_id, session_id=run.session_id, run_id=run.run_id, role="user"
    )
    fields.update(more)
    return await store.add_chat_message(content=content, **fields)


async def test_metadata_and_token_count_round_trip(store: DataStorage) -> None:
    run = await start(store)
    item = {"type": "function_call", "arguments": {"city": "Oslo"}, "ids": [1, 2.5, None, True]}
    sent = await add(store, run, None, role="assistant", metadata=item, token_count=17)
    assert (sent.metadata, sent.token_count) == (item, 17)
    plain = await add(store, run, "hi")
    assert (plain.metadata, plain.token_count) == (None, None)
    empty = await add(store, run, "e", metadata={}, token_count=0)
    assert (empty.metadata, empty.token_count) == ({}, 0)
    assert await store.get_chat_history(run.session_id) == [sent, plain, empty]
    assert ChatMsg("user", "x") == ("user", "x", None, None, None, None, None)


async def test_metadata_is_a_fresh_copy_both_ways(store: DataStorage) -> None:
    run = await start(store)
    metadata: dict[str, Any] = {"list": [1], "inner": {"a": 1}}
    sent = await add(store, run, "x", metadata=metadata)
    metadata["list"].append(2)
    metadata["inner"]["a"] = 9
    assert sent.metadata is not None
    sent.metadata["list"].append("mutated by caller")
    [first] = await store.get_chat_history(run.session_id)
    assert first.metadata == {"list": [1], "inner": {"a": 1}}
    assert first.metadata is not None
    first.metadata.clear()
    [again] = await store.get_chat_history(run.session_id)
    assert again.metadata == {"list": [1], "inner": {"a": 1}}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"metadata": [1, 2]}, "metadata"),
        ({"metadata": "text"}, "metadata"),
        ({"metadata": {"x": float("nan")}}, "metadata['x']"),
        ({"metadata": {"x": "nul\x00"}}, "metadata['x']"),
        ({"token_count": -1}, "token_count"),
        ({"token_count": 1.5}, "token_count"),
        ({"token_count": "3"}, "token_count"),
        ({"token_count": True}, "token_count"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": 5}, "idempotency_key"),
        ({"idempotency_key": "nul\x00"}, "idempotency_key"),
    ],
)
async def test_bad_new_fields_are_refused(
    store: DataStorage, changes: dict[str, Any], field: str
) -> None:
    run = await start(store)
    await add(store, run, "kept", metadata={"k": 1}, token_count=1, idempotency_key="k1")
    before = await store.export_data()
    with pytest.raises(InvalidDataError) as caught:
        await add(store, run, "x", **changes)
    assert caught.value.field == field
    assert await store.export_data() == before


async def test_max_tokens_keeps_a_contiguous_newest_window(store: DataStorage) -> None:
    run = await start(store)
    for content, tokens in [("a", 5), ("b", 3), ("c", None), ("d", 4), ("e", 2)]:
        await add(store, run, content, token_count=tokens)
    history = store.get_chat_history
    window = await history(run.session_id, max_tokens=5)
    assert [m.content for m in window] == ["e"]
    window = await history(run.session_id, max_tokens=6)  # no count: counts 0
    assert [m.content for m in window] == ["c", "d", "e"]
    window = await history(run.session_id, max_tokens=9)
    assert [m.content for m in window] == ["b", "c", "d", "e"]
    assert [m.content for m in await history(run.session_id, max_tokens=1)] == []
    assert len(await history(run.session_id, max_tokens=14)) == 5
    assert [m.content for m in await history(run.session_id, 2, max_tokens=100)] == ["d", "e"]
    both = await history(run.session_id, max_tokens=100, max_chars=3)
    assert [m.content for m in both] == ["c", "d", "e"]
    for bad in (-1, 2.0, "5", True):
        with pytest.raises(InvalidDataError) as caught:
            await history(run.session_id, max_tokens=bad)  # type: ignore[arg-type]
        assert caught.value.field == "max_tokens"


async def test_max_tokens_counts_exactly_up_to_the_largest_budget(store: DataStorage) -> None:
    # The running total reaches 2**63 - 1 exactly, then one more token passes 64 bits.
    run = await start(store)
    for content, tokens in [("a", 1), ("b", 2**62), ("c", 2**62 - 1)]:
        await add(store, run, content, token_count=tokens)
    window = await store.get_chat_history(run.session_id, None, max_tokens=2**63 - 1)
    assert [m.content for m in window] == ["b", "c"]
    window = await store.get_chat_history(run.session_id, None, max_tokens=2**63 - 2)
    assert [m.content for m in window] == ["c"]


async def test_messages_without_counts_all_fit(store: DataStorage) -> None:
    run = await start(store)
    for i in range(3):
        await add(store, run, f"m{i}")
    assert len(await store.get_chat_history(run.session_id, max_tokens=0)) == 3


async def test_idempotent_repeat_returns_the_first_message_and_stores_nothing(
    store: DataStorage,
) -> None:
    run = await start(store)
    meta = {"a": 1, "b": [1, 2]}
    first = await add(store, run, "q", metadata=meta, token_count=3, idempotency_key="turn-1")
    await add(store, run, "other")
    before = await store.export_data()
    session_before = await store.get_session(run.session_id)
    again = await add(
        store, run, "q", metadata={"b": [1, 2], "a": 1}, token_count=3, idempotency_key="turn-1"
    )
    assert again == first  # same seq, created_at, metadata and token count
    assert await store.export_data() == before
    assert await store.get_session(run.session_id) == session_before  # not even activity
    fresh = await add(store, run, "q", metadata=meta, token_count=3, idempotency_key="turn-2")
    assert fresh.seq == 3


@pytest.mark.parametrize(
    "changes",
    [
        {"content": "different"},
        {"role": "assistant"},
        {"metadata": {"a": 2}},
        {"metadata": {"a": 1.0}},
        {"metadata": None},
        {"token_count": 4},
        {"token_count": None},
        {"run_id": None},
    ],
)
async def test_a_key_reused_for_another_message_is_refused(
    store: DataStorage, changes: dict[str, Any]
) -> None:
    run = await start(store)
    await add(store, run, "q", metadata={"a": 1}, token_count=3, idempotency_key="k")
    before = await store.export_data()
    fields: dict[str, Any] = {"metadata": {"a": 1}, "token_count": 3, "idempotency_key": "k"}
    fields.update(changes)
    with pytest.raises(InvalidDataError) as caught:
        await add(store, run, fields.pop("content", "q"), **fields)
    assert caught.value.field == "idempotency_key"
    assert await store.export_data() == before


async def test_idempotency_keys_are_per_session_and_checks_come_first(store: DataStorage) -> None:
    one = await start(store)
    two = await start(store)
    a = await add(store, one, "x", idempotency_key="k")
    b = await add(store, two, "x", idempotency_key="k")
    assert (a.seq, b.seq) == (1, 1)
    with pytest.raises(NotFoundError):
        await add(store, one, "x", idempotency_key="k", session_id="unknown")
    with pytest.raises(InvalidDataError) as caught:
        await add(store, one, "x", idempotency_key="k", run_id=two.run_id)
    assert caught.value.field == "run_id"
    without_run = await add(store, one, "y", idempotency_key="no-run", run_id=None)
    assert await add(store, one, "y", idempotency_key="no-run", run_id=None) == without_run


async def test_twenty_racing_calls_with_one_key_store_one_message(store: DataStorage) -> None:
    run = await start(store)
    await add(store, run, "before")
    results = await asyncio.gather(
        *(add(store, run, "same", token_count=2, idempotency_key="retry") for _ in range(20))
    )
    assert {m.seq for m in results} == {2}
    assert len(set(results)) == 1
    history = await store.get_chat_history(run.session_id, None)
    assert [m.content for m in history] == ["before", "same"]
    assert (await add(store, run, "after")).seq == 3
