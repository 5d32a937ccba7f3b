"""Primary failover with writers running: a primary and a synchronous streaming standby; the
primary crashes (``pg_ctl stop -m immediate``), the standby is promoted, and the same store
object (a DSN naming both hosts, ``target_session_attrs=read-write``) carries on by itself on
the new primary with every acknowledged write there."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import asyncpg
import pytest
from pg_server import DATABASE, USER, Cluster

from runstore import PostgresDataStorage, StorageError, StorageUnavailableError

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


async def until(condition: Callable[[], bool], changed: asyncio.Event) -> None:
    """Wait for the condition, checked whenever ``changed`` is set; at most 120 s."""

    async def wait() -> None:
        while not condition():
            changed.clear()
            await changed.wait()

    await asyncio.wait_for(wait(), 120)


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
    acknowledged: dict[str, int] = {}
    acknowledged_at: list[float] = []
    errors: list[StorageError] = []
    finished = asyncio.Event()
    changed = asyncio.Event()

    async def writer(number: int) -> None:
        for sent in range(1_000_000):  # bounded; the test ends it far earlier
            if finished.is_set():
                return
            content = f"w{number}-{sent}"
            try:
                message = await store.add_chat_message(
                    agent_id=run.agent_id,
                    session_id=run.session_id,
                    run_id=run.run_id,
                    role="user",
                    content=content,
                )
            except StorageError as exc:  # anything else fails the test
                errors.append(exc)
                await asyncio.sleep(0.02)
            else:
                assert message.seq is not None
                acknowledged[content] = message.seq
                acknowledged_at.append(time.monotonic())
            changed.set()

    writers = [asyncio.create_task(writer(n)) for n in range(WRITERS)]
    try:
        await until(lambda: len(acknowledged) >= 200, changed)
        crashed_at = time.monotonic()
        await asyncio.to_thread(primary.stop, "immediate")
        stopped_at = time.monotonic()
        before_failover = len(acknowledged)
        await until(lambda: len(errors) >= WRITERS, changed)  # the writers noticed
        promoting_at = time.monotonic()
        await asyncio.to_thread(standby.promote)
        await until(lambda: len(acknowledged) >= before_failover + 200, changed)
    finally:
        finished.set()
        await asyncio.gather(*writers)

    resumed_at = min(t for t in acknowledged_at if t > stopped_at)
    print(
        f"\nfailover: {before_failover} writes acknowledged before the crash, "
        f"{len(acknowledged)} in all, {len(errors)} errors; first write on the new primary "
        f"{resumed_at - promoting_at:.3f} s after `pg_ctl promote` started, "
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
    lost = {c: s for c, s in acknowledged.items() if stored.get(c) != s}
    assert lost == {}, f"{len(lost)} acknowledged writes lost"
    assert len(set(stored.values())) == len(stored)  # seq unique
    await store.close()
