"""One description of each stored record: its table, its columns in order, and what kind of
value each holds. A column has its field's name.

Both SQL modules build their column lists from these descriptions, and every backend builds
its row readers from them once (``compile_reader``): a reader unpacks a row by column name
into the record, decoding each kind the backend's way, with no per-row interpretation.
Adding a field to a record is the record, its line here, and a migration per SQL dialect.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from ._dump import Dump, MessageRow
from ._entries import Entry
from .models import AgentRecord, ChatMsg, RunRecord, SessionRecord

Kind = Literal["text", "int", "float", "json", "time", "time?", "bytes"]  # time?: or None
R = TypeVar("R")
Rows = Iterable[Any]  # rows as a driver returns them: tuples, asyncpg records
Reader = Callable[[Rows], list[R]]


@dataclass(frozen=True, slots=True)
class Table(Generic[R]):
    """A table (same name in every dialect) and the record one of its rows becomes."""

    name: str
    record: type[R]
    columns: tuple[tuple[str, Kind], ...]  # (column = field name, kind), in the record's order

    def __post_init__(self) -> None:
        fields = _field_names(self.record)
        if self.names != fields:
            raise TypeError(f"{self.name}: columns {self.names} differ from fields {fields}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    def select(self, alias: str = "") -> str:
        """The column list, for SELECT and INSERT (``alias`` e.g. "s." qualifies each)."""
        return ", ".join(alias + name for name in self.names)


def _field_names(record: type) -> tuple[str, ...]:
    if dataclasses.is_dataclass(record):
        return tuple(f.name for f in dataclasses.fields(record))
    return tuple(record._fields)  # type: ignore[attr-defined]  # a NamedTuple


AGENTS = Table(
    "agents",
    AgentRecord,
    (
        ("id", "text"),
        ("name", "text"),
        ("description", "text"),
        ("input_schema", "json"),
        ("output_schema", "json"),
        ("workflow", "json"),
        ("created_at", "time"),
        ("updated_at", "time"),
    ),
)

SESSIONS = Table(
    "sessions",
    SessionRecord,
    (
        ("id", "text"),
        ("agent_id", "text"),
        ("external_id", "text"),
        ("created_at", "time"),
        ("updated_at", "time"),
        ("parent_session_id", "text"),
        ("forked_from_seq", "int"),
        ("metadata", "json"),
    ),
)

RUNS = Table(
    "runs",
    RunRecord,
    (
        ("id", "text"),
        ("session_id", "text"),
        ("agent_id", "text"),
        ("input_data", "json"),
        ("output_data", "json"),
        ("context", "json"),
        ("duration_seconds", "float"),
        ("created_at", "time"),
        ("updated_at", "time"),
    ),
)

# The messages table, as export and import see it (with its session's agent).
MESSAGES = Table(
    "messages",
    MessageRow,
    (
        ("agent_id", "text"),
        ("session_id", "text"),
        ("run_id", "text"),
        ("seq", "int"),
        ("role", "text"),
        ("content", "text"),
        ("created_at", "time"),
        ("metadata", "json"),
        ("token_count", "int"),
        ("idempotency_key", "text"),
    ),
)

# The messages table, as a chat history reads it.
CHAT = Table(
    "messages",
    ChatMsg,
    (
        ("role", "text"),
        ("content", "text"),
        ("seq", "int"),
        ("run_id", "text"),
        ("created_at", "time"),
        ("metadata", "json"),
        ("token_count", "int"),
    ),
)

# Entries, the ordered key-value store (docs/contract.md, "Entries").
ENTRIES = Table(
    "entries",
    Entry,
    (
        ("scope", "text"),
        ("key", "text"),
        ("value", "json"),
        ("data", "bytes"),
        ("tag", "text"),
        ("version", "int"),
        ("updated_at", "time"),
        ("owner", "text"),
        ("expires_at", "time?"),
    ),
)


def compile_reader(
    table: Table[R],
    decode: Mapping[Kind, str],
    namespace: Mapping[str, Any],
    *,
    mapping: bool = False,
) -> Reader[R]:
    """A function that turns rows into records. A row holds the table's columns in order
    (``mapping``: a dict by column name). ``decode`` maps a kind to an expression that
    decodes ``{}`` (kinds it leaves out are used as stored), naming functions in
    ``namespace``. Built once, it runs as fast as code written by hand."""
    reader: Reader[R] = _compile(table, decode, namespace, mapping=mapping, extra=None)
    return reader


def compile_reader_with(
    table: Table[R], extra: str, decode: Mapping[Kind, str], namespace: Mapping[str, Any]
) -> Callable[[Iterable[Any]], list[tuple[R, Any]]]:
    """Like ``compile_reader`` for rows that hold one more column, ``extra``, after the
    table's: each row becomes (record, that column's value)."""
    return _compile(table, decode, namespace, mapping=False, extra=extra)


def _compile(
    table: Table[Any],
    decode: Mapping[Kind, str],
    namespace: Mapping[str, Any],
    *,
    mapping: bool,
    extra: str | None,
) -> Reader[Any]:
    names = table.names + (() if extra is None else (extra,))
    for name in names:
        if not name.isidentifier() or name.startswith("_"):
            raise ValueError(f"{table.name}: column name {name!r} cannot be compiled")

    def value(name: str, kind: Kind) -> str:
        source = f"row[{name!r}]" if mapping else name
        return decode[kind].format(source) if kind in decode else source

    if issubclass(table.record, tuple):  # a NamedTuple: without its Python-level __new__
        values = ", ".join(value(name, kind) for name, kind in table.columns)
        built = f"_new(_record, ({values},))"
    else:
        built = "_record({})".format(
            ", ".join(f"{name}={value(name, kind)}" for name, kind in table.columns)
        )
    if extra is not None:
        built = f"({built}, {extra})"
    target = "row" if mapping else ", ".join(names)
    source = f"def read(rows):\n    return [{built} for {target} in rows]\n"
    scope: dict[str, Any] = {**namespace, "_record": table.record, "_new": tuple.__new__}
    exec(compile(source, f"<{table.name} reader>", "exec"), scope)
    reader: Reader[Any] = scope["read"]
    return reader


@dataclass(frozen=True, slots=True)
class Readers:
    """One SQL backend's row readers: rows hold the columns of ``AGENTS``, ``SESSIONS``,
    ``RUNS``, ``MESSAGES`` or ``CHAT`` in order (``..._with_...``: then that one column)."""

    agents: Reader[AgentRecord]
    sessions: Reader[SessionRecord]
    sessions_with_last_seq: Callable[[Rows], list[tuple[SessionRecord, Any]]]
    runs: Reader[RunRecord]
    runs_with_state: Callable[[Rows], list[tuple[RunRecord, Any]]]
    messages: Reader[MessageRow]
    chat: Reader[ChatMsg]
    entries: Reader[Entry]

    def dump(
        self,
        agents: Rows,
        sessions: list[SessionRecord],
        runs_with_state: Rows,
        messages: Rows,
        last_seqs: dict[str, int],
    ) -> Dump:
        """What an export read, as a ``Dump``."""
        runs_and_states = self.runs_with_state(runs_with_state)
        return Dump(
            agents=self.agents(agents),
            sessions=sessions,
            runs=[run for run, _ in runs_and_states],
            states={run.id: state for run, state in runs_and_states if state is not None},
            messages=self.messages(messages),
            last_seqs=last_seqs,
        )


def compile_readers(decode: Mapping[Kind, str], namespace: Mapping[str, Any]) -> Readers:
    """Every reader a SQL backend needs (see ``compile_reader``)."""
    return Readers(
        agents=compile_reader(AGENTS, decode, namespace),
        sessions=compile_reader(SESSIONS, decode, namespace),
        sessions_with_last_seq=compile_reader_with(SESSIONS, "last_seq", decode, namespace),
        runs=compile_reader(RUNS, decode, namespace),
        runs_with_state=compile_reader_with(RUNS, "state", decode, namespace),
        messages=compile_reader(MESSAGES, decode, namespace),
        chat=compile_reader(CHAT, decode, namespace),
        entries=compile_reader(ENTRIES, decode, namespace),
    )


def encode_row(
    table: Table[Any], record: Any, encode: Mapping[Kind, Callable[[Any, str], Any]]
) -> tuple[Any, ...]:
    """A record's values in column order, each kind stored the backend's way (``encode``;
    kinds it leaves out are stored as they are). For writes that are not on a hot path."""
    return tuple(
        encode[kind](getattr(record, name), name) if kind in encode else getattr(record, name)
        for name, kind in table.columns
    )
