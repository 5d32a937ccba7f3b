"""The record stream of ``export_records`` / ``import_records``: its records, their order and
their checks, written once for every backend (docs/contract.md, "Export and import").

A stream is a header, then the agents (by name), then each session (by id) followed by its
runs (by created_at, id; each with its state) and its messages (by seq), then the entries (by
scope, key). Each record is a JSON-ready dict with a ``"kind"``. A backend only reads pages
of each kind in that order (``ExportSource``) and writes checked batches (``ImportSink``):
checking a record needs only the agents and the current session, so memory is bounded by a
batch, not by the store.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from ._dump import Dump, MessageRow
from ._entries import Entry
from ._json import dump_object, load_json
from .errors import InvalidDataError, StorageError, quote
from .models import (
    EARLIEST_TIME,
    LATEST_TIME,
    MAX_INT64,
    MAX_NAME_LENGTH,
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
VERSION = 3  # 3: entries; records. 2: message metadata, token_count, idempotency_key, forks
READABLE_VERSIONS = (1, 2, 3)
BATCH = 1000  # records checked and written together (and rows read per page)
KINDS = ("agent", "session", "run", "message", "entry")

SessionRow = tuple[SessionRecord, int]  # a session and its last_seq
RunRow = tuple[RunRecord, str | None]  # a run and its state (JSON text)
Item = AgentRecord | SessionRow | RunRow | MessageRow | Entry
T = TypeVar("T")
_ZERO = timedelta(0)


# -- writing records -----------------------------------------------------------------------


def header() -> dict[str, Any]:
    return {"kind": "header", "format": FORMAT, "version": VERSION}


def _time(value: datetime) -> str:
    return value.isoformat()


_NAMES: dict[type, tuple[str, ...]] = {}


def _fields(record: Any) -> dict[str, Any]:
    kind = type(record)
    names = _NAMES.get(kind)
    if names is None:
        names = _NAMES[kind] = tuple(f.name for f in dataclasses.fields(record))
    return {name: getattr(record, name) for name in names}


def agent_record(agent: AgentRecord) -> dict[str, Any]:
    return {
        "kind": "agent",
        **_fields(agent),
        "created_at": _time(agent.created_at),
        "updated_at": _time(agent.updated_at),
    }


def session_record(session: SessionRecord, last_seq: int) -> dict[str, Any]:
    return {
        "kind": "session",
        **_fields(session),
        "created_at": _time(session.created_at),
        "updated_at": _time(session.updated_at),
        "last_seq": last_seq,
    }


def run_record(run: RunRecord, state: str | None) -> dict[str, Any]:
    return {
        "kind": "run",
        **_fields(run),
        "created_at": _time(run.created_at),
        "updated_at": _time(run.updated_at),
        "state": load_json(state),
    }


def message_record(message: MessageRow) -> dict[str, Any]:
    return {  # the bulk of a stream: written out
        "kind": "message",
        "agent_id": message.agent_id,
        "session_id": message.session_id,
        "run_id": message.run_id,
        "seq": message.seq,
        "role": message.role,
        "content": message.content,
        "created_at": message.created_at.isoformat(),
        "metadata": message.metadata,
        "token_count": message.token_count,
        "idempotency_key": message.idempotency_key,
    }


def entry_record(entry: Entry) -> dict[str, Any]:
    return {
        "kind": "entry",
        **_fields(entry),
        "data": None if entry.data is None else base64.b64encode(entry.data).decode("ascii"),
        "updated_at": _time(entry.updated_at),
        "expires_at": None if entry.expires_at is None else _time(entry.expires_at),
    }


# -- reading a store in stream order -------------------------------------------------------


class ExportSource(Protocol):
    """What a backend reads for an export, all from one consistent view of the store: pages
    of one kind ("agent", "session", "run", "message", "entry") in stream order. Items:
    ``AgentRecord``, ``(SessionRecord, last_seq)``, ``(RunRecord, state)``, ``MessageRow``,
    ``Entry``."""

    def pages(self, kind: str) -> AsyncIterator[list[Any]]: ...


async def keyset_pages(
    fetch: Callable[[Any], Awaitable[list[T]]], key: Callable[[T], Any]
) -> AsyncIterator[list[T]]:
    """Pages from ``fetch(after)`` (``after``: the key of the last item read, None at first)
    until a page comes back shorter than ``BATCH``."""
    after = None
    while True:
        page = await fetch(after)
        if page:
            yield page
        if len(page) < BATCH:
            return
        after = key(page[-1])


class _Peek:
    """One item at a time from pages, with a look at the next."""

    def __init__(self, pages: AsyncIterator[list[Any]]) -> None:
        self._pages = pages
        self._page: list[Any] = []
        self._at = 0

    async def peek(self) -> Any:
        while self._at >= len(self._page):
            page = await anext(self._pages, None)
            if page is None:
                return None
            self._page, self._at = page, 0
        return self._page[self._at]

    def take(self) -> Any:
        item = self._page[self._at]
        self._at += 1
        return item


async def records_of(source: ExportSource) -> AsyncIterator[dict[str, Any]]:
    """The stream of a store, from what its backend reads."""
    yield header()
    async for page in source.pages("agent"):
        for agent in page:
            yield agent_record(agent)
    runs = _Peek(source.pages("run"))
    messages = _Peek(source.pages("message"))
    async for page in source.pages("session"):
        for session, last_seq in page:
            yield session_record(session, last_seq)
            while (run := await runs.peek()) is not None and run[0].session_id == session.id:
                yield run_record(*runs.take())
            while (row := await messages.peek()) is not None and row.session_id == session.id:
                yield message_record(messages.take())
    if await runs.peek() is not None or await messages.peek() is not None:
        raise StorageError("export: a run or message was read out of its session's order")
    async for page in source.pages("entry"):
        for entry in page:
            yield entry_record(entry)


class ListSource:
    """An ``ExportSource`` over lists of items of each kind, in stream order."""

    def __init__(self, kinds: dict[str, list[Any]]) -> None:
        self._kinds = kinds

    async def pages(self, kind: str) -> AsyncIterator[list[Any]]:
        items = self._kinds[kind]
        for start in range(0, len(items), BATCH):
            yield items[start : start + BATCH]


def dump_source(dump: Dump) -> ListSource:
    """A ``Dump`` (the in-memory stores' export) put in stream order."""
    seqs = {m.session_id: m.seq for m in sorted(dump.messages, key=_message_key)}
    seqs.update(dump.last_seqs)
    return ListSource(
        {
            "agent": sorted(dump.agents, key=lambda a: a.name),
            "session": sorted(((s, seqs.get(s.id, 0)) for s in dump.sessions), key=_session_key),
            "run": sorted(
                ((r, dump.states.get(r.id)) for r in dump.runs),
                key=lambda r: (r[0].session_id, r[0].created_at, r[0].id),
            ),
            "message": sorted(dump.messages, key=_message_key),
            "entry": sorted(dump.entries, key=lambda e: (e.scope, e.key)),
        }
    )


def _session_key(row: SessionRow) -> str:
    return row[0].id


def _message_key(message: MessageRow) -> tuple[str, int]:
    return (message.session_id, message.seq)


# -- checking records ------------------------------------------------------------------------


class _Reader:
    """Reads one record, naming the field in every error (``where``: e.g. "records[3]")."""

    def __init__(self, item: Any, where: str) -> None:
        if not isinstance(item, dict):
            raise InvalidDataError(where, "must be an object")
        self.item = item
        self.where = where

    def name(self, key: str) -> str:
        value = self.item.get(key)
        if (
            type(value) is str
            and value
            and len(value) <= MAX_NAME_LENGTH
            and value.isascii()
            and "\x00" not in value
        ):
            return value  # = check_name, without naming the field when it is fine
        return check_name(value, f"{self.where}.{key}")

    def optional_name(self, key: str) -> str | None:
        return None if self.item.get(key) is None else self.name(key)

    def text(self, key: str, max_length: int | None = None) -> str | None:
        value = self.item.get(key)
        if value is None or (
            type(value) is str
            and value.isascii()
            and "\x00" not in value
            and (max_length is None or len(value) <= max_length)
        ):
            return value  # = check_optional_text, without naming the field when it is fine
        return check_optional_text(value, f"{self.where}.{key}", max_length)

    def payload(self, key: str) -> str | None:
        """A JSON object (or None), checked, as JSON text."""
        value = self.item.get(key)
        return None if value is None else dump_object(value, f"{self.where}.{key}")

    def count(self, key: str, low: int = 0, high: int = MAX_SEQ) -> int | None:
        value = self.item.get(key)
        if value is None or (type(value) is int and low <= value <= high):
            return value
        return check_int_range(value, f"{self.where}.{key}", low, high)

    def required_count(self, key: str, low: int = 0, high: int = MAX_SEQ) -> int:
        value = self.item.get(key)
        if type(value) is int and low <= value <= high:
            return value
        return check_int_range(value, f"{self.where}.{key}", low, high)

    def time(self, key: str) -> datetime:
        value = self.item.get(key)
        try:
            parsed = datetime.fromisoformat(value if isinstance(value, str) else "")
        except (TypeError, ValueError):
            raise self.fail(key, "must be an ISO 8601 timestamp") from None
        if parsed.utcoffset() == _ZERO and EARLIEST_TIME <= parsed < LATEST_TIME:
            return parsed if parsed.tzinfo is UTC else parsed.replace(tzinfo=UTC)
        if parsed.tzinfo is None:
            raise self.fail(key, "must carry a UTC offset")
        return check_stored_time(parsed, f"{self.where}.{key}")

    def fail(self, key: str, problem: str) -> InvalidDataError:
        return InvalidDataError(f"{self.where}.{key}", problem)


def check_header(record: Any, where: str) -> None:
    item = _Reader(record, where)
    if item.item.get("kind") != "header":
        raise item.fail("kind", "the first record must be the header")
    if item.item.get("format") != FORMAT:
        raise item.fail("format", f"must be {FORMAT!r}")
    if item.item.get("version") != VERSION:
        raise item.fail("version", f"must be {VERSION}")


@dataclass(slots=True)
class _Current:
    """The session whose runs and messages may follow."""

    id: str
    agent_id: str  # as in the stream
    last_seq: int
    runs: set[str] = field(default_factory=set)
    seq: int = 0  # of its last message so far
    keys: set[str] = field(default_factory=set)


_ORDER = {"agent": 0, "session": 1, "run": 1, "message": 1, "entry": 2}


class Checker:
    """Checks records one at a time, in stream order, and turns them into items for a
    backend. Agents whose name the store has already (``existing``: name -> id) are merged
    into those: they are not written, and what names them is pointed at the store's."""

    def __init__(self, existing: dict[str, str]) -> None:
        self._existing = existing
        self._agent_names: set[str] = set()
        self._agent_ids: dict[str, str] = {}  # stream id -> id in the store
        self._session: _Current | None = None
        self._stage = 0
        self._entry: tuple[str, str] | None = None
        self.newest = datetime.min.replace(tzinfo=UTC)  # of the times imported

    def check(self, record: Any, where: str) -> Item | None:
        """The item to write for ``record`` (None: an agent merged into the store's)."""
        item = _Reader(record, where)
        kind = item.item.get("kind")
        stage = _ORDER.get(kind) if isinstance(kind, str) else None
        if stage is None:
            raise item.fail("kind", "must be agent, session, run, message or entry")
        if stage < self._stage:
            raise item.fail("kind", f"a {kind} record must come before the sessions or entries")
        self._stage = stage
        read: Callable[[_Reader], Item | None] = getattr(self, f"_read_{kind}")
        return read(item)

    def _seen(self, value: datetime) -> datetime:
        self.newest = max(self.newest, value)
        return value

    def _read_agent(self, item: _Reader) -> AgentRecord | None:
        agent = AgentRecord(
            id=item.name("id"),
            name=item.name("name"),
            description=item.text("description"),
            input_schema=load_json(item.payload("input_schema")),
            output_schema=load_json(item.payload("output_schema")),
            workflow=load_json(item.payload("workflow")),
            created_at=self._seen(item.time("created_at")),
            updated_at=self._seen(item.time("updated_at")),
        )
        if agent.name in self._agent_names:
            raise item.fail("name", f"{quote(agent.name)} appears twice")
        if agent.id in self._agent_ids:
            raise item.fail("id", f"{quote(agent.id)} appears twice")
        self._agent_names.add(agent.name)
        merged = self._existing.get(agent.name)
        self._agent_ids[agent.id] = agent.id if merged is None else merged
        return agent if merged is None else None

    def _read_session(self, item: _Reader) -> SessionRow:
        parent = item.optional_name("parent_session_id")
        session = SessionRecord(
            id=item.name("id"),
            agent_id=item.name("agent_id"),
            external_id=check_external_id(
                item.item.get("external_id"), f"{item.where}.external_id"
            ),
            created_at=self._seen(item.time("created_at")),
            updated_at=self._seen(item.time("updated_at")),
            parent_session_id=parent,
            forked_from_seq=item.count("forked_from_seq"),
            metadata=load_json(item.payload("metadata")) or {},  # absent (before v3): {}
        )
        if session.agent_id not in self._agent_ids:
            raise item.fail("agent_id", "names no agent of the records before it")
        if (parent is None) != (session.forked_from_seq is None):
            raise item.fail("forked_from_seq", "is given exactly when parent_session_id is")
        last_seq = item.required_count("last_seq")
        self._session = _Current(session.id, session.agent_id, last_seq)
        stored = dataclasses.replace(session, agent_id=self._agent_ids[session.agent_id])
        return stored, last_seq

    def _current(self, item: _Reader) -> _Current:
        session_id = item.name("session_id")
        current = self._session
        if current is None or current.id != session_id:
            raise item.fail("session_id", "is not the session record right before it")
        if item.name("agent_id") != current.agent_id:
            raise item.fail("agent_id", "differs from its session's agent")
        return current

    def _read_run(self, item: _Reader) -> RunRow:
        current = self._current(item)
        run = RunRecord(
            id=item.name("id"),
            session_id=current.id,
            agent_id=self._agent_ids[current.agent_id],
            input_data=load_json(item.payload("input_data")),
            output_data=load_json(item.payload("output_data")),
            context=load_json(item.payload("context")),
            duration_seconds=check_duration(
                item.item.get("duration_seconds"), f"{item.where}.duration_seconds"
            ),
            created_at=self._seen(item.time("created_at")),
            updated_at=self._seen(item.time("updated_at")),
        )
        if current.seq:
            raise item.fail("kind", "a session's runs must come before its messages")
        state = item.item.get("state")
        text = None
        if state is not None:
            try:
                text = WorkflowState.from_dict(state).to_json()
            except InvalidDataError as exc:
                raise InvalidDataError(f"{item.where}.{exc.field}", exc.problem) from None
        current.runs.add(run.id)
        return run, text

    def _read_message(self, item: _Reader) -> MessageRow:
        current = self._current(item)
        seq = item.required_count("seq", 1)
        run_id = item.optional_name("run_id")
        metadata = item.payload("metadata")
        message = MessageRow(
            agent_id=self._agent_ids[current.agent_id],
            session_id=current.id,
            run_id=run_id,
            seq=seq,
            role=item.name("role"),
            content=item.text("content"),
            created_at=self._seen(item.time("created_at")),
            metadata=load_json(metadata),
            token_count=item.count("token_count", 0, MAX_INT64),
            idempotency_key=item.optional_name("idempotency_key"),
        )
        if run_id is not None and run_id not in current.runs:
            raise item.fail("run_id", "names no run of that session")
        if seq == current.seq:
            raise item.fail("seq", f"{seq} appears twice in its session")
        if seq < current.seq:
            raise item.fail("seq", "is below the seq of the message before it")
        if seq > current.last_seq:
            raise item.fail("seq", "is above its session's last_seq")
        current.seq = seq
        key = message.idempotency_key
        if key is not None:
            if key in current.keys:
                raise item.fail("idempotency_key", "appears twice in its session")
            current.keys.add(key)
        return message

    def _read_entry(self, item: _Reader) -> Entry:
        self._session = None
        scope, key = item.name("scope"), item.name("key")
        value = item.payload("value")
        data = item.item.get("data")
        if data is not None:
            if not isinstance(data, str):
                raise item.fail("data", "must be base64 text or None")
            try:
                data = base64.b64decode(data.encode("ascii"), validate=True)
            except (ValueError, binascii.Error, UnicodeEncodeError):
                raise item.fail("data", "must be base64 text or None") from None
        entry = Entry(
            scope=scope,
            key=key,
            value=load_json(value),
            data=data,
            tag=item.text("tag", 256),
            version=item.required_count("version", 1, MAX_INT64),
            updated_at=self._seen(item.time("updated_at")),
            owner=check_external_id(item.item.get("owner"), f"{item.where}.owner"),
            expires_at=None if item.item.get("expires_at") is None else item.time("expires_at"),
        )
        if self._entry is not None and (scope, key) <= self._entry:
            raise item.fail("key", "entries must come in (scope, key) order, each once")
        self._entry = (scope, key)
        return entry


# -- writing checked records -------------------------------------------------------------------


@dataclass(slots=True)
class Batch:
    """Checked items of some records, by kind (a backend writes them in this order)."""

    agents: list[AgentRecord] = field(default_factory=list)
    sessions: list[SessionRow] = field(default_factory=list)
    runs: list[RunRow] = field(default_factory=list)
    messages: list[MessageRow] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    # where each id (or agent name, or entry's (scope, key)) came from, for errors
    places: dict[tuple[str, Any], str] = field(default_factory=dict)
    size: int = 0

    def add(self, item: Item, where: str) -> None:
        self.size += 1
        if isinstance(item, MessageRow):
            self.messages.append(item)
        elif isinstance(item, AgentRecord):
            self.agents.append(item)
            self._place(("agent", item.id), f"{where}.id")
            self._place(("agent name", item.name), f"{where}.name")
        elif isinstance(item, Entry):
            self.entries.append(item)
            self._place(("entry", (item.scope, item.key)), f"{where}.key")
        elif isinstance(item[0], SessionRecord):
            self.sessions.append(item)
            self._place(("session", item[0].id), f"{where}.id")
        else:
            self.runs.append(item)
            self._place(("run", item[0].id), f"{where}.id")

    def _place(self, key: tuple[str, Any], where: str) -> None:
        if key in self.places:
            raise InvalidDataError(where, f"{quote(str(key[1]))} appears twice")
        self.places[key] = where

    def __len__(self) -> int:
        return self.size

    def ids(self) -> Ids:
        return Ids(
            agents=[a.id for a in self.agents],
            sessions=[s.id for s, _ in self.sessions],
            runs=[r.id for r, _ in self.runs],
            entries=[(e.scope, e.key) for e in self.entries],
            agent_names=[a.name for a in self.agents],
        )

    def refuse(self, taken: Ids) -> None:
        """Raise for the first record of this batch whose id the store has already."""
        found = {
            (kind, value)
            for kind, values in (
                ("agent", taken.agents),
                ("session", taken.sessions),
                ("run", taken.runs),
                ("entry", taken.entries),
                ("agent name", taken.agent_names),
            )
            for value in values
        }
        if not found:
            return
        for (kind, value), where in self.places.items():
            if (kind, value) in found:
                shown = value[1] if kind == "entry" else value
                raise InvalidDataError(where, f"{quote(str(shown))} exists already")


@dataclass(slots=True)
class Ids:
    """Ids of a batch (or those of them that a store has already)."""

    agents: list[str]
    sessions: list[str]
    runs: list[str]
    entries: list[tuple[str, str]]
    agent_names: list[str]


class ImportSink(Protocol):
    """How a backend writes an import, inside one transaction (or a build it swaps in)."""

    async def taken(self, ids: Ids) -> Ids:
        """Those of ``ids`` that the store (with the batches written so far) has already."""

    async def write(self, batch: Batch) -> None: ...


class DumpSink:
    """An ``ImportSink`` that builds a ``Dump`` (the in-memory stores then swap it in)."""

    def __init__(self, has: Callable[[str, Any], bool]) -> None:
        self._has = has  # (kind, id) -> whether the store has it
        self.dump = Dump([], [], [], {}, [], {}, [])
        self._built: set[tuple[str, Any]] = set()

    async def taken(self, ids: Ids) -> Ids:
        def found(kind: str, values: list[Any]) -> list[Any]:
            return [v for v in values if (kind, v) in self._built or self._has(kind, v)]

        return Ids(
            found("agent", ids.agents),
            found("session", ids.sessions),
            found("run", ids.runs),
            found("entry", ids.entries),
            found("agent name", ids.agent_names),
        )

    async def write(self, batch: Batch) -> None:
        self._built.update(batch.places)
        dump = self.dump
        dump.agents.extend(batch.agents)
        for session, last_seq in batch.sessions:
            dump.sessions.append(session)
            dump.last_seqs[session.id] = last_seq
        for run, state in batch.runs:
            dump.runs.append(run)
            if state is not None:
                dump.states[run.id] = state
        dump.messages.extend(batch.messages)
        dump.entries.extend(batch.entries)


async def write_records(
    records: Iterable[tuple[str, Any]] | AsyncIterable[tuple[str, Any]],
    checker: Checker,
    sink: ImportSink,
) -> None:
    """Check ``records`` ((where, record) pairs, header first) and write them in batches."""
    batch = Batch()
    first = True
    async for where, record in _each(records):
        if first:
            check_header(record, where)
            first = False
            continue
        item = checker.check(record, where)
        if item is not None:
            batch.add(item, where)
        if len(batch) >= BATCH:
            await _flush(batch, sink)
            batch = Batch()
    if first:
        raise InvalidDataError("records", "is empty: the header is missing")
    if len(batch):
        await _flush(batch, sink)


async def _flush(batch: Batch, sink: ImportSink) -> None:
    batch.refuse(await sink.taken(batch.ids()))
    await sink.write(batch)


async def _each(records: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    if isinstance(records, AsyncIterable):
        async for item in records:
            yield item
    else:
        for item in records:
            yield item


async def numbered(
    records: Iterable[Any] | AsyncIterable[Any],
) -> AsyncIterator[tuple[str, Any]]:
    """``records`` as (``"records[i]"``, record) pairs."""
    if isinstance(records, str | bytes | dict) or not isinstance(records, Iterable | AsyncIterable):
        raise InvalidDataError("records", "must be an iterable or async iterable of records")
    index = 0
    async for record in _each(records):
        yield f"records[{index}]", record
        index += 1
