"""The durable browser store's log format, natively (the store itself runs in tests/browser).

Records must read back as exactly the values the hooks were given, and every hook of
``DataStorage`` must be either recorded or a reader: a new mutating hook is recorded with no
change to runstore.browser.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any

import pytest

from runstore import InMemoryDataStorage, InvalidDataError, NewEntry, _oplog
from runstore._calls import HistoryReplacement, RunUpdate
from runstore.base import NewRun


def test_hooks_are_either_recorded_or_readers() -> None:
    mutating = _oplog.mutating_hooks()
    readers = _oplog.hook_names() - mutating
    assert {"_initialize_run", "_add_chat_message", "_import", "_fork_session"} <= mutating
    assert {"_get_chat_history", "_list_sessions", "_load_state"} <= readers
    assert "_get_chat_history_after" in readers and "_replace_history" in mutating
    assert all(name.startswith(_oplog.READER_PREFIXES) for name in readers)
    # these return context managers, not results: the browser store must not wrap them
    assert not {"_export_source", "_import_sink", "_import_records"} & _oplog.hook_names()


def test_a_call_reads_back_as_the_same_arguments() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    request = NewRun("w", "é ✓", '{"a": 1}', None, None, "s", "x", '{"t": [1, 2.5]}', now,
                     "a1", "s1", "r1")  # fmt: skip
    args = (request, 'text\n"quoted"', None, 1.5, [1, (2, "3")], {"k": None})
    hook, last_now, decoded = _oplog.decode_call(_oplog.encode_call("_initialize_run", args, now))
    assert hook == "_initialize_run" and last_now == now
    assert tuple(decoded) == args


def test_session_metadata_is_recorded_and_older_records_read_without_it() -> None:
    """``update_session`` is a recorded hook; an ``initialize_run`` record written before
    ``session_metadata`` existed reads back with None (the session's metadata is kept)."""
    assert "_update_session" in _oplog.mutating_hooks()
    now = datetime(2026, 1, 2, tzinfo=UTC)
    request = NewRun("w", None, None, None, None, "s", None, None, now, "a", "s", "r", '{"t":1}')
    record = _oplog.encode_call("_initialize_run", (request,), now)
    assert _oplog.decode_call(record)[2] == [request]
    older = record.replace(',"session_metadata":"{\\"t\\":1}"', "")
    assert older != record
    assert _oplog.decode_call(older)[2] == [replace(request, session_metadata=None)]
    update = _oplog.encode_call("_update_session", ("s", '{"title":"x"}'), now)
    assert _oplog.decode_call(update)[2] == ["s", '{"title":"x"}']


async def test_a_replayed_log_keeps_session_metadata() -> None:
    """What the browser store does on open: every recorded call replayed on a fresh store."""
    calls: list[str] = []
    store = InMemoryDataStorage()
    recorder = _Recorder(store, calls)
    run = await recorder.store.initialize_run(workflow_name="w", session_metadata={"t": 1})
    await recorder.store.initialize_run(workflow_name="w", session_id="b", session_metadata={})
    await recorder.store.update_session(run.session_id, metadata={"title": "é", "n": [1]})
    await recorder.store.fork_session(run.session_id, new_session_id="f")
    replayed = InMemoryDataStorage()
    for text in calls:
        hook, _, args = _oplog.decode_call(text)
        await getattr(InMemoryDataStorage, hook)(replayed, *args)
    assert await replayed.export_data() == await store.export_data()
    assert (await replayed.get_session("f")).metadata == {"title": "é", "n": [1]}  # type: ignore[union-attr]


class _Recorder:
    """Records every mutating hook call of an in-memory store, as the browser store does."""

    def __init__(self, store: InMemoryDataStorage, calls: list[str]) -> None:
        self.store = store
        for name in _oplog.mutating_hooks():
            hook = getattr(store, name)

            async def recorded(*args: Any, _hook: Any = hook, _name: str = name) -> Any:
                result = await _hook(*args)
                calls.append(_oplog.encode_call(_name, args, store._last_now))
                return result

            setattr(store, name, recorded)


async def test_a_snapshot_without_session_metadata_reads_with_empty_metadata() -> None:
    store = InMemoryDataStorage()
    for session_id in ("s", "t"):  # two: sessions are kept by column
        await store.initialize_run(workflow_name="w", session_id=session_id, session_metadata={})
    await store.update_session("s", metadata={"t": 1})
    dump = await store._export(None)
    text = _oplog.encode_snapshot(dump, 1, store._last_now, "0")
    assert _oplog.decode_snapshot(text)[0] == dump
    older = json.loads(text)
    del older["dump"]["v"]["sessions"]["c"]["metadata"]  # as a snapshot of before
    decoded = _oplog.decode_snapshot(json.dumps(older))[0]
    assert [s.metadata for s in decoded.sessions] == [{}, {}]


def test_a_history_replacement_reads_back_including_records_older_than_drop() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    change = HistoryReplacement("s", 6, [("user", "x", None, '{"a": 1}', 3)], 8, now, 3)
    record = _oplog.encode_call("_replace_history", (change,), now)
    assert _oplog.decode_call(record)[2] == [change]
    # A record written before drop_through_seq existed (five fields) drops nothing.
    older = record.replace(",3]}]]", "]}]]")
    assert older != record
    assert _oplog.decode_call(older)[2] == [change._replace(drop_through_seq=None)]


async def test_a_snapshot_reads_back_as_the_same_store() -> None:
    store = InMemoryDataStorage()
    run = await store.initialize_run(workflow_name="w", input_schema={"type": "object"})
    for i in range(3):
        await store.add_chat_message(
            agent_id=run.agent_id, session_id=run.session_id, run_id=None, role="user",
            content=f"m{i}",
        )  # fmt: skip
    await store.put_entries("langgraph", [NewEntry("k", value={"v": 1}, data=b"\x00b")])
    dump = await store._export(None)
    assert [e.key for e in dump.entries] == ["k"]  # a snapshot keeps the entries
    decoded, upto, last_now = _oplog.decode_snapshot(
        _oplog.encode_snapshot(dump, 7, store._last_now, "0")
    )
    assert (decoded, upto, last_now) == (dump, 7, store._last_now)
    copy = InMemoryDataStorage()
    await copy._import(decoded)
    assert await copy.export_data() == await store.export_data()


def test_subclasses_of_plain_types_are_recorded_as_their_plain_values() -> None:
    class Role(StrEnum):
        USER = "user"

    class Moment(datetime):
        pass

    now = datetime(2026, 1, 2, tzinfo=UTC)
    args = (Role.USER, IntEnum("Count", "ONE")(1), Moment(2026, 1, 2, tzinfo=UTC), [Role.USER])
    record = _oplog.encode_call("_purge_sessions", args, now)
    decoded = _oplog.decode_call(record)[2]
    assert decoded == ["user", 1, now, ["user"]]
    assert [type(value) for value in decoded] == [str, int, datetime, list]


def test_arguments_the_log_cannot_keep_are_refused_naming_the_place() -> None:
    update = RunUpdate("r", {"x": {1, 2}}, None, None, datetime(2026, 1, 2, tzinfo=UTC))
    with pytest.raises(InvalidDataError) as caught:
        _oplog.encode_args("_update_run", (update,))
    assert caught.value.field == "update.output_data['x']"


def test_replace_messages_is_replayed_but_not_recorded() -> None:
    """It checks its arguments and takes the time itself: the ``_replace_history`` call it makes
    is recorded. Records of it from before still replay."""
    assert "_replace_messages" not in _oplog.mutating_hooks()
    old = '["_replace_messages","2026-01-02T00:00:00+00:00",["s",null,[],null,null]]'
    assert _oplog.decode_call(old)[0] == "_replace_messages"


def test_unknown_types_are_refused() -> None:
    with pytest.raises(_oplog.ReplayError, match="unknown type 'Popen'"):
        _oplog.decode({"$d": "Popen", "v": {}})
    with pytest.raises(TypeError, match="cannot record a set"):
        _oplog.encode({1})


def test_import_runstore_leaves_the_browser_module_alone() -> None:
    script = (
        "import sys, runstore\n"
        "assert 'runstore.browser' not in sys.modules and 'js' not in sys.modules\n"
        "try:\n    import runstore.browser\nexcept ImportError as error:\n    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "runstore.browser needs Pyodide" in done.stdout
