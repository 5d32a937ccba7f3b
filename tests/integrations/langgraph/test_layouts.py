"""How ``RunstoreSaver`` lays checkpoints out: what changed is stored once, older stores still
read, and copy, prune and delete keep every thread readable."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from uuid import uuid4

from backends import FACTORIES
from graphs import chat_graph, user
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from test_differential import observe

from runstore import DataStorage, SqliteDataStorage
from runstore.integrations.langgraph import RunstoreSaver

FIXTURE = Path(__file__).parent / "fixtures" / "saver-layout1.sqlite"


async def layout1_script(graph: Any) -> Any:
    """What fixtures/make_layout1.py did; returns the fork it made."""
    config = {"configurable": {"thread_id": "t1"}}
    for number in range(3):
        await graph.ainvoke({**user(f"question {number}", number), "topic": "t"}, config)
    history = [s async for s in graph.aget_state_history(config)]
    forked = await graph.aupdate_state(history[2].config, {"topic": "forked"})
    await graph.ainvoke(user("on the branch", 9), forked)
    return forked


async def continue_both_branches(graph: Any, forked: Any) -> list[Any]:
    config = {"configurable": {"thread_id": "t1"}}
    seen = [await observe(graph, config)]
    await graph.ainvoke(user("one more", 20), config)
    branch = await graph.aget_state(forked)
    await graph.ainvoke(user("one more on the branch", 21), branch.config)
    seen.append(await observe(graph, config))
    return seen


async def test_a_store_written_by_layout1_reads_and_continues(tmp_path: Path) -> None:
    reference_graph = chat_graph(InMemorySaver())
    reference_fork = await layout1_script(reference_graph)
    reference = await continue_both_branches(reference_graph, reference_fork)

    copy = tmp_path / "old.sqlite"
    shutil.copy(FIXTURE, copy)
    async with SqliteDataStorage(copy, driver="sqlite3") as store:
        graph = chat_graph(RunstoreSaver(store))
        history = [s async for s in graph.aget_state_history({"configurable": {"thread_id": "t1"}})]
        # the fork made by the script: the newest checkpoint with topic "forked", input source
        fork = next(
            s.config
            for s in reversed(history)
            if s.values.get("topic") == "forked" and s.metadata["source"] == "update"
        )
        assert await continue_both_branches(graph, fork) == reference


def stored_bytes(entries: list[Any]) -> int:
    return sum(len(e.data or b"") + len(str(e.value)) for e in entries)


async def chat(store: DataStorage, thread: str, turns: int) -> Any:
    graph = chat_graph(RunstoreSaver(store))
    config = {"configurable": {"thread_id": thread}}
    for number in range(turns):
        run = {"configurable": {"thread_id": thread, "run_id": str(uuid4())}}
        await graph.ainvoke(user("q" * 200 + str(number), number), run)
    return graph, config


async def test_a_long_chat_stores_each_message_a_bounded_number_of_times(
    backend: str, tmp_path: Path
) -> None:
    store = await FACTORIES[backend](tmp_path)
    try:
        graph, config = await chat(store, "long", 40)
        state = await graph.aget_state(config)
        assert len(state.values["messages"]) == 80
        values = await store.list_entries("langgraph", prefix="long\x1fv\x1f")
        text = sum(len(m.content) for m in state.values["messages"])
        # every checkpoint holding the whole list (the old layout) would be ~40x the text
        assert stored_bytes(values) < 8 * text
        assert any((e.value or {}).get("prev") for e in values)  # deltas were written
        # a saver that remembers nothing reads the same state
        fresh = chat_graph(RunstoreSaver(store))
        assert (await fresh.aget_state(config)).values == state.values
        await fresh.ainvoke(user("after a restart", 99), config)
        assert len((await fresh.aget_state(config)).values["messages"]) == 82
    finally:
        await store.close()


async def test_copy_prune_and_delete_keep_threads_readable(backend: str, tmp_path: Path) -> None:
    store = await FACTORIES[backend](tmp_path)
    try:
        graph, config = await chat(store, "a", 12)
        saver: BaseCheckpointSaver[Any] = graph.checkpointer
        want = (await graph.aget_state(config)).values
        await saver.acopy_thread("a", "b")
        copied = {"configurable": {"thread_id": "b"}}
        assert (await graph.aget_state(copied)).values == want
        await graph.ainvoke(user("only on b", 50), copied)

        before = len(await store.list_entries("langgraph", prefix="a\x1fv\x1f"))
        await saver.aprune(["a"], strategy="keep_latest")
        assert len(await store.list_entries("langgraph", prefix="a\x1fv\x1f")) < before
        assert (await chat_graph(RunstoreSaver(store)).aget_state(config)).values == want
        await graph.ainvoke(user("after prune", 51), config)

        history = [s async for s in graph.aget_state_history(copied)]
        first_run = next(s.metadata["run_id"] for s in reversed(history) if "run_id" in s.metadata)
        await saver.adelete_for_runs([first_run])
        latest = await chat_graph(RunstoreSaver(store)).aget_state(copied)
        assert latest.values["messages"][-2].content == "only on b"

        await saver.adelete_thread("a")
        await saver.adelete_thread("b")
        assert await store.list_entries("langgraph") == []
    finally:
        await store.close()
