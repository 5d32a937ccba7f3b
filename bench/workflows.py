"""Workflow adapters next to their frameworks' own stores (issue 17).

- LangGraph: one ``put`` of a checkpoint plus ``get_tuple`` of the thread's latest, on a thread
  already holding 10 or 10,000 checkpoints (flat: one namespace), for ``RunstoreSaver`` on each
  backend, LangGraph's ``InMemorySaver`` and ``SqliteSaver`` (langgraph-checkpoint-sqlite).
- ADK: one ``append_event`` plus ``get_session(num_recent_events=50)`` on a session already
  holding 100 or 100,000 events, for ``RunstoreSessionService`` on each backend, ADK's
  ``InMemorySessionService`` and ``DatabaseSessionService`` (SQLite, aiosqlite).

Standalone: ``python -m bench.workflows [--quick]`` prints the tables.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .timing import number

CHECKPOINT_SIZES = (10, 10_000)
EVENT_SIZES = (100, 100_000)
RECENT = 50


@dataclass
class Table:
    title: str
    sizes: tuple[int, ...]
    rows: dict[str, dict[int, list[float]]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    def markdown(self) -> list[str]:
        head = ["store", *(f"{s:,}" for s in self.sizes), f"{self.sizes[-1]:,}/{self.sizes[0]:,}"]
        out = [f"### {self.title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for name, figures in self.rows.items():
            cells = []
            for size in self.sizes:
                samples = figures.get(size)
                cells.append(
                    f"{number(statistics.median(samples))} ({number(min(samples))}-"
                    f"{number(max(samples))})"
                    if samples
                    else "-"
                )
            first, last = figures.get(self.sizes[0]), figures.get(self.sizes[-1])
            growth = (
                f"{statistics.median(last) / statistics.median(first):.2f}x"
                if first and last
                else "-"
            )
            out.append("| " + " | ".join([name, *cells, growth]) + " |")
        for name, why in self.missing.items():
            out.append(f"| {name} | not measured: {why} |" + " |" * len(self.sizes))
        return out


def runstore_backends(dsn: str | None) -> list[tuple[str, Callable[[Path], Awaitable[Any]]]]:
    from runstore import InMemoryDataStorage, SqliteDataStorage

    async def memory(folder: Path) -> Any:
        return InMemoryDataStorage()

    async def sqlite3(folder: Path) -> Any:
        return await SqliteDataStorage(folder / "r.db", driver="sqlite3").open()

    async def aiosqlite(folder: Path) -> Any:
        return await SqliteDataStorage(folder / "r.db", driver="aiosqlite").open()

    async def postgres(folder: Path) -> Any:
        from runstore import PostgresDataStorage

        assert dsn is not None
        return await PostgresDataStorage(dsn, schema=f"bench_{uuid.uuid4().hex[:12]}").open()

    found = [("memory", memory), ("sqlite3", sqlite3), ("aiosqlite", aiosqlite)]
    if dsn:
        found.append(("postgres", postgres))
    return found


@asynccontextmanager
async def _folder() -> AsyncIterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="runstore-bench-wf-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def _timed(reps: int, calls: int, one: Callable[[int], Awaitable[None]]) -> list[float]:
    """µs per call: ``reps`` samples of ``calls`` calls each."""
    samples = []
    gc.collect()
    gc.freeze()
    try:
        counter = 0
        for _ in range(reps):
            start = time.perf_counter()
            for _ in range(calls):
                await one(counter)
                counter += 1
            samples.append((time.perf_counter() - start) / calls * 1e6)
    finally:
        gc.unfreeze()
    return samples


# -- LangGraph ---------------------------------------------------------------------------


def _checkpoint(index: int) -> dict[str, Any]:
    from langgraph.checkpoint.base.id import uuid6

    return {
        "v": 1,
        "id": str(uuid6(clock_seq=index)),
        "ts": "2026-01-01T00:00:00+00:00",
        "channel_values": {"messages": [f"message {index}"], "step": index},
        "channel_versions": {"messages": index + 1, "step": index + 1},
        "versions_seen": {"node": {"messages": index}},
        "pending_sends": [],
    }


async def _langgraph_saver(saver: Any, size: int, reps: int, calls: int, sync: bool) -> list[float]:
    thread = {"configurable": {"thread_id": "bench", "checkpoint_ns": ""}}
    config = thread
    for index in range(size):
        metadata = {"source": "loop", "step": index, "parents": {}}
        if sync:
            config = saver.put(config, _checkpoint(index), metadata, {})
        else:
            config = await saver.aput(config, _checkpoint(index), metadata, {})
    state = {"config": config}

    async def one(i: int) -> None:
        metadata = {"source": "loop", "step": size + i, "parents": {}}
        if sync:
            state["config"] = saver.put(state["config"], _checkpoint(size + i), metadata, {})
            assert saver.get_tuple(thread) is not None
        else:
            state["config"] = await saver.aput(state["config"], _checkpoint(size + i), metadata, {})
            assert await saver.aget_tuple(thread) is not None

    return await _timed(reps, calls, one)


async def langgraph_table(dsn: str | None, reps: int, calls: int) -> Table:
    from langgraph.checkpoint.memory import InMemorySaver

    from runstore.integrations.langgraph import RunstoreSaver

    table = Table(
        "LangGraph: µs per put + get_tuple (latest), by checkpoints already in the thread",
        CHECKPOINT_SIZES,
    )
    for name, make in runstore_backends(dsn):
        figures = table.rows.setdefault(f"RunstoreSaver ({name})", {})
        for size in CHECKPOINT_SIZES:
            async with _folder() as folder:
                store = await make(folder)
                try:
                    figures[size] = await _langgraph_saver(
                        RunstoreSaver(store), size, reps, calls, sync=False
                    )
                finally:
                    await store.close()
    figures = table.rows.setdefault("InMemorySaver (LangGraph)", {})
    for size in CHECKPOINT_SIZES:
        figures[size] = await _langgraph_saver(InMemorySaver(), size, reps, calls, sync=False)
    try:
        from langgraph.checkpoint.sqlite import SqliteSaver
    except ImportError as exc:
        table.missing["SqliteSaver (LangGraph)"] = str(exc)
    else:
        import sqlite3

        figures = table.rows.setdefault("SqliteSaver (LangGraph, file)", {})
        for size in CHECKPOINT_SIZES:
            async with _folder() as folder:
                conn = sqlite3.connect(folder / "lg.db", check_same_thread=False)
                try:
                    saver = SqliteSaver(conn)
                    figures[size] = await _langgraph_saver(saver, size, reps, calls, sync=True)
                finally:
                    conn.close()
    return table


# -- ADK -------------------------------------------------------------------------------

APP, USER = "bench", "u"


def _event(index: int, timestamp: float) -> Any:
    from google.adk.events.event import Event
    from google.genai import types

    return Event(
        id=f"e{index:08d}",
        invocation_id="inv",
        author="user" if index % 2 else "assistant",
        timestamp=timestamp,
        content=types.Content(role="user", parts=[types.Part(text=f"message {index}")]),
    )


async def _prefill_runstore(service: Any, session_id: str, events: list[Any]) -> None:
    """Events written straight as the service's entries (its own key layout), in bulk."""
    from runstore import NewEntry
    from runstore.integrations import adk

    prefix = adk._events_prefix(APP, USER, session_id)
    for start in range(0, len(events), 1000):
        await service.store.put_entries(
            service.scope,
            [
                NewEntry(
                    f"{prefix}{adk._micros(e.timestamp)}{adk.SEP}{e.id}",
                    e.model_dump(mode="json", exclude_none=True),
                )
                for e in events[start : start + 1000]
            ],
        )


async def _prefill_database(service: Any, session: Any, events: list[Any]) -> None:
    """Events inserted through the service's own SQLAlchemy models, in one transaction."""
    schema = service._get_schema_classes()
    async with service._rollback_on_exception_session() as sql_session:
        sql_session.add_all([schema.StorageEvent.from_event(session, e) for e in events])
        await sql_session.commit()


async def _adk_service(service: Any, size: int, reps: int, calls: int, prefill: Any) -> list[float]:
    from google.adk.sessions.base_session_service import GetSessionConfig

    made = await service.create_session(app_name=APP, user_id=USER)
    start = time.time() - size * 0.001 - 1
    await prefill(made, [_event(i, start + i * 0.001) for i in range(size)])
    session = await service.get_session(
        app_name=APP, user_id=USER, session_id=made.id, config=GetSessionConfig(num_recent_events=1)
    )
    config = GetSessionConfig(num_recent_events=RECENT)

    async def one(i: int) -> None:
        await service.append_event(session, _event(size + i, time.time()))
        got = await service.get_session(
            app_name=APP, user_id=USER, session_id=made.id, config=config
        )
        assert got is not None and len(got.events) == RECENT

    return await _timed(reps, calls, one)


async def adk_table(dsn: str | None, reps: int, calls: int) -> Table:
    from google.adk.sessions import DatabaseSessionService, InMemorySessionService

    from runstore.integrations.adk import RunstoreSessionService

    table = Table(
        f"ADK: µs per append_event + get_session(num_recent_events={RECENT}), by events already "
        "in the session",
        EVENT_SIZES,
    )
    for name, make in runstore_backends(dsn):
        figures = table.rows.setdefault(f"RunstoreSessionService ({name})", {})
        for size in EVENT_SIZES:
            async with _folder() as folder:
                store = await make(folder)
                try:
                    service = RunstoreSessionService(store)

                    async def prefill(made: Any, events: list[Any], svc: Any = service) -> None:
                        await _prefill_runstore(svc, made.id, events)

                    figures[size] = await _adk_service(service, size, reps, calls, prefill)
                finally:
                    await store.close()
    figures = table.rows.setdefault("InMemorySessionService (ADK)", {})
    for size in EVENT_SIZES:
        memory = InMemorySessionService()

        async def fill_memory(made: Any, events: list[Any], svc: Any = memory) -> None:
            svc.sessions[APP][USER][made.id].events.extend(events)

        figures[size] = await _adk_service(memory, size, reps, calls, fill_memory)
    figures = table.rows.setdefault("DatabaseSessionService (ADK, SQLite file)", {})
    for size in EVENT_SIZES:
        async with _folder() as folder:
            database = DatabaseSessionService(f"sqlite+aiosqlite:///{folder / 'adk.db'}")
            try:

                async def fill_db(made: Any, events: list[Any], svc: Any = database) -> None:
                    await _prefill_database(svc, made, events)

                figures[size] = await _adk_service(database, size, reps, calls, fill_db)
            finally:
                await database.close()
    return table


# -- entry point -------------------------------------------------------------------------


async def measure(
    dsn: str | None, quick: bool = False, only: tuple[str, ...] = ("langgraph", "adk")
) -> list[str]:
    reps, calls = (3, 20) if quick else (5, 100)
    out = ["## Workflow adapters", ""]
    if "langgraph" in only:
        out += [*(await langgraph_table(dsn, reps, calls)).markdown(), ""]
    if "adk" in only:
        out += (await adk_table(dsn, reps, calls)).markdown()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--dsn", default=None, help="PostgreSQL DSN for the postgres rows")
    parser.add_argument("--only", default="langgraph,adk", help="langgraph, adk or both")
    args = parser.parse_args()
    only = tuple(args.only.split(","))
    print("\n".join(asyncio.run(measure(args.dsn, args.quick, only))))


if __name__ == "__main__":
    main()
