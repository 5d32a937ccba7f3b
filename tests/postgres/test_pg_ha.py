"""Automatic failover on pg_auto_failover (Debian's ``pg_autoctl``: a monitor, a primary and a
synchronous standby on loopback, ``tests/pg_server.HACluster``), with writer processes
running on the cluster's multi-host DSN (``target_session_attrs=read-write``).

Rounds: the primary's postmaster is SIGKILLed (its keeper restarts it), or the whole primary
node is (keeper, postmaster, backends: the monitor promotes the standby; the old primary is
then started again and rejoins as the standby). Every call either succeeds or raises
``StorageUnavailableError``; the writers retry such a call with the same idempotency key, so
nothing acknowledged is lost and nothing is written twice, and the stores carry on on the new
primary by themselves. The whole contract suite also runs on this cluster:
``pytest tests/contract --backends postgres-ha``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import asyncpg
from pg_helpers import new_schema
from pg_server import HACluster, shared_ha_cluster

from runstore import PostgresDataStorage

WORKER = Path(__file__).with_name("pg_ha_worker.py")
PROCESSES = 3
TASKS = 2
# What happens to the primary, round by round.
ROUNDS = ("node", "postmaster", "node", "postmaster", "node")


async def _count(dsn: str, schema: str) -> int:
    """Messages on the current primary (0 while there is none)."""
    try:
        conn = await asyncpg.connect(dsn, timeout=2)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        return 0
    try:
        count: int = await conn.fetchval(f'SELECT count(*) FROM "{schema}".messages')
        return count
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        return 0
    finally:
        conn.terminate()


async def _grows(dsn: str, schema: str, by: int, seconds: float = 120) -> None:
    start = await _count(dsn, schema)
    deadline = time.monotonic() + seconds
    while await _count(dsn, schema) < start + by:
        assert time.monotonic() < deadline, f"the writers did not get {by} more writes through"
        await asyncio.sleep(0.2)


async def _healthy_again(cluster: HACluster) -> None:
    await asyncio.to_thread(cluster.wait_for, cluster.healthy, 180)


async def test_writers_survive_killed_primaries_with_nothing_lost_or_doubled() -> None:
    cluster = shared_ha_cluster()
    await _healthy_again(cluster)
    schema = new_schema()
    async with PostgresDataStorage(cluster.dsn, schema=schema) as store:
        run = await store.initialize_run(workflow_name="ha")
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER), cluster.dsn, schema, run.session_id, run.agent_id,
            str(TASKS), "600", f"p{n}",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for n in range(PROCESSES)
    ]  # fmt: skip
    killed: list[tuple[str, str, float]] = []  # (what, node, wall-clock time)
    try:
        await _grows(cluster.dsn, schema, 100)
        for what in ROUNDS:
            primary = await asyncio.to_thread(cluster.primary)
            killed.append((what, primary, time.time()))
            if what == "node":
                cluster.kill_node(primary)
                await _grows(cluster.dsn, schema, 50)  # on the other node
                cluster.start_node(primary)
                await _healthy_again(cluster)
            else:
                cluster.kill_postmaster(primary)
                await _grows(cluster.dsn, schema, 50)
                await _healthy_again(cluster)
            await _grows(cluster.dsn, schema, 50)
    finally:
        outputs = []
        for worker in workers:  # closing stdin stops it
            out, err = await asyncio.wait_for(worker.communicate(b""), 120)
            assert worker.returncode == 0, err.decode()[-2000:]
            outputs.append(json.loads(out))

    acknowledged = [row for output in outputs for row in output["acknowledged"]]
    unavailable = sum(output["unavailable"] for output in outputs)
    assert [o["other"] for o in outputs] == [[]] * PROCESSES  # only StorageUnavailableError
    conn = await asyncpg.connect(cluster.dsn)
    try:
        rows = await conn.fetch(
            f'SELECT content, seq FROM "{schema}".messages WHERE session_id = $1', run.session_id
        )
    finally:
        await conn.close()
    stored = {row["content"]: row["seq"] for row in rows}
    doubled = {c: n for c, n in Counter(row["content"] for row in rows).items() if n > 1}
    lost = [c for c, seq, _, _ in acknowledged if stored.get(c) != seq]
    firsts = []
    for what, _, at in killed:
        after = [acked for _, _, sent, acked in acknowledged if sent > at]
        firsts.append(f"{what} {min(after) - at:.1f} s")
    print(
        f"\npg_auto_failover, {len(ROUNDS)} rounds, {PROCESSES} processes x {TASKS} writers: "
        f"{len(acknowledged)} writes acknowledged, {len(lost)} lost, {len(doubled)} written "
        f"twice, {unavailable} calls raised StorageUnavailableError (retried with the same "
        f"key); first write after each kill: {', '.join(firsts)}"
    )
    assert lost == []
    assert doubled == {}
    assert len(stored) == len(acknowledged)  # every stored message was acknowledged once
    assert sorted(stored.values()) == list(range(1, len(stored) + 1))  # seqs have no gaps
    assert unavailable > 0  # the kills were seen
    assert {node for _, node, _ in killed} == {"n1", "n2"}  # the primary moved
