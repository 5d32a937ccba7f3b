"""Primary failover with writers running: a primary and a synchronous streaming standby; the
primary crashes (``pg_ctl stop -m immediate``), the standby is promoted, and the same store
object (a DSN naming both hosts, ``target_session_attrs=read-write``) carries on by itself on
the new primary with every acknowledged write there."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import asyncpg
import pytest
from pg_helpers import ChatWriters
from pg_server import DATABASE, USER, Cluster

from runstore import PostgresDataStorage, StorageUnavailableError

WRITERS = 4


@pytest.fixture
def primary_and_standby() -> Iterator[tuple[Cluster, Cluster]]:
    primary = Cluster.create()
    standby = None
    try:
        standby = Cluster.standby_of(primary, name="standby1")
        yield primary, standby
    finally:
        if standby is not None:
            standby.destroy()
        primary.destroy()


async def make_synchronous(primary: Cluster) -> None:
    """A commit on the primary is acknowledged only once the standby has flushed it."""
    conn = await asyncpg.connect(primary.dsn)
    try:
        await conn.execute("ALTER SYSTEM SET synchronous_standby_names = 'standby1'")
        await conn.execute("SELECT pg_reload_conf()")
        for _ in range(600):  # at most 60 s
            state = await conn.fetchval(
                "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'"
            )
            if state == "sync" and await conn.fetchval("SHOW synchronous_standby_names"):
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the standby never became synchronous")
    finally:
        await conn.close()


async def test_failover_loses_no_acknowledged_write_and_the_store_resumes(
    primary_and_standby: tuple[Cluster, Cluster],
) -> None:
    primary, standby = primary_and_standby
    await make_synchronous(primary)
    dsn = (
        f"postgresql://{USER}@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/{DATABASE}"
        "?target_session_attrs=read-write"
    )
    store = PostgresDataStorage(dsn, schema="failover", connect_timeout=2.0)
    run = await store.initialize_run(workflow_name="chat")
    writers = ChatWriters(store, run, WRITERS)
    try:
        await writers.more(200)
        crashed_at = time.monotonic()
        await asyncio.to_thread(primary.stop, "immediate")
        stopped_at = time.monotonic()
        before_failover = len(writers.acknowledged)
        await writers.until(lambda: len(writers.errors) >= WRITERS)  # the writers noticed
        promoting_at = time.monotonic()
        await asyncio.to_thread(standby.promote)
        await writers.more(200)
    finally:
        await writers.stop()

    errors = writers.errors
    # A write sent before the crash may be acknowledged a little after it (it committed first).
    resumed_at = min(acked for sent, acked in writers.acknowledged_at if sent > stopped_at)
    print(
        f"\nfailover: {before_failover} writes acknowledged before the crash, "
        f"{len(writers.acknowledged)} in all, {len(errors)} errors; first write on the new "
        f"primary {resumed_at - promoting_at:.3f} s after `pg_ctl promote` started, "
        f"{resumed_at - crashed_at:.3f} s after the crash"
    )
    assert resumed_at > promoting_at  # nothing was acknowledged while there was no primary
    assert all(isinstance(e, StorageUnavailableError) for e in errors), errors[:3]
    # Read back on the ex-standby itself, not through the store.
    conn = await asyncpg.connect(standby.dsn)
    try:
        assert not await conn.fetchval("SELECT pg_is_in_recovery()")
        rows = await conn.fetch(
            "SELECT content, seq FROM failover.messages WHERE session_id = $1",
            run.session_id,
        )
    finally:
        await conn.close()
    stored = {row["content"]: row["seq"] for row in rows}
    lost = writers.lost(stored)
    assert lost == {}, f"{len(lost)} acknowledged writes lost"
    assert len(set(stored.values())) == len(stored)  # seq unique
    await store.close()
