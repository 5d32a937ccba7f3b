"""Payloads must be plain JSON; bad input is refused, names its field, and changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any

import pytest
from helpers import start

from runstore import ChatMsg, DataStorage, InvalidDataError, NewEntry

BAD_PAYLOADS: list[tuple[Any, str]] = [
    ({"x": float("nan")}, "['x']"),
    ({"x": float("inf")}, "['x']"),
    ({"x": [1, float("-inf")]}, "['x'][1]"),
    ({"x": "nul\x00char"}, "['x']"),
    ({"x": "lone \udc00 surrogate"}, "['x']"),
    ({"bad\x00key": 1}, " key"),
    ({1: "int key"}, ""),
    ({"x": object()}, "['x']"),
    ({"x": b"bytes"}, "['x']"),
    ({"x": {1, 2}}, "['x']"),
    ([1, 2], ""),
    ("not a dict", ""),
]


@pytest.mark.parametrize(("payload", "where"), BAD_PAYLOADS)
@pytest.mark.parametrize("field", ["input_data", "input_schema", "output_schema", "workflow"])
async def test_initialize_run_refuses_bad_payloads(
    store: DataStorage, payload: Any, where: str, field: str
) -> None:
    await start(store, "existing")
    before = await store.export_data()
    with pytest.raises(InvalidDataError) as caught:
        await store.initialize_run(workflow_name="new", **{field: payload})
    assert caught.value.field.startswith(field + where)
    assert await store.export_data() == before


@pytest.mark.parametrize(("payload", "where"), BAD_PAYLOADS)
@pytest.mark.parametrize("field", ["output_data", "context"])
async def test_update_run_refuses_bad_payloads(
    store: DataStorage, payload: Any, where: str, field: str
) -> None:
    run = await start(store)
    await store.update_run(run.run_id, output_data={"kept": True})
    before = await store.export_data()
    with pytest.raises(InvalidDataError) as caught:
        await store.update_run(run.run_id, **{field: payload})
    assert caught.value.field.startswith(field + where)
    assert await store.export_data() == before


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"workflow_name": ""}, "workflow_name"),
        ({"workflow_name": None}, "workflow_name"),
        ({"workflow_name": "nul\x00"}, "workflow_name"),
        ({"workflow_name": "ok", "description": 5}, "description"),
        ({"workflow_name": "ok", "session_id": ""}, "session_id"),
        ({"workflow_name": "ok", "external_id": 7}, "external_id"),
    ],
)
async def test_initialize_run_refuses_bad_names(
    store: DataStorage, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidDataError) as caught:
        await store.initialize_run(**kwargs)
    assert caught.value.field == field
    assert await store.list_agents() == []


async def test_valid_json_edge_values_round_trip(store: DataStorage) -> None:
    payload = {
        "big": 2**62,
        "neg": -(2**31),
        "float": 0.1,
        "tiny": 5e-324,
        "huge": 1.7976931348623157e308,
        "unicode": "héllo 🌍 \u202e",
        "empty": {},
        "list": [[], [None]],
        "bools": [True, False],
        "quote": "\"'\\",
        "tuple": (1, 2),
    }
    run = await store.initialize_run(workflow_name="w", input_data=payload)
    record = await store.get_run(run.run_id)
    assert record is not None
    expected = dict(payload, tuple=[1, 2])
    assert record.input_data == expected
    assert type(record.input_data["huge"]) is float and type(record.input_data["big"]) is int


async def test_arguments_are_copied_on_the_way_in_and_out(store: DataStorage) -> None:
    data = {"list": [1, 2], "inner": {"a": 1}}
    run = await store.initialize_run(workflow_name="w", input_data=data, workflow=data)
    data["list"].append(3)
    data["inner"]["a"] = 99
    record = await store.get_run(run.run_id)
    assert record is not None and record.input_data == {"list": [1, 2], "inner": {"a": 1}}
    assert record.input_data is not None
    record.input_data["list"].append("mutated")
    [agent] = await store.list_agents()
    assert agent.workflow == {"list": [1, 2], "inner": {"a": 1}}
    again = await store.get_run(run.run_id)
    assert again is not None and again.input_data == {"list": [1, 2], "inner": {"a": 1}}
    exported = await store.export_data()
    exported["runs"][0]["input_data"]["list"].clear()
    assert (await store.export_data())["runs"][0]["input_data"] == {
        "list": [1, 2],
        "inner": {"a": 1},
    }


class Role(StrEnum):
    USER = "user"


class Count(IntEnum):
    TWO = 2


class Text(str):
    pass


class Seconds(float):
    pass


class Moment(datetime):
    pass


async def test_subclasses_of_plain_types_are_taken_as_their_values(store: DataStorage) -> None:
    """A StrEnum role, an IntEnum count, a str, float or datetime subclass: every call takes
    them as the plain value, and what is read back (and exported) equals it."""
    run = await store.initialize_run(
        workflow_name=Text("w"), external_id=Text("ext"), session_id=Text("s-1")
    )
    await store.update_run(Text(run.run_id), output_data={"ok": 1}, duration_seconds=Seconds(2))
    await store.add_chat_message(
        agent_id=Text(run.agent_id), session_id=Text(run.session_id), run_id=Text(run.run_id),
        role=Role.USER, content=Text("hi"), token_count=Count.TWO, idempotency_key=Text("k"),
    )  # fmt: skip
    await store.add_chat_messages(
        run.session_id, [ChatMsg(role=Role.USER, content=Text("more"), token_count=Count.TWO)]
    )
    await store.add_chat_message(
        agent_id=run.agent_id, session_id=run.session_id, run_id=None, role="user", content="x"
    )
    assert await store.truncate_history(Text(run.session_id), after_seq=Count.TWO) == 1
    await store.put_entries(Text("scope"), [NewEntry(Text("key"), {"a": 1}, tag=Text("t"))])
    assert await store.purge_sessions(Moment(2000, 1, 1, tzinfo=UTC)) == 0
    history = await store.get_chat_history(run.session_id)
    assert [(m.role, m.content, m.token_count) for m in history] == [
        ("user", "hi", 2),
        ("user", "more", 2),
    ]
    plain: list[Any] = [value for m in history for value in (m.role, m.content)]
    [session] = await store.list_sessions(workflow_name="w", external_id="ext")
    assert session.id == "s-1"
    plain += [session.id, session.agent_id, session.external_id]
    entry = await store.get_entry("scope", "key")
    assert entry is not None and entry.tag == "t"
    plain += [entry.key, entry.tag]
    # Read back as plain values on every backend, not the caller's subclass objects.
    assert all(type(value) is str for value in plain), plain
    assert all(type(m.token_count) is int for m in history)
    record = await store.get_run(run.run_id)
    assert record is not None and record.duration_seconds == 2.0
    assert json.loads(json.dumps(await store.export_data()))["sessions"][0]["id"] == "s-1"
