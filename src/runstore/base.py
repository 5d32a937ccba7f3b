"""``DataStorage``: the public async API, argument checks, and the hooks a backend implements.

The public methods check and serialise every argument, then call one ``_``-prefixed hook.
A backend implements only the hooks, so argument rules cannot drift between backends.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from . import _export, _records, _search
from ._calls import (
    NO_OPTIONS,
    HistoryReplacement,
    HistoryWindow,
    MessageCall,
    MessageOptions,
    MessageSearch,
    NewFork,
    NewMessage,
    NewRun,
    RunUpdate,
    SessionQuery,
)
from ._dump import Dump
from ._entries import EntryStore
from ._json import dump_object
from ._lifecycle import LifecycleStore
from .errors import InvalidDataError, StorageClosedError
from .models import (
    MAX_INT64,
    MAX_NAME_LENGTH,
    AgentRecord,
    ChatMsg,
    RunHandle,
    RunRecord,
    SearchHit,
    SessionRecord,
    WorkflowState,
    check_duration,
    check_external_id,
    check_int_range,
    check_name,
    check_optional_text,
    to_utc,
)

_MICROSECOND = timedelta(microseconds=1)
_clock = datetime.now  # one lookup less on every write
_SMALL_INT = 2**30  # an int below this is one digit: its compares take CPython's fast path


def new_id() -> str:
    return str(uuid.uuid4())


def check_limit(limit: Any, field: str = "limit") -> int | None:
    """None (no limit) or an int from 0 to 2**63-1 (a larger one is refused on every backend)."""
    if limit is None:
        return None
    return check_int_range(limit, field, 0, MAX_INT64)


def check_count(value: Any, field: str) -> int:
    """A required non-negative int (a seq, a number of messages)."""
    if value is None:
        raise InvalidDataError(field, "must be an int")
    count = check_limit(value, field)
    assert count is not None
    return count


def newest_within(
    newest_first: Iterable[ChatMsg],
    limit: int | None,
    max_chars: int | None,
    max_tokens: int | None,
) -> list[ChatMsg]:
    """The first ``limit`` of ``newest_first`` (None: all) whose contents fit in
    ``max_chars`` and whose token counts fit in ``max_tokens`` (a message without a
    ``token_count`` counts 0): a contiguous newest window, stopping at the first message
    that does not fit. Returned oldest first."""
    window: list[ChatMsg] = []
    chars_left = 0 if max_chars is None else max_chars
    tokens_left = 0 if max_tokens is None else max_tokens
    for message in newest_first:
        if limit is not None and len(window) >= limit:
            break
        if max_chars is not None:
            size = len(message.content or "")
            if size > chars_left:
                break
            chars_left -= size
        if max_tokens is not None:
            count = message.token_count or 0
            if count > tokens_left:
                break
            tokens_left -= count
        window.append(message)
    window.reverse()
    return window


def _check_new_message(message: Any, field: str) -> NewMessage:
    if not isinstance(message, ChatMsg):
        raise InvalidDataError(field, f"must be a ChatMsg, not {type(message).__name__}")
    if message.seq is not None:
        raise InvalidDataError(f"{field}.seq", "is given by the store: leave it None")
    if message.created_at is not None:
        raise InvalidDataError(f"{field}.created_at", "is set by the store: leave it None")
    return (
        check_name(message.role, f"{field}.role"),
        check_optional_text(message.content, f"{field}.content"),
        None if message.run_id is None else check_name(message.run_id, f"{field}.run_id"),
        dump_object(message.metadata, f"{field}.metadata"),
        check_limit(message.token_count, f"{field}.token_count"),
    )


class DataStorage(EntryStore, LifecycleStore, ABC):
    """Async storage for agents, sessions, runs, chat messages and workflow states.

    The rules every backend follows are in ``docs/contract.md``.
    """

    def __init__(self) -> None:
        self._closed = False
        self._last_now = datetime.min.replace(tzinfo=UTC)

    # -- lifecycle -------------------------------------------------------------

    async def close(self) -> None:
        """Release the backend's resources. Safe to call more than once."""
        if not self._closed:
            self._closed = True
            await self._close()

    async def open(self) -> Self:
        """Get ready now (open the file, connect, create or upgrade the schema) rather than
        on first use, so a problem shows here; returns the store. ``async with`` calls it."""
        self._check_open()
        await self._open()
        return self

    async def __aenter__(self) -> Self:
        try:
            return await self.open()
        except BaseException:
            await self.close()  # what opened before the failure is released
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StorageClosedError(f"{type(self).__name__} is closed")

    def _now(self) -> datetime:
        """UTC now, strictly increasing within this store so activity order is exact."""
        now = _clock(UTC)
        last = self._last_now
        if now <= last:
            now = last + _MICROSECOND
        self._last_now = now
        return now

    # -- runs ------------------------------------------------------------------

    async def initialize_run(
        self,
        *,
        workflow_name: str,
        description: str | None = None,
        input_schema: dict[str, Any] | None = None,
        output_schema: dict[str, Any] | None = None,
        workflow: dict[str, Any] | None = None,
        session_id: str | None = None,
        external_id: str | None = None,
        input_data: dict[str, Any] | None = None,
        session_metadata: dict[str, Any] | None = None,
    ) -> RunHandle:
        """Find or create the agent and the session, then start a new run in it.
        ``session_metadata`` (a JSON object) becomes the session's ``metadata``, replacing
        what a session that exists already had; ``None`` keeps it (``{}`` for a new one)."""
        self._check_open()
        request = NewRun(
            workflow_name=check_name(workflow_name, "workflow_name"),
            description=check_optional_text(description, "description"),
            input_schema=dump_object(input_schema, "input_schema"),
            output_schema=dump_object(output_schema, "output_schema"),
            workflow=dump_object(workflow, "workflow"),
            session_id=None if session_id is None else check_name(session_id, "session_id"),
            external_id=check_external_id(external_id),
            input_data=dump_object(input_data, "input_data"),
            now=self._now(),
            new_agent_id=new_id(),
            new_session_id=new_id(),
            new_run_id=new_id(),
            session_metadata=dump_object(session_metadata, "session_metadata"),
        )
        return await self._initialize_run(request)

    async def update_run(
        self,
        run_id: str,
        *,
        output_data: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
        duration_seconds: float | None = None,
    ) -> None:
        """Set the given fields of a run; ``None`` leaves a field as it is."""
        self._check_open()
        run_id = check_name(run_id, "run_id")
        output = dump_object(output_data, "output_data")
        context_text = dump_object(context, "context")
        duration = check_duration(duration_seconds, "duration_seconds")
        await self._update_run(RunUpdate(run_id, output, context_text, duration, self._now()))

    async def get_run(self, run_id: str) -> RunRecord | None:
        self._check_open()
        return await self._get_run(check_name(run_id, "run_id"))

    async def list_runs(self, session_id: str) -> list[RunRecord]:
        """The runs of a session, oldest first."""
        self._check_open()
        return await self._list_runs(check_name(session_id, "session_id"))

    # -- workflow state --------------------------------------------------------

    async def save_state(self, run_id: str, state: WorkflowState) -> None:
        """Store a copy of ``state`` for the run, replacing any earlier one."""
        self._check_open()
        run_id = check_name(run_id, "run_id")
        if not isinstance(state, WorkflowState):
            raise InvalidDataError("state", f"must be a WorkflowState, not {type(state).__name__}")
        await self._save_state(run_id, state.to_json(), self._now())

    async def load_state(self, run_id: str) -> WorkflowState | None:
        self._check_open()
        text = await self._load_state(check_name(run_id, "run_id"))
        return None if text is None else WorkflowState._from_stored(text)

    # -- chat ------------------------------------------------------------------

    async def add_chat_message(
        self,
        *,
        agent_id: str,
        session_id: str,
        run_id: str | None,
        role: str,
        content: str | None,
        metadata: dict[str, Any] | None = None,
        token_count: int | None = None,
        idempotency_key: str | None = None,
    ) -> ChatMsg:
        """Append a message to the session; returns it with its ``seq``. A repeat of an
        ``idempotency_key`` in the session returns the message stored the first time."""
        if self._closed:
            self._check_open()
        # The hot path: ids and role are plain ASCII strings, checked inline in one go.
        # Anything else takes the full checks, which name the offending field.
        if (
            type(agent_id) is not str
            or type(session_id) is not str
            or type(role) is not str
            or not (agent_id and session_id and role)
            or (run_id is not None and (type(run_id) is not str or not run_id))
            or not (names := f"{agent_id}{session_id}{role}{run_id or ''}").isascii()
            or "\x00" in names
            or len(names) > MAX_NAME_LENGTH  # then each is short enough; else check each
        ):
            agent_id = check_name(agent_id, "agent_id")
            session_id = check_name(session_id, "session_id")
            if run_id is not None:
                run_id = check_name(run_id, "run_id")
            role = check_name(role, "role")
        if content is not None:  # = check_optional_text(content, "content"), inlined
            if type(content) is not str or "\x00" in content:
                content = check_optional_text(content, "content")
            elif not content.isascii():
                try:
                    content.encode()  # no lone surrogate
                except UnicodeEncodeError:
                    check_optional_text(content, "content")
        now = _clock(UTC)  # = self._now(), inlined
        if now <= self._last_now:
            now = self._last_now + _MICROSECOND
        self._last_now = now
        message = (agent_id, session_id, run_id, role, content, now)
        if metadata is None and token_count is None and idempotency_key is None:
            return await self._add_chat_message(message)
        options = MessageOptions(
            dump_object(metadata, "metadata"),
            check_limit(token_count, "token_count"),
            None if idempotency_key is None else check_name(idempotency_key, "idempotency_key"),
        )
        return await self._add_chat_message_with(message, options)

    async def get_chat_history(
        self,
        session_id: str,
        limit: int | None = 50,
        *,
        max_chars: int | None = None,
        max_tokens: int | None = None,
        exclude_run_id: str | None = None,
    ) -> list[ChatMsg]:
        """The newest ``limit`` messages of a session, oldest first; ``max_chars`` and
        ``max_tokens`` then keep the newest ones that fit."""
        if self._closed:
            self._check_open()
        if (
            type(session_id) is not str
            or not session_id
            or len(session_id) > MAX_NAME_LENGTH
            or not session_id.isascii()
            or "\x00" in session_id
        ):
            session_id = check_name(session_id, "session_id")
        if (
            type(limit) is int
            and 0 < limit < _SMALL_INT  # a compare that Python specialises; else as below
            and max_chars is None
            and max_tokens is None
            and exclude_run_id is None
        ):
            return await self._get_chat_history(session_id, limit, None)  # the hot path
        if type(limit) is not int or limit < 0 or limit > MAX_INT64:
            limit = check_limit(limit)
        if max_chars is not None:
            check_limit(max_chars, "max_chars")
        if max_tokens is not None:
            check_limit(max_tokens, "max_tokens")
        if exclude_run_id is not None:
            exclude_run_id = check_name(exclude_run_id, "exclude_run_id")
        if limit == 0:
            return []
        if max_chars is None and max_tokens is None:
            return await self._get_chat_history(session_id, limit, exclude_run_id)
        window = HistoryWindow(session_id, limit, exclude_run_id, max_chars, max_tokens)
        return await self._get_chat_window(window)

    async def get_chat_history_after(
        self, session_id: str, *, after_seq: int = 0, limit: int | None = 50
    ) -> list[ChatMsg]:
        """The oldest ``limit`` messages of a session with a ``seq`` above ``after_seq``,
        oldest first: page forward through a session by passing the last ``seq`` of a page."""
        self._check_open()
        session_id = check_name(session_id, "session_id")
        after = check_count(after_seq, "after_seq")
        count = check_limit(limit)
        if count == 0:
            return []
        return await self._get_chat_history_after(session_id, after, count)

    async def pop_message(self, session_id: str) -> ChatMsg | None:
        """Remove the session's newest message and return it; ``None`` when it has none."""
        self._check_open()
        return await self._pop_message(check_name(session_id, "session_id"), self._now())

    async def truncate_history(self, session_id: str, *, after_seq: int) -> int:
        """Remove every message of the session with a ``seq`` above ``after_seq``; returns
        how many. Seqs are never given out again: the next message continues after the
        highest one the session ever used."""
        self._check_open()
        session_id = check_name(session_id, "session_id")
        return await self._truncate_history(
            session_id, check_count(after_seq, "after_seq"), self._now()
        )

    async def fork_session(
        self,
        session_id: str,
        *,
        through_seq: int | None = None,
        new_session_id: str | None = None,
        external_id: str | None = None,
    ) -> SessionRecord:
        """A new session of the same agent holding copies of the messages with ``seq`` up
        to ``through_seq`` (all when ``None``). Runs stay in the parent: the copies have no
        ``run_id``. ``external_id`` defaults to the parent's."""
        self._check_open()
        request = NewFork(
            session_id=check_name(session_id, "session_id"),
            through_seq=check_limit(through_seq, "through_seq"),
            new_session_id=new_id()
            if new_session_id is None
            else check_name(new_session_id, "new_session_id"),
            external_id=check_external_id(external_id),
            now=self._now(),
        )
        return await self._fork_session(request)

    async def add_chat_messages(
        self, session_id: str, messages: Sequence[ChatMsg]
    ) -> list[ChatMsg]:
        """Append ``messages`` (``ChatMsg(role, content, run_id=..., metadata=...,
        token_count=...)``, no ``seq`` or ``created_at``) to the session in one atomic step;
        returns them as stored, with their ``seq``s. All or nothing."""
        stored = await self._replace_messages(session_id, None, messages, None, None)
        assert stored is not None  # unconditional
        return stored

    async def replace_history(
        self,
        session_id: str,
        *,
        after_seq: int,
        messages: Sequence[ChatMsg],
        if_newest_seq: int | None = None,
        drop_through_seq: int | None = None,
    ) -> list[ChatMsg] | None:
        """In one atomic step, remove the session's messages with a ``seq`` above
        ``after_seq`` and append ``messages`` (as ``add_chat_messages``). With
        ``if_newest_seq``, only if the session's newest message has that ``seq`` (0: it has
        no message); else nothing changes and the result is ``None``. With
        ``drop_through_seq`` (at most ``after_seq``), the same step also removes the messages
        with a ``seq`` up to it: the oldest ones."""
        after = check_count(after_seq, "after_seq")
        if drop_through_seq is not None:
            drop = check_count(drop_through_seq, "drop_through_seq")
            if drop > after:
                raise InvalidDataError(
                    "drop_through_seq", f"must not be above after_seq ({after}), not {drop}"
                )
        return await self._replace_messages(
            session_id, after, messages, if_newest_seq, drop_through_seq
        )

    async def _replace_messages(
        self,
        session_id: str,
        after_seq: int | None,
        messages: Sequence[ChatMsg],
        if_newest_seq: int | None,
        drop_through_seq: int | None,
    ) -> list[ChatMsg] | None:
        self._check_open()
        session_id = check_name(session_id, "session_id")
        if if_newest_seq is not None:
            check_count(if_newest_seq, "if_newest_seq")
        if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
            raise InvalidDataError("messages", "must be a list of ChatMsg")
        checked = [
            _check_new_message(message, f"messages[{i}]") for i, message in enumerate(messages)
        ]
        return await self._replace_history(
            HistoryReplacement(
                session_id, after_seq, checked, if_newest_seq, self._now(), drop_through_seq
            )
        )

    # -- search ----------------------------------------------------------------

    async def search_messages(
        self,
        query: str,
        *,
        external_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        limit: int | None = 10,
    ) -> list[SearchHit]:
        """Messages containing words of ``query``, most query words first, then newest
        first, at most ``limit``; only those of sessions with the ``external_id``, the
        ``agent_id`` and the ``session_id`` given. The rule is in docs/contract.md."""
        self._check_open()
        if not isinstance(query, str):
            raise InvalidDataError("query", f"must be a str, not {type(query).__name__}")
        external_id = check_external_id(external_id)
        if agent_id is not None:
            agent_id = check_name(agent_id, "agent_id")
        if session_id is not None:
            session_id = check_name(session_id, "session_id")
        count = check_limit(limit)
        parsed = _search.parse(query)
        if count == 0 or not parsed.size:
            return []
        request = MessageSearch(parsed.candidates, external_id, agent_id, session_id)
        found = await self._search_candidates(request)
        return [
            SearchHit(message, session, score)
            for score, (message, session) in _search.rank(parsed, found, count)
        ]

    # -- agents and sessions ---------------------------------------------------

    async def list_agents(self) -> list[AgentRecord]:
        """Every agent, by name."""
        self._check_open()
        return await self._list_agents()

    async def get_session(self, session_id: str) -> SessionRecord | None:
        self._check_open()
        return await self._get_session(check_name(session_id, "session_id"))

    async def update_session(self, session_id: str, *, metadata: dict[str, Any]) -> SessionRecord:
        """Replace the session's ``metadata`` with ``metadata`` (a JSON object; ``{}``
        clears it) and return the session. Not activity: ``updated_at`` stays."""
        self._check_open()
        session_id = check_name(session_id, "session_id")
        if metadata is None:
            raise InvalidDataError("metadata", "must be a dict, not None")
        text = dump_object(metadata, "metadata")
        assert text is not None
        return await self._update_session(session_id, text)

    async def list_sessions(
        self,
        *,
        workflow_name: str | None = None,
        external_id: str | None = None,
        limit: int | None = 50,
        before: str | None = None,
    ) -> list[SessionRecord]:
        """Sessions, most recent activity first. ``before`` is the id of the last session
        of the previous page."""
        self._check_open()
        if workflow_name is not None:
            workflow_name = check_name(workflow_name, "workflow_name")
        external_id = check_external_id(external_id)
        checked_limit = check_limit(limit)
        if before is not None:
            before = check_name(before, "before")
        if checked_limit == 0:
            return []
        return await self._list_sessions(
            SessionQuery(workflow_name, external_id, checked_limit, before)
        )

    async def delete_session(self, session_id: str) -> None:
        """Delete a session with its runs, states and messages."""
        self._check_open()
        await self._delete_session(check_name(session_id, "session_id"))

    async def delete_agent(self, workflow_name: str) -> None:
        """Delete an agent with all its sessions."""
        self._check_open()
        await self._delete_agent(check_name(workflow_name, "workflow_name"))

    async def delete_sessions(self, *, external_id: str) -> int:
        """Delete every session with this ``external_id``, under every agent, with their
        runs, states and messages, all or nothing; returns how many sessions went."""
        self._check_open()
        if external_id is None:
            raise InvalidDataError("external_id", "must be a string")
        return await self._delete_sessions(check_external_id(external_id) or "")

    async def purge_sessions(self, older_than: datetime) -> int:
        """Delete sessions whose last activity is before ``older_than``; returns how many."""
        self._check_open()
        return await self._purge_sessions(to_utc(older_than, "older_than"))

    # -- export / import -------------------------------------------------------

    async def export_data(self, session_id: str | None = None) -> dict[str, Any]:
        """A JSON-serialisable document of the whole store, or of one session."""
        return await _export.to_document(self.export_records(session_id))

    async def import_data(self, document: dict[str, Any]) -> None:
        """Add what ``export_data`` produced (version 1, 2 or 3). All or nothing: ids that
        exist already are refused; an agent whose name exists already is merged into it."""
        self._check_open()
        await self._import_records(_export.document_records(document))

    async def export_records(self, session_id: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """The store (or one session) as JSON-ready records, one at a time, in an order
        ``import_records`` replays: a header, the agents, each session followed by its runs
        and messages, then the entries. Memory use is bounded by a page of records."""
        self._check_open()
        if session_id is not None:
            session_id = check_name(session_id, "session_id")
        async with self._export_source(session_id) as source:
            async for record in _records.records_of(source):
                yield record

    async def import_records(
        self, records: Iterable[dict[str, Any]] | AsyncIterable[dict[str, Any]]
    ) -> None:
        """Add the records of ``export_records`` (from any backend). All or nothing, as
        ``import_data``; a bad record raises ``InvalidDataError`` naming it
        (``records[17].seq``)."""
        self._check_open()
        await self._import_records(_records.numbered(records))

    async def _import_records(
        self, pairs: Iterable[tuple[str, Any]] | AsyncIterable[tuple[str, Any]]
    ) -> None:
        existing = {agent.name: agent.id for agent in await self._list_agents()}
        checker = _records.Checker(existing)
        async with self._import_sink() as sink:
            await _records.write_records(pairs, checker, sink)
        self._last_now = max(self._last_now, checker.newest.astimezone(UTC))

    # -- hooks a backend implements ------------------------------------------

    async def _open(self) -> None:
        """Open what the backend needs; nothing by default."""

    @abstractmethod
    async def _close(self) -> None: ...

    @abstractmethod
    async def _initialize_run(self, request: NewRun) -> RunHandle: ...

    @abstractmethod
    async def _update_run(self, update: RunUpdate) -> None: ...

    @abstractmethod
    async def _get_run(self, run_id: str) -> RunRecord | None: ...

    @abstractmethod
    async def _list_runs(self, session_id: str) -> list[RunRecord]: ...

    @abstractmethod
    async def _save_state(self, run_id: str, state: str, now: datetime) -> None: ...

    @abstractmethod
    async def _load_state(self, run_id: str) -> str | None: ...

    async def _add_chat_message(self, message: MessageCall) -> ChatMsg:
        """Append a message with the next ``seq``; the checks are listed in docs/contract.md.
        The hot path: a message without metadata, token count or idempotency key. By
        default ``_add_chat_message_with``; a backend overrides it where that is faster."""
        return await self._add_chat_message_with(message, NO_OPTIONS)

    @abstractmethod
    async def _add_chat_message_with(
        self, message: MessageCall, options: MessageOptions
    ) -> ChatMsg:
        """``_add_chat_message`` with any of the optional fields. After the same checks, a
        known ``idempotency_key`` returns its message (``check_repeat``) and stores nothing."""

    @abstractmethod
    async def _replace_history(self, change: HistoryReplacement) -> list[ChatMsg] | None:
        """Atomically: unknown session -> NotFoundError; each run_id checked as in
        ``add_chat_message`` (``refuse_message``); ``if_newest_seq`` given and not the seq of
        the newest message (0: none) -> None, nothing changed; then remove the messages
        above ``after_seq`` (None: remove nothing) and those up to ``drop_through_seq``
        (None: none), and append ``messages`` with the next seqs. Counts as activity when
        anything changed."""

    @abstractmethod
    async def _pop_message(self, session_id: str, now: datetime) -> ChatMsg | None: ...

    @abstractmethod
    async def _truncate_history(self, session_id: str, after_seq: int, now: datetime) -> int: ...

    @abstractmethod
    async def _fork_session(self, request: NewFork) -> SessionRecord: ...

    @abstractmethod
    async def _delete_sessions(self, external_id: str) -> int: ...

    @abstractmethod
    async def _get_chat_history(
        self, session_id: str, limit: int | None, exclude_run_id: str | None
    ) -> list[ChatMsg]: ...

    async def _get_chat_window(self, window: HistoryWindow) -> list[ChatMsg]:
        """``_get_chat_history`` cut to the budgets (at least one is given) as
        ``newest_within`` cuts it. By default the newest ``limit`` messages are read and cut
        here; a backend overrides it to read little more than the window."""
        session_id, limit, exclude_run_id, max_chars, max_tokens = window
        messages = await self._get_chat_history(session_id, limit, exclude_run_id)
        return newest_within(reversed(messages), None, max_chars, max_tokens)

    @abstractmethod
    async def _get_chat_history_after(
        self, session_id: str, after_seq: int, limit: int | None
    ) -> list[ChatMsg]:
        """The oldest ``limit`` (None: all) messages with a seq above ``after_seq``, oldest
        first; an unknown session has none."""

    @abstractmethod
    async def _search_candidates(
        self, search: MessageSearch
    ) -> list[tuple[str | None, Any, int, str, tuple[ChatMsg, SessionRecord]]]:
        """Every message of the sessions the filters allow that is indexed under one of
        ``search.terms`` (more is allowed: ``_search.rank`` keeps only matches), as
        (content, created_at, seq, session_id, (message, session))."""

    @abstractmethod
    async def _list_agents(self) -> list[AgentRecord]: ...

    @abstractmethod
    async def _get_session(self, session_id: str) -> SessionRecord | None: ...

    @abstractmethod
    async def _list_sessions(self, query: SessionQuery) -> list[SessionRecord]: ...

    @abstractmethod
    async def _update_session(self, session_id: str, metadata: str) -> SessionRecord:
        """Set the session's metadata (JSON text of an object) and return its record; an
        unknown session -> NotFoundError. Nothing else changes (not its ``updated_at``)."""

    @abstractmethod
    async def _delete_session(self, session_id: str) -> None: ...

    @abstractmethod
    async def _delete_agent(self, workflow_name: str) -> None: ...

    @abstractmethod
    async def _purge_sessions(self, older_than: datetime) -> int: ...

    @abstractmethod
    def _export_source(
        self, session_id: str | None
    ) -> AbstractAsyncContextManager[_records.ExportSource]:
        """A consistent view of the store (or of one session and its agent) to read pages
        of records from, in stream order (``_records``)."""

    @abstractmethod
    def _import_sink(self) -> AbstractAsyncContextManager[_records.ImportSink]:
        """Where an import writes: one transaction, committed when the block ends without
        an error, else rolled back (or a build swapped in at the end with ``_import``)."""

    async def _import(self, dump: Dump) -> None:
        """Add a checked ``Dump`` in one step (the in-memory stores' import; recorded by
        the browser store's log)."""
        raise NotImplementedError


__all__ = ["DataStorage"]
