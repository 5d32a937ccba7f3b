"""PostgreSQL: finding a server, and turns/s at 1, 8 and 32 concurrent sessions.

The server is the one ``RUNSTORE_BENCH_DSN`` (or ``RUNSTORE_PG_DSN``) names, else a throwaway
loopback cluster started with the tests' ``tests/pg_server.py`` (and stopped at the end) when
PostgreSQL is installed; else the Postgres rows say "not run". PgBouncer in transaction pooling
mode in front of it is ``RUNSTORE_BENCH_PGBOUNCER_DSN``, else the one ``tests/pg_server.py``
starts with the throwaway cluster (when PgBouncer is installed). That cluster runs with
``fsync=off``: both runstore and the raw asyncpg floor see the same server. Each concurrent
session is one task doing turns on its own session (pre-filled with 100 messages) for a fixed
time; turns/s counts every task's turns.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .floors import RawAsyncpg
from .runstore_stores import RunstorePostgres, RunstorePostgresPgBouncer
from .timing import Figure, Settings
from .turns import log
from .workload import Subject, Unavailable

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = ROOT / "tests" / "pg_server.py"
CONCURRENCY = (1, 8, 32)


class Server:
    """A DSN, or why there is none; ``stop`` ends what ``start`` started."""

    def __init__(self) -> None:
        self.dsn: str | None = None
        self.pgbouncer_dsn: str | None = None
        self.why_not = ""
        self._state: Path | None = None

    def start(self) -> None:
        self.dsn = os.environ.get("RUNSTORE_BENCH_DSN") or os.environ.get("RUNSTORE_PG_DSN")
        self.pgbouncer_dsn = os.environ.get("RUNSTORE_BENCH_PGBOUNCER_DSN")
        if self.dsn:
            return
        self.dsn = None
        if not PG_SERVER.exists():
            self.why_not = "no server (tests/pg_server.py is missing)"
            return
        state = Path(tempfile.mkdtemp(prefix="runstore-bench-pg-"))
        done = subprocess.run(
            [sys.executable, str(PG_SERVER), "start", str(state)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0 or not (state / "dsn").exists():
            self.why_not = f"no server: {(done.stderr or done.stdout).strip()[-300:]}"
            shutil.rmtree(state, ignore_errors=True)
            return
        self.dsn = (state / "dsn").read_text().strip()
        if (state / "pgbouncer_dsn").exists():
            self.pgbouncer_dsn = (state / "pgbouncer_dsn").read_text().strip()
        self._state = state

    def stop(self) -> None:
        if self._state is not None:
            subprocess.run(
                [sys.executable, str(PG_SERVER), "stop", str(self._state)],
                capture_output=True,
                timeout=120,
                check=False,
            )
            shutil.rmtree(self._state, ignore_errors=True)
            self._state = None


@dataclass
class Concurrency:
    name: str
    figures: dict[int, Figure] = field(default_factory=dict)  # turns/s by sessions
    missing: str | None = None


async def _turns_per_second(subject: Subject, sessions: list[Any], seconds: float) -> float:
    counts = [0] * len(sessions)

    async def worker(index: int, session: Any, deadline: float) -> None:
        while time.perf_counter() < deadline:
            await subject.turn(session)  # type: ignore[misc]
            counts[index] += 1

    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(*(worker(i, s, deadline) for i, s in enumerate(sessions)))
    return sum(counts) / (time.perf_counter() - start)


async def concurrency(
    dsn: str | None, why_not: str, settings: Settings, pgbouncer_dsn: str | None = None
) -> list[Concurrency]:
    """turns/s of runstore's Postgres store (straight to the server and through PgBouncer) and
    of the raw asyncpg floor, their repetitions interleaved at each level of concurrency."""
    factories: list[Callable[[], Subject]] = [
        lambda: RawAsyncpg(dsn),
        lambda: RunstorePostgres(dsn),
        lambda: RunstorePostgresPgBouncer(pgbouncer_dsn),
    ]
    rows = [Concurrency(factory().name) for factory in factories]
    if dsn is None:
        for row in rows:
            row.missing = why_not
        return rows
    seconds = max(0.2, settings.budget * 2.5)
    for count in CONCURRENCY:
        opened: list[Subject] = []
        prepared = []
        try:
            for row, factory in zip(rows, factories, strict=True):
                if row.missing is not None:
                    continue
                subject = factory()
                opened.append(subject)
                try:
                    await subject.open(Path("."))
                except Unavailable as exc:
                    row.missing = str(exc)
                    continue
                sessions = await subject.add_sessions(count, 100)
                await _turns_per_second(subject, sessions, seconds / 4)  # warm the pool
                prepared.append((row, subject, sessions, []))
            for _ in range(settings.reps):
                for _, subject, sessions, samples in prepared:
                    samples.append(await _turns_per_second(subject, sessions, seconds))
        finally:
            for subject in opened:
                await subject.close()
        for row, _, _, samples in prepared:
            row.figures[count] = Figure(samples, unit="turns/s")
            log(f"  {row.name} x{count}: {row.figures[count].median:,.0f} turns/s")
    return rows
