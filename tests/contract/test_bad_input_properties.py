"""Generated bad input (Hypothesis), on every backend:

- any value passed where a payload goes either round-trips exactly or raises
  ``InvalidDataError``, with ``export_data()`` unchanged; it is accepted exactly when it is plain
  JSON within the limits (docs/contract.md, "Limits");
- any mix of good and bad arguments gets the same outcome (error type and field) on the backend
  under test as on the in-memory store.

Like test_model.py each test drives its own event loop, so Hypothesis runs it unchanged
natively and inside Pyodide.
"""

from __future__ import annotations

import asyncio
import math
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

from backends import FACTORIES
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from runstore import DataStorage, InvalidDataError, RunHandle, StorageError, WorkflowState

T = TypeVar("T")
# Examples per backend; fewer inside Pyodide, where each costs several times more.
PAYLOAD_EXAMPLES = 100 if sys.platform == "emscripten" else 300
MIXED_CALL_EXAMPLES = 100 if sys.platform == "emscripten" else 300


def examples(count: int) -> settings:
    return settings(
        max_examples=count,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


INT64 = (-(2**63), 2**63 - 1)
MAX_DEPTH = 200

# -- payloads ----------------------------------------------------------------------------

TEXT = st.text(max_size=6) | st.sampled_from(["", "é🌍", "nul\x00", "lone\udc00", "x" * 300])
NUMBERS = (
    st.integers()
    | st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**53 + 1, 10**30, 10**400])
    | st.floats()
    | st.sampled_from([-0.0, 5e-324, 1.7976931348623157e308, 1e20, 1e-7])
)
OTHER = st.sampled_from([b"bytes", frozenset({1}), {1, 2}, object(), 1j, range(2)])
KEYS = TEXT | st.integers(-3, 3) | st.none() | st.booleans() | st.floats(0, 1)
LEAVES = st.none() | st.booleans() | NUMBERS | TEXT | OTHER
VALUES = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(KEYS, inner, max_size=3)
        | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)
TOP = VALUES | st.dictionaries(st.text(max_size=4), VALUES, max_size=4)

# Where a payload goes: (method, argument); a dict-only place refuses any other value.
PLACES = [
    ("initialize_run", "input_data"),
    ("initialize_run", "input_schema"),
    ("initialize_run", "output_schema"),
    ("initialize_run", "workflow"),
    ("update_run", "output_data"),
    ("update_run", "context"),
    ("save_state", "data"),
    ("save_state", "input_data"),
    ("save_state", "output_data"),
    ("save_state", "token_usage"),
    ("add_chat_message", "metadata"),
]
ANY_VALUE_PLACES = {("save_state", "output_data")}
NONE_ALLOWED_PLACES = {("save_state", "token_usage")}


def is_plain_json(value: Any, depth: int = 0) -> bool:
    """The contract's payload rule, written independently of runstore's check."""
    if value is None or isinstance(value, bool):
        return True
    if type(value) is int:
        return INT64[0] <= value <= INT64[1]
    if type(value) is float:
        return math.isfinite(value)
    if type(value) is str:
        return storable(value)
    if depth >= MAX_DEPTH:
        return False
    if type(value) in (list, tuple):
        return all(is_plain_json(item, depth + 1) for item in value)
    if type(value) is dict:
        return all(
            type(key) is str and storable(key) and is_plain_json(item, depth + 1)
            for key, item in value.items()
        )
    return False


def storable(text: str) -> bool:
    return "\x00" not in text and not any("\ud800" <= char <= "\udfff" for char in text)


def same(stored: Any, given_value: Any) -> bool:
    """Equal, with the same types (bool is not int, int is not float); tuples come back as
    lists and the sign of zero may be lost (docs/contract.md)."""
    if isinstance(given_value, tuple):
        given_value = list(given_value)
    if type(stored) is not type(given_value):
        return False
    if isinstance(given_value, list):
        return len(stored) == len(given_value) and all(map(same, stored, given_value))
    if isinstance(given_value, dict):
        return stored.keys() == given_value.keys() and all(
            same(stored[key], item) for key, item in given_value.items()
        )
    return bool(stored == given_value)


class Driver:
    """One store of a backend with its own event loop and folder."""

    def __init__(self, backend: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.folder = Path(tempfile.mkdtemp(prefix="runstore-bad-input-"))
        self.store: DataStorage = self.run(FACTORIES[backend](self.folder))

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.run(self.store.close())
        self.loop.close()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def driven(backend: str) -> Iterator[Driver]:
    driver = Driver(backend)
    try:
        yield driver
    finally:
        driver.close()


async def stored_value(store: DataStorage, run: RunHandle, method: str, arg: str) -> Any:
    if method == "add_chat_message":
        [message] = await store.get_chat_history(run.session_id, 1)
        await store.pop_message(run.session_id)  # keep the store small
        return message.metadata
    if method == "save_state":
        state = await store.load_state(run.run_id)
        assert state is not None
        return getattr(state, arg)
    if arg in ("input_schema", "output_schema", "workflow"):
        [agent] = await store.list_agents()
        return getattr(agent, arg)
    record = await store.get_run(run.run_id)
    assert record is not None
    return getattr(record, arg)


async def put(store: DataStorage, run: RunHandle, method: str, arg: str, value: Any) -> RunHandle:
    if method == "initialize_run":
        return await store.initialize_run(workflow_name="w", **{arg: value})
    if method == "update_run":
        await store.update_run(run.run_id, **{arg: value})
        return run
    if method == "add_chat_message":
        ids = {"agent_id": run.agent_id, "session_id": run.session_id, "run_id": None}
        await store.add_chat_message(**ids, role="user", content="x", **{arg: value})
        return run
    state = WorkflowState("w")
    setattr(state, arg, value)
    await store.save_state(run.run_id, state)
    return run


def test_any_payload_round_trips_exactly_or_is_refused(backend: str) -> None:
    with driven(backend) as driver:
        store = driver.store
        first = driver.run(store.initialize_run(workflow_name="w", input_data={"seed": 1}))

        @examples(PAYLOAD_EXAMPLES)
        @given(place=st.sampled_from(PLACES), value=TOP)
        def check(place: tuple[str, str], value: Any) -> None:
            method, arg = place
            assume(value is not None or method == "save_state")  # None elsewhere: not given
            allowed = is_plain_json(value) and (
                isinstance(value, dict)
                or place in ANY_VALUE_PLACES
                or (value is None and place in NONE_ALLOWED_PLACES)
            )
            before = driver.run(store.export_data())
            try:
                run = driver.run(put(store, first, method, arg, value))
            except InvalidDataError:
                event("refused")
                assert not allowed, f"plain JSON refused at {method}({arg})"
                assert driver.run(store.export_data()) == before
                return
            event("accepted")
            assert allowed, f"accepted at {method}({arg}) though not plain JSON"
            stored = driver.run(stored_value(store, run, method, arg))
            assert same(stored, value), (stored, value)
            if run != first:  # keep the store small: its export is compared every time
                driver.run(store.delete_session(run.session_id))

        check()


# -- the same outcome on every backend ---------------------------------------------------

KNOWN_SESSION = "s-known"
OWN_RUN = "<the run>"  # stands for the store's own run id (ids are random per store)
OWN_AGENT = "<the agent>"
PLUS_1 = timezone(timedelta(hours=1))
NAMES = st.sampled_from(
    [KNOWN_SESSION, "w", "unknown", "", "x" * 256, "x" * 257, "é" * 257, "a\x00", "\udc00", 7, None]
)
LIMITS = st.sampled_from([None, 0, 1, -1, 2**63 - 1, 2**63, 10**30, 1.5, True, "3"])
PAYLOADS = st.sampled_from([None, {}, {"a": 1}, {"a": 2**63}, {1: 2, "z": 3}, [1], "text"])
DURATIONS = st.sampled_from([None, 0, 0.5, -0.0, -1, 10**400, float("nan"), True, "1"])
TIMES = st.sampled_from(
    [
        datetime(2000, 1, 1, tzinfo=UTC),
        datetime.min.replace(tzinfo=UTC),
        datetime.max.replace(tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=PLUS_1),
        datetime.max.replace(tzinfo=timezone(timedelta(hours=-1))),
        datetime(2000, 1, 1),
        "2000-01-01",
    ]
)
RUN_IDS = NAMES | st.just(OWN_RUN)
AGENT_IDS = NAMES | st.just(OWN_AGENT)

CALLS = st.one_of(
    st.tuples(
        st.just("initialize_run"),
        st.fixed_dictionaries(
            {"workflow_name": NAMES},
            optional={"session_id": NAMES, "external_id": NAMES, "input_data": PAYLOADS},
        ),
    ),
    st.tuples(
        st.just("update_run"),
        st.fixed_dictionaries(
            {"run_id": RUN_IDS},
            optional={"output_data": PAYLOADS, "duration_seconds": DURATIONS},
        ),
    ),
    st.tuples(
        st.just("add_chat_message"),
        st.fixed_dictionaries(
            {
                "agent_id": AGENT_IDS,
                "session_id": NAMES,
                "run_id": RUN_IDS,
                "role": NAMES,
                "content": NAMES,
            },
            optional={"metadata": PAYLOADS, "token_count": LIMITS, "idempotency_key": NAMES},
        ),
    ),
    st.tuples(
        st.just("get_chat_history"),
        st.fixed_dictionaries(
            {"session_id": NAMES},
            optional={
                "limit": LIMITS,
                "max_chars": LIMITS,
                "max_tokens": LIMITS,
                "exclude_run_id": RUN_IDS,
            },
        ),
    ),
    st.tuples(
        st.just("truncate_history"),
        st.fixed_dictionaries({"session_id": NAMES, "after_seq": LIMITS}),
    ),
    st.tuples(
        st.just("fork_session"),
        st.fixed_dictionaries(
            {"session_id": NAMES},
            optional={"through_seq": LIMITS, "new_session_id": NAMES, "external_id": NAMES},
        ),
    ),
    st.tuples(st.just("delete_sessions"), st.fixed_dictionaries({"external_id": NAMES})),
    st.tuples(
        st.just("list_sessions"),
        st.fixed_dictionaries(
            {},
            optional={
                "workflow_name": NAMES,
                "external_id": NAMES,
                "limit": LIMITS,
                "before": NAMES,
            },
        ),
    ),
    st.tuples(st.just("purge_sessions"), st.fixed_dictionaries({"older_than": TIMES})),
    st.tuples(
        st.sampled_from(
            ["get_session", "list_runs", "delete_session", "export_data", "pop_message"]
        ),
        st.fixed_dictionaries({"session_id": NAMES}),
    ),
    st.tuples(
        st.sampled_from(["get_run", "load_state"]), st.fixed_dictionaries({"run_id": RUN_IDS})
    ),
    st.tuples(st.just("delete_agent"), st.fixed_dictionaries({"workflow_name": NAMES})),
)


def outcome(driver: Driver, run: RunHandle, method: str, kwargs: dict[str, Any]) -> Any:
    """What the call did: the error's type and field, or the kind of result it returned."""
    own = {OWN_RUN: run.run_id, OWN_AGENT: run.agent_id}
    args = {k: own.get(v, v) if isinstance(v, str) else v for k, v in kwargs.items()}
    call: Callable[..., Awaitable[Any]] = getattr(driver.store, method)
    try:
        result = driver.run(call(**args))
    except StorageError as exc:
        return type(exc).__name__, getattr(exc, "field", None)
    if isinstance(result, list):
        return "ok", len(result)
    if result is None or isinstance(result, int):
        return "ok", result
    return "ok", type(result).__name__


def test_same_input_same_outcome_as_in_memory(backend: str) -> None:
    with driven(backend) as tested, driven("memory") as reference:
        runs = [
            driver.run(driver.store.initialize_run(workflow_name="w", session_id=KNOWN_SESSION))
            for driver in (tested, reference)
        ]

        @examples(MIXED_CALL_EXAMPLES)
        @given(calls=st.lists(CALLS, min_size=1, max_size=4))
        def check(calls: list[tuple[str, dict[str, Any]]]) -> None:
            for method, kwargs in calls:
                got = outcome(tested, runs[0], method, kwargs)
                expected = outcome(reference, runs[1], method, kwargs)
                assert got == expected, (method, kwargs)

        check()
