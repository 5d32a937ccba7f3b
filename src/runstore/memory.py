"""``InMemoryDataStorage``: plain Python structures, no dependency, no thread."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from . import _calls as calls
from . import _search
from ._columns import AGENTS, RUNS, Kind, Table, compile_reader, encode_row
from ._dump import Dump, MessageRow, last_seqs
from ._entries import MemoryEntries, live
from ._json import dump_optional, load_json, load_stored, to_text
from ._lifecycle import ErasureReport, PruneReport, PruneRequest, StoreStats, utf8_size
from ._records import DumpSink, ListSource, dump_source
from ._rules import (
    check_repeat,
    continued_session,
    merge_agent_metadata,
    refuse_message,
    refuse_taken,
)
from .base import DataStorage, newest_within
from .errors import InvalidDataError, NotFoundError, quote
from .models import AgentRecord, ChatMsg, RunHandle, RunRecord, SessionRecord

# Agents and runs are held as a SQL table would hold them: a dict of column values by name
# (the column descriptions of ``_columns``), payloads as JSON text, so what a caller gets
# back is always a fresh copy. A run also keeps its "state" (JSON text or None).
_Row = dict[str, Any]
_DECODE: dict[Kind, str] = {"json": "_load_json({})"}
_ENCODE: dict[Kind, Callable[[Any, str], Any]] = {"json": dump_optional}
_agents = compile_reader(AGENTS, _DECODE, {"_load_json": load_json}, mapping=True)
_runs = compile_reader(RUNS, _DECODE, {"_load_json": load_json}, mapping=True)


_new_chat_msg = tuple.__new__  # = models.chat_msg, without its call
_clock = datetime.now


def _stored(table: Table[Any], record: Any) -> _Row:
    """A record as its table row holds it."""
    return dict(zip(table.names, encode_row(table, record, _ENCODE), strict=True))


@dataclass(slots=True)
class _Session:
    """A session: the fields of its SessionRecord (same names; ``metadata`` as JSON text, so
    every read returns a fresh dict), then what memory keeps."""

    id: str
    agent_id: str
    external_id: str | None
    created_at: datetime
    updated_at: datetime
    parent_session_id: str | None = None
    forked_from_seq: int | None = None
    metadata: str = "{}"  # the session's metadata (a JSON object), as JSON text
    # In seq order. Shared with callers, so they hold no metadata: that is kept apart as
    # JSON text (by seq), and every read returns a fresh dict.
    messages: list[ChatMsg] = field(default_factory=list)
    last_seq: int = 0  # the highest seq ever given out: never lowered
    run_ids: dict[str, None] = field(default_factory=dict)  # an ordered set
    message_metadata: dict[int, str] = field(default_factory=dict)  # seq -> JSON text
    keys: dict[str, int] = field(default_factory=dict)  # idempotency key -> seq
    key_of: dict[int, str] = field(default_factory=dict)  # seq -> idempotency key
    indexed: int = 0  # messages[:indexed] are in the search index

    @classmethod
    def of(cls, record: SessionRecord, last_seq: int) -> _Session:
        fields = {name: getattr(record, name) for name in _RECORD_FIELDS}
        return cls(**fields, metadata=to_text(record.metadata), last_seq=last_seq)

    def record(self) -> SessionRecord:
        fields = {name: getattr(self, name) for name in _RECORD_FIELDS}
        return SessionRecord(**fields, metadata=load_json(self.metadata))

    def with_metadata(self, message: ChatMsg) -> ChatMsg:
        text = self.message_metadata.get(message.seq or 0)
        return message if text is None else message._replace(metadata=load_stored(text))

    def history(self, limit: int | None, exclude_run_id: str | None) -> list[ChatMsg]:
        """The newest ``limit`` messages (None: all) not of ``exclude_run_id``, oldest first."""
        messages = self.messages
        if exclude_run_id is None:
            newest = messages[-limit:] if limit is not None else messages[:]
        else:
            kept = (m for m in reversed(messages) if m.run_id != exclude_run_id)
            newest = list(kept if limit is None else islice(kept, min(limit, len(messages))))
            newest.reverse()
        if self.message_metadata:
            stored = self.message_metadata.get
            return [
                message
                if (text := stored(seq or 0)) is None
                else _new_chat_msg(
                    ChatMsg, (role, content, seq, run_id, at, load_stored(text), count)
                )
                for message in newest
                for role, content, seq, run_id, at, _, count in (message,)
            ]
        return newest

    def drop_after(self, index: int) -> list[ChatMsg]:
        """Remove messages[index:] and return them (with their metadata)."""
        dropped = self.messages[index:]
        del self.messages[index:]
        return self._forget(dropped)

    def drop_before(self, index: int) -> list[ChatMsg]:
        """Remove messages[:index] and return them (with their metadata)."""
        dropped = self.messages[:index]
        del self.messages[:index]
        return self._forget(dropped)

    def _forget(self, dropped: list[ChatMsg]) -> list[ChatMsg]:
        """Let go of the metadata and idempotency keys of removed messages."""
        if self.message_metadata or self.key_of:
            dropped = [self.with_metadata(m) for m in dropped]
            for message in dropped:
                seq = message.seq or 0
                self.message_metadata.pop(seq, None)
                key = self.key_of.pop(seq, None)
                if key is not None:
                    del self.keys[key]
        return dropped


class InMemoryDataStorage(DataStorage, MemoryEntries):
    """Keeps everything in this process's memory; works in Pyodide. Payloads are held as
    JSON text, so what a caller gets back is always a fresh copy."""

    def __init__(self) -> None:
        super().__init__()
        MemoryEntries.__init__(self)
        self._agents: dict[str, _Row] = {}  # by name
        self._agent_names: dict[str, str] = {}  # id -> name
        self._sessions: dict[str, _Session] = {}
        self._runs: dict[str, _Row] = {}
        # Session ids ordered by (updated_at, id): a dict used as an ordered set; and the
        # last of them, which a new message (now) leaves last (None: not known).
        self._activity: dict[str, None] = {}
        self._newest: str | None = None
        self._index = _Index()

    async def _close(self) -> None:
        self._clear_entries()
        self._agents.clear()
        self._agent_names.clear()
        self._sessions.clear()
        self._runs.clear()
        self._activity.clear()
        self._newest = None
        self._index = _Index()

    def _touch(self, session: _Session, now: datetime) -> None:
        session.updated_at = now
        self._activity.pop(session.id, None)
        self._activity[session.id] = None
        self._newest = session.id

    # -- runs ------------------------------------------------------------------

    async def _initialize_run(self, request: calls.NewRun) -> RunHandle:
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
                metadata=request.session_metadata or "{}",
            )
            self._sessions[session_id] = session
        elif request.session_metadata is not None:
            session.metadata = request.session_metadata
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
        session.run_ids[request.new_run_id] = None
        self._touch(session, now)
        return RunHandle(agent_id, session.id, request.new_run_id)

    def _find_session(self, request: calls.NewRun, agent_id: str) -> _Session | None:
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
    def _update_agent(agent: _Row, request: calls.NewRun) -> None:
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

    async def _update_run(self, update: calls.RunUpdate) -> None:
        run = self._run(update.run_id)
        if update.output_data is not None:
            run["output_data"] = update.output_data
        if update.context is not None:
            run["context"] = update.context
        if update.duration_seconds is not None:
            run["duration_seconds"] = update.duration_seconds
        run["updated_at"] = update.now
        self._touch(self._sessions[run["session_id"]], update.now)

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

    async def _add_chat_message(self, message: calls.MessageCall) -> ChatMsg:
        agent_id, session_id, run_id, role, content, now = message
        session = self._sessions.get(session_id)
        if (
            session is None
            or session.agent_id != agent_id
            or (run_id is not None and run_id not in session.run_ids)
        ):
            run = None if run_id is None else self._runs.get(run_id)
            session_agent = None if session is None else session.agent_id
            run_session = None if run is None else run["session_id"]
            refuse_message(agent_id, session_id, run_id, session_agent, run_session)
            raise AssertionError("unreachable: refuse_message raised above")
        seq = session.last_seq = session.last_seq + 1
        stored = _new_chat_msg(ChatMsg, (role, content, seq, run_id, now, None, None))
        session.messages.append(stored)
        self._index.stale[session_id] = session  # indexed at the next search
        session.updated_at = now  # = self._touch(session, now), inlined on the hot path
        if self._newest != session_id:
            activity = self._activity
            del activity[session_id]
            activity[session_id] = None
            self._newest = session_id
        return stored  # a tuple of immutable values: safe to share

    async def _add_chat_message_with(
        self, message: calls.MessageCall, options: calls.MessageOptions
    ) -> ChatMsg:
        agent_id, session_id, run_id, role, content, _ = message
        metadata, token_count, idempotency_key = options
        session = self._sessions.get(session_id)
        if idempotency_key is not None and session is not None and idempotency_key in session.keys:
            run = None if run_id is None else self._runs.get(run_id)
            run_session = None if run is None else run["session_id"]
            refuse_message(agent_id, session_id, run_id, session.agent_id, run_session)
            seq = session.keys[idempotency_key]
            first = session.messages[bisect_right(session.messages, seq, key=_seq) - 1]
            check_repeat(
                (
                    first.role,
                    first.content,
                    first.run_id,
                    session.message_metadata.get(seq),
                    first.token_count,
                ),
                (role, content, run_id, metadata, token_count),
            )
            return session.with_metadata(first)
        stored = await self._add_chat_message(message)
        assert session is not None  # else _add_chat_message raised
        seq = stored.seq or 0
        if token_count is not None:
            stored = session.messages[-1] = stored._replace(token_count=token_count)
        if idempotency_key is not None:
            session.keys[idempotency_key] = seq
            session.key_of[seq] = idempotency_key
        if metadata is not None:
            session.message_metadata[seq] = metadata  # kept apart: see _Session
            stored = stored._replace(metadata=load_json(metadata))
        return stored

    async def _get_chat_history(
        self, session_id: str, limit: int | None, exclude_run_id: str | None
    ) -> list[ChatMsg]:
        session = self._sessions.get(session_id)
        if session is None:
            return []
        if exclude_run_id is None and not session.message_metadata:  # the hot path: shared tuples
            messages = session.messages
            return messages[-limit:] if limit is not None else messages[:]
        return session.history(limit, exclude_run_id)

    async def _get_chat_window(self, window: calls.HistoryWindow) -> list[ChatMsg]:
        session_id, limit, exclude_run_id, max_chars, max_tokens = window
        session = self._sessions.get(session_id)
        if session is None:
            return []
        newest_first: Iterable[ChatMsg] = reversed(session.messages)  # walked only as far as needed
        if exclude_run_id is not None:
            newest_first = (m for m in newest_first if m.run_id != exclude_run_id)
        found = newest_within(newest_first, limit, max_chars, max_tokens)
        if session.message_metadata:
            return [session.with_metadata(m) for m in found]
        return found

    async def _get_chat_history_after(
        self, session_id: str, after_seq: int, limit: int | None
    ) -> list[ChatMsg]:
        session = self._sessions.get(session_id)
        if session is None:
            return []
        start = bisect_right(session.messages, after_seq, key=_seq)
        page = session.messages[start : None if limit is None else start + limit]
        if session.message_metadata:
            return [session.with_metadata(m) for m in page]
        return page

    def _session(self, session_id: str) -> _Session:
        session = self._sessions.get(session_id)
        if session is None:
            raise NotFoundError("session_id", session_id)
        return session

    async def _pop_message(self, session_id: str, now: datetime) -> ChatMsg | None:
        session = self._session(session_id)
        if not session.messages:
            return None
        [popped] = self._drop_after(session, len(session.messages) - 1)
        self._touch(session, now)
        return popped

    async def _truncate_history(self, session_id: str, after_seq: int, now: datetime) -> int:
        session = self._session(session_id)
        dropped = self._drop_after(session, bisect_right(session.messages, after_seq, key=_seq))
        if dropped:
            self._touch(session, now)
        return len(dropped)

    async def _replace_history(self, change: calls.HistoryReplacement) -> list[ChatMsg] | None:
        session_id, after_seq, messages, if_newest_seq, now, drop_through_seq = change
        session = self._session(session_id)
        for message_run_id in {run_id for _, _, run_id, _, _ in messages}:
            if message_run_id is None:
                continue
            run = self._runs.get(message_run_id)
            run_session = None if run is None else run["session_id"]
            refuse_message(
                session.agent_id, session_id, message_run_id, session.agent_id, run_session
            )
        newest = (session.messages[-1].seq or 0) if session.messages else 0
        if if_newest_seq is not None and newest != if_newest_seq:
            return None
        changed = False
        if after_seq is not None:
            after = bisect_right(session.messages, after_seq, key=_seq)
            changed = bool(self._drop_after(session, after))
        if drop_through_seq is not None:
            oldest = bisect_right(session.messages, drop_through_seq, key=_seq)
            changed = bool(self._drop_before(session, oldest)) or changed
        stored = []
        for role, content, run_id, metadata, token_count in messages:
            seq = session.last_seq = session.last_seq + 1
            message = _new_chat_msg(ChatMsg, (role, content, seq, run_id, now, None, token_count))
            session.messages.append(message)
            if metadata is not None:
                session.message_metadata[seq] = metadata  # kept apart: see _Session
                fields = (role, content, seq, run_id, now, load_stored(metadata), token_count)
                message = _new_chat_msg(ChatMsg, fields)
            stored.append(message)
        if stored:
            self._index.stale[session_id] = session
        if changed or stored:
            self._touch(session, now)
        return stored

    async def _fork_session(self, request: calls.NewFork) -> SessionRecord:
        parent = self._session(request.session_id)
        if request.new_session_id in self._sessions:
            raise InvalidDataError(
                "new_session_id", f"{quote(request.new_session_id)} exists already"
            )
        through = parent.last_seq if request.through_seq is None else request.through_seq
        copied = parent.messages[: bisect_right(parent.messages, through, key=_seq)]
        newest = (copied[-1].seq or 0) if copied else 0
        new = tuple.__new__  # ChatMsg(...) minus NamedTuple's __new__
        fork = _Session(
            id=request.new_session_id,
            agent_id=parent.agent_id,
            external_id=parent.external_id if request.external_id is None else request.external_id,
            created_at=request.now,
            updated_at=request.now,
            parent_session_id=parent.id,
            forked_from_seq=newest,
            metadata=parent.metadata,
            messages=[
                m if m.run_id is None else new(ChatMsg, (*m[:3], None, *m[4:])) for m in copied
            ],
            last_seq=newest,
        )
        fork.message_metadata = {
            seq: text for seq, text in parent.message_metadata.items() if seq <= newest
        }
        fork.key_of = {seq: key for seq, key in parent.key_of.items() if seq <= newest}
        fork.keys = {key: seq for seq, key in fork.key_of.items()}
        self._sessions[fork.id] = fork
        self._index.stale[fork.id] = fork
        self._touch(fork, request.now)
        return fork.record()

    # -- search ----------------------------------------------------------------

    async def _search_candidates(
        self, search: calls.MessageSearch
    ) -> list[tuple[str | None, Any, int, str, tuple[ChatMsg, SessionRecord]]]:
        index = self._index
        index.catch_up()
        sessions = self._sessions
        found: dict[str, set[int]] = {}  # session id -> seqs
        for term in search.terms:
            postings = index.terms.get(term)
            if not postings:
                continue
            if search.session_id is not None:
                seqs = postings.get(search.session_id)
                postings = {} if seqs is None else {search.session_id: seqs}
            for session_id, seqs in postings.items():
                found.setdefault(session_id, set()).update(seqs)
        candidates = []
        for session_id, seqs in found.items():
            session = sessions[session_id]
            if (search.agent_id is not None and session.agent_id != search.agent_id) or (
                search.external_id is not None and session.external_id != search.external_id
            ):
                continue
            record = session.record()
            messages = session.messages
            first = (messages[0].seq or 0) if messages else 0
            for seq in seqs:
                at = seq - first  # its place when no message between was removed
                if not (0 <= at < len(messages) and messages[at].seq == seq):
                    at = bisect_right(messages, seq, key=_seq) - 1
                message = session.with_metadata(messages[at])
                when = message.created_at
                candidates.append((message.content, when, seq, session_id, (message, record)))
        return candidates

    # -- agents and sessions ---------------------------------------------------

    async def _list_agents(self) -> list[AgentRecord]:
        return _agents([self._agents[name] for name in sorted(self._agents)])

    async def _get_session(self, session_id: str) -> SessionRecord | None:
        session = self._sessions.get(session_id)
        return None if session is None else session.record()

    async def _list_sessions(self, query: calls.SessionQuery) -> list[SessionRecord]:
        agent_id: str | None = None
        if query.workflow_name is not None:
            agent = self._agents.get(query.workflow_name)
            if agent is None:
                return []
            agent_id = agent["id"]
        if query.before is not None and query.before not in self._sessions:
            return []
        found: list[SessionRecord] = []
        started = query.before is None
        for session_id in reversed(self._activity):
            if not started:
                started = session_id == query.before
                continue
            session = self._sessions[session_id]
            if agent_id is not None and session.agent_id != agent_id:
                continue
            if query.external_id is not None and session.external_id != query.external_id:
                continue
            found.append(session.record())
            if query.limit is not None and len(found) >= query.limit:
                break
        return found

    async def _update_session(self, session_id: str, metadata: str) -> SessionRecord:
        session = self._session(session_id)
        session.metadata = metadata
        return session.record()

    def _drop_after(self, session: _Session, index: int) -> list[ChatMsg]:
        if index < session.indexed:
            self._index.remove(session.id, session.messages[index : session.indexed])
            session.indexed = index
        return session.drop_after(index)

    def _drop_before(self, session: _Session, index: int) -> list[ChatMsg]:
        indexed = min(index, session.indexed)
        if indexed:
            self._index.remove(session.id, session.messages[:indexed])
            session.indexed -= indexed
        return session.drop_before(index)

    def _drop_session(self, session: _Session) -> None:
        self._index.remove(session.id, session.messages[: session.indexed])
        self._index.stale.pop(session.id, None)
        for run_id in session.run_ids:
            del self._runs[run_id]
        del self._sessions[session.id]
        del self._activity[session.id]
        self._newest = None

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

    async def _delete_sessions(self, external_id: str) -> int:
        doomed = [s for s in self._sessions.values() if s.external_id == external_id]
        for session in doomed:
            self._drop_session(session)
        return len(doomed)

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

    # -- lifecycle (the rules: _lifecycle) --------------------------------------

    def _drop_counted(self, doomed: list[_Session]) -> tuple[int, int, int]:
        """Drop these sessions; (sessions, runs, messages) they held."""
        runs = sum(len(s.run_ids) for s in doomed)
        messages = sum(len(s.messages) for s in doomed)
        for session in doomed:
            self._drop_session(session)
        return len(doomed), runs, messages

    async def _erase(self, external_id: str, now: datetime) -> ErasureReport:
        doomed = [s for s in self._sessions.values() if s.external_id == external_id]
        owned = self._owned_entries(external_id)
        counted = sum(
            1 for scope, key in owned if live(self._entry_scopes[scope][1][key].expires_at, now)
        )
        self._drop_entries(owned)
        return ErasureReport(*self._drop_counted(doomed), counted)

    async def _count_stats(
        self, external_id: str | None, agent_id: str | None, now: datetime
    ) -> StoreStats:
        sessions = [
            s
            for s in self._sessions.values()
            if (external_id is None or s.external_id == external_id)
            and (agent_id is None or s.agent_id == agent_id)
        ]
        size = sum(utf8_size(m.content) for s in sessions for m in s.messages)
        entries = 0
        if agent_id is None or external_id is not None:
            for _, stored in self._entry_scopes.values():
                for entry in stored.values():
                    if live(entry.expires_at, now) and (
                        external_id is None or entry.owner == external_id
                    ):
                        entries += 1
                        size += 0 if entry.data is None else len(entry.data)
        return StoreStats(
            len(sessions),
            sum(len(s.run_ids) for s in sessions),
            sum(len(s.messages) for s in sessions),
            entries,
            size,
        )

    async def _prune(self, request: PruneRequest) -> PruneReport:
        sessions = runs = messages = entries = 0
        if request.idle_before is not None:
            stale: list[_Session] = []
            for session_id in self._activity:
                session = self._sessions[session_id]
                if session.updated_at >= request.idle_before:
                    break
                stale.append(session)
            sessions, runs, messages = self._drop_counted(stale)
        if request.keep_last is not None:
            for session in self._sessions.values():
                if len(session.messages) > request.keep_last:
                    kept_from = len(session.messages) - request.keep_last
                    messages += len(self._drop_before(session, kept_from))
        if request.expired_entries:
            expired = self._expired_entries(request.now)
            self._drop_entries(expired)
            entries = len(expired)
        return PruneReport(sessions, runs, messages, entries)

    # -- export / import -------------------------------------------------------

    @asynccontextmanager
    async def _export_source(self, session_id: str | None) -> AsyncIterator[ListSource]:
        yield dump_source(await self._export(session_id))

    @asynccontextmanager
    async def _import_sink(self) -> AsyncIterator[DumpSink]:
        """Builds the import apart, then swaps it in with one ``_import``."""
        sink = DumpSink(self._holds)
        yield sink
        await self._import(sink.dump)

    def _holds(self, kind: str, value: Any) -> bool:
        if kind == "agent":
            return value in self._agent_names
        if kind == "agent name":
            return value in self._agents
        if kind == "session":
            return value in self._sessions
        if kind == "run":
            return value in self._runs
        scope, key = value
        return self._live(scope, key, _clock(UTC)) is not None

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
                metadata=load_json(s.message_metadata.get(m.seq or 0)),
                token_count=m.token_count,
                idempotency_key=s.key_of.get(m.seq or 0),
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
            last_seqs={s.id: s.last_seq for s in sessions},
            entries=[] if session_id is not None else self._all_entries(_clock(UTC)),
        )

    async def _import(self, dump: Dump) -> None:
        refuse_taken(dump, self._agent_names, self._sessions, self._runs, self._agents)
        for index, entry in enumerate(dump.entries):
            if self._live(entry.scope, entry.key, _clock(UTC)) is not None:
                raise InvalidDataError(f"entries[{index}].key", "exists already")
        seqs = last_seqs(dump)
        for a in dump.agents:
            self._agents[a.name] = _stored(AGENTS, a)
            self._agent_names[a.id] = a.name
        for s in dump.sessions:
            self._sessions[s.id] = _Session.of(s, seqs[s.id])
        for r in dump.runs:
            self._runs[r.id] = {**_stored(RUNS, r), "state": dump.states.get(r.id)}
            self._sessions[r.session_id].run_ids[r.id] = None
        for m in dump.messages:  # sorted by (session, seq)
            target = self._sessions[m.session_id]
            self._index.stale[target.id] = target
            target.messages.append(
                ChatMsg(
                    role=m.role,
                    content=m.content,
                    seq=m.seq,
                    run_id=m.run_id,
                    created_at=m.created_at,
                    token_count=m.token_count,
                )
            )
            if m.metadata is not None:
                target.message_metadata[m.seq] = to_text(m.metadata)  # checked by from_document
            if m.idempotency_key is not None:
                target.keys[m.idempotency_key] = m.seq
                target.key_of[m.seq] = m.idempotency_key
        self._import_entries(dump.entries)
        order = sorted(self._sessions.values(), key=lambda s: (s.updated_at, s.id))
        self._activity = dict.fromkeys(s.id for s in order)
        self._newest = None


_RECORD_FIELDS = tuple(f.name for f in fields(SessionRecord) if f.name != "metadata")


def _seq(message: ChatMsg) -> int:
    return message.seq or 0


class _Index:
    """The search index: term -> session id -> seqs of the messages indexed under it
    (``_search.index_terms``). A session's new messages are indexed at the next search
    (``stale``), so appending stays as cheap as without search; removed messages leave
    the index as they go."""

    def __init__(self) -> None:
        self.terms: dict[str, dict[str, set[int]]] = {}
        self.stale: dict[str, _Session] = {}  # sessions with messages not yet indexed

    def catch_up(self) -> None:
        terms = self.terms
        for session in self.stale.values():
            for message in session.messages[session.indexed :]:
                seq = message.seq or 0
                for term in _search.index_terms(message.content):
                    terms.setdefault(term, {}).setdefault(session.id, set()).add(seq)
            session.indexed = len(session.messages)
        self.stale.clear()

    def remove(self, session_id: str, messages: list[ChatMsg]) -> None:
        terms = self.terms
        for message in messages:
            for term in _search.index_terms(message.content):
                postings = terms[term]
                seqs = postings[session_id]
                seqs.discard(message.seq or 0)
                if not seqs:
                    del postings[session_id]
                    if not postings:
                        del terms[term]
