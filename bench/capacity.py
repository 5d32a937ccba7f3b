"""Capacity (PostgreSQL): runstore's calls on a big database next to the same calls on a small one.

The big database: 10,000,000 messages in 100,000 sessions (100 each), one end user owning
10,000 of the sessions and 50,000 entries; filled into runstore's own tables after its migrations
(sessions with their counters and entries by COPY, messages by INSERT ... SELECT on the server;
triggers off while filling, when the role may), then ANALYZE. The small one: only what the
calls read (the user's sessions, their messages and entries).
Then, once each on both: erasure of the user (10,000 sessions, 1,000,000 messages, 50,000
entries), and ``prune(idle_before=...)`` of 10,000 sessions (1,000,000 messages: on the big
database the next oldest, on the small one, refilled, the user's) while a writer adds messages to
another session (the longest add is reported).
``--size`` scales the session and entry counts (``--size 0.01``: 1,000 sessions, 100,000
messages) for a quick run:

    python -m bench.capacity [--size 0.01]   # on RUNSTORE_BENCH_DSN, or a throwaway cluster

``scripts/bench`` runs it at full size (``RUNSTORE_BENCH_CAPACITY_SIZE`` overrides).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .extras import Line
from .retention import add_until
from .runstore_stores import drop_schema
from .timing import Figure, Settings, measure_calls
from .turns import log
from .workload import REPLY_TEXT, USER_TEXT, WINDOW, prefill_text

SESSIONS = 100_000
PER_SESSION = 100
USER_SESSIONS = 10_000
USER_ENTRIES = 50_000
PAGE = 50
DEEP = 100  # the deep page's number
USER = "end-user-0"
BATCH = 200_000  # rows per COPY
SCHEMAS = ("runstore_bench_cap_small", "runstore_bench_cap_big")


@dataclass
class Shape:
    sessions: int  # in all
    user_sessions: int  # owned by USER (the first ones)
    entries: int  # USER's

    @property
    def messages(self) -> int:
        return self.sessions * PER_SESSION

    @property
    def deep(self) -> int:
        """The deepest page number the user's sessions reach, at most DEEP."""
        return max(1, min(DEEP, self.user_sessions // PAGE))


def big(size: float) -> Shape:
    return Shape(
        max(2 * PAGE, int(SESSIONS * size)),
        max(2 * PAGE, int(USER_SESSIONS * size)),
        max(100, int(USER_ENTRIES * size)),
    )


def small(shape: Shape) -> Shape:
    """The user's sessions, their messages and entries (what stats and erasure of the user
    read; the pages read 50 sessions), nothing else."""
    return Shape(shape.user_sessions, shape.user_sessions, shape.entries)


async def fill(dsn: str, schema: str, shape: Shape) -> Any:
    """The store (open) on a new schema filled by COPY. Returns (store, agent id, seconds)."""
    import asyncpg

    from runstore import PostgresDataStorage

    await drop_schema(dsn, schema)
    store = PostgresDataStorage(dsn, schema=schema)
    started = time.perf_counter()
    run = await store.initialize_run(workflow_name="capacity")  # migrates; the agent
    agent = run.agent_id
    start = datetime.now(UTC) - timedelta(days=30)
    step = timedelta(days=29) / shape.sessions
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DELETE FROM "{schema}".sessions')  # initialize_run's session
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):  # rows known to be valid
            await conn.execute("SET session_replication_role = replica")

        def sessions() -> Iterator[tuple[Any, ...]]:
            for n in range(shape.sessions):
                owner = USER if n < shape.user_sessions else f"end-user-{1 + n % 20_000}"
                at = start + step * n
                yield (_sid(n), agent, owner, PER_SESSION, at, at, PER_SESSION, content_bytes)

        # the counters runstore keeps per session (stats reads them): what the messages hold
        content_bytes = sum(
            len(content.encode()) for _, content in map(prefill_text, range(PER_SESSION))
        )
        columns = ["id", "agent_id", "external_id", "last_seq", "created_at", "updated_at",
                   "message_count", "content_bytes"]  # fmt: skip
        await _copy(conn, schema, "sessions", sessions(), columns)
        # Messages are made by the server (generate_series), a chunk of sessions at a time:
        # the same rows a COPY would send (prefill_text's), without the client in the way.
        count = shape.sessions
        for first in range(0, count, CHUNK):
            await conn.execute(
                _GENERATE_MESSAGES.replace("{s}", f'"{schema}"'),
                first, min(count, first + CHUNK) - 1, agent, start, step, USER_TEXT, REPLY_TEXT,
                PER_SESSION,
            )  # fmt: skip
        made = await conn.fetch(
            f'SELECT role, content FROM "{schema}".messages WHERE session_id = $1 ORDER BY seq',
            _sid(0),
        )
        assert [tuple(row) for row in made] == [prefill_text(i) for i in range(PER_SESSION)]
        counted = await conn.fetchrow(
            f'SELECT message_count, content_bytes FROM "{schema}".sessions WHERE id = $1', _sid(0)
        )
        recounted = await conn.fetchrow(
            f'SELECT count(*), sum(octet_length(content)) FROM "{schema}".messages'
            " WHERE session_id = $1",
            _sid(0),
        )
        assert tuple(counted) == tuple(recounted), (counted, recounted)

        def entries() -> Iterator[tuple[Any, ...]]:
            for n in range(shape.entries):
                yield (f"user/{USER}", f"k{n:08d}", f'{{"n": {n}}}', 1, start, USER)

        await _copy(conn, schema, "entries", entries(),
                    ["scope", "key", "value", "version", "updated_at", "owner"])  # fmt: skip
        await conn.execute(f'ANALYZE "{schema}".sessions, "{schema}".messages, "{schema}".entries')
    finally:
        await conn.close()
    return store, agent, time.perf_counter() - started


CHUNK = 5_000  # sessions whose messages one statement makes
# $1..$2 session numbers, $3 agent, $4 start, $5 step between sessions, $6/$7 the texts,
# $8 messages per session.
_GENERATE_MESSAGES = """
INSERT INTO {s}.messages (session_id, seq, agent_id, role, content, created_at)
SELECT 'cap-s' || lpad(n::text, 8, '0'), i + 1, $3,
    CASE WHEN i % 2 = 0 THEN 'user' ELSE 'assistant' END,
    CASE WHEN i % 2 = 0 THEN $6::text ELSE $7::text END || ' (' || i || ')',
    $4::timestamptz + $5::interval * n
FROM generate_series($1::int, $2::int) AS n, generate_series(0, $8::int - 1) AS i
ORDER BY n, i
"""


def _sid(n: int) -> str:
    return f"cap-s{n:08d}"


async def _copy(
    conn: Any, schema: str, table: str, rows: Iterator[tuple[Any, ...]], columns: list[str]
) -> None:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            await conn.copy_records_to_table(
                table, schema_name=schema, columns=columns, records=batch
            )
            batch = []
    if batch:
        await conn.copy_records_to_table(table, schema_name=schema, columns=columns, records=batch)


async def _calls(
    store: Any, agent: str, shape: Shape
) -> list[tuple[str, Callable[[], Awaitable[Any]]]]:
    """The measured calls, on the user's newest sessions (the first page)."""
    session = _sid(0)  # has messages in both databases
    pages = [await store.list_sessions(external_id=USER, limit=PAGE)]
    while len(pages) < shape.deep and pages[-1]:
        pages.append(
            await store.list_sessions(external_id=USER, limit=PAGE, before=pages[-1][-1].id)
        )
    before = pages[-1][-1].id  # the deep page comes after it

    async def turn() -> None:
        await store.add_chat_message(
            agent_id=agent, session_id=session, run_id=None, role="user", content=USER_TEXT
        )
        await store.get_chat_history(session, WINDOW)
        await store.add_chat_message(
            agent_id=agent, session_id=session, run_id=None, role="assistant", content=REPLY_TEXT
        )

    return [
        ("chat turn (add, get 50, add)", turn),
        (f"list_sessions(external_id=..., limit={PAGE}): first page",
         lambda: store.list_sessions(external_id=USER, limit=PAGE)),
        (f"list_sessions(external_id=..., limit={PAGE}, before=...): page {shape.deep + 1}",
         lambda: store.list_sessions(external_id=USER, limit=PAGE, before=before)),
        ("get_session", lambda: store.get_session(session)),
        (f"get_chat_history(session_id, {WINDOW})",
         lambda: store.get_chat_history(session, WINDOW)),
    ]  # fmt: skip


async def measure(dsn: str | None, why_not: str, settings: Settings, size: float) -> list[Line]:
    """Each call on the big database, with its ratio to the same call on the small one."""
    shape = big(size)
    tiny = small(shape)
    title = (
        f"{shape.messages:,} messages, {shape.sessions:,} sessions; the user: "
        f"{shape.user_sessions:,} sessions, {shape.entries:,} entries"
    )
    if dsn is None:
        return [Line(title, missing=why_not)]
    stores: list[tuple[Any, str]] = []
    try:
        return await _measure(dsn, settings, shape, tiny, title, stores)
    except Exception as exc:  # one failed scenario must not end the whole bench run
        log(f"  capacity: failed: {exc!r}")
        return [Line(title, missing=f"failed: {type(exc).__name__}: {exc}")]
    finally:
        for store, _ in stores:
            await store.close()
        for schema in SCHEMAS:
            await drop_schema(dsn, schema)


async def _measure(
    dsn: str, settings: Settings, shape: Shape, tiny: Shape, title: str,
    stores: list[tuple[Any, str]],
) -> list[Line]:  # fmt: skip
    small_store, small_agent, _ = await fill(dsn, SCHEMAS[0], tiny)
    stores.append((small_store, SCHEMAS[0]))
    big_store, big_agent, seconds = await fill(dsn, SCHEMAS[1], shape)
    stores.append((big_store, SCHEMAS[1]))
    log(f"  capacity: filled {title} in {seconds:.0f} s")
    lines = [Line(f"fill (COPY, INSERT ... SELECT): {title}", Figure([seconds], unit="s"))]
    small_calls = await _calls(small_store, small_agent, tiny)
    big_calls = await _calls(big_store, big_agent, shape)
    for (label, on_small), (_, on_big) in zip(small_calls, big_calls, strict=True):
        empty = await measure_calls(on_small, settings)
        full = await measure_calls(on_big, settings)
        ratio = full.median / empty.median
        detail = f"{ratio:.2f}x the small database ({empty.median:,.0f} µs)"
        lines.append(Line(label, full, detail=detail, ratio=ratio))
        log(f"  capacity: {label}: {full.median:,.0f} µs, {ratio:.2f}x")
    lines += await _lifecycle(small_store, big_store, big_agent, shape, settings)
    stores.remove((small_store, SCHEMAS[0]))
    await small_store.close()  # refilled (the user's sessions and messages), to prune
    small_store, small_agent, _ = await fill(dsn, SCHEMAS[0], tiny)
    stores.append((small_store, SCHEMAS[0]))
    lines.append(await _prune(small_store, small_agent, big_store, big_agent, shape))
    return lines


async def _lifecycle(
    small_store: Any, big_store: Any, big_agent: str, shape: Shape, settings: Settings
) -> list[Line]:
    """stats of the user, then (destructive, once each) erasure of the user."""
    lines = []
    empty = await measure_calls(lambda: small_store.stats(external_id=USER), settings)
    full = await measure_calls(lambda: big_store.stats(external_id=USER), settings)
    lines.append(Line("stats(external_id=...)", full, ratio=full.median / empty.median,
                      detail=f"{full.median / empty.median:.2f}x the small database "
                             f"({empty.median:,.0f} µs)"))  # fmt: skip
    # the whole store: one row per session (its counters) and every live entry
    log(f"  capacity: stats(external_id=...): {full.median:,.0f} µs")
    empty = await measure_calls(small_store.stats, settings)
    full = await measure_calls(big_store.stats, settings)
    lines.append(Line("stats(): the whole store", full,
                      detail=f"{shape.sessions:,} sessions; the small database "
                             f"({shape.user_sessions:,}): {empty.median:,.0f} µs"))  # fmt: skip
    log(f"  capacity: stats(): {full.median:,.0f} µs")
    started = time.perf_counter()
    erased = await small_store.erase(USER)
    small_seconds = time.perf_counter() - started
    started = time.perf_counter()
    erased_big = await big_store.erase(USER)
    seconds = time.perf_counter() - started
    lines.append(Line("erase(external_id): the user", Figure([seconds], unit="s"),
                      ratio=seconds / small_seconds,
                      detail=f"{erased_big.sessions:,} sessions, {erased_big.messages:,} messages, "
                             f"{erased_big.entries:,} entries; {seconds / small_seconds:.2f}x the "
                             f"small database ({erased.messages:,} messages): "
                             f"{small_seconds:.2f} s"))  # fmt: skip
    log(f"  capacity: erase: {seconds:.1f} s, {erased_big}")
    return lines


async def _pruned(store: Any, agent: str, cutoff_session: str, writer_session: str) -> Any:
    """prune(idle_before=) of the sessions idle since before ``cutoff_session``'s last
    activity, while a writer adds to ``writer_session``: (seconds, report, adds, longest)."""
    cutoff = (await store.get_session(cutoff_session)).updated_at
    done = asyncio.Event()
    writer = asyncio.create_task(add_until(store, agent, writer_session, done))
    await asyncio.sleep(0)
    started = time.perf_counter()
    pruned = await store.prune(idle_before=cutoff, expired_entries=False)
    seconds = time.perf_counter() - started
    done.set()
    adds, longest = await writer
    return seconds, pruned, adds, longest


async def _prune(
    small_store: Any, small_agent: str, big_store: Any, big_agent: str, shape: Shape
) -> Line:
    """On the big database (the user erased), the next user_sessions oldest sessions (their
    PER_SESSION messages each); on the small one, as many of its sessions (all but its
    newest, where the writer adds). Each while a writer adds to the newest session."""
    newest = _sid(shape.user_sessions - 1)
    on_small, small_pruned, _, small_longest = await _pruned(
        small_store, small_agent, newest, newest
    )
    seconds, pruned, adds, longest = await _pruned(
        big_store, big_agent, _sid(2 * shape.user_sessions), _sid(shape.sessions - 1)
    )
    log(f"  capacity: prune: {seconds:.1f} s, {pruned}, {adds} adds, longest {longest:.3f} s")
    return Line("prune(idle_before=...) under a writer", Figure([seconds], unit="s"),
                ratio=seconds / on_small,
                detail=f"{pruned.sessions:,} sessions, {pruned.messages:,} messages; "
                       f"{adds:,} adds meanwhile, the longest {longest * 1000:,.1f} ms; "
                       f"{seconds / on_small:.2f}x the small database ({small_pruned.sessions:,} "
                       f"sessions, {small_pruned.messages:,} messages: {on_small:.2f} s, the "
                       f"longest add {small_longest * 1000:,.1f} ms)")  # fmt: skip


def size_from_env(quick: bool) -> float:
    configured = os.environ.get("RUNSTORE_BENCH_CAPACITY_SIZE")
    if configured:
        return float(configured)
    return 0.01 if quick else 1.0


def main() -> None:
    from .postgres import Server

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=float, default=1.0, help="fraction of the full size")
    args = parser.parse_args()
    server = Server()
    server.start()
    try:
        lines = asyncio.run(measure(server.dsn, server.why_not, Settings.quick(), args.size))
    finally:
        server.stop()
    for line in lines:
        figure = "" if line.figure is None else f"{line.figure.median:,.1f} {line.figure.unit}"
        print(f"{line.label:<70} {figure:>14}  {line.detail or line.missing or ''}")


if __name__ == "__main__":
    main()
