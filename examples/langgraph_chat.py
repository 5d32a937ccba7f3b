"""A LangGraph chat graph whose checkpoints live in runstore (SQLite file), two turns,
the second after the store is closed and reopened. Offline: the model is LangChain's fake chat
model. Run: python examples/langgraph_chat.py [path.db]
(needs runstore[langgraph,sqlite] and langgraph)
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langgraph.graph import START, MessagesState, StateGraph

from runstore import SqliteDataStorage
from runstore.integrations.langgraph import RunstoreSaver

model = FakeListChatModel(responses=["Hello Ada!", "You told me your name is Ada."])


def build(saver: RunstoreSaver) -> Any:
    def reply(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("reply", reply)
    graph.add_edge(START, "reply")
    return graph.compile(checkpointer=saver)


async def turn(path: str, text: str) -> list[str]:
    """One turn with a freshly opened store: everything earlier comes from the file."""
    async with SqliteDataStorage(path) as store:
        graph = build(RunstoreSaver(store))
        config = {"configurable": {"thread_id": "ada"}}
        result = await graph.ainvoke({"messages": [("user", text)]}, config)
        return [str(m.content) for m in result["messages"]]


async def main(path: str) -> list[str]:
    await turn(path, "Hi, I am Ada.")
    return await turn(path, "What is my name?")


if __name__ == "__main__":
    for line in asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "langgraph-chat.db")):
        print(line)
