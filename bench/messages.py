"""Messages v2 figures: ``fork_session`` of a 10,000-message session next to a raw
``INSERT ... SELECT`` of the same rows with the same driver, and ``pop_message`` and an
idempotent repeat (``add_chat_message`` with a key already stored) next to a plain add."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from .extras import Line, _with_subject, runstore_factories
from .floors import RawAiosqlite, RawAsyncpg, RawSqlite3
from .runstore_stores import RunstoreSubject
from .timing import Settings, measure_calls
from .turns import log
from .workload import USER_TEXT, Subject, Unavailable

FORKED = 10_000  # messages in the session that is forked
FORK_REPS = 5  # one fork per repetition: each adds FORKED rows
POPPED = 12_000  # messages ready to pop, more than the calls made

_SQLITE_COPY = """INSERT INTO messages (session_id, seq, role, content, created_at)
    SELECT ?, seq, role, content, created_at FROM messages WHERE session_id = ?"""
_PG_COPY = """INSERT INTO bench_floor.messages (session_id, seq, role, content, created_at)
    SELECT $1, seq, role, content, created_at FROM bench_floor.messages WHERE session_id = $2"""


async def fork_costs(dsn: str | None, settings: Settings) -> list[Line]:
    """µs per ``fork_session`` of a session of FORKED messages, and per raw copy."""
    lines: list[Line] = []
    fork_settings = Settings(reps=FORK_REPS, min_reps=FORK_REPS)
    for factory in runstore_factories(dsn):
        subject = factory()
        line = Line(f"{subject.name}: fork_session")
        lines.append(line)

        async def body(
            workdir: Path, subject: RunstoreSubject = subject, line: Line = line
        ) -> None:
            (handle,) = await subject.add_sessions(1, FORKED)
            store = subject.store
            assert store is not None

            async def fork() -> None:
                await store.fork_session(handle.session_id)

            line.figure = await measure_calls(fork, fork_settings, per_rep=1)

        await _measure(subject, body, line)
        log(f"  fork_session {subject.name}: done")
    for floor in (RawSqlite3(), RawAiosqlite(), RawAsyncpg(dsn)):
        line = Line(f"{floor.name}: INSERT ... SELECT of the same rows")
        lines.append(line)
        await _measure(floor, _raw_copy(floor, line, fork_settings), line)
    return lines


def _raw_copy(floor: Any, line: Line, settings: Settings) -> Any:
    async def body(workdir: Path) -> None:
        (source,) = await floor.add_sessions(1, FORKED)
        names = (f"copy-{n}" for n in itertools.count())

        async def copy() -> None:
            if isinstance(floor, RawSqlite3):
                floor._db.execute(_SQLITE_COPY, (next(names), source))  # autocommit
            elif isinstance(floor, RawAiosqlite):
                await floor._db.execute(_SQLITE_COPY, (next(names), source))
            else:
                await floor.pool.execute(_PG_COPY, next(names), source)

        line.figure = await measure_calls(copy, settings, per_rep=1)

    return body


async def undo_and_retry_costs(dsn: str | None, settings: Settings) -> list[Line]:
    """µs per plain ``add_chat_message``, per ``pop_message`` and per idempotent repeat."""
    lines: list[Line] = []
    for factory in runstore_factories(dsn):
        subject = factory()
        add_line = Line(f"{subject.name}: add_chat_message")
        pop_line = Line(f"{subject.name}: pop_message")
        repeat_line = Line(f"{subject.name}: idempotent repeat")
        group = [add_line, pop_line, repeat_line]
        lines += group

        async def body(
            workdir: Path, subject: RunstoreSubject = subject, group: list[Line] = group
        ) -> None:
            plain, popped = await subject.add_sessions(2, 100)
            store = subject.store
            assert store is not None

            def add(handle: Any, **more: Any) -> Any:
                return store.add_chat_message(
                    agent_id=handle.agent_id,
                    session_id=handle.session_id,
                    run_id=handle.run_id,
                    role="user",
                    content=USER_TEXT,
                    **more,
                )

            for _ in range(POPPED):
                await add(popped)
            await add(plain, idempotency_key="retried")

            async def pop() -> None:
                await store.pop_message(popped.session_id)

            group[0].figure = await measure_calls(lambda: add(plain), settings)
            group[1].figure = await measure_calls(pop, settings, per_rep=_calls(settings))
            group[2].figure = await measure_calls(
                lambda: add(plain, idempotency_key="retried"), settings
            )

        try:
            await _with_subject(subject, body)
        except Unavailable as exc:
            for line in group:
                line.missing = str(exc)
        log(f"  pop / idempotent repeat {subject.name}: done")
    return lines


def _calls(settings: Settings) -> int:
    """Pops per repetition: as many as the prepared messages allow."""
    return max(1, min(settings.max_turns, (POPPED - 1) // settings.reps))


async def _measure(subject: Subject, body: Any, line: Line) -> None:
    try:
        await _with_subject(subject, body)
    except Unavailable as exc:
        line.missing = str(exc)
