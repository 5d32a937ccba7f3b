"""examples/langgraph_chat.py runs, resumes from a reopened store; sync graph.invoke works."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from runstore import InMemoryDataStorage, SqliteDataStorage
from runstore.integrations.langgraph import RunstoreSaver

EXAMPLE = Path(__file__).parents[3] / "examples" / "langgraph_chat.py"


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("langgraph_chat", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["langgraph_chat"] = module
    spec.loader.exec_module(module)
    return module


TURNS = [
    "human: Hi, I am Ada.",
    "ai: Hello Ada!",
    "human: What is my name?",
    "ai: You told me your name is Ada.",  # only turn 1, read back from runstore, says so
]


async def test_in_memory_by_default_turn_two_answers_from_turn_one() -> None:
    lines = await load_example().main(None)
    assert lines == [*TURNS, "the thread holds 4 messages, in memory (pass a file path to keep it)"]


async def test_with_a_path_two_turns_resumed_after_reopening_and_a_second_run_continues(
    tmp_path: Path,
) -> None:
    example = load_example()
    path = str(tmp_path / "chat.db")
    assert await example.main(path) == [
        *TURNS,
        f"the thread holds 4 messages, in {path}, reopened for each turn",
    ]
    async with SqliteDataStorage(path) as store:
        saver = RunstoreSaver(store)
        history = [t async for t in saver.alist({"configurable": {"thread_id": "ada"}})]
        assert len(history) >= 4  # input + reply checkpoints of both turns
        assert [t.metadata["step"] for t in history] == sorted(
            (t.metadata["step"] for t in history), reverse=True
        )
    again = await example.main(path)
    assert again[0] == f"continued an existing conversation of 4 messages in {path}"
    assert again[1:5] == TURNS
    assert again[-1] == f"the thread holds 8 messages, in {path}, reopened for each turn"


def test_sync_invoke_on_the_in_memory_store() -> None:
    example = load_example()
    graph = example.build(RunstoreSaver(InMemoryDataStorage()))
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"messages": [("user", "one")]}, config)
    result = graph.invoke({"messages": [("user", "two")]}, config)
    assert [m.content for m in result["messages"]][0::2] == ["one", "two"]
    assert len(list(graph.checkpointer.list(config))) >= 4
