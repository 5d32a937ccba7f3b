"""Small helpers shared by the contract tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from runstore import DataStorage, RunHandle

NewStore = Callable[[], Awaitable[DataStorage]]  # the type of the ``new_store`` fixture

EMPTY_EXPORT = {
    "format": "runstore.export",
    "version": 3,
    "agents": [],
    "sessions": [],
    "runs": [],
    "messages": [],
    "entries": [],
}


async def start(store: DataStorage, name: str = "chat", **kwargs: Any) -> RunHandle:
    return await store.initialize_run(workflow_name=name, **kwargs)


async def say(store: DataStorage, run: RunHandle, content: str | None, role: str = "user") -> int:
    message = await store.add_chat_message(
        agent_id=run.agent_id,
        session_id=run.session_id,
        run_id=run.run_id,
        role=role,
        content=content,
    )
    assert message.seq is not None
    return message.seq


async def snapshot(store: DataStorage) -> dict[str, Any]:
    """Everything the store holds, to check that a rejected call changed nothing."""
    return await store.export_data()
