"""PostgreSQL: finding a server, and turns/s at 1, 8 and 32 concurrent sessions.

The server is the one ``RUNSTORE_BENCH_DSN`` names, else a throwaway cluster started with
``scripts/pg_cluster start`` (and stopped at the end) when that script exists; else the
Postgres rows say "not run". Each concurrent session is one task doing turns on its own
session (pre-filled with 100 messages) for a fixed time; turns/s counts every task's turns.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .floors import RawAsyncpg
from .runstore_stores import RunstorePostgres
from .timing import Figure, Settings
from .turns import log
from .workload import Subject, Unavailable

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = ROOT / "scripts" / "pg_cluster"
CONCURRENCY = (1, 8, 32)


class Server:
    """A DSN, or why there is none; ``stop`` ends what ``start`` started."""

    def __init__(self) -> None:
        self.dsn: str | None = None
        self.why_not = ""
        self._started = False

    def start(self) -> None:
        self.dsn = os.environ.get("RUNSTORE_BENCH_DSN") or None
        if self.dsn is not None:
            return
        if not CLUSTER.exists():
            self.why_not = "not run: no server (scripts/pg_cluster is missing)"
            return
        done = subprocess.run(
            [str(CLUSTER), "start"], capture_output=True, text=True, timeout=300, check=False
        )
        found = re.findall(r"postgres(?:ql)?://\S+", done.stdout)
        if done.returncode != 0 or not found:
            self.why_not = f"not run: scripts/pg_cluster start failed: {done.stderr[-300:]}"
            return
        self.dsn = found[-1]
        self._started = True

    def stop(self) -> None:
        if self._started:
            subprocess.run([str(CLUSTER), "stop"], capture_output=True, timeout=120, check=False)


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


async def concurrency(dsn: str | None, why_not: str, settings: Settings) -> list[Concurrency]:
    factories: list[tuple[str, Callable[[], Subject]]] = [
        ("raw asyncpg", lambda: RawAsyncpg(dsn)),
        ("runstore Postgres", lambda: RunstorePostgres(dsn)),
    ]
    seconds = max(0.2, settings.budget * 2.5)
    rows = []
    for name, factory in factories:
        row = Concurrency(name)
        rows.append(row)
        if dsn is None:
            row.missing = why_not
            continue
        for count in CONCURRENCY:
            subject = factory()
            try:
                await subject.open(Path("."))
                sessions = await subject.add_sessions(count, 100)
                await _turns_per_second(subject, sessions, seconds / 4)  # warm the pool
                samples = [
                    await _turns_per_second(subject, sessions, seconds)
                    for _ in range(settings.reps)
                ]
                row.figures[count] = Figure(samples, unit="turns/s")
            except Unavailable as exc:
                row.missing = str(exc)
                break
            finally:
                await subject.close()
            log(f"  {name} x{count}: {row.figures[count].median:,.0f} turns/s")
    return rows
