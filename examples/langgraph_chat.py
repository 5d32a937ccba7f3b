"""A LangGraph chat graph whose checkpoints live in runstore: two turns in one thread. Offline:
the reply node answers from the conversation it is given, so turn 2 ("What is my name?") can
only be answered from turn 1, read back from runstore's checkpoint. With a path, the store is a
SQLite file, closed and reopened between the turns (and kept: run it again and the thread goes
on).

    pip install -e '.[langgraph,sqlite]' langgraph   # from a checkout (README, "Install")
    python examples/langgraph_chat.py [path.db]   # no path: in memory
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langgraph.graph import START, MessagesState, StateGraph

from runstore import DataStorage, InMemoryDataStorage, SqliteDataStorage
from runstore.integrations.langgraph import RunstoreSaver

CONFIG: Any = {"configurable": {"thread_id": "ada"}}


def answer(messages: list[BaseMessage]) -> str:
    """The model: greets by name, and says the name it was told earlier in the thread."""
    said = [str(m.content) for m in messages if m.type == "human"]
    names = [found.group(1) for text in said if (found := re.search(r"I am (\w+)", text))]
    if "my name" in said[-1]:
        return f"You told me your name is {names[-1]}." if names else "You did not tell me."
    return f"Hello {names[-1]}!" if names else "Hello!"


def build(saver: RunstoreSaver) -> Any:
    def reply(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(answer(state["messages"]))]}

    graph = StateGraph(MessagesState)
    graph.add_node("reply", reply)
    graph.add_edge(START, "reply")
    return graph.compile(checkpointer=saver)


async def held(store: DataStorage) -> int:
    """How many messages the thread's latest checkpoint holds."""
    state = await build(RunstoreSaver(store)).aget_state(CONFIG)
    return len(state.values.get("messages", []))


async def turn(store: DataStorage, text: str) -> list[str]:
    """One turn: everything earlier in the thread comes from the store."""
    result = await build(RunstoreSaver(store)).ainvoke({"messages": [("user", text)]}, CONFIG)
    return [f"{m.type}: {m.content}" for m in result["messages"][-2:]]


@asynccontextmanager
async def opened(path: str | None, memory: DataStorage) -> AsyncIterator[DataStorage]:
    """The store for one turn: the in-memory one (kept open), or the file opened afresh."""
    if path is None:
        yield memory
    else:
        async with SqliteDataStorage(path) as store:
            yield store


async def main(path: str | None) -> list[str]:
    """Two turns on a store in memory, or in the SQLite file ``path``, reopened for each turn.
    Returns the lines it prints."""
    lines: list[str] = []
    async with InMemoryDataStorage() as memory:
        async with opened(path, memory) as store:
            if before := await held(store):
                lines.append(f"continued an existing conversation of {before} messages in {path}")
            lines += await turn(store, "Hi, I am Ada.")
        async with opened(path, memory) as store:
            lines += await turn(store, "What is my name?")
            where = (
                f"{path}, reopened for each turn"
                if path
                else "memory (pass a file path to keep it)"
            )
            lines.append(f"the thread holds {await held(store)} messages, in {where}")
    return lines


if __name__ == "__main__":
    print("\n".join(asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None))))
