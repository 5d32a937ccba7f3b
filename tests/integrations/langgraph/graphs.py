"""Small deterministic graphs the LangGraph tests share (no model: a node writes the reply)."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages


class Chat(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    turns: Annotated[int, operator.add]
    topic: str


def reply(state: Chat) -> dict[str, Any]:
    last = state["messages"][-1]
    count = len(state["messages"])
    return {
        "messages": [AIMessage(f"reply {count} to: {last.content}", id=f"ai-{count}")],
        "turns": 1,
    }


def chat_graph(checkpointer: Any) -> Any:
    builder = StateGraph(Chat)
    builder.add_node("model", reply)
    builder.add_edge(START, "model")
    return builder.compile(checkpointer=checkpointer)


def user(text: str, number: int) -> dict[str, Any]:
    return {"messages": [HumanMessage(text, id=f"user-{number}")]}
