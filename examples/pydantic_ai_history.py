"""pydantic-ai with its message history in runstore: two turns of a real ``Agent`` run,
offline: the model is a ``FunctionModel`` that calls the agent's tool and answers from the
conversation it is given, so turn 2 ("Which city did I ask about?") can only be answered from
turn 1, read back from runstore in a window that never cuts a tool call from its return.

    pip install -e '.[pydantic-ai]'   # from a checkout (README, "Install")
    python examples/pydantic_ai_history.py [runstore.db]   # no path: in memory
"""

from __future__ import annotations

import asyncio
import sys

from pydantic_ai import Agent
from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

from runstore import DataStorage, InMemoryDataStorage, SqliteDataStorage
from runstore.integrations.pydantic_ai import RunstoreMessageHistory


def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Calls ``weather`` for a weather question, then answers; names the city asked about
    earlier in the conversation, if any."""
    last = messages[-1].parts[-1]
    if isinstance(last, ToolReturnPart):  # "Sunny in Paris." -> "It is sunny in Paris."
        text = str(last.content)
        return ModelResponse(parts=[TextPart(f"It is {text[:1].lower()}{text[1:]}")])
    prompt = str(last.content) if isinstance(last, UserPromptPart) else ""
    if "weather" in prompt:
        return ModelResponse(parts=[ToolCallPart("weather", {"city": "Paris"})])
    cities = [
        part.args_as_dict()["city"]
        for message in messages
        if isinstance(message, ModelResponse)
        for part in message.parts
        if isinstance(part, ToolCallPart)
    ]
    return ModelResponse(
        parts=[TextPart(f"You asked about {cities[-1]}." if cities else "You asked about none.")]
    )


agent = Agent(FunctionModel(model), system_prompt="Answer briefly.")


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


async def main(path: str | None) -> list[str]:
    """Two turns on a store in memory, or in the SQLite file ``path`` (kept: run it again and
    the conversation goes on). Returns the lines it prints."""
    store = InMemoryDataStorage() if path is None else SqliteDataStorage(path)
    async with store:
        before = len(await store.get_chat_history("user-42", limit=None))
        lines = (
            [f"continued an existing conversation of {before} messages in {path}"] if before else []
        )
        answers, given = await two_turns(store)
        lines += [f"agent: {answer}" for answer in answers]
        lines.append(f"turn 2 was given {len(given)} messages from runstore:")
        for message in given:
            lines.append(f"   {message.kind} {[part.part_kind for part in message.parts]}")
        stored = len(await store.get_chat_history("user-42", limit=None))
        where = path or "memory (pass a file path to keep it)"
        lines.append(f"runstore holds {stored} messages of this conversation, in {where}")
    return lines


if __name__ == "__main__":
    print("\n".join(asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))))
