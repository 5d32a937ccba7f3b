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


async def test_two_turns_resumed_after_reopening(tmp_path: Path) -> None:
    example = load_example()
    transcript = await example.main(str(tmp_path / "chat.db"))
    assert transcript == [
        "Hi, I am Ada.",
        "Hello Ada!",
        "What is my name?",
        "You told me your name is Ada.",
    ]
    async with SqliteDataStorage(tmp_path / "chat.db") as store:
        saver = RunstoreSaver(store)
        history = [t async for t in saver.alist({"configurable": {"thread_id": "ada"}})]
        assert len(history) >= 4  # input + reply checkpoints of both turns
        assert [t.metadata["step"] for t in history] == sorted(
            (t.metadata["step"] for t in history), reverse=True
        )


def test_sync_invoke_on_the_in_memory_store() -> None:
    example = load_example()
    graph = example.build(RunstoreSaver(InMemoryDataStorage()))
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"messages": [("user", "one")]}, config)
    result = graph.invoke({"messages": [("user", "two")]}, config)
    assert [m.content for m in result["messages"]][0::2] == ["one", "two"]
    assert len(list(graph.checkpointer.list(config))) >= 4
