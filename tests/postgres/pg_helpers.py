"""Helpers for the PostgreSQL-specific tests: worker processes that start together."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
from pg_server import shared_dsn

from runstore import DataStorage, RunHandle, StorageError

WORKER = Path(__file__).with_name("pg_worker.py")


def new_schema() -> str:
    """A schema name no other test uses (the store creates it on first use)."""
    return f"pgtest_{uuid.uuid4().hex[:20]}"


def server() -> tuple[str, str]:
    """The test server's DSN and a fresh schema name."""
    return shared_dsn(), new_schema()


class Workers:
    """Starts worker processes that wait on an advisory lock, then lets them all go at once."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.barrier = uuid.uuid4().int % 2**62

    async def run(self, *commands: list[str]) -> list[Any]:
        gate = await asyncpg.connect(self.dsn)
        try:
            await gate.execute("SELECT pg_advisory_lock($1)", self.barrier)
            processes = [
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    str(WORKER),
                    str(self.barrier),
                    self.dsn,
                    *command,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
                for command in commands
            ]
            await asyncio.wait_for(self._all_waiting(gate, len(processes), processes), 120)
            await gate.execute("SELECT pg_advisory_unlock($1)", self.barrier)
            outputs = [await asyncio.wait_for(p.communicate(), 300) for p in processes]
        finally:
            await gate.close()
        for process, (_, err) in zip(processes, outputs, strict=True):
            assert process.returncode == 0, err.decode()
        return [json.loads(out) for out, _ in outputs]

    async def _all_waiting(
        self, gate: asyncpg.Connection, count: int, processes: list[Any]
    ) -> None:
        key = (self.barrier >> 32, self.barrier & 0xFFFFFFFF)
        while True:
            waiting = await gate.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND classid::bigint = $1 AND objid::bigint = $2",
                *key,
            )
            if waiting == count:
                return
            for process in processes:
                if process.returncode is not None:
                    _, err = await process.communicate()
                    raise AssertionError(f"a worker ended early: {err.decode()}")
            await asyncio.sleep(0.05)


def pgbouncer_console(dsn: str, command: str) -> list[dict[str, str]]:
    """Rows of a PgBouncer admin console command (``SHOW POOLS``...), read with psql: the
    console speaks only the simple query protocol."""
    from pg_server import find_bindir

    console = dsn.rsplit("/", 1)[0] + "/pgbouncer"
    done = subprocess.run(
        [str(find_bindir() / "psql"), console, "-X", "-A", "-F", "\t", "-c", command],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    header, *rows = done.stdout.splitlines()[:-1]  # the last line counts the rows
    names = header.split("\t")
    return [dict(zip(names, row.split("\t"), strict=True)) for row in rows]


class ChatWriters:
    """``count`` tasks appending to one session until ``stop()``, recording each acknowledged
    message (content -> seq, and when) and each ``StorageError``; any other exception fails
    the test. ``until`` waits (bounded) for a condition on what they recorded."""

    def __init__(self, store: DataStorage, run: RunHandle, count: int = 4) -> None:
        self.store = store
        self.run = run
        self.acknowledged: dict[str, int] = {}
        # (when the call was made, when it was acknowledged), per acknowledged write
        self.acknowledged_at: list[tuple[float, float]] = []
        self.errors: list[StorageError] = []
        self._finished = asyncio.Event()
        self._changed = asyncio.Event()
        self._tasks = [asyncio.create_task(self._write(n)) for n in range(count)]

    async def _write(self, number: int) -> None:
        for sent in range(10_000_000):  # bounded; stop() ends it far earlier
            if self._finished.is_set():
                return
            content = f"w{number}-{sent}"
            sent_at = time.monotonic()
            try:
                message = await self.store.add_chat_message(
                    agent_id=self.run.agent_id,
                    session_id=self.run.session_id,
                    run_id=self.run.run_id,
                    role="user",
                    content=content,
                )
            except StorageError as exc:
                self.errors.append(exc)
                await asyncio.sleep(0.02)
            else:
                assert message.seq is not None
                self.acknowledged[content] = message.seq
                self.acknowledged_at.append((sent_at, time.monotonic()))
            self._changed.set()

    async def until(self, condition: Callable[[], bool], seconds: float = 120) -> None:
        """Until the condition holds, checked after every call; a hang becomes a failure."""

        async def wait() -> None:
            while not condition():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), seconds)

    async def more(self, count: int, seconds: float = 120) -> None:
        """Until ``count`` more writes are acknowledged."""
        target = len(self.acknowledged) + count
        await self.until(lambda: len(self.acknowledged) >= target, seconds)

    async def stop(self) -> None:
        self._finished.set()
        await asyncio.gather(*self._tasks)

    def lost(self, stored: dict[str, int | None]) -> dict[str, int]:
        """The acknowledged messages missing from ``stored`` (content -> seq) or with another
        seq."""
        return {c: s for c, s in self.acknowledged.items() if stored.get(c) != s}
