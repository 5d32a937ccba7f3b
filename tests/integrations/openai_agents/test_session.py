"""RunstoreSession on every backend, and the example as a test. Run in .venv-openai-agents
(scripts/test --only openai-agents); upstream's own tests run through upstream.py."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, Runner
from agents.testing import ScriptedModel, assistant_message
from backends import FACTORIES
from integrations.examples import load_example

from runstore import ChatMsg, DataStorage, InvalidDataError
from runstore.integrations.openai_agents import RunstoreSession


async def test_example_second_turn_reads_the_first_from_runstore(store: DataStorage) -> None:
    answers, second_input = await load_example("openai_agents_session").two_turns(store)
    assert answers == ["It is sunny in Paris.", "You asked about Paris."]
    kinds = [item.get("role") or item.get("type") for item in second_input]
    assert kinds == ["user", "function_call", "function_call_output", "assistant", "user"]
    stored = await store.get_chat_history("user-42", limit=None)
    assert [m.role for m in stored] == [*kinds, "assistant"]
    # The items, structured; an item's text is the message's content, stored once.
    texts = [item.get("content") for item in second_input]
    assert [m.content for m in stored[:5]] == [t if isinstance(t, str) else None for t in texts]
    bare = [
        {**item, "content": None} if isinstance(item.get("content"), str) else item
        for item in second_input
    ]
    assert [m.metadata for m in stored[:5]] == bare
    assert stored[0].content == "What's the weather in Paris?"


async def test_example_main_in_memory_and_continued_from_a_file(tmp_path: Path) -> None:
    example = load_example("openai_agents_session")
    lines = await example.main(None)
    assert lines[:3] == [
        "assistant: It is sunny in Paris.",
        "assistant: You asked about Paris.",
        "turn 2's model input, 5 items read back from runstore:",
    ]
    assert lines[-1] == (
        "runstore holds 6 messages of this conversation, in memory (pass a file path to keep it)"
    )
    path = str(tmp_path / "chat.db")
    assert (await example.main(path))[-1] == (
        f"runstore holds 6 messages of this conversation, in {path}"
    )
    again = await example.main(path)
    assert again[0] == f"continued an existing conversation of 6 messages in {path}"
    assert again[-1] == f"runstore holds 12 messages of this conversation, in {path}"


def _item(text: str) -> Any:
    return {"role": "user", "content": text}


async def test_items_window_pop_clear(store: DataStorage) -> None:
    session = RunstoreSession("s", store)
    assert await session.get_items() == []
    assert await session.pop_item() is None
    await session.add_items([_item(str(i)) for i in range(5)])
    assert await session.get_items(2) == [_item("3"), _item("4")]
    assert await session.get_items() == [_item(str(i)) for i in range(5)]
    assert await session.get_items(0) == []
    assert await session.pop_item() == _item("4")
    limited = RunstoreSession("s", store, session_settings={"limit": 1})
    assert await limited.get_items() == [_item("3")]
    await session.clear_session()
    assert await session.get_items() == []
    await session.add_items([_item("again")])
    assert await limited.get_items() == [_item("again")]


async def test_items_read_back_whatever_their_content(store: DataStorage) -> None:
    """Text is stored once (the message's content; the metadata keeps the key with null);
    items with other content, none, or stored with the text in both read back as written."""
    items: list[Any] = [
        _item("text"),
        _item(""),
        {"role": "user", "content": None},
        {"role": "user", "content": [{"type": "input_text", "text": "parts"}]},
        {"type": "function_call_output", "call_id": "c1", "output": "42"},
        {"content": "first", "role": "assistant", "status": "completed"},
    ]
    session = RunstoreSession("s", store)
    await session.add_items(items)
    read = await session.get_items()
    assert read == items
    stored = await store.get_chat_history("s", limit=None)
    assert [m.content for m in stored] == ["text", "", None, None, None, "first"]
    assert stored[0].metadata == {"role": "user", "content": None}
    read[0]["content"] = "changed"  # a fresh dict: the stored item is not changed
    assert (await session.get_items(limit=None))[0] == _item("text")
    # An item written with its text in the metadata too (as before) reads the same.
    await store.add_chat_messages("s", [ChatMsg("user", "both", metadata=_item("both"))])
    assert await session.pop_item() == _item("both")


async def test_add_items_is_all_or_nothing(store: DataStorage) -> None:
    session = RunstoreSession("s", store)
    await session.add_items([_item("kept")])
    with pytest.raises(InvalidDataError):
        await session.add_items([_item("a"), {"role": "user", "content": float("nan")}])
    assert await session.get_items() == [_item("kept")]


async def _cancel_once_started(call: Any) -> None:
    task = asyncio.ensure_future(call)
    await asyncio.sleep(0)  # started: on a store that waits (aiosqlite, PostgreSQL), inside it
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_cancelled_mutation_still_completes(store: DataStorage) -> None:
    """As the SDK's own sessions: cancelling the caller of add_items, pop_item or
    clear_session does not cancel the store call (CancelledError comes once it is done)."""
    session = RunstoreSession("s", store)
    await _cancel_once_started(session.add_items([_item("a"), _item("b")]))
    assert await session.get_items() == [_item("a"), _item("b")]
    await _cancel_once_started(session.pop_item())
    assert await session.get_items() == [_item("a")]
    await _cancel_once_started(session.clear_session())
    assert await session.get_items() == []


async def test_compaction_snapshot_replaces_only_an_unchanged_suffix(store: DataStorage) -> None:
    session = RunstoreSession("s", store)
    await session.add_items([_item(str(i)) for i in range(4)])
    snapshot = await session._get_compaction_snapshot(2)
    assert snapshot is not None
    assert snapshot.items == [_item("2"), _item("3")] and not snapshot.complete
    stale = await session._get_compaction_snapshot(3)
    assert stale is not None
    assert await snapshot.replace_suffix(0, [_item("summary")])
    assert await session.get_items() == [_item("0"), _item("1"), _item("summary")]
    assert not await stale.replace_suffix(1, [_item("late")])  # the history changed
    assert await session.get_items() == [_item("0"), _item("1"), _item("summary")]
    whole = await session._get_compaction_snapshot(10)
    assert whole is not None and whole.complete


async def test_compaction_snapshot_prunes_the_expired_prefix_with_the_swap(
    store: DataStorage,
) -> None:
    """prune_prefix (EncryptedSession's TTL): the leading run of expired items older than the
    replaced suffix goes in the same compare-and-swap, read in pages of the snapshot's limit;
    it stops at the first live item, or at a message not written by the session."""
    session = RunstoreSession("s", store)

    def expired(item: Any) -> bool:
        return str(item["content"]).startswith("old")

    await session.add_items([_item(f"old {i}") for i in range(5)])
    await session.add_items([_item("live"), _item("old again"), _item("a"), _item("b")])
    snapshot = await session._get_compaction_snapshot(2, prune_prefix=expired)
    assert snapshot is not None and snapshot.items == [_item("a"), _item("b")]
    await session.add_items([_item("c")])  # the history changed: nothing is dropped
    assert not await snapshot.replace_suffix(0, [_item("summary")])
    assert len(await session.get_items()) == 10
    snapshot = await session._get_compaction_snapshot(2, prune_prefix=expired)
    assert snapshot is not None
    assert await snapshot.replace_suffix(0, [_item("summary")])  # replaces b, c
    assert await session.get_items() == [
        _item(text) for text in ["live", "old again", "a", "summary"]
    ]
    # A message another tool wrote (no item) is never judged: cleanup stops there.
    run = await store.initialize_run(workflow_name="openai-agents", session_id="t")
    await store.add_chat_message(
        agent_id=run.agent_id, session_id="t", run_id=None, role="note", content="kept"
    )
    other = RunstoreSession("t", store)
    await other.add_items([_item("old"), _item("x"), _item("y")])
    snapshot = await other._get_compaction_snapshot(1, prune_prefix=expired)
    assert snapshot is not None and await snapshot.replace_suffix(0, [])
    history = await store.get_chat_history("t", limit=None)
    assert [(m.role, m.content) for m in history] == [
        ("note", "kept"),
        ("user", "old"),
        ("user", "x"),
    ]


@pytest.mark.parametrize("kind", ["memory", "sqlite-sqlite3", "sqlite-aiosqlite"])
def test_run_sync_turns_share_one_store(kind: str, tmp_path: Path) -> None:
    """Runner.run_sync makes a new event loop per call: one store serves them all."""
    store = asyncio.run(FACTORIES[kind](tmp_path))
    model = ScriptedModel([[assistant_message("one")], [assistant_message("two")]])
    agent = Agent(name="assistant", model=model)
    session = RunstoreSession("sync", store)
    assert Runner.run_sync(agent, "first", session=session).final_output == "one"
    assert Runner.run_sync(agent, "second", session=session).final_output == "two"
    assert next(item.get("content") for item in model.calls[-1].input) == "first"
    assert len(asyncio.run(session.get_items())) == 4
    asyncio.run(store.close())


def test_import_runstore_imports_no_framework() -> None:
    script = (
        "import sys, runstore, runstore.integrations; "
        "assert not {'agents', 'pydantic_ai', 'openai'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
