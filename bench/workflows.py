"""Workflow adapters next to their frameworks' own stores (issue 17).

- LangGraph: one ``put`` of a checkpoint plus ``get_tuple`` of the thread's latest, on a thread
  already holding 10 or 10,000 checkpoints (flat: one namespace), for ``RunstoreSaver`` on each
  backend, LangGraph's ``InMemorySaver`` and ``SqliteSaver`` (langgraph-checkpoint-sqlite).
- LangGraph chat: a 200-turn and a 1,000-turn chat graph (one ``add_messages`` channel, user 200
  characters, reply 300, a node standing in for the model): bytes stored, µs per turn, and µs per
  ``aget_state`` at 10 turns and at the end, for ``RunstoreSaver`` on each backend next to
  ``InMemorySaver``, ``AsyncSqliteSaver`` and, when installed, ``AsyncPostgresSaver``.
- LangGraph store: one ``aput`` of an item plus ``asearch`` of its namespace (``limit=10``) in
  a namespace already holding 100 or 10,000 items, for ``RunstoreStore`` on each backend next to
  LangGraph's ``InMemoryStore`` and, when installed, ``AsyncPostgresStore``.
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
ITEM_SIZES = (100, 10_000)
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


# -- LangGraph store -------------------------------------------------------------------

STORE_NS = ("memories", "user-1")


def _memory_item(index: int) -> dict[str, Any]:
    return {"text": f"the user mentioned fact number {index}", "kind": "fact", "n": index}


async def _langgraph_store(store: Any, size: int, reps: int, calls: int) -> list[float]:
    from langgraph.store.base import PutOp

    for start in range(0, size, 500):
        ops = [PutOp(STORE_NS, f"m{i:08d}", _memory_item(i)) for i in range(start, start + 500)]
        await store.abatch(ops[: size - start])

    async def one(i: int) -> None:
        await store.aput(STORE_NS, f"n{i:08d}", _memory_item(size + i))
        assert len(await store.asearch(STORE_NS, limit=10)) == 10

    return await _timed(reps, calls, one)


async def langgraph_store_table(dsn: str | None, reps: int, calls: int) -> Table:
    from langgraph.store.memory import InMemoryStore

    from runstore.integrations.langgraph import RunstoreStore

    table = Table(
        "LangGraph store: µs per put + search (limit 10), by items already in the namespace",
        ITEM_SIZES,
    )
    for name, make in runstore_backends(dsn):
        figures = table.rows.setdefault(f"RunstoreStore ({name})", {})
        for size in ITEM_SIZES:
            async with _folder() as folder:
                store = await make(folder)
                try:
                    figures[size] = await _langgraph_store(RunstoreStore(store), size, reps, calls)
                finally:
                    await store.close()
    figures = table.rows.setdefault("InMemoryStore (LangGraph)", {})
    for size in ITEM_SIZES:
        figures[size] = await _langgraph_store(InMemoryStore(), size, reps, calls)
    if dsn:
        try:
            from langgraph.store.postgres import AsyncPostgresStore
        except ImportError as exc:
            table.missing["AsyncPostgresStore (LangGraph)"] = str(exc)
        else:
            import asyncpg

            figures = table.rows.setdefault("AsyncPostgresStore (LangGraph)", {})
            for size in ITEM_SIZES:
                schema = f"lgstore_{uuid.uuid4().hex[:12]}"
                conn = await asyncpg.connect(dsn)
                await conn.execute(f"CREATE SCHEMA {schema}")
                await conn.close()
                sep = "&" if "?" in dsn else "?"
                url = f"{dsn}{sep}options=-csearch_path%3D{schema}"
                async with AsyncPostgresStore.from_conn_string(url) as pg:
                    await pg.setup()
                    figures[size] = await _langgraph_store(pg, size, reps, calls)
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


# -- LangGraph chat: bytes and time by turns ---------------------------------------------

CHAT_TURNS = (200, 1_000)
STATE_READS = 20


def _text(seed: int, length: int) -> str:
    """Letters and spaces from a seeded generator: text that compresses as prose does, not as a
    repeated character would (PostgreSQL compresses large values)."""
    import random

    rng = random.Random(seed)
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz     ") for _ in range(length))


def _chat_graph(saver: Any) -> Any:
    from langchain_core.messages import AIMessage
    from langgraph.graph import START, MessagesState, StateGraph

    def model(state: MessagesState) -> dict[str, Any]:
        count = len(state["messages"])
        return {"messages": [AIMessage(_text(-count, 300), id=f"ai-{count}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", model)
    builder.add_edge(START, "model")
    return builder.compile(checkpointer=saver)


@dataclass
class ChatRun:
    bytes: int
    turn_us: float
    state_us_10: float
    state_us_end: float


async def _chat_run(saver: Any, turns: int, size: Callable[[], Awaitable[int]]) -> ChatRun:
    """One chat of ``turns`` turns; bytes stored are ``size()`` after it less ``size()`` before
    (a store's empty tables and indexes are not the chat's)."""
    from langchain_core.messages import HumanMessage

    graph = _chat_graph(saver)
    config = {"configurable": {"thread_id": f"chat-{uuid.uuid4().hex[:8]}"}}
    empty = await size()

    async def state_us() -> float:
        start = time.perf_counter()
        for _ in range(STATE_READS):
            await graph.aget_state(config)
        return (time.perf_counter() - start) / STATE_READS * 1e6

    state_10 = 0.0
    spent = 0.0
    for turn in range(turns):
        message = HumanMessage(_text(turn, 200), id=f"user-{turn}")
        start = time.perf_counter()
        await graph.ainvoke({"messages": [message]}, config)
        spent += time.perf_counter() - start
        if turn + 1 == 10:
            state_10 = await state_us()
    state_end = await state_us()
    return ChatRun(await size() - empty, spent / turns * 1e6, state_10, state_end)


async def _pg_bytes(dsn: str, schema: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        found = await conn.fetchval(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relkind IN ('r', 'm')",
            schema,
        )
        return int(found)
    finally:
        await conn.close()


def _file_bytes(path: Path) -> int:
    """A SQLite file's size with its write-ahead log folded in (a checkpoint first)."""
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


async def chat_costs(
    dsn: str | None, turns: tuple[int, ...] = CHAT_TURNS, *, peers: bool = True
) -> list[str]:
    """Markdown: bytes stored, µs per turn and µs per aget_state of a long chat, by store
    (``peers=False``: RunstoreSaver only)."""
    from langgraph.checkpoint.memory import InMemorySaver

    from runstore import InMemoryDataStorage, SqliteDataStorage
    from runstore.integrations.langgraph import RunstoreSaver

    rows: dict[str, dict[int, ChatRun]] = {}
    missing: dict[str, str] = {}
    for count in turns:
        memory = InMemoryDataStorage()

        async def memory_size(store: Any = memory) -> int:
            entries = await store.list_entries("langgraph")
            return sum(len(e.key) + len(e.data or b"") + len(str(e.value)) for e in entries)

        rows.setdefault("RunstoreSaver (memory)", {})[count] = await _chat_run(
            RunstoreSaver(memory), count, memory_size
        )
        async with _folder() as folder:
            path = folder / "r.db"
            async with SqliteDataStorage(path, driver="sqlite3") as store:

                async def sqlite_size(path: Path = path) -> int:
                    return _file_bytes(path)

                rows.setdefault("RunstoreSaver (sqlite3)", {})[count] = await _chat_run(
                    RunstoreSaver(store), count, sqlite_size
                )
        if dsn:
            from runstore import PostgresDataStorage

            schema = f"bench_{uuid.uuid4().hex[:12]}"
            async with PostgresDataStorage(dsn, schema=schema) as store:

                async def pg_size(schema: str = schema) -> int:
                    return await _pg_bytes(dsn, schema)

                rows.setdefault("RunstoreSaver (postgres)", {})[count] = await _chat_run(
                    RunstoreSaver(store), count, pg_size
                )
        if not peers:
            continue
        saver = InMemorySaver()

        async def in_memory_size(saver: Any = saver) -> int:
            total = 0
            for ns in saver.storage.values():
                for checkpoints in ns.values():
                    for (_, data), (_, meta), _ in checkpoints.values():
                        total += len(data) + len(meta)
            total += sum(len(v[1]) for v in saver.blobs.values())
            total += sum(len(w[2][1]) for ws in saver.writes.values() for w in ws.values())
            return total

        rows.setdefault("InMemorySaver (LangGraph)", {})[count] = await _chat_run(
            saver, count, in_memory_size
        )
        try:
            from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
        except ImportError as exc:
            missing["AsyncSqliteSaver (LangGraph)"] = str(exc)
        else:
            async with _folder() as folder:
                path = folder / "lg.db"
                async with AsyncSqliteSaver.from_conn_string(str(path)) as lg:

                    async def lg_size(path: Path = path) -> int:
                        return _file_bytes(path)

                    rows.setdefault("AsyncSqliteSaver (LangGraph, file)", {})[
                        count
                    ] = await _chat_run(lg, count, lg_size)
        if dsn:
            try:
                from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
            except ImportError as exc:
                missing["AsyncPostgresSaver (LangGraph)"] = str(exc)
            else:
                import asyncpg

                schema = f"lgbench_{uuid.uuid4().hex[:12]}"
                conn = await asyncpg.connect(dsn)
                await conn.execute(f"CREATE SCHEMA {schema}")
                await conn.close()
                sep = "&" if "?" in dsn else "?"
                url = f"{dsn}{sep}options=-csearch_path%3D{schema}"
                async with AsyncPostgresSaver.from_conn_string(url) as pg:
                    await pg.setup()

                    async def lg_pg_size(schema: str = schema) -> int:
                        return await _pg_bytes(dsn, schema)

                    rows.setdefault("AsyncPostgresSaver (LangGraph)", {})[count] = await _chat_run(
                        pg, count, lg_pg_size
                    )
    first, last = turns[0], turns[-1]
    head = [
        "store",
        *(f"MB at {t:,}" for t in turns),
        f"{last:,}/{first:,} bytes",
        *(f"µs/turn at {t:,}" for t in turns),
        "aget_state µs at 10",
        f"aget_state µs at {last:,}",
    ]
    out = [
        f"### LangGraph chat: bytes stored and µs per turn at {first:,} and {last:,} turns",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for name, runs in rows.items():
        cells = [name]
        cells += [f"{runs[t].bytes / 1e6:.3f}" for t in turns]
        cells.append(f"{runs[last].bytes / runs[first].bytes:.2f}x")
        cells += [number(runs[t].turn_us) for t in turns]
        cells += [number(runs[last].state_us_10), number(runs[last].state_us_end)]
        out.append("| " + " | ".join(cells) + " |")
    for name, why in missing.items():
        out.append(f"| {name} | not measured: {why} |" + " |" * (len(head) - 2))
    return out


# -- entry point -------------------------------------------------------------------------


async def measure(
    dsn: str | None,
    quick: bool = False,
    only: tuple[str, ...] = ("langgraph", "store", "adk", "chat"),
) -> list[str]:
    reps, calls = (3, 20) if quick else (5, 100)
    out = ["## Workflow adapters", ""]
    if "langgraph" in only:
        out += [*(await langgraph_table(dsn, reps, calls)).markdown(), ""]
    if "store" in only:
        out += [*(await langgraph_store_table(dsn, reps, calls)).markdown(), ""]
    if "adk" in only:
        out += [*(await adk_table(dsn, reps, calls)).markdown(), ""]
    if "chat" in only:
        out += await chat_costs(dsn, (20, 100) if quick else CHAT_TURNS)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--dsn", default=None, help="PostgreSQL DSN for the postgres rows")
    parser.add_argument(
        "--only", default="langgraph,store,adk,chat", help="langgraph, store, adk, chat"
    )
    args = parser.parse_args()
    only = tuple(args.only.split(","))
    print("\n".join(asyncio.run(measure(args.dsn, args.quick, only))))


if __name__ == "__main__":
    main()
