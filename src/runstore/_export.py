"""The export document: building it from a ``Dump`` and checking one before import."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from ._dump import Dump, MessageRow
from ._json import dump_object, load_json
from .errors import InvalidDataError, quote
from .models import (
    MAX_INT64,
    MAX_SEQ,
    AgentRecord,
    RunRecord,
    SessionRecord,
    WorkflowState,
    check_duration,
    check_external_id,
    check_int_range,
    check_name,
    check_optional_text,
    check_stored_time,
)

FORMAT = "runstore.export"
VERSION = 2  # 2: message metadata, token_count, idempotency_key; forks; sessions' last_seq
READABLE_VERSIONS = (1, 2)  # version 1 has none of those: they import as None


def _time(value: datetime) -> str:
    return value.isoformat()


def to_document(dump: Dump) -> dict[str, Any]:
    last_seq = {m.session_id: m.seq for m in dump.messages}  # sorted by (session, seq)
    last_seq.update(dump.last_seqs)
    return {
        "format": FORMAT,
        "version": VERSION,
        "agents": [
            {
                **_fields(agent),
                "created_at": _time(agent.created_at),
                "updated_at": _time(agent.updated_at),
            }
            for agent in dump.agents
        ],
        "sessions": [
            {
                **_fields(session),
                "created_at": _time(session.created_at),
                "updated_at": _time(session.updated_at),
                "last_seq": last_seq.get(session.id, 0),
            }
            for session in dump.sessions
        ],
        "runs": [
            {
                **_fields(run),
                "state": load_json(dump.states.get(run.id)),
                "created_at": _time(run.created_at),
                "updated_at": _time(run.updated_at),
            }
            for run in dump.runs
        ],
        "messages": [
            {**_fields(message), "created_at": _time(message.created_at)}
            for message in dump.messages
        ],
    }


def _fields(record: Any) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


class _Reader:
    """Reads one item of the document, naming the field in every error."""

    def __init__(self, item: Any, where: str) -> None:
        if not isinstance(item, dict):
            raise InvalidDataError(where, "must be an object")
        self.item = item
        self.where = where

    def name(self, key: str) -> str:
        return check_name(self.item.get(key), f"{self.where}.{key}")

    def text(self, key: str) -> str | None:
        return check_optional_text(self.item.get(key), f"{self.where}.{key}")

    def external_id(self) -> str | None:
        return check_external_id(self.item.get("external_id"), f"{self.where}.external_id")

    def payload(self, key: str) -> dict[str, Any] | None:
        field = f"{self.where}.{key}"
        value = self.item.get(key)
        copy: dict[str, Any] | None = load_json(dump_object(value, field))  # a checked copy
        return copy

    def count(self, key: str, high: int = MAX_SEQ) -> int | None:
        value = self.item.get(key)
        return None if value is None else check_int_range(value, f"{self.where}.{key}", 0, high)

    def time(self, key: str) -> datetime:
        field = f"{self.where}.{key}"
        value = self.item.get(key)
        try:
            parsed = datetime.fromisoformat(str(value) if isinstance(value, str) else "")
        except (TypeError, ValueError):
            raise InvalidDataError(field, "must be an ISO 8601 timestamp") from None
        if parsed.tzinfo is None:
            raise InvalidDataError(field, "must carry a UTC offset")
        return check_stored_time(parsed, field)


def _items(document: dict[str, Any], key: str) -> list[Any]:
    items = document.get(key, [])
    if not isinstance(items, list):
        raise InvalidDataError(key, "must be a list")
    return items


def _unique(seen: set[str], value: str, field: str) -> None:
    if value in seen:
        raise InvalidDataError(field, f"{quote(value)} appears twice")
    seen.add(value)


def from_document(document: Any) -> Dump:
    """Check a whole export document; raise ``InvalidDataError`` before anything is written."""
    if not isinstance(document, dict):
        raise InvalidDataError("document", "must be a dict")
    if document.get("format") != FORMAT:
        raise InvalidDataError("format", f"must be {FORMAT!r}")
    if document.get("version") not in READABLE_VERSIONS:
        raise InvalidDataError("version", "must be 1 or 2")
    agents = _read_agents(_items(document, "agents"))
    sessions, last_seqs = _read_sessions(
        _items(document, "sessions"), {agent.id for agent in agents}
    )
    session_agent = {session.id: session.agent_id for session in sessions}
    runs, states = _read_runs(_items(document, "runs"), session_agent)
    run_session = {run.id: run.session_id for run in runs}
    messages = _read_messages(_items(document, "messages"), session_agent, run_session)
    newest = {m.session_id: m.seq for m in messages}  # sorted by (session, seq)
    for index, session in enumerate(sessions):
        if last_seqs.get(session.id, newest.get(session.id, 0)) < newest.get(session.id, 0):
            raise InvalidDataError(
                f"sessions[{index}].last_seq", "is below the seq of one of its messages"
            )
    return Dump(agents, sessions, runs, states, messages, last_seqs)


def _read_agents(items: list[Any]) -> list[AgentRecord]:
    agents: list[AgentRecord] = []
    names: set[str] = set()
    for index, raw in enumerate(items):
        item = _Reader(raw, f"agents[{index}]")
        agent = AgentRecord(
            id=item.name("id"),
            name=item.name("name"),
            description=item.text("description"),
            input_schema=item.payload("input_schema"),
            output_schema=item.payload("output_schema"),
            workflow=item.payload("workflow"),
            created_at=item.time("created_at"),
            updated_at=item.time("updated_at"),
        )
        _unique(names, agent.name, f"{item.where}.name")
        agents.append(agent)
    ids: set[str] = set()
    for index, agent in enumerate(agents):
        _unique(ids, agent.id, f"agents[{index}].id")
    return agents


def _read_sessions(
    items: list[Any], agent_ids: set[str]
) -> tuple[list[SessionRecord], dict[str, int]]:
    """The sessions, and the ``last_seq`` of those that give one (version 2)."""
    sessions: list[SessionRecord] = []
    last_seqs: dict[str, int] = {}
    ids: set[str] = set()
    for index, raw in enumerate(items):
        item = _Reader(raw, f"sessions[{index}]")
        parent = item.item.get("parent_session_id")
        session = SessionRecord(
            id=item.name("id"),
            agent_id=item.name("agent_id"),
            external_id=item.external_id(),
            created_at=item.time("created_at"),
            updated_at=item.time("updated_at"),
            parent_session_id=None if parent is None else item.name("parent_session_id"),
            forked_from_seq=item.count("forked_from_seq"),
        )
        if session.agent_id not in agent_ids:
            raise InvalidDataError(f"{item.where}.agent_id", "names no agent of the document")
        if (session.parent_session_id is None) != (session.forked_from_seq is None):
            raise InvalidDataError(
                f"{item.where}.forked_from_seq", "is given exactly when parent_session_id is"
            )
        _unique(ids, session.id, f"{item.where}.id")
        last_seq = item.count("last_seq")
        if last_seq is not None:
            last_seqs[session.id] = last_seq
        sessions.append(session)
    return sessions, last_seqs


def _read_runs(
    items: list[Any], session_agent: dict[str, str]
) -> tuple[list[RunRecord], dict[str, str]]:
    """The runs, and the state JSON text of those that have one."""
    runs: list[RunRecord] = []
    states: dict[str, str] = {}
    ids: set[str] = set()
    for index, raw in enumerate(items):
        item = _Reader(raw, f"runs[{index}]")
        run = RunRecord(
            id=item.name("id"),
            session_id=item.name("session_id"),
            agent_id=item.name("agent_id"),
            input_data=item.payload("input_data"),
            output_data=item.payload("output_data"),
            context=item.payload("context"),
            duration_seconds=check_duration(
                item.item.get("duration_seconds"), f"{item.where}.duration_seconds"
            ),
            created_at=item.time("created_at"),
            updated_at=item.time("updated_at"),
        )
        if session_agent.get(run.session_id) is None:
            raise InvalidDataError(f"{item.where}.session_id", "names no session of the document")
        if session_agent[run.session_id] != run.agent_id:
            raise InvalidDataError(f"{item.where}.agent_id", "differs from its session's agent")
        _unique(ids, run.id, f"{item.where}.id")
        state = item.item.get("state")
        if state is not None:
            try:
                states[run.id] = WorkflowState.from_dict(state).to_json()
            except InvalidDataError as exc:
                raise InvalidDataError(f"{item.where}.{exc.field}", exc.problem) from None
        runs.append(run)
    return runs, states


def _read_messages(
    items: list[Any], session_agent: dict[str, str], run_session: dict[str, str]
) -> list[MessageRow]:
    """The messages, sorted by (session, seq)."""
    messages: list[MessageRow] = []
    seqs: set[tuple[str, int]] = set()
    keys: set[tuple[str, str]] = set()
    for index, raw in enumerate(items):
        item = _Reader(raw, f"messages[{index}]")
        seq = check_int_range(item.item.get("seq"), f"{item.where}.seq", 1, MAX_SEQ)
        run_id = item.item.get("run_id")
        key = item.item.get("idempotency_key")
        message = MessageRow(
            agent_id=item.name("agent_id"),
            session_id=item.name("session_id"),
            run_id=None if run_id is None else item.name("run_id"),
            seq=seq,
            role=item.name("role"),
            content=item.text("content"),
            created_at=item.time("created_at"),
            metadata=item.payload("metadata"),
            token_count=item.count("token_count", MAX_INT64),
            idempotency_key=None if key is None else item.name("idempotency_key"),
        )
        if message.session_id not in session_agent:
            raise InvalidDataError(f"{item.where}.session_id", "names no session of the document")
        if session_agent[message.session_id] != message.agent_id:
            raise InvalidDataError(f"{item.where}.agent_id", "differs from its session's agent")
        if message.run_id is not None and run_session.get(message.run_id) != message.session_id:
            raise InvalidDataError(f"{item.where}.run_id", "names no run of that session")
        if (message.session_id, seq) in seqs:
            raise InvalidDataError(f"{item.where}.seq", f"{seq} appears twice in its session")
        seqs.add((message.session_id, seq))
        if message.idempotency_key is not None:
            if (message.session_id, message.idempotency_key) in keys:
                raise InvalidDataError(
                    f"{item.where}.idempotency_key", "appears twice in its session"
                )
            keys.add((message.session_id, message.idempotency_key))
        messages.append(message)
    messages.sort(key=lambda m: (m.session_id, m.seq))
    return messages


def merge_agents(dump: Dump, existing: dict[str, str]) -> Dump:
    """Point the dump's records at agents that already exist under the same name, and keep
    only the agents that are new."""
    renamed = {agent.id: existing[agent.name] for agent in dump.agents if agent.name in existing}
    if not renamed:
        return dump
    dump.agents = [agent for agent in dump.agents if agent.name not in existing]
    dump.sessions = [
        dataclasses.replace(s, agent_id=renamed.get(s.agent_id, s.agent_id)) for s in dump.sessions
    ]
    dump.runs = [
        dataclasses.replace(r, agent_id=renamed.get(r.agent_id, r.agent_id)) for r in dump.runs
    ]
    dump.messages = [
        dataclasses.replace(m, agent_id=renamed.get(m.agent_id, m.agent_id)) for m in dump.messages
    ]
    return dump
