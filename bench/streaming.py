"""Streaming copy: ``export_records`` + ``import_records`` of a store of N messages, SQLite to
PostgreSQL and back, with the peak RSS of the process that copies, next to a raw copy of the
same rows (sqlite3 SELECT into asyncpg ``copy_records_to_table``).

Each copy runs in a fresh subprocess (``python -m bench.streaming STEP ...``) that reports its
records, seconds and peak RSS (VmHWM), so the peak is that copy's alone. The source is filled fast:
executemany straight into a runstore SQLite schema (sessions of 1,000 messages, one run each).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PER_SESSION = 1000
SIZES = (100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)
RSS_TARGET_MB = 200
RAW = "raw copy of the messages"
CONTENT = "A user message of a typical length, with a little text in it: {}"


@dataclass
class Copy:
    """One measured copy."""

    label: str
    messages: int
    records: int = 0
    seconds: float = 0.0
    peak_mb: float = 0.0
    missing: str | None = None

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


# -- the steps, each in its own process ----------------------------------------------------


def fill(path: str, count: int) -> dict[str, Any]:
    """A runstore SQLite file holding ``count`` messages (schema made by the store itself)."""
    from runstore import SqliteDataStorage

    async def create() -> None:
        async with SqliteDataStorage(path, driver="sqlite3"):
            pass

    asyncio.run(create())
    start = datetime(2025, 1, 1, tzinfo=UTC)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)

    def micros(when: datetime) -> int:
        return (when - epoch) // timedelta(microseconds=1)

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    at = micros(start)
    db.execute(
        "INSERT INTO agents (id, name, created_at, updated_at) VALUES ('agent', 'bench', ?, ?)",
        (at, at),
    )
    sessions = (count + PER_SESSION - 1) // PER_SESSION
    for s in range(sessions):
        sid = f"session-{s:07d}"
        n = min(PER_SESSION, count - s * PER_SESSION)
        db.execute(
            "INSERT INTO sessions (id, agent_id, external_id, created_at, updated_at, last_seq)"
            " VALUES (?, 'agent', ?, ?, ?, ?)",
            (sid, f"user-{s % 100}", at, at + n, n),
        )
        db.execute(
            "INSERT INTO runs (id, session_id, agent_id, input_data, state, created_at, updated_at)"
            " VALUES (?, ?, 'agent', '{\"q\":1}', ?, ?, ?)",
            (f"run-{s:07d}", sid, '{"workflow_name":"bench","status":"completed"}', at, at),
        )
        db.executemany(
            "INSERT INTO messages (session_id, seq, run_id, role, content, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                (
                    sid,
                    i,
                    f"run-{s:07d}",
                    "user" if i % 2 else "assistant",
                    CONTENT.format(i),
                    at + i,
                )
                for i in range(1, n + 1)
            ),
        )
    db.execute("COMMIT")
    db.close()
    return {"sessions": sessions}


def _store(url: str) -> Any:
    from runstore._cli import open_store

    return open_store(url)


async def stream(source_url: str, target_url: str) -> int:
    """``target.import_records(source.export_records())``: the records copied."""
    copied = 0
    async with _store(source_url) as source, _store(target_url) as target:

        async def counted() -> Any:
            nonlocal copied
            async for record in source.export_records():
                copied += 1
                yield record

        await target.import_records(counted())
    return copied


async def raw(path: str, dsn: str) -> int:
    """The floor: the messages' rows, SELECTed by sqlite3 and COPYed by asyncpg, in batches."""
    import asyncpg

    table = f"raw_{uuid.uuid4().hex[:12]}"
    db = sqlite3.connect(path)
    conn = await asyncpg.connect(dsn)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    copied = 0
    try:
        await conn.execute(
            f"CREATE TABLE {table} (session_id text, seq bigint, run_id text, role text,"
            " content text, created_at timestamptz, PRIMARY KEY (session_id, seq))"
        )
        cursor = db.execute(
            "SELECT session_id, seq, run_id, role, content, created_at FROM messages"
            " ORDER BY session_id, seq"
        )
        async with conn.transaction():
            while rows := cursor.fetchmany(PER_SESSION):
                await conn.copy_records_to_table(
                    table,
                    records=[(*row[:5], epoch + timedelta(microseconds=row[5])) for row in rows],
                )
                copied += len(rows)
        await conn.execute(f"DROP TABLE {table}")
    finally:
        await conn.close()
        db.close()
    return copied


def step(argv: list[str]) -> None:
    """Run one step and print {"records", "seconds", "peak_mb"} as JSON."""
    name, *args = argv
    started = time.perf_counter()
    if name == "fill":
        fill(args[0], int(args[1]))
        records = int(args[1])
    elif name == "stream":
        records = asyncio.run(stream(args[0], args[1]))
    else:
        records = asyncio.run(raw(args[0], args[1]))
    seconds = time.perf_counter() - started
    print(json.dumps({"records": records, "seconds": seconds, "peak_mb": _peak_kib() / 1024}))


def _peak_kib() -> int:
    """This process image's peak RSS: VmHWM (reset by execve). ru_maxrss is not: a child of
    the big bench process keeps the parent's peak across fork + exec (the run on 2026-12-07
    reported the bench's 2,631 MB for every copy)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


# -- the driver ---------------------------------------------------------------------------


def _run(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.streaming", *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=Path(__file__).parents[1],
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip()[-500:])
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _measured(label: str, messages: int, *args: str) -> Copy:
    copy = Copy(label, messages)
    try:
        found = _run(*args)
    except RuntimeError as exc:
        copy.missing = str(exc)
        return copy
    copy.records, copy.seconds, copy.peak_mb = found["records"], found["seconds"], found["peak_mb"]
    return copy


def measure(dsn: str | None, quick: bool = False, log: Any = print) -> list[Copy]:
    """Every copy at each size (a fresh source, PostgreSQL schema and target each time)."""
    copies: list[Copy] = []
    for size in QUICK_SIZES if quick else SIZES:
        if dsn is None:
            copies.append(Copy("streaming copy", size, missing="no PostgreSQL server"))
            continue
        work = Path(tempfile.mkdtemp(prefix="runstore-bench-stream-"))
        try:
            source = work / "source.db"
            _run("fill", str(source), str(size))
            schema = f"bench_stream_{uuid.uuid4().hex[:12]}"
            pg = f"{dsn}{'&' if '?' in dsn else '?'}schema={schema}"
            copies.append(
                _measured("SQLite → PostgreSQL", size, "stream", f"sqlite:///{source}", pg)
            )
            log(f"  streaming copy {size:,}: SQLite to PostgreSQL done")
            back = work / "back.db"
            copies.append(_measured("PostgreSQL → SQLite", size, "stream", pg, f"sqlite:///{back}"))
            log(f"  streaming copy {size:,}: PostgreSQL to SQLite done")
            copies.append(_measured(RAW, size, "raw", str(source), dsn))
            _drop_schema(dsn, schema)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return copies


def _drop_schema(dsn: str, schema: str) -> None:
    async def drop() -> None:
        import asyncpg

        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


def _size(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k"


def lines(copies: list[Copy]) -> list[str]:
    """The Markdown section of docs/benchmarks.md: one row per kind of copy, the sizes side by
    side."""
    sizes = sorted({c.messages for c in copies})
    kinds = list(dict.fromkeys(c.label for c in copies))
    found = {(c.label, c.messages): c for c in copies}
    out = [
        "## Streaming copy: export_records + import_records",
        "",
        "A store of N messages (sessions of 1,000 messages, one run each) copied by "
        "`target.import_records(source.export_records())` in a fresh process; peak RSS is that "
        "process's VmHWM. Records count the header, agent, sessions and runs too. The raw "
        "copy moves only the messages' rows (sqlite3 SELECT into asyncpg "
        "`copy_records_to_table`), with no checks.",
        "",
    ]
    head = ["copy"]
    head += [f"records/s, {_size(n)} messages" for n in sizes]
    head += [f"peak RSS MB, {_size(n)} messages" for n in sizes]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for kind in kinds:
        cells = [kind]
        for column in ("rate", "peak"):
            for n in sizes:
                copy = found.get((kind, n))
                if copy is None or copy.missing is not None:
                    cells.append(f"n/a: {copy.missing if copy else 'not run'}")
                else:
                    cells.append(f"{copy.rate:,.0f}" if column == "rate" else f"{copy.peak_mb:.0f}")
        out.append("| " + " | ".join(cells) + " |")
    peaks = [c.peak_mb for c in copies if c.missing is None and c.label != RAW]
    if peaks:
        met = max(peaks) < RSS_TARGET_MB
        out += [
            "",
            f"Target: peak RSS under {RSS_TARGET_MB} MB at any store size: "
            f"{'met' if met else 'missed'} (highest {max(peaks):.0f} MB).",
        ]
    return out


if __name__ == "__main__":
    step(sys.argv[1:])
