"""The server stopped (crashed) and restarted in the middle of a run, on a private cluster."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from pg_helpers import ChatWriters
from pg_server import Cluster

from runstore import PostgresDataStorage, StorageUnavailableError

WRITERS = 4


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    own = Cluster.create()
    yield own
    own.destroy()


async def test_outage_gives_clear_errors_then_the_same_store_recovers(cluster: Cluster) -> None:
    store = PostgresDataStorage(cluster.dsn, schema="outage", connect_timeout=2.0)
    run = await store.initialize_run(workflow_name="chat")
    writers = ChatWriters(store, run, WRITERS)
    try:
        await writers.more(100)
        await asyncio.to_thread(cluster.stop, "immediate")  # a crash, not a clean shutdown
        await writers.until(lambda: len(writers.errors) >= 2 * WRITERS)
        for call in (
            store.get_chat_history(run.session_id),
            store.list_sessions(),
            store.initialize_run(workflow_name="chat"),
            store.update_run(run.run_id, output_data={"x": 1}),
        ):
            with pytest.raises(StorageUnavailableError, match="PostgreSQL is unavailable"):
                await asyncio.wait_for(call, 60)
        await asyncio.to_thread(cluster.start)
        await writers.more(100)
    finally:
        await writers.stop()

    assert all(isinstance(e, StorageUnavailableError) for e in writers.errors), writers.errors[:3]
    history = await store.get_chat_history(run.session_id, None)
    assert [m.seq for m in history] == sorted({m.seq for m in history})  # unique, increasing
    # every acknowledged message is there, with the seq it was given
    assert writers.lost({m.content or "": m.seq for m in history}) == {}
    await store.update_run(run.run_id, output_data={"after": True})
    record = await store.get_run(run.run_id)
    assert record is not None and record.output_data == {"after": True}
    await store.close()
