"""The peers, each driven through its own public API, doing the same chat turn.

How each one is modelled (so anyone can check fairness):

- LangChain ``InMemoryChatMessageHistory`` (langchain-core): one history per session.
  add = ``await history.aadd_messages([HumanMessage(text)])``; read =
  ``(await history.aget_messages())[-50:]``. It returns its live list and message objects
  (no copies), unlike runstore.
- Google ADK ``InMemorySessionService`` (google-adk, default feature flags): one ADK session
  per session. add = ``await service.append_event(session, Event(...))`` with a
  ``google.genai`` ``Content``; read = ``await service.get_session(...,
  config=GetSessionConfig(num_recent_events=50))``, whose result is the session the app
  holds for the next append (as ADK's runner does). Pre-fill only: events are put straight
  into the service's ``sessions`` dict, because ``append_event`` compares each new event with
  every stored one, which makes a 100k pre-fill through it quadratic; the turn itself uses
  only the public API.
- LangGraph ``InMemorySaver`` (langgraph-checkpoint): one thread per session, the history
  being the ``messages`` channel of the thread's checkpoint, as a LangGraph app with a
  ``MessagesState`` keeps it. add = ``aget_tuple`` of the latest checkpoint, then ``aput`` of
  a new checkpoint whose ``messages`` channel is the old list plus the message (a new channel
  version, as one graph step writes it); read = ``aget_tuple`` and the last 50 of its
  ``messages``; the reply's add reuses that read's list (2 gets + 2 puts per turn). The saver
  is driven directly, without a graph, so no graph runtime cost is counted.
- OpenAI Agents ``SQLiteSession`` (openai-agents), in memory (``":memory:"``) and on a file:
  one ``SQLiteSession`` per session. add = ``await session.add_items([{"role": ...,
  "content": text}])``; read = ``await session.get_items(limit=50)``. Pre-fill: one
  ``add_items`` with all P items.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from .workload import REPLY_TEXT, USER_TEXT, WINDOW, Subject, Unavailable, prefill_text


def _missing(package: str, exc: ImportError) -> Unavailable:
    return Unavailable(f"{package} is not installed ({exc})")


class LangChainHistory(Subject):
    name = "LangChain InMemoryChatMessageHistory"
    floor = "bare list"

    async def open(self, workdir: Path) -> None:
        try:
            from langchain_core.chat_history import InMemoryChatMessageHistory
            from langchain_core.messages import AIMessage, HumanMessage
        except ImportError as exc:
            raise _missing("langchain-core", exc) from None
        self._history = InMemoryChatMessageHistory
        self._human = HumanMessage
        self._ai = AIMessage

    def _message(self, role: str, text: str) -> Any:
        return self._human(content=text) if role == "user" else self._ai(content=text)

    async def add_sessions(self, count: int, size: int) -> list[Any]:
        messages = [self._message(*prefill_text(i)) for i in range(size)]
        sessions = []
        for _ in range(count):
            history = self._history()
            await history.aadd_messages(messages)
            sessions.append(history)
        return sessions

    async def turn(self, session: Any) -> None:
        await session.aadd_messages([self._human(content=USER_TEXT)])
        (await session.aget_messages())[-WINDOW:]
        await session.aadd_messages([self._ai(content=REPLY_TEXT)])


class AdkSessions(Subject):
    name = "Google ADK InMemorySessionService"
    floor = "bare list"
    APP = "bench"
    USER = "user"

    async def open(self, workdir: Path) -> None:
        try:
            from google.adk.events import Event
            from google.adk.sessions import InMemorySessionService
            from google.adk.sessions.base_session_service import GetSessionConfig
            from google.genai import types
        except ImportError as exc:
            raise _missing("google-adk", exc) from None
        self._service = InMemorySessionService()
        self._event = Event
        self._types = types
        self._recent = GetSessionConfig(num_recent_events=WINDOW)
        self._ids = itertools.count()
        self._invocations = itertools.count()

    def _make(self, role: str, text: str, invocation: str) -> Any:
        types = self._types
        author, content_role = ("user", "user") if role == "user" else ("assistant", "model")
        content = types.Content(role=content_role, parts=[types.Part(text=text)])
        return self._event(invocation_id=invocation, author=author, content=content)

    async def add_sessions(self, count: int, size: int) -> list[Any]:
        events = [self._make(*prefill_text(i), f"fill-{i // 2}") for i in range(size)]
        handles = []
        for _ in range(count):
            session_id = f"s{next(self._ids)}"
            await self._service.create_session(
                app_name=self.APP, user_id=self.USER, session_id=session_id
            )
            stored = self._service.sessions[self.APP][self.USER][session_id]
            stored.events.extend(events)  # pre-fill only; see the module docstring
            stored.last_update_time = events[-1].timestamp if events else 0.0
            handles.append([await self._read(session_id)])
        return handles

    async def _read(self, session_id: str) -> Any:
        return await self._service.get_session(
            app_name=self.APP, user_id=self.USER, session_id=session_id, config=self._recent
        )

    async def turn(self, session: Any) -> None:
        invocation = f"i{next(self._invocations)}"
        held = session[0]
        await self._service.append_event(held, self._make("user", USER_TEXT, invocation))
        held = session[0] = await self._read(held.id)
        await self._service.append_event(held, self._make("assistant", REPLY_TEXT, invocation))


class LangGraphSaver(Subject):
    name = "LangGraph InMemorySaver (messages channel)"
    floor = "bare list"

    async def open(self, workdir: Path) -> None:
        try:
            from langchain_core.messages import AIMessage, HumanMessage
            from langgraph.checkpoint.base import (
                copy_checkpoint,
                create_checkpoint,
                empty_checkpoint,
            )
            from langgraph.checkpoint.memory import InMemorySaver
        except ImportError as exc:
            raise _missing("langgraph", exc) from None
        self._saver = InMemorySaver()
        self._human = HumanMessage
        self._ai = AIMessage
        self._copy = copy_checkpoint
        self._create = create_checkpoint
        self._empty = empty_checkpoint
        self._ids = itertools.count()

    async def _put(self, config: Any, previous: Any, messages: list[Any], step: int) -> None:
        version = self._saver.get_next_version(previous["channel_versions"].get("messages"), None)
        checkpoint = self._copy(previous)
        checkpoint["channel_values"]["messages"] = messages
        checkpoint["channel_versions"]["messages"] = version
        metadata = {"source": "loop", "step": step, "parents": {}}
        await self._saver.aput(
            config, self._create(checkpoint, None, step), metadata, {"messages": version}
        )

    async def add_sessions(self, count: int, size: int) -> list[Any]:
        messages = [
            self._human(content=text) if role == "user" else self._ai(content=text)
            for role, text in map(prefill_text, range(size))
        ]
        handles = []
        for _ in range(count):
            config = {"configurable": {"thread_id": f"t{next(self._ids)}", "checkpoint_ns": ""}}
            await self._put(config, self._empty(), list(messages), 0)
            handles.append(config)
        return handles

    async def _add(self, config: Any, latest: Any, message: Any) -> None:
        checkpoint = latest.checkpoint
        messages = [*checkpoint["channel_values"].get("messages", []), message]
        step = latest.metadata.get("step", 0) + 1
        await self._put(latest.config, checkpoint, messages, step)

    async def turn(self, session: Any) -> None:
        saver = self._saver
        await self._add(session, await saver.aget_tuple(session), self._human(content=USER_TEXT))
        latest = await saver.aget_tuple(session)
        latest.checkpoint["channel_values"]["messages"][-WINDOW:]
        await self._add(session, latest, self._ai(content=REPLY_TEXT))


class AgentsSqliteSession(Subject):
    floor = "bare list"
    max_sessions = 64  # each one keeps its own connections

    def __init__(self, on_file: bool) -> None:
        self.on_file = on_file
        where = "file" if on_file else "memory"
        self.name = f"OpenAI Agents SQLiteSession ({where})"
        if on_file:
            self.floor = "raw sqlite3 (WAL file)"
        self._sessions: list[Any] = []
        self._ids = itertools.count()

    async def open(self, workdir: Path) -> None:
        try:
            from agents import SQLiteSession
        except ImportError as exc:
            raise _missing("openai-agents", exc) from None
        self._class = SQLiteSession
        self._path: str = str(workdir / "agents.sqlite3") if self.on_file else ":memory:"

    async def add_sessions(self, count: int, size: int) -> list[Any]:
        items = [{"role": role, "content": text} for role, text in map(prefill_text, range(size))]
        handles = []
        for _ in range(count):
            session = self._class(f"s{next(self._ids)}", self._path)
            self._sessions.append(session)
            await session.add_items(items)
            handles.append(session)
        return handles

    async def turn(self, session: Any) -> None:
        await session.add_items([{"role": "user", "content": USER_TEXT}])
        await session.get_items(limit=WINDOW)
        await session.add_items([{"role": "assistant", "content": REPLY_TEXT}])

    async def close(self) -> None:
        for session in self._sessions:
            session.close()
