"""pytest plugin: runs langgraph-checkpoint's own store tests (tests/test_store.py) against
``RunstoreStore``.

Loaded by ``upstream_store.py`` with ``-p runstore_store_upstream`` inside the downloaded sdist.
With ``RUNSTORE_LANGGRAPH_STORE=<backend>`` (memory, sqlite-sqlite3, sqlite-aiosqlite,
postgres) every ``InMemoryStore`` the tests make (``InMemoryStore(index=None)``, directly or
inside their ``MockAsyncBatchedStore``) is a ``RunstoreStore`` with that index, in a scope of
its own (so it starts empty) of the test's store of that backend (SQLite: a new file per test;
PostgreSQL: a new schema per test, one PostgresDataStorage per event loop). With
``RUNSTORE_LANGGRAPH_STORE=upstream`` nothing is replaced: the reference run on LangGraph's own
``InMemoryStore``.

Excluded tests are listed in ``EXCLUDED`` (the one list, each with its reason), reported and
never counted. ``RUNSTORE_LANGGRAPH_STORE_REPORT`` names a JSON file that receives the counts.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
TESTS = HERE.parents[1]  # runstore's tests/ (backends.py, pg_server.py)
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(HERE.parent))
from framework_tests import PostgresPerLoop  # noqa: E402

MODE = os.environ.get("RUNSTORE_LANGGRAPH_STORE", "upstream")
FILES = ["tests/test_store.py"]

# The one list: test (function name, or name[params]) -> why it does not run against
# RunstoreStore. Every backend.
EXCLUDED: dict[str, str] = {}

_made: list[Any] = []  # the data store of the current test (closed after it)
_stores: list[Any] = []  # RunstoreStores made during the current test
constructed = 0  # stores made so far (a test that made one is a store test)
_folder = Path(tempfile.mkdtemp(prefix="runstore-langgraph-store-"))


def _data_store() -> Any:
    from runstore import InMemoryDataStorage, SqliteDataStorage

    if _made:
        return _made[0]
    if MODE == "memory":
        store: Any = InMemoryDataStorage()
    elif MODE.startswith("sqlite-"):
        path = _folder / f"{uuid.uuid4().hex}.db"
        store = SqliteDataStorage(path, driver=MODE.removeprefix("sqlite-"))
    elif MODE == "postgres":
        from pg_server import shared_dsn

        store = PostgresPerLoop(shared_dsn(), f"lgstore_{uuid.uuid4().hex[:20]}")
    else:
        raise pytest.UsageError(f"RUNSTORE_LANGGRAPH_STORE: unknown backend {MODE!r}")
    _made.append(store)
    return store


def _runstore_in_memory_store_class() -> type:
    from langgraph.store.base import IndexConfig

    from runstore.integrations.langgraph import RunstoreStore

    class InMemoryStore(RunstoreStore):
        """``RunstoreStore`` behind upstream's ``InMemoryStore`` constructor."""

        def __init__(self, *, index: IndexConfig | None = None) -> None:
            global constructed
            constructed += 1
            super().__init__(_data_store(), index=index, scope=f"store-{constructed}")
            _stores.append(self)

    return InMemoryStore


def _count_upstream_stores() -> None:
    from langgraph.store.memory import InMemoryStore

    original = InMemoryStore.__init__

    def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        global constructed
        constructed += 1
        original(self, *args, **kwargs)

    InMemoryStore.__init__ = counting_init  # type: ignore[method-assign]


def pytest_configure(config: pytest.Config) -> None:
    if MODE == "upstream":
        _count_upstream_stores()
        return
    import langgraph.store.memory

    langgraph.store.memory.InMemoryStore = _runstore_in_memory_store_class()  # type: ignore[misc]


def _excluded(item: pytest.Item) -> str | None:
    names = (item.name, getattr(item, "originalname", item.name))
    return next((EXCLUDED[n] for n in names if n in EXCLUDED), None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, dropped = [], []
    for item in items:
        if MODE != "upstream" and (reason := _excluded(item)):
            _REPORT["excluded"].append({"test": item.nodeid, "reason": reason})
            dropped.append(item)
        else:
            kept.append(item)
            if MODE == "upstream":  # LangGraph's own InMemoryStore: scripts/test's reference
                item.user_properties.append(("reference", "InMemoryStore"))
    config.hook.pytest_deselected(items=dropped)
    items[:] = kept


_REPORT: dict[str, Any] = {"store": MODE, "excluded": [], "tests": {}}


@pytest.fixture(autouse=True)
def _runstore_store_bookkeeping(request: pytest.FixtureRequest) -> Any:
    before = constructed
    yield
    request.node.made_a_store = constructed > before
    stores, _made[:] = list(_made), []
    bridges, _stores[:] = [s._bridge for s in _stores], []
    for store in stores:
        if isinstance(store, PostgresPerLoop):
            store.close_all()
    others = [s for s in stores if not isinstance(s, PostgresPerLoop)]
    if others:

        async def close_all() -> None:
            for store in others:
                await store.close()

        asyncio.run(close_all())
    for bridge in bridges:
        bridge.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _REPORT["tests"][item.nodeid] = {
            "outcome": report.outcome,
            "store": bool(getattr(item, "made_a_store", False)),
        }
    elif report.when == "teardown":
        entry = _REPORT["tests"].get(item.nodeid)
        if entry is not None:
            entry["store"] = bool(getattr(item, "made_a_store", False))
            if report.outcome == "failed":
                entry["outcome"] = "failed"
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get("RUNSTORE_LANGGRAPH_STORE_REPORT")
    if target:
        Path(target).write_text(json.dumps(_REPORT, indent=1))
    import shutil

    shutil.rmtree(_folder, ignore_errors=True)
