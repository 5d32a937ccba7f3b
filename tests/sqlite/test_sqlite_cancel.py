"""Calls cancelled mid-flight (timeouts) leave no half-done or open transaction behind."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from runstore import SqliteDataStorage


@pytest.mark.parametrize("driver", ["sqlite3", "aiosqlite"])
async def test_cancelled_calls_leave_the_store_consistent(tmp_path: Path, driver: str) -> None:
    path = tmp_path / "cancel.db"
    rng = random.Random(7)
    async with SqliteDataStorage(path, driver=driver) as store:
        first = await store.initialize_run(workflow_name="chat", session_id="s")

        async def work(i: int) -> None:
            if i % 2:
                await store.initialize_run(
                    workflow_name=f"w{i % 5}", session_id="s" if i % 3 else None
                )
            else:
                await store.add_chat_message(
                    agent_id=first.agent_id,
                    session_id="s",
                    run_id=None,
                    role="user",
                    content=str(i),
                )

        for i in range(300):  # cancel at whatever await each call has reached
            task = asyncio.ensure_future(work(i))
            for _ in range(rng.randint(0, 4)):
                await asyncio.sleep(0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        last = await store.add_chat_message(
            agent_id=first.agent_id, session_id="s", run_id=None, role="user", content="last"
        )
        mine = await store.export_data()
    # Everything this store reported is committed: a fresh connection reads the same.
    async with SqliteDataStorage(path, driver="sqlite3") as other:
        assert await other.export_data() == mine
        history = await other.get_chat_history("s", None)
        assert history[-1].seq == last.seq
        assert [m.seq for m in history] == list(range(1, len(history) + 1))
