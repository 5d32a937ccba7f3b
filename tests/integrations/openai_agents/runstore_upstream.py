"""pytest plugin: runs OpenAI Agents' own session tests against ``RunstoreSession``.

Loaded by ``upstream.py`` with ``-p runstore_upstream`` inside the downloaded sdist. With
``RUNSTORE_AGENTS_SESSION=<backend>`` (a name in tests/backends.py) every ``SQLiteSession``
the upstream tests make is a ``RunstoreSession`` on that backend, with the same constructor:
``SQLiteSession(session_id, db_path=":memory:", ..., session_settings=None)``. ``":memory:"``
gives a fresh store; a file path gives the store of that file (SQLite: a runstore database in
that file; memory: one store per path in this process; PostgreSQL: one schema per path, and one
schema per test for ``":memory:"``, with one PostgresDataStorage per event loop).
With ``RUNSTORE_AGENTS_SESSION=upstream`` nothing is replaced: the reference run.

Tests that read ``SQLiteSession`` internals are deselected by name from ``EXCLUDED`` (the one
list, each with its reason) and reported, never counted. ``RUNSTORE_AGENTS_REPORT`` names a
JSON file that receives the counts.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import json
import linecache
import os
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
TESTS = HERE.parents[1]  # runstore's tests/ (backends.py, pg_server.py)
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(HERE.parent))
from framework_tests import PostgresPerLoop  # noqa: E402

MODE = os.environ.get("RUNSTORE_AGENTS_SESSION", "upstream")

# The files whose every test runs, and the files where only the tests that make a
# SQLiteSession run (the rest of those files do not touch session memory).
SESSION_FILES = [
    "tests/memory/test_session.py",
    "tests/memory/test_session_limit.py",
    "tests/memory/test_compaction_suffix.py",
    "tests/memory/test_compaction_model_visibility.py",
    "tests/memory/test_openai_responses_compaction_session.py",
]
RUNNER_FILES = [
    "tests/test_agent_runner.py",
    "tests/test_agent_runner_streamed.py",
    "tests/test_max_turns.py",
    "tests/test_tool_batch_failure_history.py",
    "tests/test_native_tool_failure_history.py",
    "tests/test_programmatic_tool_calling.py",
    "tests/test_run_impl_resume_paths.py",
    "tests/test_tool_failure_boundaries.py",
    "tests/test_soft_cancel.py",
]

_CONNECTIONS = "reads SQLiteSession._connections (its per-thread sqlite3 connections)"
_CORRUPT = "writes corrupt rows into SQLiteSession's own table through _locked_connection"
_FAULTS = "injects faults into SQLiteSession's sqlite3 connection or its tables (sqlite3.connect)"
# The one list: test (function name, or name[params] for some parametrisations) -> why it
# does not run against RunstoreSession. Every backend.
EXCLUDED: dict[str, str] = {
    # tests/memory/test_session.py
    "test_sqlite_session_close_closes_worker_thread_connections": _CONNECTIONS,
    "test_sqlite_session_reaps_connections_from_exited_worker_threads": _CONNECTIONS,
    "test_sqlite_session_closes_retired_connections_before_the_next_allocation": _CONNECTIONS,
    "test_sqlite_session_keeps_connections_of_live_worker_threads": _CONNECTIONS,
    "test_sqlite_session_failed_clear_session_rolls_back": _CONNECTIONS,
    "test_sqlite_session_failed_pop_item_releases_write_lock": _CONNECTIONS,
    "test_sqlite_session_rollback_failure_evicts_connection": _CONNECTIONS,
    "test_sqlite_session_close_retries_quarantined_connection": _CONNECTIONS,
    "test_sqlite_session_post_commit_cancellation_propagates_after_known_outcome": _CONNECTIONS,
    "test_sqlite_session_pop_item_skips_corrupt_most_recent": _CORRUPT,
    "test_sqlite_session_pop_item_returns_none_after_dropping_only_corrupt_rows": _CORRUPT,
    "test_sqlite_session_get_items_limit_skips_corrupt_newest_rows": _CORRUPT,
    "test_sqlite_session_get_items_session_settings_limit_skips_corrupt_rows": _CORRUPT,
    "test_sqlite_session_file_lock_is_shared_across_instances": (
        "reads SQLiteSession._lock and SQLiteSession._file_lock_counts"
    ),
    "test_sqlite_session_failed_add_items_releases_write_lock": _FAULTS,
    "test_sqlite_session_closed_rejects_empty_add_items": (
        "SQLiteSession.close() closes its own connections; a RunstoreSession does not own its "
        "store (close the store instead: then every call raises StorageClosedError)"
    ),
    # tests/memory/test_compaction_suffix.py
    "test_suffix_transaction_rolls_back_failed_insert": _FAULTS,
    "test_failed_encrypted_suffix_transaction_preserves_original_tokens": _FAULTS,
    "test_cancelled_suffix_transaction_settles_before_newer_append": (
        "patches SQLiteSession._insert_items"
    ),
    # tests/test_run_impl_resume_paths.py
    "test_handoff_resume_after_cancelled_compaction_commits": (
        "patches SQLiteSession._insert_items"
    ),
    # tests/memory/test_openai_responses_compaction_session.py
    "test_settled_pop_failure_invalidates_response_chain": _CONNECTIONS,
    "test_settled_clear_failure_invalidates_response_chain": _CONNECTIONS,
}
# Only on some backends: backend -> {test: reason}.
EXCLUDED_ON: dict[str, dict[str, str]] = {}


def _excluded(item: pytest.Item) -> str | None:
    lists = (EXCLUDED, EXCLUDED_ON.get(MODE, {}))
    names = (item.name, getattr(item, "originalname", item.name))
    return next((listed[n] for listed in lists for n in names if n in listed), None)


# -- the runstore-backed SQLiteSession --------------------------------------------------

_made: list[Any] = []  # stores made during the current test (closed after it)
_shared: dict[str, Any] = {}  # file path -> store, for the memory backend
constructed = 0  # sessions made so far (a test that made one is a session test)
_test_id = ""  # the node id of the running test


def _store_for(db_path: str | os.PathLike[str]) -> Any:
    from runstore import InMemoryDataStorage, SqliteDataStorage

    path = str(db_path)
    if MODE == "memory":
        if path == ":memory:":
            return InMemoryDataStorage()
        key = str(Path(path).expanduser().resolve())
        if key not in _shared:
            _shared[key] = InMemoryDataStorage()
        return _shared[key]
    if MODE.startswith("sqlite-"):
        store = SqliteDataStorage(path, driver=MODE.removeprefix("sqlite-"))
    elif MODE == "postgres":
        from pg_server import shared_dsn

        # A schema per file path; ":memory:" sessions of one test share the test's schema
        # (creating a schema per session made the run several times slower).
        where = str(Path(path).resolve()) if path != ":memory:" else f":memory: {_test_id}"
        schema = f"agents_{hashlib.sha1(where.encode()).hexdigest()[:20]}"
        store = PostgresPerLoop(shared_dsn(), schema)
    else:
        raise pytest.UsageError(f"RUNSTORE_AGENTS_SESSION: unknown backend {MODE!r}")
    _made.append(store)
    return store


def _runstore_sqlite_session_class() -> type:
    from agents.memory.session_settings import SessionSettings

    from runstore.integrations.openai_agents import RunstoreSession

    class SQLiteSession(RunstoreSession):
        """``RunstoreSession`` behind upstream's ``SQLiteSession`` constructor."""

        def __init__(
            self,
            session_id: str,
            db_path: str | os.PathLike[str] = ":memory:",
            sessions_table: str = "agent_sessions",
            messages_table: str = "agent_messages",
            session_settings: SessionSettings | dict[str, Any] | None = None,
        ) -> None:
            global constructed
            constructed += 1
            super().__init__(session_id, _store_for(db_path), session_settings=session_settings)
            self.db_path = db_path

        def close(self) -> None:
            """Upstream's sessions close synchronously; the stores are closed after the test."""

    return SQLiteSession


def _count_upstream_sessions() -> None:
    from agents.memory.sqlite_session import SQLiteSession

    original = SQLiteSession.__init__

    def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        global constructed
        constructed += 1
        original(self, *args, **kwargs)

    SQLiteSession.__init__ = counting_init  # type: ignore[method-assign]


def pytest_configure(config: pytest.Config) -> None:
    if MODE == "upstream":
        _count_upstream_sessions()
        return
    import agents
    import agents.memory
    import agents.memory.sqlite_session

    replacement = _runstore_sqlite_session_class()
    for module in (agents, agents.memory, agents.memory.sqlite_session):
        module.SQLiteSession = replacement  # type: ignore[attr-defined]


# -- which tests run ----------------------------------------------------------------------


@functools.cache
def _source_lines(filename: str) -> list[str]:
    return linecache.getlines(filename)


def _makes_a_session(item: pytest.Item) -> bool:
    """Whether the test function's source (``inspect.getsource``'s block, read from one cached
    copy of its file: ``inspect.getsource`` itself scans every loaded module per call, 30 s of
    collection for the runner files) names ``SQLiteSession``."""
    function = getattr(item, "function", None)
    code = getattr(inspect.unwrap(function), "__code__", None) if function is not None else None
    if code is None:
        return False
    lines = _source_lines(code.co_filename)[code.co_firstlineno - 1 :]
    return bool(lines) and "SQLiteSession" in "".join(inspect.getblock(lines))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, dropped = [], []
    for item in items:
        path = str(Path(item.path).relative_to(config.rootpath))
        if path in RUNNER_FILES and not _makes_a_session(item):
            dropped.append(item)  # not a session test: not run, not counted
        elif MODE != "upstream" and (reason := _excluded(item)):
            _REPORT["excluded"].append({"test": item.nodeid, "reason": reason})
            dropped.append(item)
        else:
            kept.append(item)
            if MODE == "upstream":  # the SDK's own SQLiteSession: scripts/test's reference
                item.user_properties.append(("reference", "SQLiteSession"))
    config.hook.pytest_deselected(items=dropped)
    items[:] = kept


# -- per test: did it make a session; close the stores it made ----------------------------

_REPORT: dict[str, Any] = {"session": MODE, "excluded": [], "tests": {}}


@pytest.fixture(autouse=True)
def _runstore_session_bookkeeping(request: pytest.FixtureRequest) -> Any:
    global _test_id
    before, _test_id = constructed, f"{request.node.nodeid} {os.getpid()} {id(request)}"
    yield
    request.node.made_a_session = constructed > before
    stores, _made[:] = list(_made), []
    per_loop = [store for store in stores if isinstance(store, PostgresPerLoop)]
    for store in per_loop:
        store.close_all()
    if len(per_loop) < len(stores):

        async def close_all() -> None:
            for store in stores:
                if not isinstance(store, PostgresPerLoop):
                    await store.close()

        asyncio.run(close_all())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _REPORT["tests"][item.nodeid] = {
            "outcome": report.outcome,
            "session": bool(getattr(item, "made_a_session", False)),
        }
    elif report.when == "teardown":
        entry = _REPORT["tests"].get(item.nodeid)
        if entry is not None:
            entry["session"] = bool(getattr(item, "made_a_session", False))
            if report.outcome == "failed":
                entry["outcome"] = "failed"
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get("RUNSTORE_AGENTS_REPORT")
    if target:
        Path(target).write_text(json.dumps(_REPORT, indent=1))
