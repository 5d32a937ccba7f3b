"""The pydantic-ai example runs, on every backend: turn 2 gets turn 1 from runstore."""

from __future__ import annotations

from integrations.examples import load_example

from runstore import DataStorage


async def test_example_second_turn_reads_the_first_from_runstore(store: DataStorage) -> None:
    answers, given = await load_example("pydantic_ai_history").two_turns(store)
    assert len(answers) == 2
    parts = [[part.part_kind for part in message.parts] for message in given]
    assert parts == [["system-prompt", "user-prompt"], ["tool-call"], ["tool-return"], ["text"]]
    assert given[0].parts[1].content == "What's the weather in Paris?"
    assert len(await store.get_chat_history("user-42", limit=None)) == 6  # turn 2: no tool
