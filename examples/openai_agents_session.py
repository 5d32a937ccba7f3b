"""OpenAI Agents SDK with runstore as its session memory: two turns of a real ``Runner`` loop,
offline (the SDK's ``ScriptedModel``). The second turn reads the first back from runstore.

    pip install 'runstore[openai-agents]'
    python examples/openai_agents_session.py [runstore.db]   # no path: in memory
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.testing import ScriptedModel, assistant_message, function_call

from runstore import DataStorage, InMemoryDataStorage, SqliteDataStorage
from runstore.integrations.openai_agents import RunstoreSession

set_tracing_disabled(True)  # offline: no trace export


@function_tool
def weather(city: str) -> str:
    """Today's weather in a city."""
    return f"Sunny in {city}."


async def two_turns(store: DataStorage) -> tuple[list[str], Any]:
    """Runs two turns in one session; returns the answers and the model's input of turn 2."""
    model = ScriptedModel(
        [
            [function_call("weather", {"city": "Paris"}, call_id="call-1")],
            [assistant_message("It is sunny in Paris.")],
            [assistant_message("You asked about Paris.")],
        ]
    )
    agent = Agent(name="assistant", model=model, tools=[weather])
    session = RunstoreSession("user-42", store)
    first = await Runner.run(agent, "What's the weather in Paris?", session=session)
    second = await Runner.run(agent, "Which city did I ask about?", session=session)
    assert model.calls[-1] is not None
    return [first.final_output, second.final_output], model.calls[-1].input


async def main(path: str | None) -> None:
    store = InMemoryDataStorage() if path is None else SqliteDataStorage(path)
    async with store:
        answers, second_input = await two_turns(store)
        for answer in answers:
            print("assistant:", answer)
        print("turn 2's model input, read back from runstore:")
        for item in second_input:
            print("  ", item.get("role") or item.get("type"), item.get("content") or "")
        for message in await store.get_chat_history("user-42", limit=None):
            print(f"stored #{message.seq}: {message.role}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))
