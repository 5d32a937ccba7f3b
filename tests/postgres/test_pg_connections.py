"""Connection hygiene against a real server: server-side disconnects mid-run, and a failed call
of every kind (bad input, lock wait past command_timeout, terminated backend, cancelled task,
server restart) never poisons the next one."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from pg_helpers import ChatWriters, new_schema
from pg_server import Cluster, shared_dsn, shared_pgbouncer_dsn

from runstore import (
    InvalidDataError,
    PostgresDataStorage,
    RunHandle,
    StorageError,
    StorageUnavailableError,
)

DISCONNECTS = 30
WRITERS = 4


def tagged(dsn: str) -> tuple[str, str]:
    """The DSN with an application_name that finds this test's server connections."""
    name = f"rs_{uuid.uuid4().hex[:12]}"
    return f"{dsn}{'&' if '?' in dsn else '?'}application_name={name}", name


async def terminate(admin: asyncpg.Connection, app: str) -> int:
    """pg_terminate_backend on every server connection of ``app``; how many were ended."""
    ended: int = await admin.fetchval(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name = $1",
        app,
    )
    return ended


@pytest.mark.parametrize("via", ["direct", "pgbouncer"])
async def test_server_side_disconnects_give_runstore_errors_and_the_store_recovers(
    via: str,
) -> None:
    """Through PgBouncer the server connections are PgBouncer's: it passes the client's
    application_name on, and reports their loss to the store as an error."""
    pooler = "transaction" if via == "pgbouncer" else None
    dsn, app = tagged(shared_pgbouncer_dsn() if pooler else shared_dsn())
    store = PostgresDataStorage(dsn, schema=new_schema(), max_connections=WRITERS, pooler=pooler)
    admin = await asyncpg.connect(shared_dsn())
    run = await store.initialize_run(workflow_name="chat")
    writers = ChatWriters(store, run, WRITERS)
    ended = 0
    try:
        for _ in range(DISCONNECTS):
            await writers.more(20, 60)  # it works (again)
            ended += await terminate(admin, app)
        await writers.more(20, 60)
    finally:
        await writers.stop()
        await admin.close()

    errors = writers.errors
    kinds = sorted({str(e)[:90] for e in errors})
    print(f"\n{DISCONNECTS} rounds, {ended} backends terminated, {len(errors)} errors, "
          f"{len(writers.acknowledged)} acknowledged writes; kinds: {kinds}")  # fmt: skip
    assert ended >= DISCONNECTS
    assert errors, "terminating busy backends mid-run must fail some calls"
    assert all(isinstance(e, StorageUnavailableError) for e in errors), errors[:3]
    history = await store.get_chat_history(run.session_id, None)
    assert [m.seq for m in history] == sorted({m.seq for m in history})
    assert writers.lost({m.content or "": m.seq for m in history}) == {}
    await store.close()


# -- a failed call never poisons the next one -----------------------------------------------


class Probe:
    """One store with ONE connection (so the next call gets the connection that failed, or
    its replacement), an admin connection, and the checks run after every failure."""

    def __init__(self, dsn: str, admin_dsn: str) -> None:
        self.dsn, self.app = tagged(dsn)
        self.admin_dsn = admin_dsn
        self.schema = new_schema()
        self.store = PostgresDataStorage(
            self.dsn, schema=self.schema, max_connections=1, command_timeout=1.0
        )
        self.admin: asyncpg.Connection
        self.run: RunHandle

    async def start(self) -> None:
        self.admin = await asyncpg.connect(self.admin_dsn)
        self.run = await self.store.initialize_run(workflow_name="chat")
        await self.say("first")

    async def say(self, content: str) -> int | None:
        message = await self.store.add_chat_message(
            agent_id=self.run.agent_id,
            session_id=self.run.session_id,
            run_id=self.run.run_id,
            role="user",
            content=content,
        )
        return message.seq

    async def check_healthy(self) -> None:
        """The next calls all work, on whatever connection the pool hands out; the server
        holds no transaction of the store open."""
        dump = await self.store.export_data()  # a transaction: fails on a dirty connection
        assert dump["sessions"]
        before = len(await self.store.get_chat_history(self.run.session_id, None))
        await self.say("after")
        assert len(await self.store.get_chat_history(self.run.session_id, None)) == before + 1
        await self.store.export_data(session_id=self.run.session_id)
        stuck = await self.admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
            " AND state LIKE 'idle in transaction%'",
            self.app,
        )
        assert stuck == 0

    async def close(self) -> None:
        await self.store.close()
        await self.admin.close()


@pytest.fixture
async def probe() -> AsyncIterator[Probe]:
    own = Probe(shared_dsn(), shared_dsn())
    await own.start()
    yield own
    await own.close()


async def hold_session_lock(probe: Probe) -> asyncpg.Connection:
    """Another client holding the session row's lock, so appends wait on it."""
    blocker = await asyncpg.connect(probe.admin_dsn)
    await blocker.execute("BEGIN")
    await blocker.execute(
        f'SELECT 1 FROM "{probe.schema}".sessions WHERE id = $1 FOR UPDATE', probe.run.session_id
    )
    return blocker


async def test_bad_input_then_healthy(probe: Probe) -> None:
    with pytest.raises(InvalidDataError):  # refused before the driver (out of int64 range)
        await probe.store.get_chat_history(probe.run.session_id, 2**63)
    await probe.check_healthy()
    # A value the driver itself refuses (the checks above keep callers from sending one):
    # asyncpg raises mid-statement, which leaves the connection unusable unless discarded.
    with pytest.raises(InvalidDataError):
        await probe.store._fetchval("SELECT $1::bigint", 2**63)
    await probe.check_healthy()
    with pytest.raises(InvalidDataError) as caught:  # refused by the server
        await probe.store.initialize_run(workflow_name="other", session_id=probe.run.session_id)
    assert caught.value.field == "session_id"
    await probe.check_healthy()


async def test_lock_wait_past_command_timeout_says_so_then_healthy(probe: Probe) -> None:
    blocker = await hold_session_lock(probe)
    try:
        with pytest.raises(StorageError) as caught:
            await asyncio.wait_for(probe.say("blocked"), 60)
        assert not isinstance(caught.value, StorageUnavailableError)  # the server is up
        assert "timed out" in str(caught.value) and "command_timeout=1.0" in str(caught.value)
    finally:
        await blocker.close()  # ends its transaction
    await probe.check_healthy()
    texts = [m.content for m in await probe.store.get_chat_history(probe.run.session_id, None)]
    assert texts.count("blocked") <= 1  # cancelled: applied at most once, never twice


async def test_terminated_backend_idle_and_mid_statement_then_healthy(probe: Probe) -> None:
    assert await terminate(probe.admin, probe.app) == 1  # idle in the pool
    for _ in range(2):  # the first call may meet the dead connection; the next one works
        try:
            await probe.say("x")
        except StorageUnavailableError:
            continue
        break
    await probe.check_healthy()

    blocker = await hold_session_lock(probe)
    try:
        waiting = asyncio.create_task(probe.say("mid-statement"))
        await until_waiting(probe)
        assert await terminate(probe.admin, probe.app) == 1
        with pytest.raises(StorageUnavailableError):
            await asyncio.wait_for(waiting, 60)
    finally:
        await blocker.close()
    await probe.check_healthy()


async def test_cancelled_call_then_healthy(probe: Probe) -> None:
    blocker = await hold_session_lock(probe)
    try:
        waiting = asyncio.create_task(probe.say("cancelled"))
        await until_waiting(probe)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    finally:
        await blocker.close()
    await probe.check_healthy()


async def until_waiting(probe: Probe) -> None:
    """Until the store's connection waits on a lock (at most 30 s)."""
    for _ in range(600):
        waiting = await probe.admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
            " AND wait_event_type = 'Lock'",
            probe.app,
        )
        if waiting:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the store's statement never waited on the lock")


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    own = Cluster.create()
    yield own
    own.destroy()


async def test_server_restart_then_healthy(cluster: Cluster) -> None:
    probe = Probe(cluster.dsn, cluster.dsn)
    await probe.start()
    await probe.admin.close()
    await asyncio.to_thread(cluster.stop, "fast")
    with pytest.raises(StorageUnavailableError):
        await probe.say("while down")
    await asyncio.to_thread(cluster.start)
    probe.admin = await asyncpg.connect(cluster.dsn)
    await probe.check_healthy()
    await probe.close()


def _tcp_settings(conn: asyncpg.Connection) -> tuple[int, int, int]:
    """SO_KEEPALIVE, TCP_USER_TIMEOUT (ms) and, with keepalives on, TCP_KEEPIDLE (s)."""
    sock = conn._transport.get_extra_info("socket")
    keepalive = sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
    idle = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) if keepalive else 0
    return keepalive, sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT), idle


async def test_a_call_waits_for_a_busy_pool_connection_up_to_command_timeout() -> None:
    """All of the pool's connections busy (here: one, held by a paused export) is load, not an
    outage: a call waits past connect_timeout and succeeds once one is free; only a wait past
    command_timeout ends in StorageUnavailableError, with nothing written."""
    store = PostgresDataStorage(
        shared_dsn(), schema=new_schema(), max_connections=1, connect_timeout=0.5,
        command_timeout=2.0,
    )  # fmt: skip
    async with store:
        run = await store.initialize_run(workflow_name="chat")

        async def say(content: str) -> None:
            await store.add_chat_message(
                agent_id=run.agent_id, session_id=run.session_id, run_id=run.run_id,
                role="user", content=content,
            )  # fmt: skip

        async def hold_the_connection(seconds: float) -> None:
            records = store.export_records()
            await anext(records)  # the export's transaction now holds the only connection
            await asyncio.sleep(seconds)
            await records.aclose()

        holder = asyncio.create_task(hold_the_connection(1.5))
        await asyncio.sleep(0.2)
        await say("waited")  # 1.3 s in the queue: past connect_timeout, within command_timeout
        await holder

        holder = asyncio.create_task(hold_the_connection(4.0))
        await asyncio.sleep(0.2)
        with pytest.raises(StorageUnavailableError, match="no free connection within command_t"):
            await say("gave up")
        await holder
        history = await store.get_chat_history(run.session_id, None)
        assert [m.content for m in history] == ["waited"]


@pytest.mark.parametrize(
    ("network_timeout", "expected"), [(10.0, (1, 10_000, 5)), (3, (1, 3000, 2)), (None, (0, 0, 0))]
)
async def test_connections_give_up_on_a_silent_server_after_network_timeout(
    network_timeout: float | None, expected: tuple[int, int, int]
) -> None:
    """Each pool connection carries keepalives and TCP_USER_TIMEOUT from ``network_timeout``
    (what makes a cut-off server's calls fail: tests/postgres/test_pg_ha.py cuts one); None
    leaves the kernel's defaults."""
    store = PostgresDataStorage(
        shared_dsn(), schema=new_schema(), network_timeout=network_timeout, max_connections=2
    )
    async with store:
        pool = await store._get_pool()
        async with pool.acquire() as first, pool.acquire() as second:
            assert _tcp_settings(first) == _tcp_settings(second) == expected


@pytest.mark.parametrize("wrong", [0, -1.0])
def test_network_timeout_must_be_positive(wrong: float) -> None:
    with pytest.raises(InvalidDataError, match="network_timeout"):
        PostgresDataStorage("postgresql://app@127.0.0.1/app", network_timeout=wrong)
