"""export_data / import_data: any backend to any other, identical afterwards."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from helpers import EMPTY_EXPORT, NewStore, say, start

from runstore import DataStorage, InMemoryDataStorage, InvalidDataError, WorkflowState


async def fill(store: DataStorage) -> None:
    first = await start(
        store, "chat", description="d", workflow={"n": [1]}, external_id="u", input_data={"q": "hi"}
    )
    await say(store, first, "hello 🌍")
    await say(store, first, "hi!", role="assistant")
    await store.save_state(first.run_id, WorkflowState("chat", status="completed", trace=["a"]))
    await store.update_run(
        first.run_id, output_data={"a": 1}, context={"c": 2}, duration_seconds=0.5
    )
    second = await start(store, "chat", session_id=first.session_id)
    await say(store, second, None, role="tool")
    other = await start(store, "other", session_id="s-other")
    await store.add_chat_message(
        agent_id=other.agent_id, session_id="s-other", run_id=None, role="system", content="sys"
    )


async def test_export_is_json_and_round_trips(new_store: NewStore) -> None:
    source = await new_store()
    await fill(source)
    document = await source.export_data()
    assert json.loads(json.dumps(document, allow_nan=False)) == document
    assert (
        len(document["agents"]),
        len(document["sessions"]),
        len(document["runs"]),
        len(document["messages"]),
    ) == (2, 2, 3, 4)
    target = await new_store()
    await target.import_data(json.loads(json.dumps(document)))
    assert await target.export_data() == document
    session_id = document["sessions"][0]["id"]
    assert await target.get_chat_history(session_id) == await source.get_chat_history(session_id)
    assert await target.list_sessions() == await source.list_sessions()
    run_id = document["runs"][0]["id"]
    assert await target.load_state(run_id) == await source.load_state(run_id)
    follow_up = await start(target, "chat", session_id=session_id)
    assert await say(target, follow_up, "next") == 4


async def test_export_moves_between_this_backend_and_memory(store: DataStorage) -> None:
    await fill(store)
    document = await store.export_data()
    memory = InMemoryDataStorage()
    await memory.import_data(document)
    assert await memory.export_data() == document
    await store.delete_agent("chat")
    await store.delete_agent("other")
    await store.import_data(await memory.export_data())
    assert await store.export_data() == document


async def test_export_of_one_session(store: DataStorage) -> None:
    await fill(store)
    document = await store.export_data("s-other")
    assert [s["id"] for s in document["sessions"]] == ["s-other"]
    assert [a["name"] for a in document["agents"]] == ["other"]
    assert [m["content"] for m in document["messages"]] == ["sys"]
    assert len(document["runs"]) == 1
    assert await store.export_data("unknown") == EMPTY_EXPORT


async def test_import_merges_an_agent_of_the_same_name(new_store: NewStore) -> None:
    source = await new_store()
    await fill(source)
    target = await new_store()
    mine = await start(target, "chat")
    await target.import_data(await source.export_data())
    agents = await target.list_agents()
    assert [a.name for a in agents] == ["chat", "other"]
    assert agents[0].id == mine.agent_id
    sessions = await target.list_sessions(workflow_name="chat")
    assert len(sessions) == 2 and {s.agent_id for s in sessions} == {mine.agent_id}


async def test_import_is_all_or_nothing(new_store: NewStore) -> None:
    source = await new_store()
    await fill(source)
    document = await source.export_data()
    target = await new_store()
    await target.import_data(document)
    before = await target.export_data()
    with pytest.raises(InvalidDataError) as caught:
        await target.import_data(document)  # the same ids again
    assert caught.value.field.startswith("sessions[")
    assert await target.export_data() == before


def broken(document: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(document))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copy


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["version"], 99, "version"),
        (["format"], "other", "format"),
        (["sessions", 0, "agent_id"], "missing-agent", "sessions[0].agent_id"),
        (["runs", 0, "input_data"], {"x": "nul\x00"}, "runs[0].input_data['x']"),
        (["runs", 0, "state"], {"workflow_name": "w", "status": "nope"}, "runs[0].state.status"),
        (["messages", 1, "seq"], 1, "messages[1].seq"),
        (["messages", 0, "seq"], 0, "messages[0].seq"),
        (["messages", 0, "created_at"], "yesterday", "messages[0].created_at"),
        (["messages", 0, "run_id"], "unknown-run", "messages[0].run_id"),
        (["agents", 0, "name"], "", "agents[0].name"),
    ],
)
async def test_import_refuses_bad_documents(
    new_store: NewStore, path: list[Any], value: Any, field: str
) -> None:
    source = await new_store()
    await fill(source)
    document = await source.export_data()
    target = await new_store()
    with pytest.raises(InvalidDataError) as caught:
        await target.import_data(broken(document, path, value))
    assert caught.value.field.startswith(field)
    assert await target.export_data() == EMPTY_EXPORT


async def test_imported_times_are_kept_as_utc(new_store: NewStore) -> None:
    source = await new_store()
    await fill(source)
    document = await source.export_data()
    shifted = json.loads(json.dumps(document))
    for kind in ("agents", "sessions", "runs", "messages"):
        for item in shifted[kind]:
            for key in ("created_at", "updated_at"):
                if key in item:
                    moment = datetime.fromisoformat(item[key])
                    item[key] = moment.astimezone(timezone(timedelta(hours=2))).isoformat()
    target = await new_store()
    await target.import_data(shifted)
    assert await target.export_data() == document
