"""Round trips per call, counted by a loopback proxy between the store and the server (or
PgBouncer): a round trip is the client sending after the server last answered. The hot calls
are one round trip each, straight to the server (asyncpg's named statements) and through
PgBouncer in transaction mode (unnamed statements whose description the client keeps)."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from pg_helpers import new_schema
from pg_server import Cluster, shared_dsn, shared_pgbouncer_dsn

from runstore import ChatMsg, DataStorage, PostgresDataStorage, RunHandle, WorkflowState


class Proxy:
    """Forwards loopback TCP to ``target``; ``round_trips`` counts client sends that follow
    an answer from the server (or are the first)."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.target = parts
        self.round_trips = 0
        self._answered = True
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def dsn(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        user = self.target.username
        return urlunsplit(self.target._replace(netloc=f"{user}@127.0.0.1:{port}"))

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self.target.hostname is not None
        up_reader, up_writer = await asyncio.open_connection(self.target.hostname, self.target.port)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, up: bool) -> None:
            try:
                while data := await src.read(65536):
                    if up:
                        if self._answered:
                            self.round_trips += 1
                        self._answered = False
                    else:
                        self._answered = True
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        for task in (
            asyncio.ensure_future(pump(reader, up_writer, True)),
            asyncio.ensure_future(pump(up_reader, writer, False)),
        ):
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@asynccontextmanager
async def store_behind_proxy(
    dsn: str, pooler: str | None
) -> AsyncIterator[tuple[Proxy, DataStorage]]:
    proxy = Proxy(dsn)
    await proxy.start()
    store = PostgresDataStorage(proxy.dsn, schema=new_schema(), pooler=pooler, max_connections=1)
    try:
        yield proxy, store
    finally:
        await store.close()
        await proxy.close()


def _calls(store: DataStorage, run: RunHandle) -> list[tuple[str, Callable[[], Awaitable[object]]]]:
    sid = run.session_id
    ids = {"agent_id": run.agent_id, "session_id": run.session_id, "run_id": run.run_id}
    two = [ChatMsg("user", "a"), ChatMsg("assistant", "b", run_id=run.run_id, metadata={"k": 1})]
    return [
        ("add_chat_message", lambda: store.add_chat_message(**ids, role="user", content="hi")),
        ("add_chat_messages", lambda: store.add_chat_messages(sid, two)),
        ("get_chat_history", lambda: store.get_chat_history(run.session_id, 20)),
        ("get_session", lambda: store.get_session(run.session_id)),
        ("initialize_run", lambda: store.initialize_run(workflow_name="chat", session_id=sid)),
        ("save_state", lambda: store.save_state(run.run_id, WorkflowState("chat"))),
        ("load_state", lambda: store.load_state(run.run_id)),
        ("update_run", lambda: store.update_run(run.run_id, output_data={"ok": True})),
        ("list_sessions", lambda: store.list_sessions(limit=5)),
        ("stats", lambda: store.stats()),
        ("stats of a user", lambda: store.stats(external_id="someone")),
    ]  # fmt: skip


@pytest.mark.parametrize("through", ["server", "pgbouncer"])
async def test_each_hot_call_is_one_round_trip(through: str) -> None:
    dsn, pooler = (
        (shared_dsn(), None) if through == "server" else (shared_pgbouncer_dsn(), "transaction")
    )
    async with store_behind_proxy(dsn, pooler) as (proxy, store):
        run = await store.initialize_run(workflow_name="chat")
        calls = _calls(store, run)
        for _, call in calls:  # the first use of each statement on this connection describes it
            await call()
        counted = {}
        for name, call in calls:
            before = proxy.round_trips
            for _ in range(3):
                await call()
            counted[name] = (proxy.round_trips - before) / 3
    assert counted == {name: 1 for name, _ in calls}


@pytest.mark.parametrize("through", ["server", "pgbouncer"])
async def test_an_add_with_an_idempotency_key_takes_no_transaction(through: str) -> None:
    """A first add of a key is a read and one statement (no BEGIN, lock, COMMIT); a repeat is
    the read alone."""
    dsn, pooler = (
        (shared_dsn(), None) if through == "server" else (shared_pgbouncer_dsn(), "transaction")
    )
    async with store_behind_proxy(dsn, pooler) as (proxy, store):
        run = await store.initialize_run(workflow_name="chat")
        ids = {"agent_id": run.agent_id, "session_id": run.session_id, "run_id": run.run_id}
        for key in ("warm", "warm", "k"):  # describes the statements on this connection first
            before = proxy.round_trips
            await store.add_chat_message(**ids, role="user", content=key, idempotency_key=key)
        first = proxy.round_trips - before
        before = proxy.round_trips
        await store.add_chat_message(**ids, role="user", content="k", idempotency_key="k")
        assert (first, proxy.round_trips - before) == (2, 1)


async def test_through_pgbouncer_the_server_sees_one_round_trip_per_call() -> None:
    """Between PgBouncer and the server too (a proxy in between; a PgBouncer of its own in
    front of it): each call is one round trip, nothing sent ahead of it. asyncpg's default
    client_encoding ('utf-8', quoted) differs from what the server reports (UTF8): PgBouncer
    then sent a SET client_encoding before every transaction, a second round trip per call."""
    proxy = Proxy(shared_dsn())
    await proxy.start()
    root = Path(tempfile.mkdtemp(prefix="runstore-pgbouncer-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    bouncer = Cluster(root, Path("/nonexistent"))  # PgBouncer only, in front of the proxy
    bouncer.port = urlsplit(proxy.dsn).port or 0
    try:
        dsn = bouncer.start_pgbouncer()
        store = PostgresDataStorage(dsn, schema=new_schema(), pooler="transaction")
        try:
            run = await store.initialize_run(workflow_name="chat")
            calls = _calls(store, run)
            for _, call in calls:
                await call()
            counted = {}
            for name, call in calls:
                before = proxy.round_trips
                for _ in range(3):
                    await call()
                counted[name] = (proxy.round_trips - before) / 3
        finally:
            await store.close()
    finally:
        bouncer.stop_pgbouncer()
        shutil.rmtree(root, ignore_errors=True)
        await proxy.close()
    assert counted == {name: 1 for name, _ in calls}
