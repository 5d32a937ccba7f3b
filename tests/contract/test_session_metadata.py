"""Session metadata: the application's JSON object on a session (docs/contract.md, "Session
metadata"), set by initialize_run and update_session, read back everywhere a session is."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import NewStore, say, start

from runstore import DataStorage, InvalidDataError, NotFoundError

TITLE = {"title": "Trip to Kyoto 京都", "tags": ["travel", "plans"], "pinned": True}
# Every kind of JSON value, at the ends of the ranges the contract keeps exactly.
RICH = {
    "n": [2**63 - 1, -(2**63), 0, 1.5, -2.25e-300, 1e300],
    "nested": {"a": {"b": [None, False, "", "é 🌍"]}},
    "": "empty key",
}


async def test_a_new_session_has_empty_metadata(store: DataStorage) -> None:
    run = await start(store, session_id="s")
    session = await store.get_session("s")
    assert session is not None and session.metadata == {}
    [listed] = await store.list_sessions()
    assert listed.metadata == {}
    await store.initialize_run(workflow_name="chat", session_id="s")  # None keeps it
    assert (await store.get_session(run.session_id)).metadata == {}  # type: ignore[union-attr]


async def test_initialize_run_sets_the_metadata_of_a_new_session(store: DataStorage) -> None:
    run = await start(store, external_id="ada", session_metadata=TITLE)
    session = await store.get_session(run.session_id)
    assert session is not None and session.metadata == TITLE
    [listed] = await store.list_sessions(external_id="ada")
    assert listed.metadata == TITLE


async def test_initialize_run_replaces_or_keeps_the_metadata_of_a_known_session(
    store: DataStorage,
) -> None:
    run = await start(store, session_id="s", external_id="ada", session_metadata=TITLE)
    await start(store, session_id="s")  # None: kept
    assert (await store.get_session("s")).metadata == TITLE  # type: ignore[union-attr]
    await start(store, session_id="s", session_metadata={"title": "renamed"})  # replaced whole
    assert (await store.get_session("s")).metadata == {"title": "renamed"}  # type: ignore[union-attr]
    # the session found by external_id is the one whose metadata is replaced
    again = await start(store, external_id="ada", session_metadata={})
    assert again.session_id == run.session_id
    assert (await store.get_session("s")).metadata == {}  # type: ignore[union-attr]


async def test_a_refused_initialize_run_leaves_the_metadata(store: DataStorage) -> None:
    await start(store, "chat", session_id="s", external_id="ada", session_metadata=TITLE)
    before = await store.export_data()
    with pytest.raises(InvalidDataError) as caught:
        await start(store, "other", session_id="s", session_metadata={"title": "x"})
    assert caught.value.field == "session_id"
    with pytest.raises(InvalidDataError) as caught:
        await start(store, "chat", session_id="s", external_id="bob", session_metadata={})
    assert caught.value.field == "external_id"
    assert await store.export_data() == before


async def test_update_session_replaces_the_whole_object(store: DataStorage) -> None:
    await start(store, session_id="s", session_metadata=TITLE)
    other = await start(store, session_id="other", session_metadata={"title": "other"})
    before = await store.get_session("s")
    assert before is not None
    record = await store.update_session("s", metadata=RICH)
    assert record.metadata == RICH
    assert (record.id, record.agent_id, record.external_id) == ("s", before.agent_id, None)
    assert (record.created_at, record.updated_at) == (before.created_at, before.updated_at)
    assert await store.get_session("s") == record
    assert (await store.get_session(other.session_id)).metadata == {"title": "other"}  # type: ignore[union-attr]
    cleared = await store.update_session("s", metadata={})
    assert cleared.metadata == {} and (await store.get_session("s")) == cleared


async def test_update_session_is_not_activity(store: DataStorage) -> None:
    await start(store, session_id="old")
    await start(store, session_id="new")
    await store.update_session("old", metadata={"title": "renamed"})
    assert [s.id for s in await store.list_sessions()] == ["new", "old"]


async def test_update_session_of_an_unknown_session_changes_nothing(store: DataStorage) -> None:
    await start(store, session_id="s", session_metadata=TITLE)
    before = await store.export_data()
    with pytest.raises(NotFoundError) as caught:
        await store.update_session("missing", metadata={"title": "x"})
    assert caught.value.field == "session_id"
    with pytest.raises(InvalidDataError) as refused:
        await store.update_session("s", metadata={"bad": {1, 2}})
    assert refused.value.field == "metadata['bad']"
    assert await store.export_data() == before
    assert await store.get_session("missing") is None


async def test_session_metadata_is_never_aliased(store: DataStorage) -> None:
    given: dict[str, Any] = {"tags": ["a"], "deep": {"x": 1}}
    run = await start(store, session_id="s", session_metadata=given)
    given["tags"].append("changed after the call")
    given["deep"]["x"] = 2
    read = await store.get_session("s")
    assert read is not None and read.metadata == {"tags": ["a"], "deep": {"x": 1}}
    read.metadata["tags"].append("changed by a reader")
    read.metadata["new"] = True
    [listed] = await store.list_sessions()
    listed.metadata.clear()
    updated = await store.update_session(run.session_id, metadata=given)
    given["deep"]["x"] = 3
    updated.metadata["deep"]["x"] = 4
    fork = await store.fork_session("s")
    fork.metadata["deep"]["x"] = 5
    wanted = {"tags": ["a", "changed after the call"], "deep": {"x": 2}}
    for session_id in ("s", fork.id):
        assert (await store.get_session(session_id)).metadata == wanted  # type: ignore[union-attr]


async def test_a_fork_gets_a_copy_of_its_parents_metadata(store: DataStorage) -> None:
    run = await start(store, session_id="s", session_metadata=TITLE)
    await say(store, run, "hello")
    fork = await store.fork_session("s", new_session_id="f")
    assert fork.metadata == TITLE
    assert (await store.get_session("f")) == fork
    await store.update_session("f", metadata={"title": "the fork"})
    assert (await store.get_session("s")).metadata == TITLE  # type: ignore[union-attr]
    plain = await store.fork_session("f", through_seq=0)
    assert plain.metadata == {"title": "the fork"}


async def test_search_hits_carry_the_session_metadata(store: DataStorage) -> None:
    run = await start(store, session_id="s", session_metadata=TITLE)
    await say(store, run, "hello kyoto")
    [hit] = await store.search_messages("kyoto")
    assert hit.session.metadata == TITLE


async def test_metadata_moves_in_export_and_records(new_store: NewStore) -> None:
    source = await new_store()
    run = await start(source, session_id="s", external_id="ada", session_metadata=RICH)
    await say(source, run, "hi")
    await start(source, session_id="plain")
    document = await source.export_data()
    by_id = {s["id"]: s for s in document["sessions"]}
    assert (by_id["s"]["metadata"], by_id["plain"]["metadata"]) == (RICH, {})
    assert json.loads(json.dumps(document)) == document
    records = [record async for record in source.export_records()]
    [session] = [r for r in records if r["kind"] == "session" and r["id"] == "s"]
    assert session["metadata"] == RICH
    for target, load in ((await new_store(), "document"), (await new_store(), "records")):
        if load == "document":
            await target.import_data(document)
        else:
            await target.import_records(records)
        assert await target.export_data() == document
        assert (await target.get_session("s")).metadata == RICH  # type: ignore[union-attr]
    one = await source.export_data("s")
    assert [s["metadata"] for s in one["sessions"]] == [RICH]


async def test_documents_without_session_metadata_import_with_empty_metadata(
    new_store: NewStore,
) -> None:
    source = await new_store()
    await start(source, session_id="s", session_metadata=TITLE)
    document = await source.export_data()
    for session in document["sessions"]:
        del session["metadata"]  # as a version 3 export of an older runstore
    target = await new_store()
    await target.import_data(document)
    assert (await target.get_session("s")).metadata == {}  # type: ignore[union-attr]
    version_2 = {**document, "version": 2}
    del version_2["entries"]
    for session in version_2["sessions"]:
        session["id"] = "v2"
    version_2["runs"] = [{**r, "id": "r2", "session_id": "v2"} for r in document["runs"]]
    other = await new_store()
    await other.import_data(version_2)
    assert (await other.get_session("v2")).metadata == {}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ([1], "sessions[0].metadata"),
        ("title", "sessions[0].metadata"),
        ({"x": float("inf")}, "sessions[0].metadata['x']"),
    ],
)
async def test_import_refuses_bad_session_metadata(
    new_store: NewStore, value: Any, field: str
) -> None:
    source = await new_store()
    await start(source, session_id="s")
    document = await source.export_data()
    document["sessions"][0]["metadata"] = value
    target = await new_store()
    with pytest.raises(InvalidDataError) as caught:
        await target.import_data(document)
    assert caught.value.field == field
    assert await target.list_sessions() == []


async def test_erase_takes_the_metadata_of_the_users_sessions(store: DataStorage) -> None:
    await start(store, session_id="ada-1", external_id="ada", session_metadata={"title": "ADA-X"})
    await store.fork_session("ada-1")
    await start(store, session_id="bob-1", external_id="bob", session_metadata={"title": "bob"})
    report = await store.erase("ada")
    assert report.sessions == 2
    exported = json.dumps(await store.export_data())
    assert "ADA-X" not in exported
    assert [s.metadata for s in await store.list_sessions()] == [{"title": "bob"}]
