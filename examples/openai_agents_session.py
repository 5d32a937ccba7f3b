"""OpenAI Agents SDK with runstore as its session memory: two turns of a real ``Runner`` loop,
offline (the SDK's ``ScriptedModel``). The second turn reads the first back from runstore.

    pip install -e '.[openai-agents]'   # from a checkout (README, "Install")
    python examples/openai_agents_session.py [runstore.db]   # no path: in memory
"""

from __future__ import annotations

import asyncio
import sys
import uuid
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
            [function_call("weather", {"city": "Paris"}, call_id=f"call-{uuid.uuid4().hex[:8]}")],
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


def describe(item: Any) -> str:
    """One input item on one line: its role or type, and its text, call or output."""
    kind = item.get("role") or item.get("type")
    if kind == "function_call":
        return f"{kind}: {item.get('name')}({item.get('arguments')})"
    if kind == "function_call_output":
        return f"{kind}: {item.get('output')}"
    content = item.get("content") or ""
    if isinstance(content, list):
        content = " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return f"{kind}: {content}"


async def main(path: str | None) -> list[str]:
    """Two turns on a store in memory, or in the SQLite file ``path`` (kept: run it again and
    the conversation goes on). Returns the lines it prints."""
    store = InMemoryDataStorage() if path is None else SqliteDataStorage(path)
    async with store:
        before = len(await store.get_chat_history("user-42", limit=None))
        lines = (
            [f"continued an existing conversation of {before} messages in {path}"] if before else []
        )
        answers, second_input = await two_turns(store)
        lines += [f"assistant: {answer}" for answer in answers]
        lines.append(f"turn 2's model input, {len(second_input)} items read back from runstore:")
        lines += [f"   {describe(item)}" for item in second_input]
        stored = len(await store.get_chat_history("user-42", limit=None))
        where = path or "memory (pass a file path to keep it)"
        lines.append(f"runstore holds {stored} messages of this conversation, in {where}")
    return lines


if __name__ == "__main__":
    print("\n".join(asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))))
