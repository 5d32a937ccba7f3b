"""``InMemoryDataStorage``: plain Python structures, no dependency, no thread."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice

from ._dump import Dump, MessageRow
from ._json import dump_optional, load_json
from ._rules import continued_session, refuse_message, refuse_taken
from .base import DataStorage, NewRun, merge_agent_metadata
from .errors import NotFoundError
from .models import AgentRecord, ChatMsg, RunHandle, RunRecord, SessionRecord


@dataclass(slots=True)
class _Agent:
    id: str
    name: str
    description: str | None
    input_schema: str | None
    output_schema: str | None
    workflow: str | None
    created_at: datetime
    updated_at: datetime

    def record(self) -> AgentRecord:
        return AgentRecord(
            self.id,
            self.name,
            self.description,
            load_json(self.input_schema),
            load_json(self.output_schema),
            load_json(self.workflow),
            self.created_at,
            self.updated_at,
        )


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
            self.id, self.agent_id, self.external_id, self.created_at, self.updated_at
        )


@dataclass(slots=True)
class _Run:
    id: str
    session_id: str
    agent_id: str
    input_data: str | None
    output_data: str | None
    context: str | None
    duration_seconds: float | None
    created_at: datetime
    updated_at: datetime
    state: str | None = None

    def record(self) -> RunRecord:
        return RunRecord(
            self.id,
            self.session_id,
            self.agent_id,
            load_json(self.input_data),
            load_json(self.output_data),
            load_json(self.context),
            self.duration_seconds,
            self.created_at,
            self.updated_at,
        )


class InMemoryDataStorage(DataStorage):
    """Keeps everything in this process's memory; works in Pyodide. Payloads are held as
    JSON text, so what a caller gets back is always a fresh copy."""

    def __init__(self) -> None:
        super().__init__()
        self._agents: dict[str, _Agent] = {}  # by name
        self._agent_names: dict[str, str] = {}  # id -> name
        self._sessions: dict[str, _Session] = {}
        self._runs: dict[str, _Run] = {}
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
        agent_id = agent.id if agent is not None else request.new_agent_id
        session = self._find_session(request, agent_id)  # raises before any change
        if agent is None:
            agent = _Agent(
                agent_id,
                request.workflow_name,
                request.description,
                request.input_schema,
                request.output_schema,
                request.workflow,
                now,
                now,
            )
            self._agents[agent.name] = agent
            self._agent_names[agent.id] = agent.name
        else:
            self._update_agent(agent, request)
        if session is None:
            session_id = request.session_id or request.new_session_id
            session = _Session(session_id, agent.id, request.external_id, now, now)
            self._sessions[session_id] = session
        run = _Run(
            request.new_run_id,
            session.id,
            agent.id,
            request.input_data,
            None,
            None,
            None,
            now,
            now,
        )
        self._runs[run.id] = run
        session.run_ids.append(run.id)
        self._touch(session, now)
        return RunHandle(agent.id, session.id, run.id)

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
    def _update_agent(agent: _Agent, request: NewRun) -> None:
        stored = (agent.description, agent.input_schema, agent.output_schema, agent.workflow)
        merged = merge_agent_metadata(request, stored)
        if merged is not None:
            agent.description, agent.input_schema, agent.output_schema, agent.workflow = merged
            agent.updated_at = request.now

    def _run(self, run_id: str) -> _Run:
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
            run.output_data = output_data
        if context is not None:
            run.context = context
        if duration_seconds is not None:
            run.duration_seconds = duration_seconds
        run.updated_at = now
        self._touch(self._sessions[run.session_id], now)

    async def _get_run(self, run_id: str) -> RunRecord | None:
        run = self._runs.get(run_id)
        return None if run is None else run.record()

    async def _list_runs(self, session_id: str) -> list[RunRecord]:
        session = self._sessions.get(session_id)
        if session is None:
            return []
        runs = sorted((self._runs[i] for i in session.run_ids), key=lambda r: (r.created_at, r.id))
        return [run.record() for run in runs]

    async def _save_state(self, run_id: str, state: str, now: datetime) -> None:
        run = self._run(run_id)
        run.state = state
        self._touch(self._sessions[run.session_id], now)

    async def _load_state(self, run_id: str) -> str | None:
        run = self._runs.get(run_id)
        return None if run is None else run.state

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
            or (run_id is not None and (run is None or run.session_id != session_id))
        ):
            session_agent = None if session is None else session.agent_id
            run_session = None if run is None else run.session_id
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
        return [self._agents[name].record() for name in sorted(self._agents)]

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
            agent_id = agent.id
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
        for session in [s for s in self._sessions.values() if s.agent_id == agent.id]:
            self._drop_session(session)
        del self._agents[workflow_name]
        del self._agent_names[agent.id]

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
        runs = sorted(
            (self._runs[run_id] for s in sessions for run_id in s.run_ids),
            key=lambda r: (r.created_at, r.id),
        )
        messages = [
            MessageRow(
                s.agent_id,
                s.id,
                m.run_id,
                m.seq or 0,
                m.role,
                m.content,
                m.created_at or s.created_at,
            )
            for s in sorted(sessions, key=lambda s: s.id)
            for m in s.messages
        ]
        return Dump(
            agents=[a.record() for a in agents],
            sessions=[s.record() for s in sessions],
            runs=[r.record() for r in runs],
            states={r.id: r.state for r in runs if r.state is not None},
            messages=messages,
        )

    async def _import(self, dump: Dump) -> None:
        refuse_taken(dump, self._agent_names, self._sessions, self._runs, self._agents)
        for a in dump.agents:
            self._agents[a.name] = _Agent(
                a.id,
                a.name,
                a.description,
                dump_optional(a.input_schema, "input_schema"),
                dump_optional(a.output_schema, "output_schema"),
                dump_optional(a.workflow, "workflow"),
                a.created_at,
                a.updated_at,
            )
            self._agent_names[a.id] = a.name
        for s in dump.sessions:
            self._sessions[s.id] = _Session(
                s.id, s.agent_id, s.external_id, s.created_at, s.updated_at
            )
        for r in dump.runs:
            self._runs[r.id] = _Run(
                r.id,
                r.session_id,
                r.agent_id,
                dump_optional(r.input_data, "input_data"),
                dump_optional(r.output_data, "output_data"),
                dump_optional(r.context, "context"),
                r.duration_seconds,
                r.created_at,
                r.updated_at,
                dump.states.get(r.id),
            )
            self._sessions[r.session_id].run_ids.append(r.id)
        for m in dump.messages:  # sorted by (session, seq)
            target = self._sessions[m.session_id]
            target.messages.append(ChatMsg(m.role, m.content, m.seq, m.run_id, m.created_at))
            target.last_seq = m.seq
        order = sorted(self._sessions.values(), key=lambda s: (s.updated_at, s.id))
        self._activity = dict.fromkeys(s.id for s in order)
