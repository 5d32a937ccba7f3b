"""The server stopped (crashed) and restarted in the middle of a run, on a private cluster."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from pg_server import Cluster

from runstore import PostgresDataStorage, StorageError, StorageUnavailableError

WRITERS = 4


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    own = Cluster.create()
    yield own
    own.destroy()


async def until(condition: Callable[[], bool], changed: asyncio.Event) -> None:
    """Wait for the condition, checked whenever ``changed`` is set; a generous bound turns a
    hang into a failure."""

    async def wait() -> None:
        while not condition():
            changed.clear()
            await changed.wait()

    await asyncio.wait_for(wait(), 120)


async def test_outage_gives_clear_errors_then_the_same_store_recovers(cluster: Cluster) -> None:
    store = PostgresDataStorage(cluster.dsn, schema="outage", connect_timeout=2.0)
    run = await store.initialize_run(workflow_name="chat")
    acknowledged: dict[str, int] = {}
    errors: list[StorageError] = []
    finished = asyncio.Event()
    changed = asyncio.Event()

    async def writer(number: int) -> None:
        sent = 0
        while not finished.is_set():
            content = f"w{number}-{sent}"
            sent += 1
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
                await asyncio.sleep(0.05)
            else:
                assert message.seq is not None
                acknowledged[content] = message.seq
            changed.set()

    writers = [asyncio.create_task(writer(n)) for n in range(WRITERS)]
    try:
        await until(lambda: len(acknowledged) >= 100, changed)
        await asyncio.to_thread(cluster.stop, "immediate")  # a crash, not a clean shutdown
        await until(lambda: len(errors) >= 2 * WRITERS, changed)
        for call in (
            store.get_chat_history(run.session_id),
            store.list_sessions(),
            store.initialize_run(workflow_name="chat"),
            store.update_run(run.run_id, output_data={"x": 1}),
        ):
            with pytest.raises(StorageUnavailableError, match="PostgreSQL is unavailable"):
                await asyncio.wait_for(call, 60)
        during_outage = len(acknowledged)
        await asyncio.to_thread(cluster.start)
        await until(lambda: len(acknowledged) >= during_outage + 100, changed)
    finally:
        finished.set()
        await asyncio.gather(*writers)

    assert all(isinstance(e, StorageUnavailableError) for e in errors), errors[:3]
    history = await store.get_chat_history(run.session_id, None)
    stored = {m.content: m.seq for m in history}
    assert [m.seq for m in history] == sorted({m.seq for m in history})  # unique, increasing
    lost = {c: s for c, s in acknowledged.items() if stored.get(c) != s}
    assert lost == {}  # every acknowledged message is there, with the seq it was given
    await store.update_run(run.run_id, output_data={"after": True})
    record = await store.get_run(run.run_id)
    assert record is not None and record.output_data == {"after": True}
    await store.close()
