"""export_records / import_records: the store as a stream of records, any backend to any other;
format version 3 carries entries; a bad record is named and leaves the store unchanged."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from helpers import EMPTY_EXPORT, NewStore, say, start

from runstore import ChatMsg, DataStorage, InMemoryDataStorage, InvalidDataError, NewEntry
from runstore._records import BATCH

LATER = datetime(2999, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
EARLIER = datetime(2001, 1, 1, tzinfo=UTC)


async def fill(store: DataStorage) -> None:
    """Two agents, three sessions (one a fork), runs with states, messages, entries."""
    first = await start(store, "chat", session_id="s-b", external_id="u", input_data={"q": 1})
    await say(store, first, "hello 🌍")
    await store.add_chat_message(
        agent_id=first.agent_id,
        session_id="s-b",
        run_id=first.run_id,
        role="assistant",
        content="hi",
        metadata={"m": [1.5, None]},
        token_count=4,
        idempotency_key="turn-1",
    )
    await store.update_run(first.run_id, output_data={"a": 1}, duration_seconds=0.25)
    await start(store, "chat", session_id="s-b")
    await store.fork_session("s-b", through_seq=1, new_session_id="s-a")
    other = await start(store, "other", session_id="s-c")
    await say(store, other, None, role="tool")
    await store.put_entries(
        "langgraph",
        [
            NewEntry("t1/cp/1", value={"v": 1}, data=b"\x00\xffbytes", tag="cp"),
            NewEntry("t1/cp/2", data=b""),
        ],
    )
    await store.merge_entry("langgraph", "t1/cp/1", {"w": 2})  # version 2
    await store.put_entries(
        "adk",
        [
            NewEntry("app/u/s", value={"state": {"x": "é"}}, owner="u", expires_at=LATER),
            NewEntry("app/u/t", value={"gone": 1}, owner="u", expires_at=EARLIER),  # expired
        ],
    )


async def records(store: DataStorage, session_id: str | None = None) -> list[dict[str, Any]]:
    return [record async for record in store.export_records(session_id)]


async def test_records_are_json_in_replayable_order(store: DataStorage) -> None:
    await fill(store)
    stream = await records(store)
    assert json.loads(json.dumps(stream, allow_nan=False)) == stream
    assert stream[0] == {"kind": "header", "format": "runstore.export", "version": 3}
    kinds = [r["kind"] for r in stream[1:]]
    assert kinds == [
        "agent",
        "agent",
        "session",  # s-a, the fork: its message, no run
        "message",
        "session",  # s-b: its two runs, then its messages
        "run",
        "run",
        "message",
        "message",
        "session",  # s-c
        "run",
        "message",
        "entry",
        "entry",
        "entry",
    ]
    assert [r["name"] for r in stream if r["kind"] == "agent"] == ["chat", "other"]
    assert [r["id"] for r in stream if r["kind"] == "session"] == ["s-a", "s-b", "s-c"]
    entries = [r for r in stream if r["kind"] == "entry"]
    assert [(e["scope"], e["key"]) for e in entries] == [
        ("adk", "app/u/s"),
        ("langgraph", "t1/cp/1"),
        ("langgraph", "t1/cp/2"),
    ]
    one, two = entries[1], entries[2]
    assert base64.b64decode(one["data"]) == b"\x00\xffbytes" and two["data"] == ""
    assert (one["value"], one["tag"], one["version"]) == ({"v": 1, "w": 2}, "cp", 2)
    assert entries[0]["data"] is None
    assert (entries[0]["owner"], entries[0]["expires_at"]) == ("u", LATER.isoformat())
    assert (one["owner"], one["expires_at"]) == (None, None)  # the expired entry is left out
    document = await store.export_data()
    assert document["entries"] == [{k: v for k, v in e.items() if k != "kind"} for e in entries]


async def test_records_move_between_this_backend_and_memory(new_store: NewStore) -> None:
    source = await new_store()
    await fill(source)
    stream = await records(source)
    memory = InMemoryDataStorage()
    await memory.import_records(json.loads(json.dumps(stream)))
    assert await records(memory) == stream

    async def replay() -> AsyncIterator[dict[str, Any]]:
        async for record in memory.export_records():
            yield record

    target = await new_store()
    await target.import_records(replay())
    assert await records(target) == stream
    assert await target.export_data() == await source.export_data()
    entry = await target.get_entry("langgraph", "t1/cp/1")
    assert entry is not None and (entry.data, entry.version) == (b"\x00\xffbytes", 2)
    assert entry == await source.get_entry("langgraph", "t1/cp/1")
    owned = await target.get_entry("adk", "app/u/s")
    assert owned is not None and (owned.owner, owned.expires_at) == ("u", LATER)
    assert await target.get_entry("adk", "app/u/t") is None
    follow_up = await start(target, "chat", session_id="s-b")
    assert await say(target, follow_up, "next") == 3
    repeat = await target.add_chat_message(
        agent_id=follow_up.agent_id,
        session_id="s-b",
        run_id=stream[6]["id"] if stream[6]["kind"] == "run" else None,
        role="assistant",
        content="hi",
        metadata={"m": [1.5, None]},
        token_count=4,
        idempotency_key="turn-1",
    )
    assert repeat.seq == 2


async def test_records_of_one_session(store: DataStorage) -> None:
    await fill(store)
    stream = await records(store, "s-c")
    assert [r["kind"] for r in stream] == ["header", "agent", "session", "run", "message"]
    assert stream[1]["name"] == "other"
    assert await records(store, "unknown") == stream[:1]


async def long_session(store: DataStorage, count: int) -> None:
    run = await start(store, "chat", session_id="long")
    messages = [ChatMsg("user", f"m{i}", run_id=run.run_id) for i in range(count)]
    await store.add_chat_messages("long", messages)


async def test_import_is_all_or_nothing_across_batches(new_store: NewStore) -> None:
    source = await new_store()
    await long_session(source, 2 * BATCH + 10)
    stream = await records(source)
    stream[-1]["role"] = ""  # the last record: after two batches were written
    target = await new_store()
    mine = await start(target, "chat", session_id="mine")
    await say(target, mine, "kept")
    await target.put_entries("s", [NewEntry("k")])
    before = await target.export_data()
    with pytest.raises(InvalidDataError) as caught:
        await target.import_records(stream)
    assert caught.value.field == f"records[{len(stream) - 1}].role"
    assert await target.export_data() == before
    stream[-1]["role"] = "user"
    await target.import_records(stream)  # the failed import left nothing in the way
    history = await target.get_chat_history("long", limit=None)
    assert [m.content for m in history[-2:]] == [f"m{2 * BATCH + 8}", f"m{2 * BATCH + 9}"]


def changed(stream: list[dict[str, Any]], index: int, **fields: Any) -> list[dict[str, Any]]:
    copy = json.loads(json.dumps(stream))
    copy[index].update(fields)
    return copy


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda s: s[1:], "records[0].kind"),  # no header
        (lambda s: changed(s, 0, version=2), "records[0].version"),
        (lambda s: changed(s, 0, format="x"), "records[0].format"),
        (lambda s: changed(s, 1, kind="robot"), "records[1].kind"),
        (lambda s: [s[0], s[3], s[1], s[2], *s[4:]], "records[1].agent_id"),  # a session first
        (lambda s: [*s[:4], s[5], s[4], *s[6:]], "records[5].session_id"),  # away from it
        (lambda s: changed(s, 4, agent_id="agent-x"), "records[4].agent_id"),
        (lambda s: changed(s, 3, last_seq=0), "records[4].seq"),
        (lambda s: changed(s, 3, last_seq=None), "records[3].last_seq"),
        (lambda s: changed(s, 4, seq=0), "records[4].seq"),
        (lambda s: [*s[:5], s[4], *s[5:]], "records[5].seq"),  # a message twice
        (lambda s: changed(s, 4, content=1), "records[4].content"),
        (lambda s: changed(s, -1, data="not base64!"), f"records[{15}].data"),
        (lambda s: changed(s, -1, data=[1]), f"records[{15}].data"),
        (lambda s: changed(s, -1, version=0), f"records[{15}].version"),
        (lambda s: changed(s, -1, value=[1]), f"records[{15}].value"),
        (lambda s: changed(s, -1, updated_at="now"), f"records[{15}].updated_at"),
        (lambda s: changed(s, -1, expires_at="2030"), f"records[{15}].expires_at"),
        (lambda s: changed(s, -1, owner=5), f"records[{15}].owner"),
        (lambda s: [*s, s[-1]], f"records[{16}].key"),  # an entry twice
        (lambda s: [*s[:-2], s[-1], s[-2]], f"records[{15}].key"),  # entries out of order
        (lambda s: [*s, s[3]], f"records[{16}].kind"),  # a session after the entries
        (lambda s: [*s, "text"], f"records[{16}]"),
    ],
)
async def test_bad_records_are_named(store: DataStorage, change: Any, field: str) -> None:
    source = InMemoryDataStorage()
    await fill(source)
    stream = await records(source)
    assert len(stream) == 16 and stream[3]["id"] == "s-a" and stream[4]["kind"] == "message"
    before = await store.export_data()
    with pytest.raises(InvalidDataError) as caught:
        await store.import_records(change(stream))
    assert caught.value.field == field
    assert await store.export_data() == before


async def test_import_refuses_what_exists(store: DataStorage) -> None:
    await fill(store)
    stream = await records(store)
    entry_only = [stream[0], stream[-1]]
    with pytest.raises(InvalidDataError) as caught:
        await store.import_records(entry_only)
    assert caught.value.field == "records[1].key"
    with pytest.raises(InvalidDataError):
        await store.import_records("not records")  # type: ignore[arg-type]
    with pytest.raises(InvalidDataError) as caught:
        await store.import_records([])
    assert caught.value.field == "records"


async def test_export_is_a_snapshot_and_the_store_works_meanwhile(store: DataStorage) -> None:
    await fill(store)
    before = await records(store)
    stream = store.export_records()
    head = [await anext(stream) for _ in range(4)]  # header, agents, the first session
    run = await start(store, "chat", session_id="s-c2")
    await say(store, run, "during the export")
    await store.put_entries("zz", [NewEntry("new")])
    rest = [record async for record in stream]
    assert head + rest == before
    assert len(await records(store)) == len(before) + 4


async def test_v3_document_round_trip_with_entries(new_store: NewStore) -> None:
    source = await new_store()
    await fill(source)
    document = await source.export_data()
    assert document.keys() == EMPTY_EXPORT.keys()
    assert len(document["entries"]) == 3
    target = await new_store()
    await target.import_data(json.loads(json.dumps(document)))
    assert await target.export_data() == document
    document["entries"][0]["data"] = "%%%"
    with pytest.raises(InvalidDataError) as caught:
        await (await new_store()).import_data(document)
    assert caught.value.field == "entries[0].data"
