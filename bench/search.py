"""``search_messages`` at 10,000 and 1,000,000 stored messages on every backend, next to a
full scan of the same rows (SQL: ``content LIKE '%needle%'`` on the store's own table; in
memory: a substring test over every content string). The query word is in the same
``NEEDLES`` messages at every size, so an indexed search should cost the same at both sizes.

``search_entries`` likewise at 10,000 and 100,000 stored entries (each a value with a text
field; put_entries in batches), next to a full scan (SQL: the value's text ``LIKE``; in
memory: a substring test over every value's text).

``python -m bench.search [--sizes 10000,100000] [--entries-only]`` runs this part alone."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from runstore import DataStorage, InMemoryDataStorage, NewEntry

from .extras import Line
from .runstore_stores import drop_schema, postgres_store, sqlite_store
from .timing import Settings, measure_calls
from .turns import log
from .workload import USER_TEXT, Unavailable

SEARCH_SIZES = (10_000, 1_000_000)
NEEDLES = 100  # messages holding the query word, at every size
PER_SESSION = 1_000
CHUNK = 100_000  # messages per import_data call
QUERY = "needle"
_SCAN_SQLITE = "SELECT session_id, seq FROM messages WHERE content LIKE '%needle%'"
_SCAN_PG = "SELECT session_id, seq FROM \"{schema}\".messages WHERE content LIKE '%needle%'"
ENTRY_SIZES = (10_000, 100_000)
ENTRY_SCOPE = "memories"
ENTRY_BATCH = 1_000  # entries per put_entries call
_SCAN_SQLITE_ENTRIES = "SELECT key FROM entries WHERE scope = 'memories' AND value LIKE '%needle%'"
_SCAN_PG_ENTRIES = (
    "SELECT key FROM \"{schema}\".entries WHERE scope = 'memories' AND value::text LIKE '%needle%'"
)


def _document(first: int, count: int, needle_every: int) -> dict[str, Any]:
    """Messages ``first`` .. ``first + count - 1`` (``PER_SESSION`` a session); those whose
    number is a multiple of ``needle_every`` (0: none) hold the query word."""
    stamp = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    agent = {"id": "search-agent", "name": "search-bench", "created_at": stamp}
    agent.update(updated_at=stamp, description=None, input_schema=None)
    agent.update(output_schema=None, workflow=None)
    sessions, messages = [], []
    for number in range(first, first + count):
        session_id = f"s{number // PER_SESSION}"
        if number % PER_SESSION == 0 or not sessions:
            sessions.append(
                {
                    "id": session_id,
                    "agent_id": "search-agent",
                    "external_id": None,
                    "created_at": stamp,
                    "updated_at": stamp,
                }
            )
        needle = needle_every and number % needle_every == 0
        content = f"{USER_TEXT} ({number}){' needle' if needle else ''}"
        messages.append(
            {
                "agent_id": "search-agent",
                "session_id": session_id,
                "run_id": None,
                "seq": number % PER_SESSION + 1,
                "role": "user",
                "content": content,
                "created_at": stamp,
            }
        )
    return {
        "format": "runstore.export",
        "version": 1,
        "agents": [agent],
        "sessions": sessions,
        "runs": [],
        "messages": messages,
    }


async def _grow(
    store: DataStorage, stored: int, size: int, base: int, contents: list[str]
) -> float:
    """Import messages ``stored`` .. ``size - 1``; the first ``base`` hold all the needles.
    Returns the seconds taken."""
    start = time.perf_counter()
    for first in range(stored, size, CHUNK):
        count = min(CHUNK, size - first)
        document = _document(first, count, base // NEEDLES if first < base else 0)
        contents.extend(m["content"] for m in document["messages"])
        await store.import_data(document)
    return time.perf_counter() - start


async def _measure(
    name: str,
    store: DataStorage,
    scan: Callable[[], Awaitable[int]],
    settings: Settings,
    sizes: tuple[int, ...],
    contents: list[str],
) -> list[Line]:
    lines: list[Line] = []
    stored = 0
    for size in sizes:
        fill = await _grow(store, stored, size, sizes[0], contents)
        stored = size
        found = await store.search_messages(QUERY, limit=None)
        assert len(found) == NEEDLES and await scan() == NEEDLES, (len(found), NEEDLES)

        async def search() -> None:
            await store.search_messages(QUERY)

        async def full_scan() -> None:
            await scan()

        detail = f"filled by import_data in {fill:.1f} s"
        lines.append(
            Line(
                f"{name}: search_messages, {size:,} stored",
                await measure_calls(search, settings),
                detail=detail,
            )
        )
        lines.append(
            Line(f"{name}: full scan, {size:,} stored", await measure_calls(full_scan, settings))
        )
        log(f"  search {name} at {size:,}: done")
    return lines


async def search_costs(
    dsn: str | None, settings: Settings, sizes: tuple[int, ...] = SEARCH_SIZES
) -> list[Line]:
    lines: list[Line] = []
    contents: list[str] = []
    memory = InMemoryDataStorage()

    async def scan_memory() -> int:
        return sum(1 for text in contents if QUERY in text)

    try:
        lines += await _measure(
            "runstore in-memory", memory, scan_memory, settings, sizes, contents
        )
    finally:
        await memory.close()
    for driver in ("sqlite3", "aiosqlite"):
        name = f"runstore SQLite, {driver} driver"
        workdir = Path(tempfile.mkdtemp(prefix="runstore-bench-search-"))
        path = workdir / "search.sqlite3"
        try:
            store = await sqlite_store(path, driver).open()
        except Unavailable as exc:
            lines.append(Line(f"{name}: search_messages", missing=str(exc)))
            continue
        raw = sqlite3.connect(path)

        async def scan_sqlite(raw: sqlite3.Connection = raw) -> int:
            return len(raw.execute(_SCAN_SQLITE).fetchall())

        try:
            contents = []
            lines += await _measure(name, store, scan_sqlite, settings, sizes, contents)
        finally:
            raw.close()
            await store.close()
            shutil.rmtree(workdir, ignore_errors=True)
    schema = "runstore_bench_search"
    try:
        pg = await postgres_store(dsn, schema).open()
    except Unavailable as exc:
        lines.append(Line("runstore PostgreSQL: search_messages", missing=str(exc)))
        return lines
    import asyncpg

    raw_pg = await asyncpg.connect(dsn)

    async def scan_pg() -> int:
        return len(await raw_pg.fetch(_SCAN_PG.format(schema=schema)))

    try:
        contents = []
        lines += await _measure("runstore PostgreSQL", pg, scan_pg, settings, sizes, contents)
    finally:
        await raw_pg.close()
        await pg.close()
        assert dsn is not None
        await drop_schema(dsn, schema)
    return lines


async def _grow_entries(
    store: DataStorage, stored: int, size: int, base: int, texts: list[str]
) -> float:
    """Put entries ``stored`` .. ``size - 1``, ``ENTRY_BATCH`` a call; the first ``base``
    hold all the needles. Returns the seconds taken."""
    start = time.perf_counter()
    every = base // NEEDLES
    for first in range(stored, size, ENTRY_BATCH):
        batch = []
        for number in range(first, min(first + ENTRY_BATCH, size)):
            needle = number < base and number % every == 0
            text = f"{USER_TEXT} ({number}){' needle' if needle else ''}"
            texts.append(text)
            value = {"text": text, "kind": "memory", "n": number}
            batch.append(NewEntry(f"user-{number % 100}/{number:08d}", value, owner="user"))
        await store.put_entries(ENTRY_SCOPE, batch)
    return time.perf_counter() - start


async def _measure_entries(
    name: str,
    store: DataStorage,
    scan: Callable[[], Awaitable[int]],
    settings: Settings,
    sizes: tuple[int, ...],
    texts: list[str],
) -> list[Line]:
    lines: list[Line] = []
    stored = 0
    for size in sizes:
        fill = await _grow_entries(store, stored, size, sizes[0], texts)
        stored = size
        found = await store.search_entries(QUERY, scope=ENTRY_SCOPE, limit=None)
        assert len(found) == NEEDLES and await scan() == NEEDLES, (len(found), NEEDLES)

        async def search() -> None:
            await store.search_entries(QUERY, scope=ENTRY_SCOPE)

        async def full_scan() -> None:
            await scan()

        detail = f"filled by put_entries ({ENTRY_BATCH:,} a call) in {fill:.1f} s"
        lines.append(
            Line(
                f"{name}: search_entries, {size:,} stored",
                await measure_calls(search, settings),
                detail=detail,
            )
        )
        lines.append(
            Line(
                f"{name}: entries full scan, {size:,} stored",
                await measure_calls(full_scan, settings),
            )
        )
        log(f"  search_entries {name} at {size:,}: done")
    return lines


async def entry_search_costs(
    dsn: str | None, settings: Settings, sizes: tuple[int, ...] = ENTRY_SIZES
) -> list[Line]:
    """search_entries next to a full scan, in memory, on SQLite (sqlite3) and PostgreSQL."""
    lines: list[Line] = []
    texts: list[str] = []
    memory = InMemoryDataStorage()

    async def scan_memory() -> int:
        return sum(1 for text in texts if QUERY in text)

    try:
        lines += await _measure_entries(
            "runstore in-memory", memory, scan_memory, settings, sizes, texts
        )
    finally:
        await memory.close()
    name = "runstore SQLite, sqlite3 driver"
    workdir = Path(tempfile.mkdtemp(prefix="runstore-bench-entry-search-"))
    path = workdir / "search.sqlite3"
    try:
        store = await sqlite_store(path, "sqlite3").open()
    except Unavailable as exc:
        lines.append(Line(f"{name}: search_entries", missing=str(exc)))
    else:
        raw = sqlite3.connect(path)

        async def scan_sqlite() -> int:
            return len(raw.execute(_SCAN_SQLITE_ENTRIES).fetchall())

        try:
            lines += await _measure_entries(name, store, scan_sqlite, settings, sizes, [])
        finally:
            raw.close()
            await store.close()
            shutil.rmtree(workdir, ignore_errors=True)
    schema = "runstore_bench_entry_search"
    try:
        pg = await postgres_store(dsn, schema).open()
    except Unavailable as exc:
        lines.append(Line("runstore PostgreSQL: search_entries", missing=str(exc)))
        return lines
    import asyncpg

    raw_pg = await asyncpg.connect(dsn)

    async def scan_pg() -> int:
        return len(await raw_pg.fetch(_SCAN_PG_ENTRIES.format(schema=schema)))

    try:
        lines += await _measure_entries("runstore PostgreSQL", pg, scan_pg, settings, sizes, [])
    finally:
        await raw_pg.close()
        await pg.close()
        assert dsn is not None
        await drop_schema(dsn, schema)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default=",".join(map(str, SEARCH_SIZES)))
    parser.add_argument("--entries-only", action="store_true", help="only search_entries")
    args = parser.parse_args()
    sizes = tuple(int(size) for size in args.sizes.split(","))

    async def run() -> list[Line]:
        from .postgres import Server

        server = Server()
        server.start()
        try:
            if args.entries_only:
                return await entry_search_costs(server.dsn, Settings.quick(), sizes)
            return await search_costs(server.dsn, Settings.quick(), sizes)
        finally:
            server.stop()

    for line in asyncio.run(run()):
        figure = "n/a" if line.figure is None else f"{line.figure.median:,.1f} µs"
        print(f"{line.label}: {figure} {line.missing or ''} {line.detail}")


if __name__ == "__main__":
    main()
