"""``SqliteDataStorage``: one SQLite file (or ``:memory:``), through either driver.

Every contract call is one transaction: a single statement, or ``BEGIN IMMEDIATE`` ...
``COMMIT`` when it takes several. Files use WAL with ``synchronous=NORMAL``: a committed
call survives the process being killed; after a power loss the newest commits may be
rolled back, never half-applied. The statements live in ``_sqlite_sql``.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from . import _calls as calls
from . import _sqlite_driver as driver
from . import _sqlite_sql as sql
from ._columns import (
    AGENTS,
    CHAT,
    ENTRIES,
    MESSAGES,
    RUNS,
    SESSIONS,
    Kind,
    compile_readers,
    encode_row,
)
from ._dump import MessageRow
from ._entries import (
    Entry,
    EntryCopy,
    EntryRow,
    EntrySearch,
    KeyRange,
    PatchRow,
    key_range,
    refuse_long_copies,
)
from ._json import dump_optional, load_json, load_stored, to_text
from ._lifecycle import BatchPruner, ErasureReport, StoreStats
from ._records import (
    BATCH,
    KINDS,
    Batch,
    ExportSource,
    Ids,
    ImportSink,
    ListSource,
    keyset_pages,
)
from ._rules import (
    check_repeat,
    continued_session,
    merge_agent_metadata,
    refuse_message,
    repeat_fields,
)
from ._search import entry_terms, index_terms
from ._sqlite_driver import Connection
from ._turns import Turns
from .base import DataStorage, newest_within
from .errors import InvalidDataError, NotFoundError, StorageClosedError, StorageError, quote
from .models import AgentRecord, ChatMsg, RunHandle, RunRecord, SessionRecord, chat_msg

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NEVER = -(2**63)  # a time before every stored one
_MICROSECOND = timedelta(microseconds=1)
_NO_LIMIT = -1  # SQLite's LIMIT -1
_MAX_SEQ = 2**63 - 1


def _to_db(value: datetime) -> int:
    """Microseconds since the epoch: exact, and sorts like the datetimes."""
    return (value - _EPOCH) // _MICROSECOND


# Stored times -> datetimes, remembered: a chat reads the same newest messages turn after
# turn, and building a datetime costs far more than the lookup. Datetimes are immutable.
_TIMES: dict[int, datetime] = {}
_TIMES_KEPT = 8192


def _from_db(value: int) -> datetime:
    when = _TIMES.get(value)
    if when is None:
        if len(_TIMES) >= _TIMES_KEPT:
            _TIMES.clear()
        when = _TIMES[value] = _EPOCH + timedelta(microseconds=value)
    return when


# How this backend stores each kind of value; the readers below are built from the column
# descriptions with these. The time decoder looks in _TIMES inline (the hot path's way).
_DECODE: dict[Kind, str] = {
    "json": "(None if {0} is None else _loads({0}))",  # inline: a history read has 50 rows
    "time": "(_times_get({0}) or _from_db({0}))",
    "time?": "(None if {0} is None else _from_db({0}))",
}
_DECODERS = {"_loads": json.loads, "_times_get": _TIMES.get, "_from_db": _from_db}
_ENCODE: dict[Kind, Callable[[Any, str], Any]] = {
    "json": dump_optional,
    "time": lambda value, field: _to_db(value),
    "time?": lambda value, field: None if value is None else _to_db(value),
}
_read = compile_readers(_DECODE, _DECODERS)
_chat = _read.chat  # the hot path's, one lookup less
_new_chat_msg = tuple.__new__  # = models.chat_msg, without its call
_times_get = _TIMES.get
_loads = load_stored


def _history(rows: list[Any]) -> list[ChatMsg]:
    """``HISTORY`` rows (newest first; metadata and token_count folded into ``extras``) as
    ChatMsgs, oldest first."""
    rows.reverse()
    return [
        _new_chat_msg(
            ChatMsg, (role, content, seq, run_id, _times_get(at) or _from_db(at), None, None)
        )
        if extras is None
        else _new_chat_msg(
            ChatMsg,
            (role, content, seq, run_id, _times_get(at) or _from_db(at), _loads(extras), None),
        )
        if extras[0] == "{"  # metadata alone: a JSON object
        else _unfolded((role, content, seq, run_id, _times_get(at) or _from_db(at)), extras)
        for role, content, seq, run_id, at, extras in rows
    ]


def _unfolded(fields: tuple[Any, ...], extras: str) -> ChatMsg:
    """A message with a token_count: ``extras`` is "<token_count> <metadata or null>"."""
    count, _, metadata = extras.partition(" ")
    return chat_msg((*fields, None if metadata == "null" else _loads(metadata), int(count)))


class _Refused(Exception):
    """A statement of a transaction was refused: roll back, then find out why."""


def _is_file(path: str) -> bool:
    return path not in ("", ":memory:")  # "" is SQLite's private temporary database


class SqliteDataStorage(BatchPruner, DataStorage):
    """Stores everything in one SQLite database.

    ``path`` is a file (created when missing), ``":memory:"`` or a SQLite URI
    (``"file:chat.db?mode=ro"`` opens the file read-only: reads and search work, writes
    raise ``StorageError``). ``driver`` is
    ``"sqlite3"`` (standard library, no thread: works in Pyodide), ``"aiosqlite"`` (extra
    ``runstore[sqlite]``) or ``None`` for aiosqlite when it is installed and threads work.
    The database is opened on first use, or by ``await store.open()``.
    """

    def __init__(self, path: str | os.PathLike[str] = ":memory:", *, driver: str | None = None):
        super().__init__()
        if not isinstance(path, str | os.PathLike):
            raise InvalidDataError("path", f"must be a str or a path, not {type(path).__name__}")
        self.path = os.fspath(path)
        self.driver = _choose_driver(driver)
        self._db: Connection | None = None
        # One connection runs one transaction at a time: calls on this store take turns,
        # from any event loop (asyncio.run twice, a worker thread's loop).
        self._lock = Turns()

    async def _open(self) -> None:
        async with self._lock:
            await self._connection()

    async def _connection(self) -> Connection:
        if self._db is None:
            if self._closed:
                raise StorageClosedError(f"{type(self).__name__} is closed")
            self._db = await _open_database(self.path, self.driver)
        return self._db

    async def _close(self) -> None:
        async with self._lock:
            if self._db is not None:
                db, self._db = self._db, None
                await db.close()

    @asynccontextmanager
    async def _statement(self) -> AsyncIterator[Connection]:
        """The connection, for one statement: a read, or a write that is atomic on its own."""
        async with self._lock:
            yield await self._connection()

    @asynccontextmanager
    async def _transaction(self, begin: str = sql.BEGIN_WRITE) -> AsyncIterator[Connection]:
        """One transaction: committed if the block ends normally, else rolled back."""
        async with self._lock:
            db = await self._connection()
            try:
                await db.execute(begin)
                yield db
                await db.execute(sql.COMMIT)
            except BaseException:
                await _roll_back(db)
                raise

    # -- runs ------------------------------------------------------------------

    async def _initialize_run(self, request: calls.NewRun) -> RunHandle:
        now = _to_db(request.now)
        async with self._transaction() as db:
            agents = await db.fetchall(sql.AGENT_METADATA_BY_NAME, (request.workflow_name,))
            [(agent_id, *stored)] = agents or [(request.new_agent_id,)]
            session_id = await _find_session(db, request, agent_id)  # raises before writing
            if not agents:
                await db.execute(
                    sql.NEW_AGENT,
                    (
                        agent_id,
                        request.workflow_name,
                        request.description,
                        request.input_schema,
                        request.output_schema,
                        request.workflow,
                        now,
                        now,
                    ),
                )
            else:  # stored: (description, input_schema, output_schema, workflow)
                merged = merge_agent_metadata(request, tuple(stored))
                if merged is not None:
                    await db.execute(sql.UPDATE_AGENT, (*merged, now, agent_id))
            if session_id is None:
                session_id = request.session_id or request.new_session_id
                metadata = request.session_metadata or "{}"
                await db.execute(
                    sql.NEW_SESSION, (session_id, agent_id, request.external_id, now, now, metadata)
                )
            elif request.session_metadata is not None:
                touch = (now, request.session_metadata, session_id)
                await db.execute(sql.TOUCH_SESSION_WITH_METADATA, touch)
            else:
                await db.execute(sql.TOUCH_SESSION, (now, session_id))
            await db.execute(
                sql.NEW_RUN,
                (request.new_run_id, session_id, agent_id, request.input_data, now, now),
            )
        return RunHandle(agent_id, session_id, request.new_run_id)

    async def _update_run(self, update: calls.RunUpdate) -> None:
        when = _to_db(update.now)
        changes = (update.output_data, update.context, update.duration_seconds, when)
        async with self._transaction() as db:
            rows = await db.fetchall(sql.UPDATE_RUN, (*changes, update.run_id))
            if not rows:
                raise NotFoundError("run_id", update.run_id)
            [(session_id,)] = rows
            await db.execute(sql.TOUCH_SESSION, (when, session_id))

    async def _get_run(self, run_id: str) -> RunRecord | None:
        async with self._statement() as db:
            rows = await db.fetchall(sql.GET_RUN, (run_id,))
        return _read.runs(rows)[0] if rows else None

    async def _list_runs(self, session_id: str) -> list[RunRecord]:
        async with self._statement() as db:
            rows = await db.fetchall(sql.LIST_RUNS, (session_id,))
        return _read.runs(rows)

    async def _save_state(self, run_id: str, state: str, now: datetime) -> None:
        async with self._transaction() as db:
            rows = await db.fetchall(sql.SAVE_STATE, (state, run_id))
            if not rows:
                raise NotFoundError("run_id", run_id)
            [(session_id,)] = rows
            await db.execute(sql.TOUCH_SESSION, (_to_db(now), session_id))

    async def _load_state(self, run_id: str) -> str | None:
        async with self._statement() as db:
            rows = await db.fetchall(sql.LOAD_STATE, (run_id,))
        if not rows:
            return None
        [(state,)] = rows
        return state  # type: ignore[no-any-return]

    # -- chat ------------------------------------------------------------------

    async def _add_chat_message(self, message: calls.MessageCall) -> ChatMsg:
        agent_id, session_id, run_id, role, content, now = message
        async with self._lock:  # the hot path: _statement() without contextlib's cost
            db = self._db or await self._connection()
            rows = await db.fetchall(
                sql.ADD_PLAIN_MESSAGE, (session_id, agent_id, run_id, role, content, _to_db(now))
            )
        if not rows:  # refused: the general path says why (or adds, if that changed meanwhile)
            return await self._add_chat_message_with(message, calls.NO_OPTIONS)
        return _new_chat_msg(ChatMsg, (role, content, rows[0][0], run_id, now, None, None))

    async def _add_chat_message_with(
        self, message: calls.MessageCall, options: calls.MessageOptions
    ) -> ChatMsg:
        agent_id, session_id, run_id, role, content, now = message
        metadata, token_count, idempotency_key = options
        params = (
            session_id,
            agent_id,
            run_id,
            role,
            content,
            _to_db(now),
            metadata,
            token_count,
            idempotency_key,
        )
        if idempotency_key is not None:  # a repeat costs one read
            async with self._statement() as db:
                found = await db.fetchall(
                    sql.REPEATED_MESSAGE, (session_id, idempotency_key, run_id)
                )
            if found:
                given = (role, content, run_id, metadata, token_count)
                return _repeat(found[0], (agent_id, session_id, run_id), given)
        add = sql.ADD_MESSAGE if idempotency_key is None else sql.ADD_KEYED_MESSAGE
        async with self._lock:  # the hot path: _statement() without contextlib's cost
            db = self._db or await self._connection()
            rows = await db.fetchall(add, params)
        if not rows:
            # Refused, or a known idempotency key: find out which, in a transaction so that
            # the answer cannot go stale.
            async with self._transaction() as db:
                await _explain_refused_message(db, session_id, agent_id, run_id)
                if idempotency_key is not None:
                    stored = await db.fetchall(sql.MESSAGE_BY_KEY, (session_id, idempotency_key))
                    for first in _chat(stored):
                        given = (role, content, run_id, metadata, token_count)
                        check_repeat(repeat_fields(first), given)
                        return first
                rows = await db.fetchall(add, params)
        [(seq,)] = rows
        return chat_msg((role, content, seq, run_id, now, load_json(metadata), token_count))

    async def _get_chat_history(
        self, session_id: str, limit: int | None, exclude_run_id: str | None
    ) -> list[ChatMsg]:
        count = _NO_LIMIT if limit is None else limit
        async with self._lock:  # the hot path: _statement() without contextlib's cost
            db = self._db or await self._connection()
            if exclude_run_id is None:
                rows = await db.fetchall(sql.HISTORY, (session_id, count))
            else:
                rows = await db.fetchall(
                    sql.HISTORY_EXCLUDING_RUN, (session_id, exclude_run_id, count)
                )
        return _history(rows)

    async def _get_chat_window(self, window: calls.HistoryWindow) -> list[ChatMsg]:
        session_id, limit, exclude_run_id, max_chars, max_tokens = window
        count = _NO_LIMIT if limit is None else limit
        params = (session_id, exclude_run_id, max_chars, max_tokens, count)
        async with self._statement() as db:
            rows = await db.fetchall(sql.HISTORY_WITHIN, params)
        return newest_within(reversed(_history(rows)), None, max_chars, max_tokens)

    async def _get_chat_history_after(
        self, session_id: str, after_seq: int, limit: int | None
    ) -> list[ChatMsg]:
        count = _NO_LIMIT if limit is None else limit
        async with self._statement() as db:
            return _chat(await db.fetchall(sql.HISTORY_AFTER, (session_id, after_seq, count)))

    async def _pop_message(self, session_id: str, now: datetime) -> ChatMsg | None:
        async with self._transaction() as db:
            if not await db.fetchall(sql.SESSION_EXISTS, (session_id,)):
                raise NotFoundError("session_id", session_id)
            rows = await db.fetchall(sql.POP_MESSAGE, (session_id,))
            if rows:
                await db.execute(sql.TOUCH_SESSION, (_to_db(now), session_id))
        return _chat(rows)[0] if rows else None

    async def _truncate_history(self, session_id: str, after_seq: int, now: datetime) -> int:
        async with self._transaction() as db:
            if not await db.fetchall(sql.SESSION_EXISTS, (session_id,)):
                raise NotFoundError("session_id", session_id)
            rows = await db.fetchall(sql.TRUNCATE_HISTORY, (session_id, after_seq))
            if rows:
                await db.execute(sql.TOUCH_SESSION, (_to_db(now), session_id))
        return len(rows)

    async def _replace_history(self, change: calls.HistoryReplacement) -> list[ChatMsg] | None:
        session_id, after_seq, messages, if_newest_seq, now, drop_through_seq = change
        if messages and after_seq is None and if_newest_seq is None and drop_through_seq is None:
            appended = await self._append(session_id, messages, now)
            if appended is not None:
                return appended
        when = _to_db(now)
        async with self._transaction() as db:
            owner = await db.fetchall(sql.SESSION_OWNER, (session_id,))
            if not owner:
                raise NotFoundError("session_id", session_id)
            [(agent_id, _)] = owner
            for run_id in {run_id for _, _, run_id, _, _ in messages}:
                if run_id is not None:
                    await _explain_refused_message(db, session_id, agent_id, run_id)
            if if_newest_seq is not None:
                [(newest,)] = await db.fetchall(sql.NEWEST_MESSAGE_SEQ, (session_id,))
                if newest != if_newest_seq:
                    return None
            changed = False
            if after_seq is not None:
                changed = bool(await db.fetchall(sql.TRUNCATE_HISTORY, (session_id, after_seq)))
            if drop_through_seq is not None:
                dropped = await db.fetchall(
                    sql.DROP_HISTORY_THROUGH, (session_id, drop_through_seq)
                )
                changed = changed or bool(dropped)
            stored = []
            for role, content, run_id, metadata, token_count in messages:
                params = (session_id, agent_id, run_id, role, content, when, metadata, token_count)
                [(seq,)] = await db.fetchall(sql.ADD_MESSAGE, (*params, None))
                fields = (role, content, seq, run_id, now, load_json(metadata), token_count)
                stored.append(chat_msg(fields))
            if changed and not stored:
                await db.execute(sql.TOUCH_SESSION, (when, session_id))
        return stored

    async def _append(
        self, session_id: str, messages: list[calls.NewMessage], now: datetime
    ) -> list[ChatMsg] | None:
        """``add_chat_messages``: each INSERT checks the session and the run itself (one
        statement for one message, else one transaction). None: one was refused and nothing
        is stored; the general path then says why."""
        when = _to_db(now)
        if len(messages) == 1:
            [(role, content, run_id, metadata, token_count)] = messages
            params = (session_id, run_id, role, content, when, metadata, token_count)
            async with self._lock:  # the hot path: _statement() without contextlib's cost
                db = self._db or await self._connection()
                rows = await db.fetchall(sql.APPEND_MESSAGE, params)
            if not rows:
                return None
            fields = (role, content, rows[0][0], run_id, now, load_json(metadata), token_count)
            return [chat_msg(fields)]
        stored = []
        try:
            async with self._transaction() as db:
                for role, content, run_id, metadata, token_count in messages:
                    params = (session_id, run_id, role, content, when, metadata, token_count)
                    rows = await db.fetchall(sql.APPEND_MESSAGE, params)
                    if not rows:
                        raise _Refused
                    seq = rows[0][0]
                    decoded = load_json(metadata)
                    stored.append(chat_msg((role, content, seq, run_id, now, decoded, token_count)))
        except _Refused:
            return None
        return stored

    async def _fork_session(self, request: calls.NewFork) -> SessionRecord:
        through = _MAX_SEQ if request.through_seq is None else request.through_seq
        now = _to_db(request.now)
        async with self._transaction() as db:
            parents = _read.sessions(await db.fetchall(sql.GET_SESSION, (request.session_id,)))
            if not parents:
                raise NotFoundError("session_id", request.session_id)
            if await db.fetchall(sql.SESSION_EXISTS, (request.new_session_id,)):
                raise InvalidDataError(
                    "new_session_id", f"{quote(request.new_session_id)} exists already"
                )
            [(newest,)] = await db.fetchall(sql.NEWEST_SEQ, (request.session_id, through))
            newest = newest or 0
            fork = (request.new_session_id, request.external_id, now, newest, request.session_id)
            await db.execute(sql.FORK_SESSION, fork)
            await db.execute(
                sql.FORK_MESSAGES, (request.new_session_id, request.session_id, newest)
            )
        [parent] = parents
        external_id = parent.external_id if request.external_id is None else request.external_id
        return SessionRecord(
            request.new_session_id,
            parent.agent_id,
            external_id,
            request.now,
            request.now,
            request.session_id,
            newest,
            parent.metadata,  # a dict of its own: read from the row
        )

    # -- search ----------------------------------------------------------------

    async def _search_candidates(
        self, search: calls.MessageSearch
    ) -> list[tuple[str | None, Any, int, str, tuple[ChatMsg, SessionRecord]]]:
        params = (json.dumps(search.terms), search.session_id, search.agent_id, search.external_id)
        try:
            async with self._transaction() as db:
                pending = await db.fetchall(sql.PENDING_MESSAGES)
                if pending:  # index what was written since the last search
                    await db.executemany(
                        sql.ADD_TERM,
                        [
                            (session_id, seq, term)
                            for session_id, seq, content in pending
                            for term in index_terms(content)
                        ],
                    )
                    await db.execute(sql.CLEAR_PENDING)
                rows = await db.fetchall(sql.SEARCH, params)
        except StorageError as exc:
            if not _read_only(exc):
                raise
            # A read-only database (a file SQLite cannot write, a ``mode=ro`` URI): the
            # messages not indexed yet are matched here, by the terms they would be indexed
            # under, instead of being indexed.
            terms = set(search.terms)
            content = CHAT.names.index("content")
            async with self._transaction(sql.BEGIN_READ) as db:
                rows = await db.fetchall(sql.SEARCH, params)
                unindexed = await db.fetchall(sql.SEARCH_PENDING, params[1:])
            rows += [row for row in unindexed if terms.intersection(index_terms(row[content]))]
        width = len(CHAT.names)
        messages = _read.chat([row[:width] for row in rows])
        sessions = _read.sessions([row[width:] for row in rows])
        return [
            (m.content, row[4], m.seq or 0, s.id, (m, s))
            for row, m, s in zip(rows, messages, sessions, strict=True)
        ]

    # -- agents and sessions ---------------------------------------------------

    async def _list_agents(self) -> list[AgentRecord]:
        async with self._statement() as db:
            rows = await db.fetchall(sql.LIST_AGENTS)
        return _read.agents(rows)

    async def _get_session(self, session_id: str) -> SessionRecord | None:
        async with self._statement() as db:
            rows = await db.fetchall(sql.GET_SESSION, (session_id,))
        return _read.sessions(rows)[0] if rows else None

    async def _list_sessions(self, query: calls.SessionQuery) -> list[SessionRecord]:
        limit = _NO_LIMIT if query.limit is None else query.limit
        async with self._statement() as db:
            rows = await db.fetchall(sql.LIST_SESSIONS[query.filters], [*query.given, limit])
        return _read.sessions(rows)

    async def _update_session(self, session_id: str, metadata: str) -> SessionRecord:
        async with self._statement() as db:
            rows = await db.fetchall(sql.UPDATE_SESSION, (metadata, session_id))
        if not rows:
            raise NotFoundError("session_id", session_id)
        return _read.sessions(rows)[0]

    async def _delete_session(self, session_id: str) -> None:
        async with self._statement() as db:
            rows = await db.fetchall(sql.DELETE_SESSION, (session_id,))
        if not rows:
            raise NotFoundError("session_id", session_id)

    async def _delete_agent(self, workflow_name: str) -> None:
        async with self._statement() as db:
            rows = await db.fetchall(sql.DELETE_AGENT, (workflow_name,))
        if not rows:
            raise NotFoundError("workflow_name", workflow_name)

    async def _delete_sessions(self, external_id: str) -> int:
        async with self._statement() as db:  # one statement: atomic on its own
            rows = await db.fetchall(sql.DELETE_SESSIONS_BY_EXTERNAL_ID, (external_id,))
        return len(rows)

    async def _purge_sessions(self, older_than: datetime) -> int:
        async with self._statement() as db:
            rows = await db.fetchall(sql.PURGE_SESSIONS, (_to_db(older_than),))
        return len(rows)

    # -- lifecycle (the rules: _lifecycle) --------------------------------------

    async def _drop_chosen(self, db: Connection, ids: list[Any]) -> tuple[int, int, int]:
        """Delete these sessions (their runs and messages cascade); what they held."""
        chosen = json.dumps([row[0] for row in ids])
        [(runs, messages)] = await db.fetchall(sql.COUNT_CHOSEN, (chosen,))
        await db.execute(sql.DELETE_CHOSEN, (chosen,))
        return len(ids), runs, messages

    async def _erase(self, external_id: str, now: datetime) -> ErasureReport:
        async with self._transaction() as db:
            ids = await db.fetchall(sql.SESSIONS_OF_EXTERNAL_ID, (external_id,))
            counts = await self._drop_chosen(db, ids)
            entries = await db.fetchall(sql.ERASE_ENTRIES, (external_id,))
        return ErasureReport(*counts, _live_count(entries, _to_db(now)))

    async def _count_stats(
        self, external_id: str | None, agent_id: str | None, now: datetime
    ) -> StoreStats:
        statement = sql.STATS[external_id is not None, agent_id is not None]
        entries, size = 0, 0
        async with self._transaction(sql.BEGIN_READ) as db:
            given = tuple(value for value in (external_id, agent_id) if value is not None)
            [(sessions, runs, messages, chars)] = await db.fetchall(statement, given)
            if agent_id is None or external_id is not None:
                by_owner = external_id is not None
                params = (_to_db(now), external_id) if by_owner else (_to_db(now),)
                [(entries, size)] = await db.fetchall(sql.ENTRY_STATS[by_owner], params)
        return StoreStats(sessions, runs, messages, entries, chars + size)

    async def _prune_idle_batch(self, idle_before: datetime, limit: int) -> tuple[int, int, int]:
        async with self._transaction() as db:
            ids = await db.fetchall(sql.IDLE_SESSIONS, (_to_db(idle_before), limit))
            return await self._drop_chosen(db, ids)

    async def _prune_cutoffs(
        self, after_id: str, keep_last: int, limit: int
    ) -> list[tuple[str, int | None]]:
        async with self._statement() as db:
            rows = await db.fetchall(sql.PRUNE_CUTOFFS, (after_id, keep_last, limit))
        return [(row[0], row[1]) for row in rows]

    async def _prune_messages_batch(self, session_id: str, through_seq: int, limit: int) -> int:
        async with self._statement() as db:  # one statement: atomic on its own
            return len(await db.fetchall(sql.PRUNE_MESSAGES, (session_id, through_seq, limit)))

    async def _prune_expired_batch(self, now: datetime, limit: int) -> int:
        async with self._statement() as db:
            return len(await db.fetchall(sql.PRUNE_EXPIRED, (_to_db(now), limit)))

    # -- export / import -------------------------------------------------------

    @asynccontextmanager
    async def _export_source(self, session_id: str | None) -> AsyncIterator[ExportSource]:
        """A file is read on a connection of its own, in one read transaction (a snapshot in
        WAL: writers go on, and so may calls on this store meanwhile). A database in memory
        has one connection: it is read whole, in one transaction, before the first record."""
        if not _is_file(self.path):
            async with self._transaction(sql.BEGIN_READ) as db:
                source = _Source(db, session_id)
                read = {kind: [p async for p in source.pages(kind)] for kind in KINDS}
            yield ListSource({kind: [r for p in pages for r in p] for kind, pages in read.items()})
            return
        await self._open()  # created or migrated
        db = await driver.connect(self.path, self.driver)
        try:
            await db.execute(sql.BEGIN_READ)
            yield _Source(db, session_id)
        finally:
            try:
                await _roll_back(db)
            finally:
                await db.close()

    @asynccontextmanager
    async def _import_sink(self) -> AsyncIterator[ImportSink]:
        async with self._transaction() as db:
            yield _Sink(db)

    # -- entries ---------------------------------------------------------------

    async def _put_entries(
        self, scope: str, rows: list[EntryRow], only_if_absent: bool, now: datetime
    ) -> int:
        when = _to_db(now)
        params = [_entry_params(scope, r, when) for r in rows]
        async with self._transaction() as db:
            await _drop_expired(db, scope, [r.key for r in rows], when)
            if not only_if_absent:
                await db.executemany(sql.PUT_ENTRY, params)
                return len(params)
            written = 0
            for one in params:
                written += len(await db.fetchall(sql.PUT_ENTRY_IF_ABSENT, one))
            return written

    async def _get_entry(self, scope: str, key: str, now: datetime) -> Entry | None:
        async with self._statement() as db:
            rows = await db.fetchall(sql.GET_ENTRY, (scope, key, _to_db(now)))
        return _read.entries(rows)[0] if rows else None

    async def _list_entries(
        self, scope: str, bounds: KeyRange, reverse: bool, limit: int | None, now: datetime
    ) -> list[Entry]:
        statement = sql.LIST_ENTRIES[bounds.upper is not None, reverse]
        params = (*bounds.params(scope), _to_db(now), _NO_LIMIT if limit is None else limit)
        async with self._statement() as db:
            rows = await db.fetchall(statement, params)
        return _read.entries(rows)

    async def _merge_entry(
        self,
        scope: str,
        key: str,
        patch: str,
        expect_version: int | None,
        now: datetime,
        owner: str | None = None,
    ) -> Entry | None:
        async with self._transaction() as db:  # BEGIN IMMEDIATE: no other writer meanwhile
            await _drop_expired(db, scope, [key], _to_db(now))
            old = await _stored_entry(db, scope, key, now)
            if expect_version is not None and (old.version if old else 0) != expect_version:
                return None
            return await _merge_into(db, scope, old, PatchRow(key, patch, owner), now)

    async def _write_entries(
        self, scope: str, ops: list[EntryRow | PatchRow], expect: dict[str, int], now: datetime
    ) -> list[Entry] | None:
        async with self._transaction() as db:  # BEGIN IMMEDIATE: no other writer meanwhile
            await _drop_expired(db, scope, [*expect, *(op.key for op in ops)], _to_db(now))
            for key, version in expect.items():
                old = await _stored_entry(db, scope, key, now)
                if (old.version if old else 0) != version:
                    return None
            written = []
            for op in ops:
                if isinstance(op, PatchRow):
                    old = await _stored_entry(db, scope, op.key, now)
                    written.append(await _merge_into(db, scope, old, op, now))
                    continue
                await db.execute(sql.PUT_ENTRY, _entry_params(scope, op, _to_db(now)))
                entry = await _stored_entry(db, scope, op.key, now)
                assert entry is not None
                written.append(entry)
            return written

    async def _delete_entries(
        self, scope: str, bounds: KeyRange, tags: list[str] | None, now: datetime | None = None
    ) -> int:
        statement = sql.DELETE_ENTRIES[bounds.upper is not None, tags is not None]
        params: tuple[str | None, ...] = bounds.params(scope)
        if tags is not None:
            params = (*params, json.dumps(tags))
        async with self._statement() as db:
            rows = await db.fetchall(statement, params)
        return _live_count(rows, _NEVER if now is None else _to_db(now))

    async def _copy_entries(self, copy: EntryCopy) -> int:
        scope, bounds, prefix, to_scope, to_prefix, now = copy
        bounded = bounds.upper is not None
        when = _to_db(now)
        params = (to_scope, to_prefix, len(prefix), when, *bounds.params(scope), when)
        target = key_range(to_prefix, None, None)
        async with self._transaction() as db:
            await db.execute(
                sql.DROP_EXPIRED_RANGE[target.upper is not None], (*target.params(to_scope), when)
            )
            [(longest,)] = await db.fetchall(
                sql.LONGEST_KEY[bounded], (*bounds.params(scope), when)
            )
            refuse_long_copies(longest, copy)
            return len(await db.fetchall(sql.COPY_ENTRIES[bounded], params))

    async def _search_entry_candidates(self, search: EntrySearch) -> list[Entry]:
        scope, terms, bounds, owner, now = search
        params = (scope, json.dumps(terms), bounds.lower, bounds.upper, owner, _to_db(now))
        try:
            async with self._transaction() as db:
                pending = await db.fetchall(sql.PENDING_ENTRIES, (scope,))
                if pending:  # index the scope's entries written since its last search
                    await db.executemany(
                        sql.ADD_ENTRY_TERMS,
                        [
                            (scope, key, found)
                            for key, value in pending
                            if (found := _terms(value)) is not None
                        ],
                    )
                    await db.execute(sql.CLEAR_PENDING_ENTRIES, (scope,))
                rows = await db.fetchall(sql.SEARCH_ENTRIES, params)
        except StorageError as exc:
            if not _read_only(exc):
                raise
            # A read-only database: the entries not indexed yet are matched here, by the
            # terms they would be indexed under (as search_messages does).
            wanted = set(terms)
            value = ENTRIES.names.index("value")
            async with self._transaction(sql.BEGIN_READ) as db:
                rows = await db.fetchall(sql.SEARCH_ENTRIES, params)
                unindexed = await db.fetchall(sql.SEARCH_PENDING_ENTRIES, params)
            rows += [
                row for row in unindexed if wanted.intersection(entry_terms(load_json(row[value])))
            ]
        return _read.entries(rows)

    async def _refresh_entries(
        self, scope: str, keys: list[str], expires_at: datetime | None, now: datetime
    ) -> int:
        until = None if expires_at is None else _to_db(expires_at)
        params = (until, scope, json.dumps(keys), _to_db(now))
        async with self._statement() as db:  # one statement: atomic on its own
            return len(await db.fetchall(sql.REFRESH_ENTRIES, params))


def _repeat(found: Any, ids: tuple[str, str, str | None], given: tuple[Any, ...]) -> ChatMsg:
    """The message stored under a repeated idempotency key (a ``REPEATED_MESSAGE`` row:
    session agent, run session, message), after the checks of ``add_chat_message`` and the
    idempotency rule. ``given``: what the repeat asks for, as ``repeat_fields``."""
    agent_id, session_id, run_id = ids
    session_agent, run_session, *message = found
    refuse_message(agent_id, session_id, run_id, session_agent, run_session)
    [stored] = _chat([message])
    check_repeat(repeat_fields(stored), given)
    return stored


def _live_count(rows: list[Any], now: int) -> int:
    """How many of these deleted entries (rows of their expires_at) were live at ``now``."""
    return sum(1 for (expires_at,) in rows if expires_at is None or expires_at > now)


def _entry_params(scope: str, row: EntryRow, when: int) -> tuple[Any, ...]:
    """PUT_ENTRY's parameters."""
    expires_at = None if row.expires_at is None else _to_db(row.expires_at)
    return (scope, row.key, row.value, row.data, row.tag, when, row.owner, expires_at)


def _terms(value: str | None) -> str | None:
    """The search terms of an entry's value (JSON text) as ADD_ENTRY_TERMS takes them: a JSON
    array (None: it has none)."""
    found = entry_terms(load_json(value))
    return json.dumps(found, ensure_ascii=False) if found else None


async def _drop_expired(db: Connection, scope: str, keys: list[str], when: int) -> None:
    await db.execute(sql.DROP_EXPIRED_KEYS, (scope, json.dumps(keys), when))


async def _stored_entry(db: Connection, scope: str, key: str, now: datetime) -> Entry | None:
    found = _read.entries(await db.fetchall(sql.GET_ENTRY, (scope, key, _to_db(now))))
    return found[0] if found else None


async def _merge_into(
    db: Connection, scope: str, old: Entry | None, patch: PatchRow, now: datetime
) -> Entry:
    """Merge ``patch`` into the entry ``old`` (None: absent) and return the result."""
    value = to_text({**((old.value if old else None) or {}), **json.loads(patch.patch)})
    row = EntryRow(patch.key, value, None, None, patch.owner)
    if old is not None:
        row = EntryRow(
            patch.key, value, old.data, old.tag, patch.owner or old.owner, old.expires_at
        )
    await db.execute(sql.PUT_ENTRY, _entry_params(scope, row, _to_db(now)))
    merged = await _stored_entry(db, scope, patch.key, now)
    assert merged is not None
    return merged


async def _roll_back(db: Connection) -> None:
    """After a failed or cancelled transaction: let what it sent finish (a cancelled call's
    BEGIN or COMMIT may still be queued on aiosqlite's thread), then roll back if still open."""
    await db.settle()
    if db.in_transaction:
        await db.execute(sql.ROLLBACK)


def _choose_driver(name: str | None) -> str:
    if name is not None and not isinstance(name, str):
        raise InvalidDataError("driver", f"must be a string or None, not {type(name).__name__}")
    try:
        return driver.choose(name)
    except ValueError as exc:
        raise InvalidDataError("driver", str(exc).removeprefix("driver: ")) from None


async def _find_session(db: Connection, request: calls.NewRun, agent_id: str) -> str | None:
    """The existing session ``initialize_run`` continues, or None to create one."""
    if request.session_id is not None:
        rows = await db.fetchall(sql.SESSION_OWNER, (request.session_id,))
        if not rows:
            return None
        [(owner, external_id)] = rows
        continued_session(agent_id, request.external_id, owner, external_id)
        return request.session_id
    if request.external_id is None:
        return None
    rows = await db.fetchall(sql.LATEST_SESSION_BY_EXTERNAL_ID, (agent_id, request.external_id))
    if not rows:
        return None
    [(session_id,)] = rows
    return session_id  # type: ignore[no-any-return]


async def _explain_refused_message(
    db: Connection, session_id: str, agent_id: str, run_id: str | None
) -> None:
    """Raise the error the contract gives for this message, if any."""
    sessions = await db.fetchall(sql.SESSION_OWNER, (session_id,))
    runs = [] if run_id is None else await db.fetchall(sql.RUN_SESSION, (run_id,))
    [(session_agent, _)] = sessions or [(None, None)]
    [(run_session,)] = runs or [(None,)]
    refuse_message(agent_id, session_id, run_id, session_agent, run_session)


class _Source:
    """Pages of an export, read with keyset pagination in one read transaction."""

    def __init__(self, db: Connection, session_id: str | None) -> None:
        self._db = db
        self._session_id = session_id
        self._now = _to_db(datetime.now(UTC))  # entries expired by now are left out

    def pages(self, kind: str) -> AsyncIterator[list[Any]]:
        fetch: Callable[[Any], Any] = getattr(self, f"_{kind}")
        return keyset_pages(fetch, _KEYS[kind])

    async def _rows(self, whole: str, one: str, after: tuple[Any, ...]) -> list[Any]:
        if self._session_id is None:
            return await self._db.fetchall(whole, (*after, BATCH))
        return await self._db.fetchall(one, (self._session_id, *after[1:], BATCH))

    async def _agent(self, after: Any) -> list[AgentRecord]:
        if self._session_id is not None:
            one = (
                []
                if after
                else await self._db.fetchall(sql.EXPORT_SESSION_AGENT, (self._session_id,))
            )
            return _read.agents(one)
        return _read.agents(await self._db.fetchall(sql.EXPORT_AGENTS, (after or "", BATCH)))

    async def _session(self, after: Any) -> list[tuple[SessionRecord, int]]:
        if self._session_id is not None:
            one = [] if after else await self._db.fetchall(sql.EXPORT_SESSION, (self._session_id,))
            return _read.sessions_with_last_seq(one)
        rows = await self._db.fetchall(sql.EXPORT_SESSIONS, (after or "", BATCH))
        return _read.sessions_with_last_seq(rows)

    async def _run(self, after: Any) -> list[tuple[RunRecord, str | None]]:
        rows = await self._rows(sql.EXPORT_RUNS, sql.EXPORT_SESSION_RUNS, after or ("", 0, ""))
        return _read.runs_with_state(rows)

    async def _message(self, after: Any) -> list[MessageRow]:
        rows = await self._rows(sql.EXPORT_MESSAGES, sql.EXPORT_SESSION_MESSAGES, after or ("", 0))
        return _read.messages(rows)

    async def _entry(self, after: Any) -> list[Entry]:
        if self._session_id is not None:
            return []
        params = (*(after or ("", "")), self._now, BATCH)
        return _read.entries(await self._db.fetchall(sql.EXPORT_ENTRIES, params))


_KEYS: dict[str, Callable[[Any], Any]] = {
    "agent": lambda agent: agent.name,
    "session": lambda row: row[0].id,
    "run": lambda row: (row[0].session_id, _to_db(row[0].created_at), row[0].id),
    "message": lambda message: (message.session_id, message.seq),
    "entry": lambda entry: (entry.scope, entry.key),
}


class _Sink:
    """Writes an import in the transaction of ``_import_sink``."""

    def __init__(self, db: Connection) -> None:
        self._db = db

    async def taken(self, ids: Ids) -> Ids:
        now = _to_db(datetime.now(UTC))

        async def found(statement: str, values: list[Any]) -> list[Any]:
            if not values:
                return []
            params = (
                (json.dumps(values), now)
                if statement is sql.TAKEN_ENTRIES
                else (json.dumps(values),)
            )
            rows = await self._db.fetchall(statement, params)
            return [tuple(row) if len(row) > 1 else row[0] for row in rows]

        return Ids(
            agents=await found(sql.TAKEN_AGENT_IDS, ids.agents),
            sessions=await found(sql.TAKEN_SESSION_IDS, ids.sessions),
            runs=await found(sql.TAKEN_RUN_IDS, ids.runs),
            entries=await found(sql.TAKEN_ENTRIES, ids.entries),
            agent_names=await found(sql.TAKEN_AGENT_NAMES, ids.agent_names),
        )

    async def write(self, batch: Batch) -> None:
        db = self._db
        if batch.agents:
            await db.executemany(
                sql.IMPORT_AGENT, [encode_row(AGENTS, a, _ENCODE) for a in batch.agents]
            )
        if batch.sessions:
            await db.executemany(
                sql.IMPORT_SESSION,
                [(*encode_row(SESSIONS, s, _ENCODE), seq) for s, seq in batch.sessions],
            )
        if batch.runs:
            await db.executemany(
                sql.IMPORT_RUN, [(*encode_row(RUNS, r, _ENCODE), state) for r, state in batch.runs]
            )
        if batch.messages:
            # Each session has its last_seq already, so the insert trigger leaves it alone.
            await db.executemany(
                sql.IMPORT_MESSAGE, [encode_row(MESSAGES, m, _ENCODE) for m in batch.messages]
            )
        if batch.entries:
            await db.executemany(
                sql.IMPORT_ENTRY, [encode_row(ENTRIES, e, _ENCODE) for e in batch.entries]
            )


# -- opening a database --------------------------------------------------------------


async def _open_database(path: str, driver_name: str) -> Connection:
    try:
        db = await driver.connect(path, driver_name)
        try:
            await _prepare(db, path)
        except BaseException:
            await db.close()
            raise
    except StorageError as exc:
        raise _naming(exc, path) from exc.__cause__
    return db


def _read_only(exc: StorageError) -> bool:
    """Whether SQLite refused a write because the database is read-only."""
    code = getattr(exc.__cause__, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_READONLY


def _naming(exc: StorageError, path: str) -> StorageError:
    """An error opening ``path`` that names it: a file SQLite cannot open (no such folder, no
    permission, a folder) is a bad ``path`` (InvalidDataError); another error gets the path."""
    if getattr(exc.__cause__, "sqlite_errorcode", None) == sqlite3.SQLITE_CANTOPEN:
        return InvalidDataError(
            "path",
            f"SQLite cannot open {path!r} ({exc.__cause__}): its folder must exist and be "
            "writable, and the path must not be a folder",
        )
    if type(exc) is not StorageError or repr(path) in str(exc):
        return exc
    return StorageError(f"{path!r}: {exc}")


async def _read_header(db: Connection, path: str) -> tuple[int, int]:
    """(application_id, user_version); raise unless this is a runstore or empty database."""
    try:
        app_id, version, objects = (await db.fetchall(sql.READ_HEADER))[0]
    except StorageError as exc:
        cause = exc.__cause__
        if getattr(cause, "sqlite_errorcode", None) != sqlite3.SQLITE_NOTADB:
            raise  # e.g. locked past the busy timeout: not a verdict on the file
        raise StorageError(f"{path!r} is not a SQLite database ({exc})") from None
    if app_id == sql.APPLICATION_ID and 0 < version <= sql.SCHEMA_VERSION:
        return app_id, version
    if app_id == sql.APPLICATION_ID and version > sql.SCHEMA_VERSION:
        raise StorageError(
            f"{path!r} was written by a newer runstore (schema version {version}; this "
            f"version reads up to {sql.SCHEMA_VERSION}): upgrade runstore to open it"
        )
    if app_id == 0 and version == 0 and objects == 0:
        return app_id, version  # empty: ours to create
    raise StorageError(
        f"{path!r} is not a runstore database (application_id {app_id}, user_version "
        f"{version}); refusing to touch it"
    )


async def _prepare(db: Connection, path: str) -> None:
    """Check the file is ours before changing anything, set it up, create or migrate it."""
    _, version = await _read_header(db, path)
    if _is_file(path):
        await db.fetchall(sql.WAL)
        await db.execute(sql.SYNCHRONOUS)
    await db.execute(sql.FOREIGN_KEYS)
    if version == sql.SCHEMA_VERSION:
        return
    try:
        await db.execute(sql.BEGIN_WRITE)
        _, version = await _read_header(db, path)  # another process may have migrated it
        for step in sql.MIGRATIONS[version:]:
            for statement in step:
                await db.execute(statement)
        await db.execute(sql.SET_USER_VERSION.format(version=sql.SCHEMA_VERSION))
        await db.execute(sql.COMMIT)
    except BaseException:
        await _roll_back(db)
        raise
