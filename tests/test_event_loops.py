"""A store works when its calls come from more than one event loop (docs/contract.md,
"Event loops"): ``asyncio.run`` twice, ``Runner.run_sync`` of OpenAI Agents (a new loop per
call), worker threads with loops of their own (SQLite). Native only: the durable browser store's
test is in tests/browser. PostgreSQL is not in this list: an asyncpg pool belongs to the loop
that opened it (docs/postgres.md)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from backends import FACTORIES

from runstore import DataStorage, RunHandle

LOOP_SAFE = ["memory", "sqlite-sqlite3", "sqlite-aiosqlite"]
THREAD_SAFE = ["sqlite-sqlite3", "sqlite-aiosqlite"]


async def _add(store: DataStorage, run: RunHandle, content: str) -> int:
    message = await store.add_chat_message(
        agent_id=run.agent_id,
        session_id=run.session_id,
        run_id=run.run_id,
        role="user",
        content=content,
    )
    assert message.seq is not None
    return message.seq


@pytest.mark.parametrize("kind", LOOP_SAFE)
def test_calls_from_one_loop_after_another(kind: str, tmp_path: Path) -> None:
    async def first() -> tuple[DataStorage, RunHandle]:
        store = await FACTORIES[kind](tmp_path)
        run = await store.initialize_run(workflow_name="loops")
        # Calls that wait for each other: a lock tied to this loop would break the next one.
        await asyncio.gather(*(_add(store, run, f"first {i}") for i in range(10)))
        return store, run

    store, run = asyncio.run(first())

    async def next_loop(turn: int) -> list[int]:
        return await asyncio.gather(*(_add(store, run, f"turn {turn} {i}") for i in range(10)))

    seqs = [seq for turn in range(3) for seq in asyncio.run(next_loop(turn))]
    assert sorted(seqs) == list(range(11, 41))

    async def last() -> list[str | None]:
        history = await store.get_chat_history(run.session_id, limit=None)
        await store.close()
        return [message.content for message in history]

    contents = asyncio.run(last())
    assert len(contents) == 40
    assert contents[-10:] == [f"turn 2 {i}" for i in range(10)]


@pytest.mark.parametrize("kind", THREAD_SAFE)
def test_calls_from_threads_with_their_own_loops(kind: str, tmp_path: Path) -> None:
    store, run = asyncio.run(_started(kind, tmp_path))
    failures: list[BaseException] = []

    def worker(index: int) -> None:
        async def turns() -> None:
            await asyncio.gather(*(_add(store, run, f"{index}.{i}") for i in range(10)))

        try:
            asyncio.run(turns())
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []

    async def check() -> None:
        history = await store.get_chat_history(run.session_id, limit=None)
        assert [message.seq for message in history] == list(range(1, 41))
        assert sorted(message.content or "" for message in history) == sorted(
            f"{index}.{i}" for index in range(4) for i in range(10)
        )
        await store.close()

    asyncio.run(check())


async def _started(kind: str, tmp_path: Path) -> tuple[DataStorage, RunHandle]:
    store = await FACTORIES[kind](tmp_path)
    return store, await store.initialize_run(workflow_name="threads")
