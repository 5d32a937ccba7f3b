"""RunstoreMessageHistory with real pydantic-ai agents and its offline models (TestModel,
FunctionModel), on every backend. Run in .venv-pydantic-ai (scripts/test --only pydantic-ai)."""

from __future__ import annotations

from typing import Any

from pydantic_ai import Agent
from pydantic_ai.messages import (
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from runstore import DataStorage
from runstore.integrations.pydantic_ai import RunstoreMessageHistory, starts_cleanly


def _tool_then_answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Every user prompt gets a tool call first, then an answer (TestModel calls tools only
    in a conversation's first turn)."""
    if any(isinstance(part, UserPromptPart) for part in messages[-1].parts):
        return ModelResponse(parts=[ToolCallPart("weather", {"city": "Paris"})])
    return ModelResponse(parts=[TextPart("It is sunny.")])


def _agent(model: TestModel | FunctionModel | None = None) -> Agent[None, str]:
    agent = Agent(model or TestModel(), system_prompt="Answer briefly.")

    @agent.tool_plain
    def weather(city: str) -> str:
        return f"sunny in {city}"

    return agent


def _json(messages: list[ModelMessage]) -> list[Any]:
    return ModelMessagesTypeAdapter.dump_python(messages, mode="json")


async def _conversation(history: RunstoreMessageHistory, turns: int) -> list[ModelMessage]:
    agent = _agent(FunctionModel(_tool_then_answer))
    for turn in range(turns):
        result = await agent.run(f"question {turn}", message_history=await history.load())
        await history.save(result.new_messages())
    return result.all_messages()


async def test_two_turns_round_trip_exactly(store: DataStorage) -> None:
    history = RunstoreMessageHistory(store, "chat")
    agent = _agent()
    first = await agent.run("weather in Paris?")
    await history.save(first.new_messages())
    assert _json(await history.load()) == _json(first.all_messages())

    second = await agent.run("and tomorrow?", message_history=await history.load())
    await history.save(second.new_messages())
    stored = await history.load()
    assert _json(stored) == _json(second.all_messages())
    assert _json(stored[: len(first.all_messages())]) == _json(first.all_messages())
    kinds = [part.part_kind for message in stored for part in message.parts]
    assert "tool-call" in kinds and "tool-return" in kinds
    # One runstore message per ModelMessage, structured: the JSON is the metadata.
    messages = await store.get_chat_history("chat", limit=None)
    assert [m.role for m in messages] == [m.kind for m in stored]
    assert [m.metadata for m in messages] == _json(stored)


def _check_window(window: list[ModelMessage], full: list[ModelMessage]) -> None:
    assert _json(window) == _json(full[len(full) - len(window) :])  # a suffix of the history
    if window:
        assert starts_cleanly(window[0])
    calls: set[str] = set()
    for message in window:
        for part in message.parts:
            if isinstance(part, ToolCallPart):
                calls.add(part.tool_call_id)
            if isinstance(part, ToolReturnPart):
                assert part.tool_call_id in calls, "a tool return without its call"


async def test_limit_window_never_separates_a_tool_call_from_its_return(
    store: DataStorage,
) -> None:
    history = RunstoreMessageHistory(store, "chat")
    full = await _conversation(history, turns=3)
    assert len(full) == 12  # each turn: prompt, tool call, tool return, answer
    cut_inside_a_tool_exchange = 0
    for limit in range(1, len(full) + 2):
        window = await history.load(limit=limit)
        assert len(window) <= limit
        _check_window(window, full)
        if limit <= len(full) and not starts_cleanly(full[-limit]):
            cut_inside_a_tool_exchange += 1
            assert len(window) < limit
    assert cut_inside_a_tool_exchange >= 6
    assert _json(await history.load(limit=4)) == _json(full[-4:])


async def test_token_window_keeps_to_the_budget_and_whole_tool_exchanges(
    store: DataStorage,
) -> None:
    history = RunstoreMessageHistory(store, "chat", count_tokens=lambda message: 10)
    full = await _conversation(history, turns=3)
    for budget in range(0, 130, 5):
        window = await history.load(max_tokens=budget)
        assert 10 * len(window) <= budget
        _check_window(window, full)
    assert len(await history.load(max_tokens=40)) == 4
    assert len(await history.load(max_tokens=39)) == 0  # 3 newest: answer, return, call
    both = await history.load(limit=5, max_tokens=200)
    assert _json(both) == _json(full[-4:])


async def test_default_token_count_is_the_models_output_tokens(store: DataStorage) -> None:
    history = RunstoreMessageHistory(store, "chat")
    full = await _conversation(history, turns=1)
    stored = await store.get_chat_history("chat", limit=None)
    for message, chat in zip(full, stored, strict=True):
        if isinstance(message, ModelRequest):
            assert chat.token_count is None
        else:
            assert chat.token_count == message.usage.output_tokens > 0


async def test_save_is_all_or_nothing_and_clear_empties(store: DataStorage) -> None:
    history = RunstoreMessageHistory(store, "chat")
    await _conversation(history, turns=1)
    await history.clear()
    assert await history.load() == []
    await history.save([])
    assert await store.get_chat_history("chat") == []
