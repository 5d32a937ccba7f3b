"""Helpers for the PostgreSQL-specific tests: worker processes that start together."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from pg_server import shared_dsn

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
