"""The pydantic-ai example runs, on every backend: turn 2 gets turn 1 from runstore."""

from __future__ import annotations

from pathlib import Path

from integrations.examples import load_example

from runstore import DataStorage


async def test_example_second_turn_reads_the_first_from_runstore(store: DataStorage) -> None:
    answers, given = await load_example("pydantic_ai_history").two_turns(store)
    assert answers == ["It is sunny in Paris.", "You asked about Paris."]  # turn 2: from turn 1
    parts = [[part.part_kind for part in message.parts] for message in given]
    assert parts == [["system-prompt", "user-prompt"], ["tool-call"], ["tool-return"], ["text"]]
    assert given[0].parts[1].content == "What's the weather in Paris?"
    assert len(await store.get_chat_history("user-42", limit=None)) == 6  # turn 2: no tool


async def test_example_main_in_memory_and_continued_from_a_file(tmp_path: Path) -> None:
    example = load_example("pydantic_ai_history")
    given = [
        "turn 2 was given 4 messages from runstore:",
        "   request ['system-prompt', 'user-prompt']",
        "   response ['tool-call']",
        "   request ['tool-return']",
        "   response ['text']",
    ]
    answers = ["agent: It is sunny in Paris.", "agent: You asked about Paris."]
    assert await example.main(None) == [
        *answers,
        *given,
        "runstore holds 6 messages of this conversation, in memory (pass a file path to keep it)",
    ]
    path = str(tmp_path / "chat.db")
    assert (await example.main(path))[-1] == (
        f"runstore holds 6 messages of this conversation, in {path}"
    )
    again = await example.main(path)
    assert again[:3] == [f"continued an existing conversation of 6 messages in {path}", *answers]
    assert again[-1] == f"runstore holds 12 messages of this conversation, in {path}"
