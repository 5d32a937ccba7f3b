"""pydantic-ai with its message history in runstore: two turns of a real ``Agent`` run,
offline (pydantic-ai's ``TestModel``, which calls the agent's tool). The second turn reads the
first back from runstore, in a window that never cuts a tool call from its return.

    pip install 'runstore[pydantic-ai]'
    python examples/pydantic_ai_history.py [runstore.db]   # no path: in memory
"""

from __future__ import annotations

import asyncio
import sys

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models.test import TestModel

from runstore import DataStorage, InMemoryDataStorage, SqliteDataStorage
from runstore.integrations.pydantic_ai import RunstoreMessageHistory

agent = Agent(TestModel(), system_prompt="Answer briefly.")


@agent.tool_plain
def weather(city: str) -> str:
    """Today's weather in a city."""
    return f"Sunny in {city}."


async def two_turns(store: DataStorage) -> tuple[list[str], list[ModelMessage]]:
    """Runs two turns of one conversation; returns the answers and what turn 2 was given."""
    history = RunstoreMessageHistory(store, "user-42")
    answers = []
    given: list[ModelMessage] = []
    for prompt in ["What's the weather in Paris?", "Which city did I ask about?"]:
        given = await history.load(limit=20)
        result = await agent.run(prompt, message_history=given)
        await history.save(result.new_messages())
        answers.append(result.output)
    return answers, given


async def main(path: str | None) -> None:
    store = InMemoryDataStorage() if path is None else SqliteDataStorage(path)
    async with store:
        answers, given = await two_turns(store)
        for answer in answers:
            print("agent:", answer)
        print("turn 2 was given, from runstore:")
        for message in given:
            print("  ", message.kind, [part.part_kind for part in message.parts])


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))
