"""The same graphs, driven the same way, on LangGraph's ``InMemorySaver`` and on ``RunstoreSaver``
over each backend: every state and the whole history must be the same (checkpoint and task ids,
which are random or time-based, are compared by position; run ids and times are left out).

Graphs: a chat (``add_messages``) over many turns with ``update_state`` forks from older
checkpoints, an interrupt and its resume, parallel nodes one of which fails then succeeds on
retry, a subgraph, a ``DeltaChannel`` chat, and a chat run with sync ``graph.invoke``.
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from backends import FACTORIES
from graphs import Chat, chat_graph, user
from langchain_core.messages import AIMessage, AnyMessage
from langgraph.channels import DeltaChannel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command, Interrupt, interrupt

from runstore.integrations.langgraph import RunstoreSaver

Script = Callable[[BaseCheckpointSaver[Any]], Awaitable[list[Any]]]


def normal(value: Any) -> Any:
    """A comparable form: messages as their fields, containers walked."""
    if hasattr(value, "model_dump"):
        return {"class": type(value).__name__, **normal(value.model_dump())}
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normal(v) for v in value]
    if isinstance(value, Interrupt):  # its id derives from the checkpoint id
        return {"interrupt": normal(value.value)}
    if isinstance(value, BaseException):
        return repr(value)
    return value


async def observe(graph: Any, config: dict[str, Any]) -> list[Any]:
    """The state and the whole history of a thread (ids by position)."""
    history = [s async for s in graph.aget_state_history(config)]
    ids = {s.config["configurable"]["checkpoint_id"]: i for i, s in enumerate(history)}

    def snapshot(s: Any) -> Any:
        parent = s.parent_config["configurable"]["checkpoint_id"] if s.parent_config else None
        metadata = {k: v for k, v in (s.metadata or {}).items() if k not in ("run_id", "parents")}
        return {
            "values": normal(s.values),
            "next": list(s.next),
            "metadata": normal(metadata),
            "parent": ids.get(parent, parent if parent is None else "outside"),
            "id": ids.get(s.config["configurable"]["checkpoint_id"]),
            "tasks": [
                {
                    "name": t.name,
                    "error": repr(t.error) if t.error else None,
                    "interrupts": [normal(i.value) for i in t.interrupts],
                    "result": normal(t.result),
                }
                for t in s.tasks
            ],
        }

    state = await graph.aget_state(config, subgraphs=True)
    return [snapshot(state), [snapshot(s) for s in history]]


async def chat_with_forks(saver: BaseCheckpointSaver[Any]) -> list[Any]:
    graph = chat_graph(saver)
    config = {"configurable": {"thread_id": "chat"}}
    seen: list[Any] = []
    for number in range(12):
        out = await graph.ainvoke({**user(f"question {number} " + "x" * 200, number)}, config)
        seen.append(normal(out))
    history = [s async for s in graph.aget_state_history(config)]
    for position in (3, 10, 20):  # forks from older checkpoints, then a turn on each branch
        forked = await graph.aupdate_state(history[position].config, {"topic": f"f{position}"})
        seen.append(normal(await graph.ainvoke(user(f"branch {position}", 100 + position), forked)))
        seen.append(await observe(graph, forked))
    # a fork that replaces the last message (a replaced suffix, not an append)
    latest = await graph.aget_state(config)
    last = latest.values["messages"][-1]
    edited = await graph.aupdate_state(
        config, {"messages": [AIMessage("edited", id=last.id)]}, as_node="model"
    )
    seen.append(normal(await graph.ainvoke(user("after edit", 200), edited)))
    seen.append(await observe(graph, config))
    return seen


class Approval(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    answer: str


def ask(state: Approval) -> dict[str, Any]:
    answer = interrupt({"question": "approve?", "seen": len(state["messages"])})
    return {"answer": answer, "messages": [AIMessage(f"you said {answer}", id="answered")]}


async def interrupt_and_resume(saver: BaseCheckpointSaver[Any]) -> list[Any]:
    builder = StateGraph(Approval)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    graph = builder.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "approval"}}
    seen = [normal(await graph.ainvoke(user("please", 1), config))]
    seen.append(await observe(graph, config))
    seen.append(normal(await graph.ainvoke(Command(resume="yes"), config)))
    seen.append(await observe(graph, config))
    return seen


class Parallel(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def parallel_graph(saver: BaseCheckpointSaver[Any], failures: list[int]) -> Any:
    async def good(state: Parallel) -> dict[str, Any]:
        return {"log": ["good " + "y" * 600]}

    async def flaky(state: Parallel) -> dict[str, Any]:
        if failures:
            failures.pop()
            for _ in range(500):  # fail once good's write is stored (as it would be, later)
                stored = await saver.aget_tuple({"configurable": {"thread_id": "parallel"}})
                if stored and any(w[1] == "log" for w in stored.pending_writes or []):
                    break
                await asyncio.sleep(0.01)
            raise ValueError("flaky failed")
        return {"log": ["flaky"]}

    def join(state: Parallel) -> dict[str, Any]:
        return {"log": [f"join saw {len(state['log'])}"]}

    builder = StateGraph(Parallel)
    builder.add_node("good", good)
    builder.add_node("flaky", flaky)
    builder.add_node("join", join)
    builder.add_edge(START, "good")
    builder.add_edge(START, "flaky")
    builder.add_edge(["good", "flaky"], "join")
    builder.add_edge("join", END)
    return builder.compile(checkpointer=saver)


async def failing_parallel_node(saver: BaseCheckpointSaver[Any]) -> list[Any]:
    graph = parallel_graph(saver, failures=[1])
    config = {"configurable": {"thread_id": "parallel"}}
    seen: list[Any] = []
    with pytest.raises(ValueError, match="flaky failed"):
        await graph.ainvoke({"log": ["start"]}, config)
    seen.append(await observe(graph, config))
    seen.append(normal(await graph.ainvoke(None, config)))  # retry: good's write was kept
    seen.append(await observe(graph, config))
    return seen


async def with_subgraph(saver: BaseCheckpointSaver[Any]) -> list[Any]:
    inner = StateGraph(Chat)
    inner.add_node("think", lambda s: {"messages": [AIMessage("inner", id="in")], "turns": 1})

    def check(state: Chat) -> dict[str, Any]:
        interrupt("inner pause")
        return {"turns": 1}

    inner.add_node("check", check)
    inner.add_edge(START, "think")
    inner.add_edge("think", "check")
    outer = StateGraph(Chat)
    outer.add_node("sub", inner.compile())
    outer.add_edge(START, "sub")
    graph = outer.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "nested"}}
    seen = [normal(await graph.ainvoke(user("go", 1), config))]
    state = await graph.aget_state(config, subgraphs=True)
    sub_state = state.tasks[0].state
    seen.append(normal(sub_state.values) if sub_state else None)
    seen.append(await observe(graph, config))
    seen.append(normal(await graph.ainvoke(Command(resume="ok"), config)))
    seen.append(await observe(graph, config))
    return seen


def add_batches(state: list[AnyMessage], writes: Any) -> list[AnyMessage]:
    for write in writes:
        state = add_messages(state, write)  # type: ignore[assignment]
    return state


class DeltaChat(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], DeltaChannel(add_batches, snapshot_frequency=4)]


async def delta_channel_chat(saver: BaseCheckpointSaver[Any]) -> list[Any]:
    builder = StateGraph(DeltaChat)
    builder.add_node("model", lambda s: {"messages": [AIMessage("r", id=f"r{len(s['messages'])}")]})
    builder.add_edge(START, "model")
    graph = builder.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "delta"}}
    seen = [normal(await graph.ainvoke(user(f"q{n}", n), config)) for n in range(7)]
    history = [s async for s in graph.aget_state_history(config)]
    forked = await graph.aupdate_state(
        history[5].config, {"messages": [user("fork", 50)["messages"][0]]}
    )
    seen.append(normal(await graph.ainvoke(user("on fork", 51), forked)))
    seen.append(await observe(graph, config))
    return seen


async def sync_invoke(saver: BaseCheckpointSaver[Any]) -> list[Any]:
    graph = chat_graph(saver)
    config = {"configurable": {"thread_id": "sync"}}
    await saver.aget_tuple(config)  # the saver now knows the loop the store lives on

    def run() -> list[Any]:
        outs = [normal(graph.invoke(user(f"sync {n}", n), config)) for n in range(4)]
        outs.append([normal(s.values) for s in graph.get_state_history(config)])
        return outs

    seen = await asyncio.to_thread(run)
    seen.append(await observe(graph, config))
    return seen


def first_difference(want: Any, got: Any, path: str = "") -> str:
    if type(want) is not type(got):
        return f"{path}: {want!r:.200} != {got!r:.200}"
    if isinstance(want, dict):
        for key in sorted(set(want) | set(got), key=str):
            if want.get(key) != got.get(key):
                return first_difference(want.get(key), got.get(key), f"{path}.{key}")
    if isinstance(want, list) and len(want) == len(got):
        for i, (w, g) in enumerate(zip(want, got, strict=True)):
            if w != g:
                return first_difference(w, g, f"{path}[{i}]")
    return f"{path}: {want!r:.300} != {got!r:.300}"


SCRIPTS: dict[str, Script] = {
    "chat_with_forks": chat_with_forks,
    "interrupt_and_resume": interrupt_and_resume,
    "failing_parallel_node": failing_parallel_node,
    "with_subgraph": with_subgraph,
    "delta_channel_chat": delta_channel_chat,
    "sync_invoke": sync_invoke,
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
async def test_runstore_saver_matches_in_memory_saver(
    script: str, backend: str, tmp_path: Path
) -> None:
    reference = await SCRIPTS[script](InMemorySaver())
    store = await FACTORIES[backend](tmp_path)
    try:
        got = await SCRIPTS[script](RunstoreSaver(store))
        assert got == reference, first_difference(reference, got)
    finally:
        await store.close()
