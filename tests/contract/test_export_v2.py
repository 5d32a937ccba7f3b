"""What export format version 2 added (metadata, token counts, idempotency keys, forks,
last_seq), carried by version 3; version 1 and 2 documents still import."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import EMPTY_EXPORT, NewStore, say, start

from runstore import DataStorage, InvalidDataError


async def fill(store: DataStorage) -> str:
    """A session with every new field, a popped message and a fork; returns the fork's id."""
    run = await start(store, "chat", session_id="parent", external_id="u")
    for content, more in [
        ("q", {"metadata": {"type": "message", "n": [1.5, None]}, "token_count": 3}),
        ("a", {"token_count": 0, "idempotency_key": "turn-1"}),
        ("gone", {}),
    ]:
        await store.add_chat_message(
            agent_id=run.agent_id,
            session_id="parent",
            run_id=run.run_id,
            role="user",
            content=content,
            **more,  # type: ignore[arg-type]
        )
    await store.pop_message("parent")
    fork = await store.fork_session("parent", through_seq=1, new_session_id="fork")
    return fork.id


async def test_version_2_fields_are_carried(new_store: NewStore) -> None:
    source = await new_store()
    await fill(source)
    document = await source.export_data()
    assert document["version"] == 3
    parent, fork = sorted(document["sessions"], key=lambda s: s["id"] != "parent")
    assert (parent["parent_session_id"], parent["forked_from_seq"], parent["last_seq"]) == (
        None,
        None,
        3,
    )
    assert (fork["parent_session_id"], fork["forked_from_seq"], fork["last_seq"]) == (
        "parent",
        1,
        1,
    )
    by_key = {(m["session_id"], m["seq"]): m for m in document["messages"]}
    assert set(by_key) == {("parent", 1), ("parent", 2), ("fork", 1)}
    first = by_key["parent", 1]
    assert (first["metadata"], first["token_count"], first["idempotency_key"]) == (
        {"type": "message", "n": [1.5, None]},
        3,
        None,
    )
    second = by_key["parent", 2]
    assert (second["metadata"], second["token_count"], second["idempotency_key"]) == (
        None,
        0,
        "turn-1",
    )
    assert by_key["fork", 1]["run_id"] is None
    assert json.loads(json.dumps(document, allow_nan=False)) == document

    target = await new_store()
    await target.import_data(json.loads(json.dumps(document)))
    assert await target.export_data() == document
    follow_up = await start(target, "chat", session_id="parent")
    assert await say(target, follow_up, "next") == 4  # seq 3 was given out before the export
    repeat = await target.add_chat_message(
        agent_id=follow_up.agent_id,
        session_id="parent",
        run_id=by_key["parent", 2]["run_id"],
        role="user",
        content="a",
        token_count=0,
        idempotency_key="turn-1",
    )
    assert repeat.seq == 2


def as_version_2(document: dict[str, Any]) -> dict[str, Any]:
    old = json.loads(json.dumps(document))
    old["version"] = 2
    assert old.pop("entries") == []
    for session in old["sessions"]:
        assert session.pop("metadata") == {}  # sessions had none in version 2
    return old


async def test_version_2_documents_still_import(new_store: NewStore) -> None:
    source = await new_store()
    await fill(source)
    document = await source.export_data()
    target = await new_store()
    await target.import_data(as_version_2(document))
    assert await target.export_data() == document


def as_version_1(document: dict[str, Any]) -> dict[str, Any]:
    old = as_version_2(document)
    old["version"] = 1
    for session in old["sessions"]:
        for key in ("parent_session_id", "forked_from_seq", "last_seq"):
            del session[key]
    for message in old["messages"]:
        for key in ("metadata", "token_count", "idempotency_key"):
            del message[key]
    return old


async def test_version_1_documents_still_import(new_store: NewStore) -> None:
    source = await new_store()
    run = await start(source, "chat", session_id="s")
    await say(source, run, "hello")
    await say(source, run, "world", role="assistant")
    document = await source.export_data()
    target = await new_store()
    await target.import_data(as_version_1(document))
    assert await target.export_data() == document
    assert await say(target, await start(target, "chat", session_id="s"), "next") == 3


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["messages", 0, "metadata"], [1], "messages[0].metadata"),
        (["messages", 0, "metadata"], {"x": float("inf")}, "messages[0].metadata['x']"),
        (["messages", 0, "token_count"], -1, "messages[0].token_count"),
        (["messages", 0, "token_count"], "3", "messages[0].token_count"),
        (["messages", 0, "idempotency_key"], "", "messages[0].idempotency_key"),
        (["messages", 0, "idempotency_key"], "turn-1", "messages[1].idempotency_key"),
        (["sessions", 0, "last_seq"], 1, "sessions[0].last_seq"),
        (["sessions", 0, "last_seq"], -3, "sessions[0].last_seq"),
        (["sessions", 0, "forked_from_seq"], 2, "sessions[0].forked_from_seq"),
        (["sessions", 1, "parent_session_id"], None, "sessions[1].forked_from_seq"),
        (["sessions", 1, "parent_session_id"], "", "sessions[1].parent_session_id"),
    ],
)
async def test_import_refuses_bad_new_fields(
    new_store: NewStore, path: list[Any], value: Any, field: str
) -> None:
    source = await new_store()
    await fill(source)
    document = await source.export_data()
    document["sessions"].sort(key=lambda s: s["id"] != "parent")  # parent first, then the fork
    document["messages"].sort(key=lambda m: (m["session_id"] != "parent", m["seq"]))
    node: Any = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    target = await new_store()
    with pytest.raises(InvalidDataError) as caught:
        await target.import_data(document)
    assert caught.value.field.startswith(field)
    assert await target.export_data() == EMPTY_EXPORT


async def test_forks_export_on_their_own(store: DataStorage) -> None:
    fork_id = await fill(store)
    document = await store.export_data(fork_id)
    assert [s["id"] for s in document["sessions"]] == [fork_id]
    assert document["sessions"][0]["parent_session_id"] == "parent"
    assert document["runs"] == []
    assert [m["content"] for m in document["messages"]] == ["q"]
