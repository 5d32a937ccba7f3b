"""Backend factories: the one place that knows how to build each backend for the tests.

A new backend is one entry here. ``make_store(name, tmp_path)`` returns a fresh, empty store.
Which backends run is chosen with ``--backends`` (default: every one available here).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from runstore import DataStorage, InMemoryDataStorage

Factory = Callable[[Path], Awaitable[DataStorage]]


async def _memory(tmp_path: Path) -> DataStorage:
    return InMemoryDataStorage()


async def _sqlite_sqlite3(tmp_path: Path) -> DataStorage:
    from runstore import SqliteDataStorage

    return await SqliteDataStorage(tmp_path / "runstore.db", driver="sqlite3").open()


async def _sqlite_aiosqlite(tmp_path: Path) -> DataStorage:
    from runstore import SqliteDataStorage

    return await SqliteDataStorage(tmp_path / "runstore.db", driver="aiosqlite").open()


async def _postgres(tmp_path: Path) -> DataStorage:
    """A fresh schema per store in the throwaway cluster (or the server of $RUNSTORE_PG_DSN)."""
    import uuid

    from pg_server import shared_dsn

    from runstore import PostgresDataStorage

    schema = f"test_{uuid.uuid4().hex[:20]}"
    return await PostgresDataStorage(shared_dsn(), schema=schema).open()


async def _postgres_pgbouncer(tmp_path: Path) -> DataStorage:
    """As ``postgres``, through PgBouncer in transaction pooling mode (started in front of the
    throwaway cluster, or ``$RUNSTORE_PGBOUNCER_DSN``)."""
    import uuid

    from pg_server import shared_pgbouncer_dsn

    from runstore import PostgresDataStorage

    schema = f"test_{uuid.uuid4().hex[:20]}"
    store = PostgresDataStorage(shared_pgbouncer_dsn(), schema=schema, pooler="transaction")
    return await store.open()


async def _postgres_ha(tmp_path: Path) -> DataStorage:
    """As ``postgres``, on the multi-host DSN of a pg_auto_failover cluster (a monitor, a
    primary and a synchronous standby, started by tests/pg_server.py; or
    ``$RUNSTORE_PG_HA_DSN``). Not in the default list: run it with ``--backends postgres-ha``."""
    import uuid

    from pg_server import shared_ha_dsn

    from runstore import PostgresDataStorage

    schema = f"test_{uuid.uuid4().hex[:20]}"
    return await PostgresDataStorage(shared_ha_dsn(), schema=schema).open()


async def _browser(tmp_path: Path) -> DataStorage:
    """A durable store in IndexedDB (runs only in Pyodide in a browser: tests/browser)."""
    import uuid

    from runstore.browser import open_store

    return await open_store(f"test-{uuid.uuid4().hex}")


FACTORIES: dict[str, Factory] = {
    "memory": _memory,
    "sqlite-sqlite3": _sqlite_sqlite3,
    "sqlite-aiosqlite": _sqlite_aiosqlite,
    "postgres": _postgres,
    "postgres-pgbouncer": _postgres_pgbouncer,
    "postgres-ha": _postgres_ha,
    "browser": _browser,
}
BROWSER_ONLY = {"browser"}
ON_REQUEST = {"postgres-ha"}  # run only when named: it starts a three-server cluster


def default_backends() -> list[str]:
    chosen = os.environ.get("RUNSTORE_BACKENDS")
    if chosen:
        return chosen.split(",")
    in_browser = sys.platform == "emscripten"
    return [
        name
        for name in FACTORIES
        if name not in ON_REQUEST and (in_browser or name not in BROWSER_ONLY)
    ]
