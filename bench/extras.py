"""The other figures: ``initialize_run`` cost, history reads at P = 1M, memory per stored
message, and one ``add_chat_message`` next to one bare INSERT+COMMIT with the same driver."""

from __future__ import annotations

import gc
import shutil
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runstore import DataStorage, InMemoryDataStorage

from .floors import RawAiosqlite, RawSqlite3
from .runstore_stores import (
    AGENT_ID,
    RunstoreMemory,
    RunstorePostgres,
    RunstoreSqlite,
    RunstoreSubject,
    sqlite_store,
)
from .timing import Figure, Settings, measure_calls
from .turns import log
from .workload import USER_TEXT, WINDOW, Subject, Unavailable, runstore_document

HUGE = 1_000_000


@dataclass
class Line:
    """One row of an extras table: a label and a figure, or why it was not measured."""

    label: str
    figure: Figure | None = None
    missing: str | None = None
    detail: str = ""
    ratio: float | None = None  # to the row's own floor, where a target is set on it


def runstore_factories(dsn: str | None) -> list[Callable[[], RunstoreSubject]]:
    return [
        RunstoreMemory,
        lambda: RunstoreSqlite("sqlite3"),
        lambda: RunstoreSqlite("aiosqlite"),
        lambda: RunstorePostgres(dsn),
    ]


async def _with_subject(subject: Subject, body: Callable[[Path], Any]) -> Any:
    workdir = Path(tempfile.mkdtemp(prefix="runstore-bench-"))
    try:
        await subject.open(workdir)
        return await body(workdir)
    finally:
        await subject.close()
        shutil.rmtree(workdir, ignore_errors=True)


async def initialize_run_costs(dsn: str | None, settings: Settings) -> list[Line]:
    """µs per ``initialize_run``: a new session of a known agent, and a known session."""
    lines: list[Line] = []
    for factory in runstore_factories(dsn):
        subject = factory()
        new_line = Line(f"{subject.name}: new session")
        known_line = Line(f"{subject.name}: known session_id")
        lines += [new_line, known_line]

        async def body(
            workdir: Path,
            subject: RunstoreSubject = subject,
            new_line: Line = new_line,
            known_line: Line = known_line,
        ) -> None:
            store = subject.store
            assert store is not None
            first = await store.initialize_run(workflow_name="bench", input_data={"q": "hi"})

            async def new() -> None:
                await store.initialize_run(workflow_name="bench", input_data={"q": "hi"})

            async def known() -> None:
                await store.initialize_run(
                    workflow_name="bench", session_id=first.session_id, input_data={"q": "hi"}
                )

            new_line.figure = await measure_calls(new, settings)
            known_line.figure = await measure_calls(known, settings)

        try:
            await _with_subject(subject, body)
        except Unavailable as exc:
            new_line.missing = known_line.missing = str(exc)
        log(f"  initialize_run {subject.name}: done")
    return lines


async def _fill_huge(store: DataStorage) -> tuple[str, str, float]:
    """Import one session of 1M messages and one of 100; returns their ids and the seconds
    the 1M import took."""
    await store.import_data(runstore_document(1, 100, AGENT_ID, "small"))
    document = runstore_document(1, HUGE, AGENT_ID, "huge")
    start = time.perf_counter()
    await store.import_data(document)
    seconds = time.perf_counter() - start
    del document
    gc.collect()
    return "huge-s0", "small-s0", seconds


async def _reads(store: DataStorage, label: str, settings: Settings, fill: float) -> list[Line]:
    lines = []
    for session_id, size in (("small-s0", 100), ("huge-s0", HUGE)):

        async def read(session_id: str = session_id) -> None:
            await store.get_chat_history(session_id, WINDOW)

        figure = await measure_calls(read, settings)
        detail = f"pre-filled by one import_data in {fill:.1f} s" if size == HUGE else ""
        lines.append(Line(f"{label}: newest 50 of {size:,}", figure, detail=detail))
    return lines


async def huge_reads(settings: Settings) -> list[Line]:
    """``get_chat_history(limit=50)`` at P = 100 and 1M: in-memory, and SQLite (one file,
    filled once, read through each driver)."""
    lines: list[Line] = []
    memory = InMemoryDataStorage()
    try:
        _, _, fill = await _fill_huge(memory)
        lines += await _reads(memory, "runstore in-memory", settings, fill)
    finally:
        await memory.close()
    log("  1M read, in-memory: done")
    workdir = Path(tempfile.mkdtemp(prefix="runstore-bench-"))
    try:
        path = workdir / "huge.sqlite3"
        fill = 0.0
        for driver in ("sqlite3", "aiosqlite"):
            label = f"runstore SQLite, {driver} driver"
            try:
                store = sqlite_store(path, driver)
            except Unavailable as exc:
                lines.append(Line(f"{label}: newest 50 of {HUGE:,}", missing=str(exc)))
                continue
            try:
                if driver == "sqlite3" or fill == 0.0:
                    _, _, fill = await _fill_huge(store)
                lines += await _reads(store, label, settings, fill)
            finally:
                await store.close()
            log(f"  1M read, {label}: done")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return lines


async def memory_per_message(count: int = 20_000) -> list[Line]:
    """Bytes each stored message adds (tracemalloc), content strings made beforehand so they
    are not counted (the store keeps a reference: strings are immutable)."""
    texts = [f"{USER_TEXT} ({i})" for i in range(count)]
    store = InMemoryDataStorage()
    handle = await store.initialize_run(workflow_name="bench")
    await store.add_chat_message(
        agent_id=handle.agent_id,
        session_id=handle.session_id,
        run_id=handle.run_id,
        role="user",
        content="warm-up",
    )
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for text in texts:
        await store.add_chat_message(
            agent_id=handle.agent_id,
            session_id=handle.session_id,
            run_id=handle.run_id,
            role="user",
            content=text,
        )
    gc.collect()
    runstore_bytes = (tracemalloc.get_traced_memory()[0] - before) / count
    tracemalloc.stop()
    await store.close()

    bare: list[tuple[str, str]] = []
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for text in texts:
        bare.append(("user", text))
    bare_bytes = (tracemalloc.get_traced_memory()[0] - before) / count
    tracemalloc.stop()
    return [
        Line("runstore in-memory", Figure([runstore_bytes], unit="bytes")),
        Line("bare list of (role, content) tuples", Figure([bare_bytes], unit="bytes")),
    ]


async def single_adds(settings: Settings) -> list[Line]:
    """µs per ``add_chat_message`` next to one bare INSERT+COMMIT (the floor's add), same
    driver, WAL file, on a session of 100 messages."""
    lines: list[Line] = []
    pairs: list[tuple[RunstoreSubject, Subject]] = [
        (RunstoreSqlite("sqlite3"), RawSqlite3()),
        (RunstoreSqlite("aiosqlite"), RawAiosqlite()),
    ]
    for store_subject, floor in pairs:
        driver = getattr(store_subject, "driver", "")
        store_line = Line(f"runstore add_chat_message ({driver} driver)")
        floor_line = Line(f"bare INSERT+COMMIT ({driver})")
        lines += [store_line, floor_line]

        async def store_body(
            workdir: Path, subject: RunstoreSubject = store_subject, line: Line = store_line
        ) -> None:
            (handle,) = await subject.add_sessions(1, 100)
            store = subject.store
            assert store is not None

            async def add() -> None:
                await store.add_chat_message(
                    agent_id=handle.agent_id,
                    session_id=handle.session_id,
                    run_id=handle.run_id,
                    role="user",
                    content=USER_TEXT,
                )

            line.figure = await measure_calls(add, settings)

        async def floor_body(workdir: Path, subject: Any = floor, line: Line = floor_line) -> None:
            (session,) = await subject.add_sessions(1, 100)

            async def add() -> None:
                result = subject.add(session, "user", USER_TEXT)
                if result is not None:
                    await result

            line.figure = await measure_calls(add, settings)

        for line, subject, body in (
            (store_line, store_subject, store_body),
            (floor_line, floor, floor_body),
        ):
            try:
                await _with_subject(subject, body)
            except Unavailable as exc:
                line.missing = str(exc)
        log(f"  single add, {driver}: done")
    return lines
