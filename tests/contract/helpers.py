"""Small helpers shared by the contract tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from runstore import DataStorage, RunHandle, StoreStats

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


def utf8(text: str | None) -> int:
    return 0 if text is None else len(text.encode("utf-8"))


async def recount(
    store: DataStorage,
    external_id: str | None = None,
    agent_id: str | None = None,
    scopes: tuple[str, ...] = (),
) -> StoreStats:
    """What ``stats`` must say, counted from the records read back (entries: those of
    ``scopes``; with ``agent_id``, only with ``external_id``, as the contract says)."""
    sessions = [
        s
        for s in await store.list_sessions(external_id=external_id, limit=None)
        if agent_id is None or s.agent_id == agent_id
    ]
    runs = messages = size = 0
    for session in sessions:
        runs += len(await store.list_runs(session.id))
        history = await store.get_chat_history(session.id)
        messages += len(history)
        size += sum(utf8(m.content) for m in history)
    entries = 0
    if agent_id is None or external_id is not None:
        for scope in scopes:
            for entry in await store.list_entries(scope):
                if external_id is None or entry.owner == external_id:
                    entries += 1
                    size += 0 if entry.data is None else len(entry.data)
    return StoreStats(len(sessions), runs, messages, entries, size)
