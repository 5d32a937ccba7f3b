"""Automatic failover on pg_auto_failover (Debian's ``pg_autoctl``: a monitor, a primary and a
synchronous standby, ``tests/pg_server.HACluster``), with writer processes running on the
cluster's multi-host DSN (``target_session_attrs=read-write``).

Rounds: the primary's postmaster is SIGKILLed (its keeper restarts it), or the whole primary
node is (keeper, postmaster, backends: the monitor promotes the standby; the old primary is
then started again and rejoins as the standby); or, on a cluster whose nodes live in network
namespaces of their own (``NetnsHACluster``), the primary is cut off the network (its packets
dropped without an answer: the writers' open connections to it hear nothing), the monitor
promotes the standby, and the cut is healed: the old primary rejoins as the standby. Every
call either succeeds or raises ``StorageUnavailableError``; the writers retry such a call
with the same idempotency key, so nothing acknowledged is lost and nothing is written twice,
and the stores carry on on the new primary by themselves. As root the cluster of this process is
the namespaced one (``shared_ha_cluster``), and the whole contract suite also runs on it:
``pytest tests/contract --backends postgres-ha``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pg_server
import pytest
from pg_helpers import new_schema
from pg_server import HACluster, NetnsHACluster, shared_ha_cluster

from runstore import PostgresDataStorage
from runstore.postgres import _connect_to_any

WORKER = Path(__file__).with_name("pg_ha_worker.py")
PROCESSES = 3
TASKS = 2
# What happens to the primary, round by round.
ROUNDS = ("node", "postmaster", "node", "postmaster", "node")
CUTS = 2  # the primary cut off, then healed: n1, then n2


# What connecting or counting raises while there is no primary.
_NO_PRIMARY = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,  # no host is read-write
    TimeoutError,
)


async def _count(dsn: str, schema: str) -> int:
    """Messages on the current primary (0 while there is none). Every host at once, as the
    store connects: asyncpg alone would wait for a cut-off first host."""
    try:
        conn = await _connect_to_any(dsn, timeout=2)
    except _NO_PRIMARY:
        return 0
    try:
        count: int = await conn.fetchval(f'SELECT count(*) FROM "{schema}".messages')
        return count
    except _NO_PRIMARY:
        return 0
    finally:
        conn.terminate()


async def _healthy_again(cluster: HACluster) -> None:
    await asyncio.to_thread(cluster.wait_for, cluster.healthy, 180)


class _Writing:
    """What the block of ``_writers`` gets: ``events`` to append (what happened, wall-clock
    time) to, and ``grows``."""

    def __init__(self, dsn: str, schema: str) -> None:
        self.dsn = dsn
        self.schema = schema
        self.events: list[tuple[str, float]] = []
        self.seen = 0  # the most messages counted so far

    async def grows(self, by: int, seconds: float = 120) -> None:
        """Returns once the primary holds ``by`` more messages than were ever counted before
        (while there is no primary, nothing is counted)."""
        start = max(self.seen, await _count(self.dsn, self.schema))
        deadline = time.monotonic() + seconds
        while (count := await _count(self.dsn, self.schema)) < start + by:
            assert time.monotonic() < deadline, f"the writers did not get {by} more writes through"
            await asyncio.sleep(0.2)
        self.seen = count


@asynccontextmanager
async def _writers(cluster: HACluster, summary: str) -> AsyncIterator[_Writing]:
    """PROCESSES writer processes x TASKS tasks on the cluster's DSN while the block runs;
    afterwards the stored messages are checked (nothing acknowledged lost, nothing twice,
    only ``StorageUnavailableError`` raised) and the counts printed after ``summary``, with
    the time from each event to the first write sent after it acknowledged."""
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
    writing = _Writing(cluster.dsn, schema)
    outputs: list[Any] = []
    try:
        await writing.grows(100)
        yield writing
        await writing.grows(50)
    finally:
        for worker in workers:  # closing stdin stops it
            out, err = await asyncio.wait_for(worker.communicate(b""), 120)
            assert worker.returncode == 0, err.decode()[-2000:]
            outputs.append(json.loads(out))

    acknowledged = [row for output in outputs for row in output["acknowledged"]]
    unavailable = sum(output["unavailable"] for output in outputs)
    slowest = max(output["slowest"] for output in outputs)
    assert [o["other"] for o in outputs] == [[]] * PROCESSES  # only StorageUnavailableError
    conn = await _connect_to_any(cluster.dsn, timeout=10)
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
    for what, at in writing.events:
        after = [acked for _, _, sent, acked in acknowledged if sent > at]
        firsts.append(f"{what} {min(after) - at:.1f} s")
    print(
        f"\n{summary}, {PROCESSES} processes x {TASKS} writers: "
        f"{len(acknowledged)} writes acknowledged, {len(lost)} lost, {len(doubled)} written "
        f"twice, {unavailable} calls raised StorageUnavailableError (retried with the same "
        f"key; the slowest took {slowest:.1f} s); first write sent after each event "
        f"acknowledged: {', '.join(firsts)}"
    )
    assert lost == []
    assert doubled == {}
    assert len(stored) == len(acknowledged)  # every stored message was acknowledged once
    assert sorted(stored.values()) == list(range(1, len(stored) + 1))  # seqs have no gaps
    assert unavailable > 0  # the failures were seen


async def test_writers_survive_killed_primaries_with_nothing_lost_or_doubled() -> None:
    cluster = shared_ha_cluster()
    killed: list[str] = []
    async with _writers(cluster, f"pg_auto_failover, {len(ROUNDS)} rounds") as writing:
        for what in ROUNDS:
            primary = await asyncio.to_thread(cluster.primary)
            killed.append(primary)
            writing.events.append((what, time.time()))
            if what == "node":
                cluster.kill_node(primary)
                await writing.grows(50)  # on the other node
                cluster.start_node(primary)
                await _healthy_again(cluster)
            else:
                cluster.kill_postmaster(primary)
                await writing.grows(50)
                await _healthy_again(cluster)
            await writing.grows(50)
    assert set(killed) == {"n1", "n2"}  # the primary moved


async def test_writers_survive_a_primary_cut_off_the_network() -> None:
    """The primary cut off (``NetnsHACluster.cut``: its packets dropped, no refusal), CUTS
    times: the writers' connections to it fail within the store's ``network_timeout`` (TCP
    keepalives, ``TCP_USER_TIMEOUT``) as ``StorageUnavailableError``, the monitor promotes
    the standby and the writers go on on it; once the cut heals, the old primary rejoins as
    the standby, under the writers. Needs the cluster in network namespaces (root): without,
    it fails saying why."""
    cluster = shared_ha_cluster()
    if not isinstance(cluster, NetnsHACluster):
        pytest.fail(
            "cannot cut a node off: the pg_auto_failover cluster runs on loopback, not in "
            f"network namespaces: {pg_server.no_netns_reason}"
        )
    cut: list[str] = []
    async with _writers(cluster, f"pg_auto_failover, {CUTS} network cuts") as writing:
        for _ in range(CUTS):
            primary = await asyncio.to_thread(cluster.primary)
            cut.append(primary)
            writing.events.append((f"cut {primary}", time.time()))
            cluster.cut(primary)
            try:
                await writing.grows(50)  # on the other node, the old primary still cut off
                assert cluster.states()[primary][1] != "primary"  # the monitor demoted it
            finally:
                cluster.heal(primary)
            await _healthy_again(cluster)
            assert cluster.states()[primary] == ("secondary", "secondary")  # rejoined
            await writing.grows(50)
    assert set(cut) == {"n1", "n2"}  # the new primary was cut off in turn
