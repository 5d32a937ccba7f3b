"""The main table: µs per chat turn at every P for every store, floors first."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .floors import BareList, RawAiosqlite, RawAsyncpg, RawSqlite3
from .peers import AdkSessions, AgentsSqliteSession, LangChainHistory, LangGraphSaver
from .runstore_stores import RunstoreMemory, RunstorePostgres, RunstoreSqlite
from .timing import Figure, Settings, cell, measure_turns
from .workload import SIZES, Subject, Unavailable


@dataclass
class Row:
    name: str
    floor: str | None
    figures: dict[int, Figure] = field(default_factory=dict)
    missing: str | None = None  # why the row was not measured
    group: str = ""


def subjects(dsn: str | None) -> list[tuple[str, Callable[[], Subject]]]:
    """(group, factory) for every measured store, in table order."""
    return [
        ("floor", BareList),
        ("floor", RawSqlite3),
        ("floor", RawAiosqlite),
        ("floor", lambda: RawAsyncpg(dsn)),
        ("runstore", RunstoreMemory),
        ("runstore", lambda: RunstoreSqlite("sqlite3")),
        ("runstore", lambda: RunstoreSqlite("aiosqlite")),
        ("runstore", lambda: RunstorePostgres(dsn)),
        ("peer", LangChainHistory),
        ("peer", AdkSessions),
        ("peer", LangGraphSaver),
        ("peer", lambda: AgentsSqliteSession(on_file=False)),
        ("peer", lambda: AgentsSqliteSession(on_file=True)),
    ]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def measure_all(
    dsn: str | None, settings: Settings, sizes: tuple[int, ...] = SIZES
) -> list[Row]:
    rows: list[Row] = []
    for group, factory in subjects(dsn):
        probe = factory()
        row = Row(probe.name, probe.floor, group=group)
        rows.append(row)
        for size in sizes:
            subject = factory() if size != sizes[0] else probe
            workdir = Path(tempfile.mkdtemp(prefix="runstore-bench-"))
            try:
                await subject.open(workdir)
                figure = await measure_turns(subject, size, settings)
            except Unavailable as exc:
                row.missing = str(exc)
                log(f"  {row.name}: not available: {exc}")
                break
            finally:
                await subject.close()
                shutil.rmtree(workdir, ignore_errors=True)
            row.figures[size] = figure
            log(f"  {row.name:<45} P={size:>7,}: {cell(figure)} µs/turn {figure.notes}")
    return rows
