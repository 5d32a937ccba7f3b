"""close() and the async context manager."""

from __future__ import annotations

import pytest
from helpers import NewStore, start

from runstore import DataStorage, StorageClosedError, WorkflowState


async def test_close_is_idempotent_and_later_calls_fail(store: DataStorage) -> None:
    run = await start(store)
    await store.close()
    await store.close()
    calls = [
        store.initialize_run(workflow_name="w"),
        store.update_run(run.run_id),
        store.save_state(run.run_id, WorkflowState("w")),
        store.load_state(run.run_id),
        store.add_chat_message(
            agent_id=run.agent_id, session_id=run.session_id, run_id=None, role="user", content="x"
        ),
        store.get_chat_history(run.session_id),
        store.get_run(run.run_id),
        store.list_agents(),
        store.list_sessions(),
        store.list_runs(run.session_id),
        store.get_session(run.session_id),
        store.delete_session(run.session_id),
        store.delete_agent("w"),
        store.export_data(),
        store.import_data({}),
    ]
    for call in calls:
        with pytest.raises(StorageClosedError):
            await call


async def test_async_with_opens_returns_the_store_and_closes(new_store: NewStore) -> None:
    store = await new_store()
    async with store as opened:
        assert opened is store
        await start(opened)
    with pytest.raises(StorageClosedError):
        await store.list_agents()


async def test_open_returns_the_store_any_number_of_times(store: DataStorage) -> None:
    assert await store.open() is store
    assert await store.open() is store
    await start(store)
    await store.close()
    with pytest.raises(StorageClosedError):
        await store.open()
