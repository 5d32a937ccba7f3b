"""The pydantic-ai example runs, on every backend: turn 2 gets turn 1 from runstore."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from runstore import DataStorage

ROOT = Path(__file__).resolve().parents[3]


def _example() -> Any:
    spec = importlib.util.spec_from_file_location(
        "pydantic_ai_history", ROOT / "examples" / "pydantic_ai_history.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_example_second_turn_reads_the_first_from_runstore(store: DataStorage) -> None:
    answers, given = await _example().two_turns(store)
    assert len(answers) == 2
    parts = [[part.part_kind for part in message.parts] for message in given]
    assert parts == [["system-prompt", "user-prompt"], ["tool-call"], ["tool-return"], ["text"]]
    assert given[0].parts[1].content == "What's the weather in Paris?"
    assert len(await store.get_chat_history("user-42", limit=None)) == 6  # turn 2: no tool
