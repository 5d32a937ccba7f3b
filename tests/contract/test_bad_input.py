"""Bad input, sent as a hostile caller would: every case raises the contract's error naming the
field, leaves the store unchanged, and keeps its message short (docs/contract.md, "Limits")."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from helpers import say, start

from runstore import (
    ChatMsg,
    DataStorage,
    Entry,
    InvalidDataError,
    NewEntry,
    NotFoundError,
    RunHandle,
    StorageError,
    WorkflowState,
)

Call = Callable[[DataStorage, RunHandle], Awaitable[object]]

LONG = "x" * 257  # one character over the limit for ids, names, roles and external ids
WIDE = "é" * 257  # the same in characters; twice as many UTF-8 bytes
HUGE = "h" * 100_000  # error messages must not repeat it
# Far deeper than the 200 levels allowed. Pyodide itself overflows its stack freeing data
# nested a few thousand levels deep, so it gets 1,000 (natively 10,000).
FAR_TOO_DEEP = 1_000 if sys.platform == "emscripten" else 10_000
MAX_ID = "🌍" * 256  # the longest id a store takes
PLUS_1 = timezone(timedelta(hours=1))
MINUS_1 = timezone(timedelta(hours=-1))
MAX_MESSAGE = 400  # characters: messages quote at most a short prefix of caller text


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def deep_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def itself() -> dict[str, Any]:
    value: dict[str, Any] = {}
    value["self"] = value
    return value


# The field of data nested too deep: ten steps, then "…" (the field stays short).
DEEP = "['a']" * 10 + "…"
SELF = "['self']" * 10 + "…"


def state(**changes: Any) -> WorkflowState:
    """A state changed after it was made, as a caller may do (no check runs on assignment)."""
    made = WorkflowState("chat")
    for name, value in changes.items():
        setattr(made, name, value)
    return made


def init(**kwargs: Any) -> Call:
    return lambda s, r: s.initialize_run(**{"workflow_name": "chat", **kwargs})


def update(**kwargs: Any) -> Call:
    return lambda s, r: s.update_run(r.run_id, **kwargs)


def save(**changes: Any) -> Call:
    return lambda s, r: s.save_state(r.run_id, state(**changes))


def add(**kwargs: Any) -> Call:
    def call(s: DataStorage, r: RunHandle) -> Awaitable[object]:
        ids = {"agent_id": r.agent_id, "session_id": r.session_id, "run_id": r.run_id}
        return s.add_chat_message(**{**ids, "role": "user", "content": "hi", **kwargs})

    return call


def meta(metadata: Any) -> Call:
    return lambda s, r: s.update_session(r.session_id, metadata=metadata)


def put(*entries: NewEntry, scope: str = "s") -> Call:
    return lambda s, r: s.put_entries(scope, list(entries))


def batch(*messages: ChatMsg) -> Call:
    return lambda s, r: s.add_chat_messages(r.session_id, list(messages))


def history(session_id: str | None = None, **kwargs: Any) -> Call:
    return lambda s, r: s.get_chat_history(session_id or r.session_id, **kwargs)


def imported(path: list[Any], value: Any) -> Call:
    """Import the store's own export with one value replaced (refused before any id clash)."""

    async def call(s: DataStorage, r: RunHandle) -> None:
        document = json.loads(json.dumps(await s.export_data()))
        node = document
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        await s.import_data(document)

    return call


@dataclass(frozen=True)
class Case:
    name: str
    call: Call
    field: str
    error: type[StorageError] = InvalidDataError


CASES = [
    # ids, names, roles, external ids: non-empty, storable, at most 256 characters
    Case("workflow_name empty", init(workflow_name=""), "workflow_name"),
    Case("workflow_name None", init(workflow_name=None), "workflow_name"),
    Case("workflow_name int", init(workflow_name=5), "workflow_name"),
    Case("workflow_name 257 chars", init(workflow_name=LONG), "workflow_name"),
    Case("workflow_name 257 wide chars", init(workflow_name=WIDE), "workflow_name"),
    Case("workflow_name huge", init(workflow_name=HUGE), "workflow_name"),
    Case("workflow_name NUL", init(workflow_name="a\x00b"), "workflow_name"),
    Case("workflow_name surrogate", init(workflow_name="a\udc00"), "workflow_name"),
    Case("session_id 257 chars", init(session_id=LONG), "session_id"),
    Case("session_id wide", init(session_id=WIDE), "session_id"),
    Case("session_id empty", init(session_id=""), "session_id"),
    Case("external_id 257 chars", init(external_id=LONG), "external_id"),
    Case("external_id wide", init(external_id=WIDE), "external_id"),
    Case("external_id int", init(external_id=7), "external_id"),
    Case("external_id surrogate", init(external_id="\ud800"), "external_id"),
    Case("description int", init(description=5), "description"),
    Case("description NUL", init(description="\x00"), "description"),
    # payloads: plain JSON, 64-bit integers, at most 200 levels deep
    Case("int 2**63", init(input_data={"x": 2**63}), "input_data['x']"),
    Case("int -2**63-1", init(input_data={"x": -(2**63) - 1}), "input_data['x']"),
    Case("int 10**5000", init(input_data={"x": 10**5000}), "input_data['x']"),
    Case("int 10**30 in a list", init(workflow={"x": [0, 10**30]}), "workflow['x'][1]"),
    Case("float nan", init(input_schema={"x": float("nan")}), "input_schema['x']"),
    Case("float -inf", init(output_schema={"x": float("-inf")}), "output_schema['x']"),
    Case("nesting 201 levels", init(input_data=nested(200)), "input_data" + DEEP),
    Case("nesting far too deep", init(input_data=nested(FAR_TOO_DEEP)), "input_data" + DEEP),
    Case(
        "list nesting far too deep",
        update(context={"l": deep_list(FAR_TOO_DEEP)}),
        "context['l']" + "[0]" * 9 + "…",
    ),
    Case("payload contains itself", init(input_data=itself()), "input_data" + SELF),
    Case("mixed key types", init(input_data={1: 2, "zz": 3}), "input_data"),
    Case("None key", update(output_data={"a": {None: 1}}), "output_data['a']"),
    Case("huge key with NUL", init(input_data={HUGE + "\x00": 1}), f"input_data key {'h' * 40!r}…"),
    Case("set value", update(context={"s": {1}}), "context['s']"),
    Case("bytes value", update(output_data={"b": b"x"}), "output_data['b']"),
    Case("payload not a dict", update(output_data=[1]), "output_data"),
    Case("int too big for output", update(output_data={"n": 2**64}), "output_data['n']"),
    # update_run: duration_seconds is a finite, non-negative float
    Case("duration 10**400", update(duration_seconds=10**400), "duration_seconds"),
    Case("duration -1", update(duration_seconds=-1), "duration_seconds"),
    Case("duration nan", update(duration_seconds=float("nan")), "duration_seconds"),
    Case("duration inf", update(duration_seconds=float("inf")), "duration_seconds"),
    Case("duration str", update(duration_seconds="1"), "duration_seconds"),
    Case("duration bool", update(duration_seconds=True), "duration_seconds"),
    Case("update run_id 257", lambda s, r: s.update_run(LONG, context={}), "run_id"),
    Case("update run_id huge", lambda s, r: s.update_run(HUGE), "run_id"),
    # save_state: checked before it is converted
    Case("state data contains itself", save(data=itself()), "state.data" + SELF),
    Case("state data far too deep", save(data=nested(FAR_TOO_DEEP)), "state.data" + DEEP),
    Case("state mixed key types", save(data={1: 2, "zz": 3}), "state.data"),
    Case("state int 2**64", save(data={"x": 2**64}), "state.data['x']"),
    Case("state int 10**5000", save(output_data=10**5000), "state.output_data"),
    Case("state nan", save(token_usage={"t": float("nan")}), "state.token_usage['t']"),
    Case("state duration 10**400", save(duration_seconds=10**400), "state.duration_seconds"),
    Case("state duration -0.5", save(duration_seconds=-0.5), "state.duration_seconds"),
    Case("state trace not text", save(trace=["a", 1]), "state.trace"),
    Case("state trace NUL", save(trace=["a\x00"]), "state.trace[0]"),
    Case("state status huge", save(status=HUGE), "state.status"),
    Case("state status unhashable", save(status=["running"]), "state.status"),
    Case("state data a list", save(data=[1]), "state.data"),
    Case("state workflow_name empty", save(workflow_name=""), "state.workflow_name"),
    Case("state node surrogate", save(current_node="\udfff"), "state.current_node"),
    Case("state not a state", lambda s, r: s.save_state(r.run_id, {"x": 1}), "state"),  # type: ignore[arg-type]
    Case("save_state run_id 257", lambda s, r: s.save_state(LONG, state()), "run_id"),
    Case("load_state run_id 257", lambda s, r: s.load_state(LONG), "run_id"),
    # chat messages
    Case("role 257 chars", add(role=LONG), "role"),
    Case("role empty", add(role=""), "role"),
    Case("role wide", add(role=WIDE), "role"),
    Case("message session_id 257", add(session_id=LONG), "session_id"),
    Case("message agent_id huge", add(agent_id=HUGE), "agent_id"),
    Case("message run_id 257", add(run_id=LONG), "run_id"),
    Case("content int", add(content=5), "content"),
    Case("content NUL", add(content="a\x00"), "content"),
    # get_chat_history: limit and max_chars are None or 0 .. 2**63-1
    Case("limit 2**63", history(limit=2**63), "limit"),
    Case("limit 10**30", history(limit=10**30), "limit"),
    Case("limit -1", history(limit=-1), "limit"),
    Case("limit float", history(limit=1.5), "limit"),
    Case("limit bool", history(limit=True), "limit"),
    Case("limit str", history(limit="5"), "limit"),
    Case("limit 2**63 excluding a run", history(limit=2**63, exclude_run_id="r"), "limit"),
    Case("max_chars 2**63", history(max_chars=2**63), "max_chars"),
    Case("max_chars -1", history(max_chars=-1), "max_chars"),
    Case("exclude_run_id 257", history(exclude_run_id=LONG), "exclude_run_id"),
    Case("history session_id 257", history(session_id=LONG), "session_id"),
    # sessions, agents, runs
    Case("list_sessions limit 2**63", lambda s, r: s.list_sessions(limit=2**63), "limit"),
    Case("list_sessions limit 10**30", lambda s, r: s.list_sessions(limit=10**30), "limit"),
    Case("list_sessions limit -5", lambda s, r: s.list_sessions(limit=-5), "limit"),
    Case(
        "list_sessions workflow_name 257",
        lambda s, r: s.list_sessions(workflow_name=LONG),
        "workflow_name",
    ),
    Case(
        "list_sessions external_id 257",
        lambda s, r: s.list_sessions(external_id=LONG),
        "external_id",
    ),
    Case("list_sessions before 257", lambda s, r: s.list_sessions(before=LONG), "before"),
    Case("get_session 257", lambda s, r: s.get_session(LONG), "session_id"),
    Case("get_run 257", lambda s, r: s.get_run(LONG), "run_id"),
    Case("list_runs 257", lambda s, r: s.list_runs(LONG), "session_id"),
    Case("delete_session 257", lambda s, r: s.delete_session(LONG), "session_id"),
    Case("delete_agent 257", lambda s, r: s.delete_agent(LONG), "workflow_name"),
    Case("export_data 257", lambda s, r: s.export_data(LONG), "session_id"),
    # purge_sessions: a timezone-aware datetime that can be converted to UTC
    Case(
        "purge at year 1, +01:00",
        lambda s, r: s.purge_sessions(datetime(1, 1, 1, tzinfo=PLUS_1)),
        "older_than",
    ),
    Case(
        "purge at datetime.max, -01:00",
        lambda s, r: s.purge_sessions(datetime.max.replace(tzinfo=MINUS_1)),
        "older_than",
    ),
    Case("purge naive", lambda s, r: s.purge_sessions(datetime(2024, 1, 1)), "older_than"),
    Case("purge str", lambda s, r: s.purge_sessions("2024-01-01"), "older_than"),  # type: ignore[arg-type]
    # import_data: the same limits, checked before anything is written
    Case("import seq 2**63", imported(["messages", 0, "seq"], 2**63), "messages[0].seq"),
    Case("import seq 2**53", imported(["messages", 0, "seq"], 2**53), "messages[0].seq"),
    Case("import seq bool", imported(["messages", 0, "seq"], True), "messages[0].seq"),
    Case("import seq float", imported(["messages", 0, "seq"], 1.0), "messages[0].seq"),
    Case(
        "import created_at year 1, +01:00",
        imported(["messages", 0, "created_at"], "0001-01-01T00:00:00+01:00"),
        "messages[0].created_at",
    ),
    Case(
        "import updated_at 9999-12-31, -01:00",
        imported(["sessions", 0, "updated_at"], "9999-12-31T23:59:00-01:00"),
        "sessions[0].updated_at",
    ),
    Case(
        "import updated_at 9999-01-01 UTC",
        imported(["agents", 0, "updated_at"], "9999-01-01T00:00:00+00:00"),
        "agents[0].updated_at",
    ),
    Case(
        "import created_at 0001-01-01 UTC",
        imported(["runs", 0, "created_at"], "0001-01-01T00:00:00+00:00"),
        "runs[0].created_at",
    ),
    Case(
        "import created_at naive",
        imported(["runs", 0, "created_at"], "2024-01-01T00:00:00"),
        "runs[0].created_at",
    ),
    Case("import agent id 257", imported(["agents", 0, "id"], LONG), "agents[0].id"),
    Case("import agent name huge", imported(["agents", 0, "name"], HUGE), "agents[0].name"),
    Case("import session id wide", imported(["sessions", 0, "id"], WIDE), "sessions[0].id"),
    Case(
        "import external_id 257",
        imported(["sessions", 0, "external_id"], LONG),
        "sessions[0].external_id",
    ),
    Case("import role 257", imported(["messages", 0, "role"], LONG), "messages[0].role"),
    Case(
        "import duration 10**400",
        imported(["runs", 0, "duration_seconds"], 10**400),
        "runs[0].duration_seconds",
    ),
    Case(
        "import int 2**64 in a payload",
        imported(["runs", 0, "input_data"], {"x": 2**64}),
        "runs[0].input_data['x']",
    ),
    Case(
        "import state with mixed keys",
        imported(["runs", 0, "state"], {"workflow_name": "w", 1: 2}),
        "runs[0].state",
    ),
    Case(
        "import state nan",
        imported(["runs", 0, "state"], {"workflow_name": "w", "data": {"x": float("nan")}}),
        "runs[0].state.data['x']",
    ),
    Case(
        "import state containing itself",
        imported(["runs", 0, "state"], {"workflow_name": "w", "data": itself()}),
        "runs[0].state.data" + SELF,
    ),
    Case(
        "import state unknown huge field",
        imported(["runs", 0, "state"], {"workflow_name": "w", HUGE: 1}),
        "runs[0].state",
    ),
    Case("import version huge", imported(["version"], 10**5000), "version"),
    Case("import not a dict", lambda s, r: s.import_data([]), "document"),  # type: ignore[arg-type]
    # messages v2: metadata is a payload, counts and seqs are ints in range, keys are ids
    Case("metadata int 2**64", add(metadata={"x": 2**64}), "metadata['x']"),
    Case("metadata nan", add(metadata={"x": [float("nan")]}), "metadata['x'][0]"),
    Case("metadata not a dict", add(metadata=[1]), "metadata"),
    Case("metadata mixed keys", add(metadata={1: 2, "zz": 3}), "metadata"),
    Case("metadata far too deep", add(metadata=nested(FAR_TOO_DEEP)), "metadata" + DEEP),
    Case("token_count -1", add(token_count=-1), "token_count"),
    Case("token_count 2**63", add(token_count=2**63), "token_count"),
    Case("token_count float", add(token_count=1.0), "token_count"),
    Case("idempotency_key 257", add(idempotency_key=LONG), "idempotency_key"),
    Case("idempotency_key empty", add(idempotency_key=""), "idempotency_key"),
    Case("max_tokens 2**63", history(max_tokens=2**63), "max_tokens"),
    Case("max_tokens -1", history(max_tokens=-1), "max_tokens"),
    Case("pop_message 257", lambda s, r: s.pop_message(LONG), "session_id"),
    Case(
        "truncate after_seq 2**63",
        lambda s, r: s.truncate_history(r.session_id, after_seq=2**63),
        "after_seq",
    ),
    Case(
        "truncate after_seq None",
        lambda s, r: s.truncate_history(r.session_id, after_seq=None),  # type: ignore[arg-type]
        "after_seq",
    ),
    Case(
        "truncate after_seq -1",
        lambda s, r: s.truncate_history(r.session_id, after_seq=-1),
        "after_seq",
    ),
    Case(
        "fork through_seq 10**30",
        lambda s, r: s.fork_session(r.session_id, through_seq=10**30),
        "through_seq",
    ),
    Case(
        "fork new_session_id 257",
        lambda s, r: s.fork_session(r.session_id, new_session_id=LONG),
        "new_session_id",
    ),
    Case(
        "fork external_id 257",
        lambda s, r: s.fork_session(r.session_id, external_id=LONG),
        "external_id",
    ),
    Case(
        "delete_sessions external_id 257",
        lambda s, r: s.delete_sessions(external_id=LONG),
        "external_id",
    ),
    Case(
        "delete_sessions external_id int",
        lambda s, r: s.delete_sessions(external_id=5),  # type: ignore[arg-type]
        "external_id",
    ),
    Case("batch role 257", batch(ChatMsg(LONG, "x")), "messages[0].role"),
    Case(
        "batch metadata 2**64",
        batch(ChatMsg("user", "x"), ChatMsg("user", "y", metadata={"n": 2**64})),
        "messages[1].metadata['n']",
    ),
    Case(
        "batch token_count 2**63",
        batch(ChatMsg("user", "x", token_count=2**63)),
        "messages[0].token_count",
    ),
    Case("batch run_id wide", batch(ChatMsg("user", "x", run_id=WIDE)), "messages[0].run_id"),
    Case(
        "batch session_id 257",
        lambda s, r: s.add_chat_messages(LONG, [ChatMsg("user", "x")]),
        "session_id",
    ),
    Case(
        "replace after_seq 2**63",
        lambda s, r: s.replace_history(r.session_id, after_seq=2**63, messages=[]),
        "after_seq",
    ),
    Case(
        "replace if_newest_seq 10**30",
        lambda s, r: s.replace_history(
            r.session_id, after_seq=0, messages=[], if_newest_seq=10**30
        ),
        "if_newest_seq",
    ),
    Case(
        "replace drop_through_seq 2**63",
        lambda s, r: s.replace_history(
            r.session_id, after_seq=2**63 - 1, messages=[], drop_through_seq=2**63
        ),
        "drop_through_seq",
    ),
    Case(
        "replace drop_through_seq above after_seq",
        lambda s, r: s.replace_history(r.session_id, after_seq=0, messages=[], drop_through_seq=1),
        "drop_through_seq",
    ),
    Case(
        "history_after after_seq 2**63",
        lambda s, r: s.get_chat_history_after(r.session_id, after_seq=2**63),
        "after_seq",
    ),
    Case(
        "import token_count 2**63",
        imported(["messages", 0, "token_count"], 2**63),
        "messages[0].token_count",
    ),
    Case(
        "import last_seq 2**53",
        imported(["sessions", 0, "last_seq"], 2**53),
        "sessions[0].last_seq",
    ),
    Case(
        "import metadata nan",
        imported(["messages", 0, "metadata"], {"x": float("inf")}),
        "messages[0].metadata['x']",
    ),
    Case(
        "import idempotency_key 257",
        imported(["messages", 0, "idempotency_key"], LONG),
        "messages[0].idempotency_key",
    ),
    # entries: scopes, keys and tags are names; values are payloads; limits as above
    Case("entry scope 257", put(NewEntry("k"), scope=LONG), "scope"),
    Case("entry key 257", put(NewEntry(LONG)), "entries[0].key"),
    Case("entry key repeated, huge", put(NewEntry(HUGE), NewEntry(HUGE)), "entries[0].key"),
    Case("entry tag 257", put(NewEntry("k", tag=LONG)), "entries[0].tag"),
    Case("entry value 2**64", put(NewEntry("k", value={"n": 2**64})), "entries[0].value['n']"),
    Case(
        "entry value far too deep",
        put(NewEntry("a"), NewEntry("k", value=nested(FAR_TOO_DEEP))),
        "entries[1].value" + DEEP,
    ),
    Case("entry data str", put(NewEntry("k", data="text")), "entries[0].data"),  # type: ignore[arg-type]
    Case("get_entry key 257", lambda s, r: s.get_entry("s", LONG), "key"),
    Case("list_entries limit 2**63", lambda s, r: s.list_entries("s", limit=2**63), "limit"),
    Case("list_entries prefix NUL", lambda s, r: s.list_entries("s", prefix="a\x00"), "prefix"),
    Case(
        "merge_entry expect_version 2**63",
        lambda s, r: s.merge_entry("s", "k", {"a": 1}, expect_version=2**63),
        "expect_version",
    ),
    Case(
        "merge_entry patch nan",
        lambda s, r: s.merge_entry("s", "k", {"a": float("nan")}),
        "patch['a']",
    ),
    Case(
        "copy_entries to_prefix 257",
        lambda s, r: s.copy_entries("s", prefix="k", to_prefix=LONG),
        "to_prefix",
    ),
    Case("delete_entries tag 257", lambda s, r: s.delete_entries("s", tags=[LONG]), "tags[0]"),
    Case(
        "refresh_entries naive expires_at",
        lambda s, r: s.refresh_entries("s", ["k"], expires_at=datetime(9000, 1, 1)),
        "expires_at",
    ),
    Case(
        "refresh_entries expires_at str",
        lambda s, r: s.refresh_entries("s", ["k"], expires_at="2090-01-01"),  # type: ignore[arg-type]
        "expires_at",
    ),
    Case(
        "refresh_entries keys str",
        lambda s, r: s.refresh_entries("s", "k", expires_at=None),
        "keys",
    ),
    Case(
        "refresh_entries key int",
        lambda s, r: s.refresh_entries("s", ["k", 1], expires_at=None),  # type: ignore[list-item]
        "keys[1]",
    ),
    Case(
        "refresh_entries key 257",
        lambda s, r: s.refresh_entries("s", [LONG], expires_at=None),
        "keys[0]",
    ),
    # unknown ids in writes: NotFoundError naming the field (the longest id a store takes)
    Case("update unknown run", lambda s, r: s.update_run(MAX_ID), "run_id", NotFoundError),
    Case(
        "save_state unknown run",
        lambda s, r: s.save_state(MAX_ID, state()),
        "run_id",
        NotFoundError,
    ),
    Case("message unknown session", add(session_id=MAX_ID), "session_id", NotFoundError),
    Case("message unknown run", add(run_id=MAX_ID), "run_id", NotFoundError),
    Case(
        "delete unknown session",
        lambda s, r: s.delete_session(MAX_ID),
        "session_id",
        NotFoundError,
    ),
    Case("pop unknown session", lambda s, r: s.pop_message(MAX_ID), "session_id", NotFoundError),
    Case(
        "truncate unknown session",
        lambda s, r: s.truncate_history(MAX_ID, after_seq=0),
        "session_id",
        NotFoundError,
    ),
    Case(
        "fork unknown session",
        lambda s, r: s.fork_session(MAX_ID),
        "session_id",
        NotFoundError,
    ),
    Case(
        "delete unknown agent",
        lambda s, r: s.delete_agent(MAX_ID),
        "workflow_name",
        NotFoundError,
    ),
    # session metadata: a JSON object, as payloads (initialize_run and update_session)
    Case("session_metadata a list", init(session_metadata=["t"]), "session_metadata"),
    Case("session_metadata a str", init(session_metadata="{}"), "session_metadata"),
    Case("session_metadata int key", init(session_metadata={1: "a"}), "session_metadata"),
    Case(
        "session_metadata nan", init(session_metadata={"x": float("nan")}), "session_metadata['x']"
    ),
    Case(
        "session_metadata too deep", init(session_metadata=nested(201)), "session_metadata" + DEEP
    ),
    Case(
        "session_metadata of a known session",
        lambda s, r: s.initialize_run(
            workflow_name="chat", session_id=r.session_id, session_metadata={"t": {2}}
        ),
        "session_metadata['t']",
    ),
    Case("update_session None", meta(None), "metadata"),
    Case("update_session a list", meta(["title"]), "metadata"),
    Case("update_session set value", meta({"tags": {"a"}}), "metadata['tags']"),
    Case("update_session bytes key", meta({b"k": 1}), "metadata"),
    Case("update_session int 2**64", meta({"n": [2**64]}), "metadata['n'][0]"),
    Case("update_session contains itself", meta(itself()), "metadata" + SELF),
    Case("update_session NUL", meta({"title": "a\x00"}), "metadata['title']"),
    Case(
        "update_session session_id 257",
        lambda s, r: s.update_session(LONG, metadata={}),
        "session_id",
    ),
    Case(
        "update_session unknown session",
        lambda s, r: s.update_session(MAX_ID, metadata={"title": "t"}),
        "session_id",
        NotFoundError,
    ),
]


async def seeded(store: DataStorage) -> RunHandle:
    """A store holding one of everything, so that a change would show in its export."""
    run = await start(
        store, "chat", external_id="user-1", input_data={"q": 1}, session_metadata={"t": "a"}
    )
    await say(store, run, "hello")
    await store.save_state(run.run_id, WorkflowState("chat", data={"n": 1}))
    await store.update_run(run.run_id, output_data={"a": 1}, duration_seconds=0.5)
    await store.put_entries("s", [NewEntry("k", value={"v": 1}, data=b"d", tag="t")])
    return run


async def everything(store: DataStorage) -> tuple[dict[str, Any], list[Entry]]:
    """What a refused call must leave unchanged: the export (entries included)."""
    return await store.export_data(), await store.list_entries("s")


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_bad_input_is_refused(store: DataStorage, case: Case) -> None:
    run = await seeded(store)
    before = await everything(store)
    with pytest.raises(StorageError) as caught:  # any other exception fails the test
        await case.call(store, run)
    assert (type(caught.value), getattr(caught.value, "field", None)) == (case.error, case.field)
    assert len(str(caught.value)) <= MAX_MESSAGE
    assert await everything(store) == before


def test_case_names_are_unique() -> None:
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: WorkflowState("w", duration_seconds=10**400), "state.duration_seconds"),
        (lambda: WorkflowState("w", status="done"), "state.status"),
        (lambda: WorkflowState(""), "state.workflow_name"),
        (lambda: WorkflowState("w", data=[]), "state.data"),
        (
            lambda: WorkflowState.from_json('{"workflow_name": "w", "data": {"x": NaN}}'),
            "state.data['x']",
        ),
        (
            lambda: WorkflowState.from_json('{"workflow_name": "w", "output_data": Infinity}'),
            "state.output_data",
        ),
        (
            lambda: WorkflowState.from_json('{"workflow_name": "w", "data": {"x": -Infinity}}'),
            "state.data['x']",
        ),
        (
            lambda: WorkflowState.from_json('{"workflow_name": "w", "data": {"x": 1e400}}'),
            "state.data['x']",
        ),
        (
            lambda: WorkflowState.from_json(
                '{"workflow_name": "w", "data": {"x": 1' + "0" * 30 + "}}"
            ),
            "state.data['x']",
        ),
        (
            lambda: WorkflowState.from_json(
                '{"workflow_name": "w", "data": {"x": 1' + "0" * 5000 + "}}"
            ),
            "state",
        ),
        (lambda: WorkflowState.from_json("[" * 100_000 + "]" * 100_000), "state"),
        (
            lambda: WorkflowState.from_json(
                '{"workflow_name": "w", "data": {"l": ' + "[" * 300 + "]" * 300 + "}}"
            ),
            "state",
        ),
        (lambda: WorkflowState.from_json(b"\xff"), "state"),
        (lambda: WorkflowState.from_json(5), "state"),  # type: ignore[arg-type]
        (lambda: WorkflowState.from_json('"w"'), "state"),
        (lambda: WorkflowState.from_dict({1: 2, "zz": 3}), "state"),
        (
            lambda: WorkflowState.from_dict({"workflow_name": "w", "data": itself()}),
            "state.data" + SELF,
        ),
        (lambda: state(data=itself()).to_json(), "state.data" + SELF),
        (lambda: state(data=nested(FAR_TOO_DEEP)).to_dict(), "state.data" + DEEP),
    ],
)
def test_bad_states_are_refused_before_conversion(make: Callable[[], object], field: str) -> None:
    with pytest.raises(InvalidDataError) as caught:
        make()
    assert caught.value.field == field
    assert len(str(caught.value)) <= MAX_MESSAGE


@pytest.mark.parametrize(
    ("value", "field"),
    [(2**63 - 1, None), (-(2**63), None), (2**63, "x"), (-(2**63) - 1, "x")],
)
async def test_payload_integers_are_64_bit(
    store: DataStorage, value: int, field: str | None
) -> None:
    if field is not None:
        with pytest.raises(InvalidDataError) as caught:
            await store.initialize_run(workflow_name="w", input_data={"x": value})
        assert caught.value.field == f"input_data[{field!r}]"
        return
    run = await store.initialize_run(workflow_name="w", input_data={"x": value})
    record = await store.get_run(run.run_id)
    assert record is not None and record.input_data == {"x": value}


async def test_names_of_256_characters_are_kept(store: DataStorage) -> None:
    """The limit itself is allowed, also in 4-byte characters (PostgreSQL indexes them)."""
    for char in ("n", "🌍"):
        name = char * 256
        run = await store.initialize_run(workflow_name=name, session_id=name, external_id=name)
        message = await store.add_chat_message(
            agent_id=run.agent_id, session_id=name, run_id=run.run_id, role=name, content=None
        )
        assert message.role == name
        [session] = await store.list_sessions(workflow_name=name, external_id=name)
        assert session.id == name
        document = await store.export_data(name)
        await store.delete_agent(name)
        await store.import_data(document)
        assert await store.export_data(name) == document
        await store.delete_agent(name)


async def test_payload_nesting_of_200_levels_is_kept(store: DataStorage) -> None:
    deepest = WorkflowState("w", data=nested(199), trace=["[" * 300, "{" * 300])
    assert WorkflowState.from_json(deepest.to_json()) == deepest  # brackets in strings: text
    run = await store.initialize_run(workflow_name="w", input_data=nested(199))
    record = await store.get_run(run.run_id)
    assert record is not None and record.input_data == nested(199)
    await store.save_state(run.run_id, WorkflowState("w", data=nested(199)))
    assert await store.load_state(run.run_id) == WorkflowState("w", data=nested(199))


async def test_huge_limits_mean_the_same_everywhere(store: DataStorage) -> None:
    """The largest limit is 2**63-1: it returns everything, like None, on every backend."""
    run = await seeded(store)
    await say(store, run, "again", role="assistant")
    everything = await store.get_chat_history(run.session_id, None)
    largest = 2**63 - 1
    assert await store.get_chat_history(run.session_id, largest) == everything
    assert await store.get_chat_history(run.session_id, largest, exclude_run_id="r") == everything
    assert await store.get_chat_history(run.session_id, largest, max_chars=largest) == everything
    assert await store.list_sessions(limit=largest) == await store.list_sessions(limit=None)
    assert await store.get_chat_history_after(run.session_id, limit=largest) == everything
    assert await store.get_chat_history_after(run.session_id, after_seq=largest) == []
    assert (
        await store.replace_history(
            run.session_id, after_seq=largest, messages=[], drop_through_seq=largest
        )
        == []
    )
    assert await store.get_chat_history(run.session_id, None) == []


async def test_times_at_the_ends_of_datetime(store: DataStorage) -> None:
    """Purging with any time that converts to UTC works. Imported times are from 0001-01-02
    to before 9999-01-01 UTC, so later activity times always fit."""
    run = await seeded(store)
    assert await store.purge_sessions(datetime.min.replace(tzinfo=UTC)) == 0
    assert await store.purge_sessions(datetime(1, 1, 1, 1, tzinfo=PLUS_1)) == 0
    document = await store.export_data()
    assert await store.purge_sessions(datetime.max.replace(tzinfo=UTC)) == 1
    assert await store.get_session(run.session_id) is None
    await store.delete_agent("chat")
    await store.delete_entries("s")  # an import refuses entries that exist already
    for item in (document["agents"][0], document["sessions"][0]):
        item["created_at"] = "0001-01-02T00:00:00+00:00"
        item["updated_at"] = "9998-12-31T23:59:59.999999+00:00"
    await store.import_data(document)
    assert await store.export_data() == document
    follow_up = await start(store, "chat", session_id=run.session_id)
    assert await say(store, follow_up, "later") == 2
