"""A LangGraph thread exported from SQLite and imported into PostgreSQL continues where it
stopped: a graph waiting at an interrupt resumes there, and the next turn sees the history."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage
from langgraph.graph import START, MessagesState, StateGraph
from pg_server import shared_dsn

from runstore import DataStorage, PostgresDataStorage, SqliteDataStorage
from runstore.integrations.langgraph import RunstoreSaver


def build(store: DataStorage) -> Any:
    """draft -> (interrupt) -> answer; the answer quotes every user message of the thread."""

    def draft(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(f"draft {len(state['messages'])}")]}

    def answer(state: MessagesState) -> dict[str, Any]:
        said = [str(m.content) for m in state["messages"] if m.type == "human"]
        return {"messages": [AIMessage(f"you said {said}")]}

    graph = StateGraph(MessagesState)
    graph.add_node("draft", draft)
    graph.add_node("answer", answer)
    graph.add_edge(START, "draft")
    graph.add_edge("draft", "answer")
    return graph.compile(checkpointer=RunstoreSaver(store), interrupt_before=["answer"])


def config(thread: str) -> Any:
    return {"configurable": {"thread_id": thread}}


async def test_a_thread_moves_from_sqlite_to_postgres(tmp_path: Path) -> None:
    async with SqliteDataStorage(tmp_path / "chat.db") as source:
        graph = build(source)
        await graph.ainvoke({"messages": [("user", "Hi, I am Ada.")]}, config("ada"))
        await graph.ainvoke(None, config("ada"))  # resumed: answered
        await graph.ainvoke({"messages": [("user", "What is my name?")]}, config("ada"))
        stopped = await graph.aget_state(config("ada"))
        assert stopped.next == ("answer",)  # waiting at the interrupt
        await graph.ainvoke({"messages": [("user", "I am Bob.")]}, config("bob"))
        history = [t async for t in graph.checkpointer.alist(config("ada"))]
        records = [record async for record in source.export_records()]
    assert {r["scope"] for r in records if r["kind"] == "entry"} == {"langgraph"}

    schema = f"lg_{uuid.uuid4().hex[:12]}"
    async with PostgresDataStorage(shared_dsn(), schema=schema) as target:
        await target.import_records(records)
        graph = build(target)
        moved = await graph.aget_state(config("ada"))
        assert moved.next == ("answer",)
        assert moved.values == stopped.values and moved.config == stopped.config
        assert [t.config async for t in graph.checkpointer.alist(config("ada"))] == [
            t.config for t in history
        ]
        result = await graph.ainvoke(None, config("ada"))  # continues at the interrupt
        assert result["messages"][-1].content == "you said ['Hi, I am Ada.', 'What is my name?']"
        await graph.ainvoke({"messages": [("user", "Bye.")]}, config("ada"))
        result = await graph.ainvoke(None, config("ada"))
        assert result["messages"][-1].content == (
            "you said ['Hi, I am Ada.', 'What is my name?', 'Bye.']"
        )
        bob = await graph.ainvoke(None, config("bob"))  # the other thread moved too
        assert bob["messages"][-1].content == "you said ['I am Bob.']"
