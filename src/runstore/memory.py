"""``InMemoryDataStorage``: plain Python structures, no dependency, no thread."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

from ._columns import AGENTS, RUNS, Kind, Table, compile_reader, encode_row
from ._dump import Dump, MessageRow
from ._json import dump_optional, load_json
from ._rules import continued_session, refuse_message, refuse_taken
from .base import DataStorage, NewRun, merge_agent_metadata
from .errors import NotFoundError
from .models import AgentRecord, ChatMsg, RunHandle, RunRecord, SessionRecord

# Agents and runs are held as a SQL table would hold them: a dict of column values by name
# (the column descriptions of ``_columns``), payloads as JSON text, so what a caller gets
# back is always a fresh copy. A run also keeps its "state" (JSON text or None).
_Row = dict[str, Any]
_DECODE: dict[Kind, str] = {"json": "_load_json({})"}
_ENCODE: dict[Kind, Callable[[Any, str], Any]] = {"json": dump_optional}
_agents = compile_reader(AGENTS, _DECODE, {"_load_json": load_json}, mapping=True)
_runs = compile_reader(RUNS, _DECODE, {"_load_json": load_json}, mapping=True)


def _stored(table: Table[Any], record: Any) -> _Row:
    """A record as its table row holds it."""
    return dict(zip(table.names, encode_row(table, record, _ENCODE), strict=True))


@dataclass(slots=True)
class _Session:
    id: str
    agent_id: str
    external_id: str | None
    created_at: datetime
    updated_at: datetime
    messages: list[ChatMsg] = field(default_factory=list)  # append-only, seq order
    last_seq: int = 0
    run_ids: list[str] = field(default_factory=list)

    def record(self) -> SessionRecord:
        return SessionRecord(
            id=self.id,
            agent_id=self.agent_id,
            external_id=self.external_id,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )


class InMemoryDataStorage(DataStorage):
    """Keeps everything in this process's memory; works in Pyodide. Payloads are held as
    JSON text, so what a caller gets back is always a fresh copy."""

    def __init__(self) -> None:
        super().__init__()
        self._agents: dict[str, _Row] = {}  # by name
        self._agent_names: dict[str, str] = {}  # id -> name
        self._sessions: dict[str, _Session] = {}
        self._runs: dict[str, _Row] = {}
        # Session ids ordered by (updated_at, id): a dict used as an ordered set.
        self._activity: dict[str, None] = {}

    async def _close(self) -> None:
        self._agents.clear()
        self._agent_names.clear()
        self._sessions.clear()
        self._runs.clear()
        self._activity.clear()

    def _touch(self, session: _Session, now: datetime) -> None:
        session.updated_at = now
        self._activity.pop(session.id, None)
        self._activity[session.id] = None

    # -- runs ------------------------------------------------------------------

    async def _initialize_run(self, request: NewRun) -> RunHandle:
        now = request.now
        agent = self._agents.get(request.workflow_name)
        agent_id = agent["id"] if agent is not None else request.new_agent_id
        session = self._find_session(request, agent_id)  # raises before any change
        if agent is None:
            agent = dict.fromkeys(AGENTS.names)
            agent.update(
                id=agent_id,
                name=request.workflow_name,
                description=request.description,
                input_schema=request.input_schema,
                output_schema=request.output_schema,
                workflow=request.workflow,
                created_at=now,
                updated_at=now,
            )
            self._agents[request.workflow_name] = agent
            self._agent_names[agent_id] = request.workflow_name
        else:
            self._update_agent(agent, request)
        if session is None:
            session_id = request.session_id or request.new_session_id
            session = _Session(
                id=session_id,
                agent_id=agent_id,
                external_id=request.external_id,
                created_at=now,
                updated_at=now,
            )
            self._sessions[session_id] = session
        run = dict.fromkeys(RUNS.names)  # what initialize_run does not set starts as None
        run.update(
            id=request.new_run_id,
            session_id=session.id,
            agent_id=agent_id,
            input_data=request.input_data,
            created_at=now,
            updated_at=now,
            state=None,
        )
        self._runs[request.new_run_id] = run
        session.run_ids.append(request.new_run_id)
        self._touch(session, now)
        return RunHandle(agent_id, session.id, request.new_run_id)

    def _find_session(self, request: NewRun, agent_id: str) -> _Session | None:
        if request.session_id is not None:
            session = self._sessions.get(request.session_id)
            if session is not None:
                continued_session(
                    agent_id, request.external_id, session.agent_id, session.external_id
                )
            return session
        if request.external_id is None:
            return None
        for session_id in reversed(self._activity):
            session = self._sessions[session_id]
            if session.agent_id == agent_id and session.external_id == request.external_id:
                return session
        return None

    @staticmethod
    def _update_agent(agent: _Row, request: NewRun) -> None:
        metadata = ("description", "input_schema", "output_schema", "workflow")
        stored = tuple(agent[name] for name in metadata)
        merged = merge_agent_metadata(request, stored)
        if merged is not None:
            agent.update(zip(metadata, merged, strict=True), updated_at=request.now)

    def _run(self, run_id: str) -> _Row:
        run = self._runs.get(run_id)
        if run is None:
            raise NotFoundError("run_id", run_id)
        return run

    async def _update_run(
        self,
        run_id: str,
        output_data: str | None,
        context: str | None,
        duration_seconds: float | None,
        now: datetime,
    ) -> None:
        run = self._run(run_id)
        if output_data is not None:
            run["output_data"] = output_data
        if context is not None:
            run["context"] = context
        if duration_seconds is not None:
            run["duration_seconds"] = duration_seconds
        run["updated_at"] = now
        self._touch(self._sessions[run["session_id"]], now)

    async def _get_run(self, run_id: str) -> RunRecord | None:
        run = self._runs.get(run_id)
        return None if run is None else _runs([run])[0]

    async def _list_runs(self, session_id: str) -> list[RunRecord]:
        session = self._sessions.get(session_id)
        return [] if session is None else _runs(self._runs_of([session]))

    def _runs_of(self, sessions: list[_Session]) -> list[_Row]:
        runs = [self._runs[run_id] for s in sessions for run_id in s.run_ids]
        runs.sort(key=lambda run: (run["created_at"], run["id"]))
        return runs

    async def _save_state(self, run_id: str, state: str, now: datetime) -> None:
        run = self._run(run_id)
        run["state"] = state
        self._touch(self._sessions[run["session_id"]], now)

    async def _load_state(self, run_id: str) -> str | None:
        run = self._runs.get(run_id)
        return None if run is None else run["state"]

    # -- chat ------------------------------------------------------------------

    async def _add_chat_message(
        self,
        agent_id: str,
        session_id: str,
        run_id: str | None,
        role: str,
        content: str | None,
        now: datetime,
    ) -> ChatMsg:
        session = self._sessions.get(session_id)
        run = None if run_id is None else self._runs.get(run_id)
        if (
            session is None
            or session.agent_id != agent_id
            or (run_id is not None and (run is None or run["session_id"] != session_id))
        ):
            session_agent = None if session is None else session.agent_id
            run_session = None if run is None else run["session_id"]
            refuse_message(agent_id, session_id, run_id, session_agent, run_session)
            raise AssertionError("unreachable: refuse_message raised above")
        seq = session.last_seq = session.last_seq + 1
        stored = tuple.__new__(ChatMsg, (role, content, seq, run_id, now))  # = models.chat_msg
        session.messages.append(stored)
        session.updated_at = now  # = self._touch(session, now), inlined on the hot path
        activity = self._activity
        del activity[session_id]
        activity[session_id] = None
        return stored  # a tuple of immutable values: safe to share

    async def _get_chat_history(
        self, session_id: str, limit: int | None, exclude_run_id: str | None
    ) -> list[ChatMsg]:
        session = self._sessions.get(session_id)
        if session is None:
            return []
        messages = session.messages
        if exclude_run_id is None:
            return messages[-limit:] if limit is not None else messages[:]
        kept = (m for m in reversed(messages) if m.run_id != exclude_run_id)
        newest = list(kept if limit is None else islice(kept, min(limit, len(messages))))
        newest.reverse()
        return newest

    # -- agents and sessions ---------------------------------------------------

    async def _list_agents(self) -> list[AgentRecord]:
        return _agents([self._agents[name] for name in sorted(self._agents)])

    async def _get_session(self, session_id: str) -> SessionRecord | None:
        session = self._sessions.get(session_id)
        return None if session is None else session.record()

    async def _list_sessions(
        self,
        workflow_name: str | None,
        external_id: str | None,
        limit: int | None,
        before: str | None,
    ) -> list[SessionRecord]:
        agent_id: str | None = None
        if workflow_name is not None:
            agent = self._agents.get(workflow_name)
            if agent is None:
                return []
            agent_id = agent["id"]
        if before is not None and before not in self._sessions:
            return []
        found: list[SessionRecord] = []
        started = before is None
        for session_id in reversed(self._activity):
            if not started:
                started = session_id == before
                continue
            session = self._sessions[session_id]
            if agent_id is not None and session.agent_id != agent_id:
                continue
            if external_id is not None and session.external_id != external_id:
                continue
            found.append(session.record())
            if limit is not None and len(found) >= limit:
                break
        return found

    def _drop_session(self, session: _Session) -> None:
        for run_id in session.run_ids:
            del self._runs[run_id]
        del self._sessions[session.id]
        del self._activity[session.id]

    async def _delete_session(self, session_id: str) -> None:
        session = self._sessions.get(session_id)
        if session is None:
            raise NotFoundError("session_id", session_id)
        self._drop_session(session)

    async def _delete_agent(self, workflow_name: str) -> None:
        agent = self._agents.get(workflow_name)
        if agent is None:
            raise NotFoundError("workflow_name", workflow_name)
        for session in [s for s in self._sessions.values() if s.agent_id == agent["id"]]:
            self._drop_session(session)
        del self._agents[workflow_name]
        del self._agent_names[agent["id"]]

    async def _purge_sessions(self, older_than: datetime) -> int:
        stale: list[_Session] = []
        for session_id in self._activity:
            session = self._sessions[session_id]
            if session.updated_at >= older_than:
                break
            stale.append(session)
        for session in stale:
            self._drop_session(session)
        return len(stale)

    # -- export / import -------------------------------------------------------

    async def _export(self, session_id: str | None) -> Dump:
        if session_id is None:
            sessions = sorted(self._sessions.values(), key=lambda s: (s.created_at, s.id))
            agents = [self._agents[name] for name in sorted(self._agents)]
        else:
            one = self._sessions.get(session_id)
            sessions = [] if one is None else [one]
            agents = [self._agents[self._agent_names[s.agent_id]] for s in sessions]
        runs = self._runs_of(sessions)
        messages = [
            MessageRow(
                agent_id=s.agent_id,
                session_id=s.id,
                run_id=m.run_id,
                seq=m.seq or 0,
                role=m.role,
                content=m.content,
                created_at=m.created_at or s.created_at,
            )
            for s in sorted(sessions, key=lambda s: s.id)
            for m in s.messages
        ]
        return Dump(
            agents=_agents(agents),
            sessions=[s.record() for s in sessions],
            runs=_runs(runs),
            states={run["id"]: run["state"] for run in runs if run["state"] is not None},
            messages=messages,
        )

    async def _import(self, dump: Dump) -> None:
        refuse_taken(dump, self._agent_names, self._sessions, self._runs, self._agents)
        for a in dump.agents:
            self._agents[a.name] = _stored(AGENTS, a)
            self._agent_names[a.id] = a.name
        for s in dump.sessions:
            self._sessions[s.id] = _Session(
                id=s.id,
                agent_id=s.agent_id,
                external_id=s.external_id,
                created_at=s.created_at,
                updated_at=s.updated_at,
            )
        for r in dump.runs:
            self._runs[r.id] = {**_stored(RUNS, r), "state": dump.states.get(r.id)}
            self._sessions[r.session_id].run_ids.append(r.id)
        for m in dump.messages:  # sorted by (session, seq)
            target = self._sessions[m.session_id]
            target.messages.append(
                ChatMsg(
                    role=m.role,
                    content=m.content,
                    seq=m.seq,
                    run_id=m.run_id,
                    created_at=m.created_at,
                )
            )
            target.last_seq = m.seq
        order = sorted(self._sessions.values(), key=lambda s: (s.updated_at, s.id))
        self._activity = dict.fromkeys(s.id for s in order)
