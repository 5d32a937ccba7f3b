"""A Google ADK memory service over any runstore store: ``RunstoreMemoryService(store)``.

Needs the ``adk`` extra. Each remembered event is one chat message, alone in a session of its
own whose id is derived from (app, user, event id), so an event id is stored once per app and
user however often it is added (the message's ``idempotency_key`` is the event id too). The
session belongs to the agent ``adk-memory/{app}`` and has the user id as ``external_id``:
``search_memory`` is the store's ``search_messages`` scoped by that agent and user, and
erasing a user (``delete_sessions(external_id=user_id)``) removes their memory. The message's
content is the event's text (what search matches); its metadata keeps the event's id, author,
timestamp and content. ``delete_memory`` deletes the event's session and leaves a tombstone
entry (owned by the user) so that adding the session again does not bring it back.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from google.adk.events.event import Event
from google.adk.memory.base_memory_service import BaseMemoryService, SearchMemoryResponse
from google.adk.memory.memory_entry import MemoryEntry
from google.adk.sessions import Session
from google.genai import types
from typing_extensions import override

from .._entries import NewEntry
from ..base import DataStorage
from ..errors import InvalidDataError, NotFoundError

__all__ = ["RunstoreMemoryService"]

_ROLE = "memory"
_MAX_RESULTS = 10  # as ADK's InMemoryMemoryService


def _agent_name(app_name: str) -> str:
    return f"adk-memory/{app_name}"


def _session_id(app_name: str, user_id: str, event_id: str) -> str:
    digest = hashlib.sha256(json.dumps([app_name, user_id, event_id]).encode()).hexdigest()
    return f"adk-memory-{digest}"


def _text(event: Event) -> str:
    parts = event.content.parts if event.content and event.content.parts else []
    return " ".join(part.text for part in parts if part.text)


def _timestamp(seconds: float) -> str:
    from google.adk.memory import _utils

    return _utils.format_timestamp(seconds)


class RunstoreMemoryService(BaseMemoryService):
    """ADK's ``BaseMemoryService`` on a runstore store (any backend); ``scope`` is the entry
    scope of the tombstones of deleted memories; ``max_results`` as ADK's in-memory service."""

    def __init__(
        self, store: DataStorage, *, scope: str = "adk-memory", max_results: int = _MAX_RESULTS
    ) -> None:
        self.store = store
        self.scope = scope
        self.max_results = max_results

    @override
    async def add_session_to_memory(self, session: Session) -> None:
        await self._add(session.app_name, session.user_id, session.events)

    @override
    async def add_events_to_memory(
        self,
        *,
        app_name: str,
        user_id: str,
        events: Sequence[Event],
        session_id: str | None = None,
        custom_metadata: Mapping[str, object] | None = None,
    ) -> None:
        await self._add(app_name, user_id, events)

    async def _add(self, app_name: str, user_id: str, events: Sequence[Event]) -> None:
        for event in events:
            if not (event.content and event.content.parts):
                continue
            if await self.store.get_entry(self.scope, self._tombstone(app_name, user_id, event.id)):
                continue  # deleted: not brought back
            session_id = _session_id(app_name, user_id, event.id)
            session = await self.store.get_session(session_id)
            if session is None:
                run = await self.store.initialize_run(
                    workflow_name=_agent_name(app_name), session_id=session_id, external_id=user_id
                )
                agent_id = run.agent_id
            else:
                agent_id = session.agent_id
            metadata = {
                "id": event.id,
                "author": event.author,
                "timestamp": event.timestamp,
                "content": event.content.model_dump(mode="json", exclude_none=True),
            }
            try:
                await self.store.add_chat_message(
                    agent_id=agent_id,
                    session_id=session_id,
                    run_id=None,
                    role=_ROLE,
                    content=_text(event),
                    metadata=metadata,
                    idempotency_key=event.id,
                )
            except InvalidDataError as exc:
                if exc.field != "idempotency_key":
                    raise
                # stored already, with other content: the first one stays

    @override
    async def search_memory(
        self, *, app_name: str, user_id: str, query: str
    ) -> SearchMemoryResponse:
        name = _agent_name(app_name)
        agent_ids = [agent.id for agent in await self.store.list_agents() if agent.name == name]
        if not agent_ids:
            return SearchMemoryResponse()
        hits = await self.store.search_messages(
            query, agent_id=agent_ids[0], external_id=user_id, limit=self.max_results
        )
        memories = []
        for hit in hits:
            stored: dict[str, Any] = hit.message.metadata or {}
            memories.append(
                MemoryEntry(
                    id=stored.get("id"),
                    content=types.Content.model_validate(stored.get("content")),
                    author=stored.get("author"),
                    timestamp=_timestamp(stored.get("timestamp") or 0.0),
                )
            )
        return SearchMemoryResponse(memories=memories)

    @override
    async def delete_memory(
        self, *, app_name: str, user_id: str, memory_id: str | None = None
    ) -> None:
        if not memory_id:
            return
        session_id = _session_id(app_name, user_id, memory_id)
        if await self.store.get_session(session_id) is None:
            return
        tombstone = NewEntry(self._tombstone(app_name, user_id, memory_id), owner=user_id)
        await self.store.put_entries(self.scope, [tombstone])
        with contextlib.suppress(NotFoundError):  # deleted meanwhile
            await self.store.delete_session(session_id)

    @staticmethod
    def _tombstone(app_name: str, user_id: str, event_id: str) -> str:
        return "deleted/" + _session_id(app_name, user_id, event_id)
