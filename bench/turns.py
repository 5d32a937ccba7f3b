"""The main table: µs per chat turn at every P for every store, floors first."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .floors import BareList, MinimalAsyncStore, RawAiosqlite, RawAsyncpg, RawSqlite3
from .integrations import RunstoreAgentsSession
from .peers import AdkSessions, AgentsSqliteSession, LangChainHistory, LangGraphSaver
from .runstore_stores import (
    RunstoreMemory,
    RunstorePostgres,
    RunstorePostgresPgBouncer,
    RunstoreSqlite,
)
from .timing import Figure, Plan, Settings, cell, interleave, prepare
from .workload import SIZES, Subject, Unavailable


@dataclass
class Row:
    name: str
    floor: str | None
    figures: dict[int, Figure] = field(default_factory=dict)
    missing: str | None = None  # why the row was not measured
    group: str = ""


def subjects(
    dsn: str | None, pgbouncer_dsn: str | None = None
) -> list[tuple[str, Callable[[], Subject]]]:
    """(group, factory) for every measured store, in table order."""
    return [
        ("floor", BareList),
        ("floor", MinimalAsyncStore),
        ("floor", RawSqlite3),
        ("floor", RawAiosqlite),
        ("floor", lambda: RawAsyncpg(dsn)),
        ("runstore", RunstoreMemory),
        ("runstore", lambda: RunstoreSqlite("sqlite3")),
        ("runstore", lambda: RunstoreSqlite("aiosqlite")),
        ("runstore", lambda: RunstorePostgres(dsn)),
        ("runstore", lambda: RunstorePostgresPgBouncer(pgbouncer_dsn)),
        ("peer", LangChainHistory),
        ("peer", AdkSessions),
        ("peer", LangGraphSaver),
        ("peer", lambda: AgentsSqliteSession(on_file=False)),
        ("peer", lambda: AgentsSqliteSession(on_file=True)),
        ("adapter", lambda: RunstoreAgentsSession(None)),
        ("adapter", lambda: RunstoreAgentsSession("sqlite3")),
        ("adapter", lambda: RunstoreAgentsSession("aiosqlite")),
        ("adapter", lambda: RunstoreAgentsSession("postgres", dsn)),
    ]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def measure_all(
    dsn: str | None,
    settings: Settings,
    sizes: tuple[int, ...] = SIZES,
    *,
    pgbouncer_dsn: str | None = None,
) -> list[Row]:
    """Every store at every size. Per size, all stores are opened and pre-filled first, then
    their repetitions run interleaved (``timing.interleave``)."""
    factories = subjects(dsn, pgbouncer_dsn)
    rows: list[Row] = []
    for group, factory in factories:
        probe = factory()
        rows.append(Row(probe.name, probe.floor, group=group))
    for size in sizes:
        log(f"-- P = {size:,}")
        opened: list[tuple[Row, Subject, Path]] = []
        plans: list[tuple[Row, Plan]] = []
        try:
            for row, (_, factory) in zip(rows, factories, strict=True):
                if row.missing is not None:
                    continue
                subject = factory()
                workdir = Path(tempfile.mkdtemp(prefix="runstore-bench-"))
                opened.append((row, subject, workdir))
                try:
                    await subject.open(workdir)
                    plans.append((row, await prepare(subject, size, settings)))
                except Unavailable as exc:
                    row.missing = str(exc)
                    log(f"  {row.name}: not available: {exc}")
            await interleave([plan for _, plan in plans])
        finally:
            for _, subject, workdir in opened:
                await subject.close()
                shutil.rmtree(workdir, ignore_errors=True)
        for row, plan in plans:
            row.figures[size] = figure = plan.figure()
            log(f"  {row.name:<45} P={size:>7,}: {cell(figure)} µs/turn {figure.notes}")
    return rows
