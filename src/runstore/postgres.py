"""``PostgresDataStorage``: the production backend, on asyncpg (the ``postgres`` extra).

Every statement lives in ``_postgres_sql``. Each call is one round trip (export and import
excepted); payloads travel as JSON text into ``jsonb`` columns. The schema is created and
migrated on first use.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

try:
    import asyncpg
except ModuleNotFoundError as exc:  # pragma: no cover - depends on what is installed
    if exc.name != "asyncpg":
        raise
    raise ModuleNotFoundError(
        "PostgresDataStorage needs the asyncpg package (runstore's postgres extra): "
        "pip install asyncpg",
        name="asyncpg",
    ) from None

from . import _calls as calls
from . import _postgres_sql as sql
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
from ._json import dump_optional, load_json
from ._lifecycle import BatchPruner, ErasureReport, StoreStats, utf8_size
from ._records import BATCH, Batch, ExportSource, Ids, ImportSink, keyset_pages
from ._rules import check_repeat, refuse_message, repeat_fields
from ._search import entry_terms, index_terms
from .base import DataStorage, newest_within
from .errors import (
    InvalidDataError,
    NotFoundError,
    StorageError,
    StorageUnavailableError,
    quote,
)
from .models import AgentRecord, ChatMsg, RunHandle, RunRecord, SessionRecord, chat_msg

DEFAULT_SCHEMA = "runstore"
POOLERS = (None, "transaction")
_MAX_SEQ = 2**63 - 1  # fork_session through every seq

# A JSON string, or a number written with a positive exponent ("1e+20"). jsonb keeps numbers
# as numeric and prints them without exponent, so "1e+20" would come back as an int.
_STRING_OR_BIG_FLOAT = re.compile(r'"(?:[^"\\]++|\\.)*+"|(-?\d+(?:\.\d+)?e\+\d+)')


def _positional(match: re.Match[str]) -> str:
    number = match.group(1)
    if number is None:
        return match.group(0)
    digits = format(Decimal(number), "f")
    return digits + ".0"  # the value of a float written with e+ is a whole number


def to_jsonb(text: str | None) -> str | None:
    """JSON text whose floats survive jsonb: a float with a positive exponent is written out
    in full with a ``.0`` (its exact value, which parses back to the same float)."""
    if text is None or "e+" not in text:
        return text
    return _STRING_OR_BIG_FLOAT.sub(_positional, text)


async def _nothing_to_reset(conn: Any) -> None:
    """Our pool's reset on release. The default runs a reset query (a second round trip per
    call); runstore leaves no session state behind (no SET, LISTEN, cursor or session-level
    lock; transactions always end), and a connection that saw an error is released only when
    it is provably idle (``_Lease``), so there is nothing to reset."""


# Server errors that mean "this connection or server is not usable now": retry elsewhere or
# later. Class 08 (connection exception) is asyncpg.PostgresConnectionError.
_SERVER_GONE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,  # 57P01: terminated by an administrator, or server stopping
    asyncpg.CrashShutdownError,  # 57P02
    asyncpg.CannotConnectNowError,  # 57P03: starting up, shutting down, in recovery
    asyncpg.TooManyConnectionsError,  # 53300
    asyncpg.ReadOnlySQLTransactionError,  # 25006: a standby (after a failover)
)

# Client-side errors that mean the connection broke or is in a state we cannot trust.
_CONNECTION_BROKE: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,  # e.g. no host matched target_session_attrs
)


_CREATED_MEANWHILE = (
    asyncpg.UniqueViolationError,
    asyncpg.DuplicateSchemaError,
    asyncpg.DuplicateTableError,
)


def translate(exc: BaseException, what: str, timeout: float) -> StorageError:
    """The runstore error for anything the driver raised: the one translation path of this
    backend. ``what`` says what was under way ("connecting" or "statement") and ``timeout``
    is its time limit, for the message of a timeout."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, asyncpg.PostgresError):
        if exc.sqlstate == sql.INVALID_DATA:
            return InvalidDataError(str(exc.message), str(exc.detail))
        if exc.sqlstate is not None and exc.sqlstate.startswith("22"):  # data exception
            return InvalidDataError("value", f"PostgreSQL cannot take it: {exc}")
        if isinstance(exc, _SERVER_GONE):
            return StorageUnavailableError(f"PostgreSQL is unavailable: {_describe(exc)}")
        return StorageError(f"PostgreSQL error {exc.sqlstate}: {exc}")
    if isinstance(exc, asyncpg.exceptions._base.DataError):  # an argument it cannot encode
        return InvalidDataError("value", f"PostgreSQL cannot take it: {exc}")
    if isinstance(exc, asyncpg.exceptions.ClientConfigurationError):
        return StorageError(f"PostgreSQL connection settings: {exc}")
    if isinstance(exc, TimeoutError):
        if what == "connecting":
            return StorageUnavailableError(
                f"PostgreSQL is unavailable: no connection within connect_timeout={timeout} s"
            )
        return StorageError(
            f"PostgreSQL statement timed out: no answer within command_timeout={timeout} s "
            "(a lock wait or a slow statement); it was cancelled, so it may or may not "
            "have been applied"
        )
    if isinstance(exc, _CONNECTION_BROKE):
        return StorageUnavailableError(f"PostgreSQL is unavailable: {_describe(exc)}")
    return StorageError(f"PostgreSQL driver error: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _still_clean(conn: Any, exc: BaseException) -> bool:
    """Whether a connection that just saw ``exc`` is provably idle: the server answered with
    an ordinary statement error (or runstore refused a result), the connection is open and
    not inside a transaction. Anything else (a timeout, a cancellation, a broken or
    terminated connection, an error raised by the driver itself, such as an argument it
    cannot encode, which can leave the protocol mid-statement) and it is discarded."""
    ordinary = isinstance(exc, StorageError) or (
        isinstance(exc, asyncpg.PostgresError)
        and getattr(exc, "severity", None) is not None  # sent by the server
        and not isinstance(exc, _SERVER_GONE)
        and not isinstance(exc, asyncpg.QueryCanceledError)
    )
    return ordinary and not conn.is_closed() and not conn.is_in_transaction()


class _PoolerConnection(asyncpg.Connection):  # type: ignore[misc]
    """A connection to a transaction pooler, where a statement prepared in one transaction
    may not exist in the next (another server connection), so every statement is sent
    unnamed. asyncpg without a statement cache would describe each one first (Parse,
    Describe: a round trip) and then run it (Parse, Bind, Execute, Sync: a second one).
    This keeps each statement's description on the client, after the first use on this
    connection, so a call is the second round trip alone: the server parses the text
    again (as it would anyway), and the types and columns are those described before
    (runstore's statements name their columns; its migrations only add columns)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._described: dict[str, Any] = {}

    async def _get_statement(
        self,
        query: str,
        timeout: float | None,  # noqa: ASYNC109 (asyncpg's signature)
        *,
        named: bool | str | None = False,
        use_cache: bool = True,
        ignore_custom_codec: bool = False,
        record_class: Any = None,
    ) -> Any:
        if named or not use_cache or ignore_custom_codec or record_class is not None:
            return await super()._get_statement(
                query,
                timeout,
                named=named,
                use_cache=use_cache,
                ignore_custom_codec=ignore_custom_codec,
                record_class=record_class,
            )
        state = self._described.get(query)
        if state is None or state.closed:
            # Without a statement cache, asyncpg marks an unnamed statement "unprepared":
            # each run sends its Parse again, then Bind and Execute, with no wait between.
            state = await super()._get_statement(query, timeout, named=False, use_cache=False)
            if state.name or state.prepared:  # not what this relies on: no client cache
                return state
            self._described[query] = state
        return state

    def _drop_local_statement_cache(self) -> None:
        super()._drop_local_statement_cache()
        self._described.clear()


def one_dsn_per_host(dsn: str) -> list[str]:
    """A URL DSN that names several hosts (``postgresql://app@h1:5432,h2:5432/db?...``) as one
    DSN per host, in order; any other DSN as itself."""
    scheme, sep, rest = dsn.partition("://")
    netloc, slash, tail = rest.partition("/")
    user, at, hosts = netloc.rpartition("@")
    if not sep or "," not in hosts:
        return [dsn]
    return [f"{scheme}://{user}{at}{host}{slash}{tail}" for host in hosts.split(",")]


async def _connect_to_any(dsn: str, **options: Any) -> Any:
    """The pool's connect for a DSN of several hosts: every host at once, each with the whole
    ``timeout``, and the first that connects (and is read-write, if the DSN asks) is used.
    asyncpg alone tries them in order within one ``timeout``, so a host that swallows packets
    (cut off by the network, not refusing) would use it all and the next host, the new
    primary, would never be tried."""
    tries = [
        asyncio.ensure_future(asyncpg.connect(one, **options)) for one in one_dsn_per_host(dsn)
    ]
    chosen = None
    try:
        error: BaseException | None = None
        for attempt in asyncio.as_completed(tries):
            try:
                chosen = await attempt
                return chosen
            except Exception as exc:  # this host cannot serve; another may
                error = exc
        assert error is not None
        raise error
    finally:
        for attempt in tries:
            if not attempt.done():
                attempt.cancel()
            elif (
                not attempt.cancelled()
                and attempt.exception() is None
                and attempt.result() is not chosen
            ):
                attempt.result().terminate()  # a second host that answered too


def _tcp_options(network_timeout: float) -> list[tuple[int, int, int]]:
    """The socket options that make a connection to a server that stopped answering (cut off by
    the network, its host gone: packets swallowed, nothing refused) fail within about
    ``network_timeout`` seconds: unacknowledged data is given up after it (``TCP_USER_TIMEOUT``),
    and an idle connection or one waiting for an answer is probed by keepalives from half of it
    on (answered by the server's kernel, so a long statement of a live server is not cut).
    Options the platform lacks are left out."""
    idle = max(1, round(network_timeout / 2))
    interval = max(1, round(network_timeout / 6))
    wanted = [
        (socket.SOL_SOCKET, "SO_KEEPALIVE", 1),
        (socket.IPPROTO_TCP, "TCP_KEEPIDLE", idle),
        (socket.IPPROTO_TCP, "TCP_KEEPINTVL", interval),
        (socket.IPPROTO_TCP, "TCP_KEEPCNT", 3),  # where TCP_USER_TIMEOUT is missing
        (socket.IPPROTO_TCP, "TCP_USER_TIMEOUT", max(1, round(network_timeout * 1000))),
    ]
    return [(level, getattr(socket, name), v) for level, name, v in wanted if hasattr(socket, name)]


def _set_tcp_options(conn: Any, options: list[tuple[int, int, int]]) -> None:
    """Sets ``options`` on a new connection's socket (TCP only; a Unix socket has no peer
    that can vanish). asyncpg has no option for them, and the server's settings
    (``tcp_keepalives_idle`` ...) act on the server's end only."""
    sock = conn._transport.get_extra_info("socket")  # also under TLS: the TCP socket
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    for level, option, value in options:
        sock.setsockopt(level, option, value)


class _Unexpected(StorageError):
    """write_entries: an expected version did not hold (the transaction rolls back)."""


class _Lease:
    """``async with``: a pool connection for one call. On the way out, a connection that saw
    an error is released only when it is provably idle, else terminated (the pool opens a
    new one when next needed), and the error leaves as a runstore error (``translate``)."""

    __slots__ = ("_command_timeout", "_conn", "_connect_timeout", "_pool")

    def __init__(self, pool: asyncpg.Pool, connect_timeout: float, command_timeout: float):
        self._pool = pool
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout

    async def __aenter__(self) -> Any:
        # Waiting for a free connection is load, not an outage: it is bounded by
        # command_timeout (each busy call ends within it, or within network_timeout if its
        # server went silent); opening a new connection is bounded by connect_timeout.
        waiting = asyncio.timeout(self._command_timeout)
        try:
            async with waiting:
                self._conn = await self._pool.acquire()
        except TimeoutError as exc:
            if waiting.expired():
                raise StorageUnavailableError(
                    f"PostgreSQL is unavailable: no free connection within command_timeout="
                    f"{self._command_timeout} s (all max_connections={self._pool.get_max_size()}"
                    " busy); nothing was sent"
                ) from exc
            raise translate(exc, "connecting", self._connect_timeout) from exc
        except Exception as exc:
            raise translate(exc, "connecting", self._connect_timeout) from exc
        return self._conn

    async def __aexit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        conn = self._conn
        if exc is not None:
            try:
                if not _still_clean(conn, exc):
                    conn.terminate()  # also for a cancelled task: its statement may still run
            except asyncpg.InterfaceError:
                pass  # a connection that closed has released itself already
        try:
            await self._pool.release(conn)
        except Exception as release_error:  # the pool terminated it; nothing else to do
            if exc is None:
                error = translate(release_error, "statement", self._command_timeout)
                raise error from release_error
        if isinstance(exc, Exception) and not isinstance(exc, StorageError):
            error = translate(exc, "statement", self._command_timeout)
            raise error from (None if isinstance(error, InvalidDataError) else exc)


# Row readers, built once from the column descriptions: times come as datetimes already,
# payloads as JSON text.
_DECODE: dict[Kind, str] = {"json": "(None if {0} is None else _loads({0}))"}  # inline
_DECODERS = {"_loads": json.loads}
_ENCODE: dict[Kind, Callable[[Any, str], Any]] = {
    "json": lambda value, field: _payload(value, field)
}
_read = compile_readers(_DECODE, _DECODERS)
_chat = _read.chat  # the hot path's, one lookup less


class PostgresDataStorage(BatchPruner, DataStorage):
    """Stores everything in PostgreSQL (asyncpg), in ``schema`` (default ``runstore``; created
    if missing), so several apps can share one database.

    ``dsn_or_pool`` is a DSN (the store owns a pool and closes it; several hosts with
    ``target_session_attrs=read-write`` follow a failover) or an ``asyncpg.Pool`` (left open
    on ``close()``). ``pooler="transaction"`` is for a DSN that points at PgBouncer (or
    another pooler) in transaction mode: no prepared-statement cache. While the server is
    unreachable, calls raise ``StorageUnavailableError`` within ``connect_timeout`` seconds;
    a statement without an answer after ``command_timeout`` seconds is cancelled and raises
    ``StorageError``. A connection whose server stopped answering at the network level is
    closed after about ``network_timeout`` seconds (TCP keepalives and ``TCP_USER_TIMEOUT``;
    None: the operating system's defaults, many minutes) and its call raises
    ``StorageUnavailableError``. Once the server is back, the same store works again.
    """

    def __init__(
        self,
        dsn_or_pool: str | asyncpg.Pool,
        *,
        schema: str | None = None,
        connect_timeout: float = 5.0,
        command_timeout: float = 60.0,
        network_timeout: float | None = 10.0,
        max_connections: int = 10,
        pooler: str | None = None,
    ) -> None:
        super().__init__()
        self._sql = sql.Statements(DEFAULT_SCHEMA if schema is None else schema)
        if isinstance(dsn_or_pool, str):
            self._dsn: str | None = dsn_or_pool
            self._pool: asyncpg.Pool | None = None
        elif isinstance(dsn_or_pool, asyncpg.Pool):
            self._dsn = None
            self._pool = dsn_or_pool
        else:
            raise InvalidDataError("dsn_or_pool", "must be a DSN string or an asyncpg.Pool")
        if pooler not in POOLERS:
            raise InvalidDataError("pooler", f'must be None or "transaction", got {pooler!r}')
        if network_timeout is not None and not network_timeout > 0:
            raise InvalidDataError(
                "network_timeout", f"must be None or > 0, got {network_timeout!r}"
            )
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._tcp = [] if network_timeout is None else _tcp_options(network_timeout)
        self._max_connections = max_connections
        self._pooler = pooler
        self._ready = False
        self._starting: asyncio.Lock | None = None

    async def _open(self) -> None:
        await self._get_pool()

    # -- connection, migrations ------------------------------------------------

    async def _get_pool(self) -> asyncpg.Pool:
        """The pool, with the schema migrated (done once, on first use)."""
        if self._ready and self._pool is not None:
            return self._pool
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._pool is None:
                assert self._dsn is not None
                try:
                    self._pool = await asyncpg.create_pool(
                        self._dsn,
                        min_size=1,
                        max_size=self._max_connections,
                        timeout=self._connect_timeout,
                        command_timeout=self._command_timeout,
                        reset=_nothing_to_reset,
                        # Behind a transaction pooler, consecutive statements may reach
                        # different server connections: no named prepared statements.
                        statement_cache_size=0 if self._pooler else 100,
                        connection_class=_PoolerConnection if self._pooler else asyncpg.Connection,
                        connect=_connect_to_any if len(one_dsn_per_host(self._dsn)) > 1 else None,
                        init=self._init_connection if self._tcp else None,
                        # asyncpg asks for client_encoding 'utf-8' (quoted); the server
                        # reports UTF8, so PgBouncer, comparing the two, sent a SET
                        # client_encoding to the server before every transaction (a round
                        # trip between them on every call). Asking for UTF8 matches.
                        server_settings={"client_encoding": "UTF8"} if self._pooler else None,
                    )
                except Exception as exc:
                    raise translate(exc, "connecting", self._connect_timeout) from exc
            if not self._ready:
                await self._migrate(self._pool)
                self._ready = True
        return self._pool

    async def _init_connection(self, conn: Any) -> None:
        _set_tcp_options(conn, self._tcp)

    def _lease(self, pool: asyncpg.Pool) -> _Lease:
        return _Lease(pool, self._connect_timeout, self._command_timeout)

    async def _migrate(self, pool: asyncpg.Pool) -> None:
        """Apply the missing migrations, each in its own transaction, under a transaction-level
        advisory lock (fine behind a transaction pooler) so that processes starting together
        apply each one once."""
        q = self._sql
        latest = q.migrations[-1][0]
        async with self._lease(pool) as conn:
            try:
                if await conn.fetchval(q.applied_version) == latest:
                    return
            except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
                pass
            for version, migration in q.migrations:
                for attempt in range(3):
                    try:
                        await self._apply(conn, version, migration, latest)
                        break
                    except _CREATED_MEANWHILE:
                        # A store that waited on the lock while another created the schema
                        # may still not see it ("already exists"; seen behind PgBouncer:
                        # the server connection's catalog cache lags). A new transaction
                        # does see it.
                        if attempt == 2:
                            raise

    async def _apply(self, conn: Any, version: int, migration: str, latest: int) -> None:
        q = self._sql
        async with conn.transaction():
            await conn.execute(q.migration_lock, q.schema)
            await conn.execute(q.migrations_table)
            applied = await conn.fetchval(q.applied_version)
            if applied > latest:
                raise StorageError(
                    f"schema {q.schema!r} is at version {applied}; this runstore "
                    f"knows versions up to {latest}: upgrade runstore"
                )
            if applied < version:
                await conn.execute(migration)
                if version == sql.SEARCH_VERSION:  # index the messages stored before
                    rows = await conn.fetch(q.search_backfill_read)
                    await conn.executemany(
                        q.search_backfill_write,
                        [(row[0], row[1], index_terms(row[2]) or None) for row in rows],
                    )
                if version == sql.ENTRY_SEARCH_VERSION:  # and the entries
                    rows = await conn.fetch(q.entry_search_backfill_read)
                    await conn.executemany(
                        q.entry_search_backfill_write,
                        [(row[0], row[1], _terms(load_json(row[2]))) for row in rows],
                    )
                await conn.execute(q.record_migration, version)

    async def _fetch(self, query: str, *args: Any) -> list[Any]:
        pool = self._pool if self._ready and self._pool is not None else await self._get_pool()
        async with _Lease(pool, self._connect_timeout, self._command_timeout) as conn:
            rows: list[Any] = await conn.fetch(query, *args)
        return rows

    async def _fetchrow(self, query: str, *args: Any) -> Any:
        pool = self._pool if self._ready and self._pool is not None else await self._get_pool()
        async with _Lease(pool, self._connect_timeout, self._command_timeout) as conn:
            return await conn.fetchrow(query, *args)

    async def _fetchval(self, query: str, *args: Any) -> Any:
        pool = self._pool if self._ready and self._pool is not None else await self._get_pool()
        async with _Lease(pool, self._connect_timeout, self._command_timeout) as conn:
            return await conn.fetchval(query, *args)

    async def _close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None or self._dsn is None:
            return  # a pool we were given stays open
        try:
            await asyncio.wait_for(pool.close(), self._connect_timeout)
        except Exception:  # a timeout or a broken connection: no clean goodbye then
            pool.terminate()

    # -- runs ------------------------------------------------------------------

    async def _initialize_run(self, request: calls.NewRun) -> RunHandle:
        metadata = () if request.session_metadata is None else (request.session_metadata,)
        agent_id, session_id = await self._fetchrow(
            self._sql.initialize_run_with_metadata if metadata else self._sql.initialize_run,
            request.workflow_name,
            request.description,
            to_jsonb(request.input_schema),
            to_jsonb(request.output_schema),
            to_jsonb(request.workflow),
            request.session_id,
            request.external_id,
            to_jsonb(request.input_data),
            request.now,
            request.new_agent_id,
            request.new_session_id,
            request.new_run_id,
            *map(to_jsonb, metadata),
        )
        return RunHandle(agent_id, session_id, request.new_run_id)

    async def _update_run(self, update: calls.RunUpdate) -> None:
        done = await self._fetchval(
            self._sql.update_run,
            update.run_id,
            to_jsonb(update.output_data),
            to_jsonb(update.context),
            update.duration_seconds,
            update.now,
        )
        if done is None:
            raise NotFoundError("run_id", update.run_id)

    async def _get_run(self, run_id: str) -> RunRecord | None:
        row = await self._fetchrow(self._sql.get_run, run_id)
        return None if row is None else _read.runs([row])[0]

    async def _list_runs(self, session_id: str) -> list[RunRecord]:
        return _read.runs(await self._fetch(self._sql.list_runs, session_id))

    async def _save_state(self, run_id: str, state: str, now: datetime) -> None:
        if await self._fetchval(self._sql.save_state, run_id, to_jsonb(state), now) is None:
            raise NotFoundError("run_id", run_id)

    async def _load_state(self, run_id: str) -> str | None:
        state: str | None = await self._fetchval(self._sql.load_state, run_id)
        return state

    # -- chat ------------------------------------------------------------------

    async def _add_chat_message_with(
        self, message: calls.MessageCall, options: calls.MessageOptions
    ) -> ChatMsg:
        agent_id, session_id, run_id, role, content, now = message
        metadata, token_count, idempotency_key = options
        q = self._sql
        args = (agent_id, session_id, run_id, role, content, now, to_jsonb(metadata), token_count)
        terms = index_terms(content) or None
        stored = None
        if idempotency_key is None:
            seq, session_agent, run_session = await self._fetchrow(
                q.add_message, *args, None, terms
            )
        else:
            seq, session_agent, run_session, stored = await self._add_keyed(
                args, idempotency_key, terms
            )
        if seq is not None:
            return ChatMsg(role, content, seq, run_id, now, load_json(metadata), token_count)
        refuse_message(agent_id, session_id, run_id, session_agent, run_session)
        if stored is not None:
            [first] = _chat([stored])
            check_repeat(repeat_fields(first), (role, content, run_id, metadata, token_count))
            return first
        raise NotFoundError("session_id", session_id)  # deleted meanwhile

    async def _add_keyed(
        self, args: tuple[Any, ...], key: str, terms: list[str] | None
    ) -> tuple[Any, Any, Any, Any]:
        """A keyed add: a repeat is one read (a stored message never changes), a first add that
        read and one statement, with no transaction around them. Of two adds of one key at
        once, the unique index on (session, key) lets one in; the other's statement fails
        whole (it takes no seq) and it reads what the first stored. Returns the seq (None if
        nothing was added), the session's agent and the run's session, and the stored row."""
        q = self._sql
        session_id, run_id = args[1], args[2]
        for _ in range(3):  # again only if the stored message was removed meanwhile
            found = await self._fetchrow(q.repeated_message, session_id, key, run_id)
            if found is not None:
                session_agent, run_session, *stored, _ = found  # _: REPEATED_MESSAGE's xid
                return None, session_agent, run_session, stored
            try:
                row = await self._fetchrow(q.add_message, *args, key, terms)
            except StorageError as exc:
                cause = exc.__cause__
                if not isinstance(cause, asyncpg.UniqueViolationError):
                    raise
                if cause.constraint_name != "messages_by_key":
                    raise
                continue
            return (*row, None)
        raise StorageError(
            f"idempotency_key {quote(key)}: its message was added and removed concurrently, "
            "three times; try again"
        )

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Any]:
        """A connection inside a transaction (errors leave as runstore errors)."""
        async with self._lease(await self._get_pool()) as conn, conn.transaction():
            yield conn

    async def _pop_message(self, session_id: str, now: datetime) -> ChatMsg | None:
        async with self._transaction() as conn:
            if await conn.fetchval(self._sql.lock_session, session_id) is None:
                raise NotFoundError("session_id", session_id)
            row = await conn.fetchrow(self._sql.pop_message, session_id, now)
        return None if row is None else _chat([row])[0]

    async def _truncate_history(self, session_id: str, after_seq: int, now: datetime) -> int:
        async with self._transaction() as conn:
            if await conn.fetchval(self._sql.lock_session, session_id) is None:
                raise NotFoundError("session_id", session_id)
            count: int = await conn.fetchval(self._sql.truncate_history, session_id, after_seq, now)
        return count

    async def _replace_history(self, change: calls.HistoryReplacement) -> list[ChatMsg] | None:
        session_id, after_seq, messages, if_newest_seq, now, drop_through_seq = change
        if messages and after_seq is None and if_newest_seq is None and drop_through_seq is None:
            appended = await self._append(session_id, messages, now)
            if appended is not None:
                return appended
        q = self._sql
        async with self._transaction() as conn:
            agent_id = await conn.fetchval(q.lock_session_agent, session_id)
            if agent_id is None:
                raise NotFoundError("session_id", session_id)
            for run_id in {run_id for _, _, run_id, _, _ in messages}:
                if run_id is not None:
                    owners = await conn.fetchrow(q.message_owners, session_id, run_id)
                    refuse_message(agent_id, session_id, run_id, *owners)
            if (
                if_newest_seq is not None
                and await conn.fetchval(q.newest_message_seq, session_id) != if_newest_seq
            ):
                return None
            if after_seq is not None:
                await conn.fetchval(q.truncate_history, session_id, after_seq, now)
            if drop_through_seq is not None:
                await conn.fetchval(q.drop_history_through, session_id, drop_through_seq, now)
            stored = []
            for role, content, run_id, metadata, token_count in messages:
                seq, _, _ = await conn.fetchrow(
                    q.add_message,
                    agent_id,
                    session_id,
                    run_id,
                    role,
                    content,
                    now,
                    to_jsonb(metadata),
                    token_count,
                    None,
                    index_terms(content) or None,
                )
                loaded = load_json(metadata)
                stored.append(ChatMsg(role, content, seq, run_id, now, loaded, token_count))
        return stored

    async def _append(
        self, session_id: str, messages: list[calls.NewMessage], now: datetime
    ) -> list[ChatMsg] | None:
        """``add_chat_messages`` in one statement. None: refused (a missing session, a run not
        of it), nothing stored; the general path then says why."""
        roles, contents, run_ids, metadata, token_counts = zip(*messages, strict=True)
        terms = [" ".join(index_terms(content) or ()) or None for content in contents]
        last = await self._fetchval(
            self._sql.append_messages,
            session_id,
            run_ids,
            roles,
            contents,
            now,
            [to_jsonb(text) for text in metadata],
            token_counts,
            terms,
        )
        if last is None:
            return None
        first = last - len(messages) + 1
        return [
            chat_msg((role, content, seq, run_id, now, load_json(meta), count))
            for seq, (role, content, run_id, meta, count) in enumerate(messages, first)
        ]

    async def _fork_session(self, request: calls.NewFork) -> SessionRecord:
        through = _MAX_SEQ if request.through_seq is None else request.through_seq
        agent_id, fork_id, external_id, newest, metadata = await self._fetchrow(
            self._sql.fork_session,
            request.session_id,
            through,
            request.new_session_id,
            request.external_id,
            request.now,
        )
        if agent_id is None:
            raise NotFoundError("session_id", request.session_id)
        if fork_id is None:
            raise InvalidDataError(
                "new_session_id", f"{quote(request.new_session_id)} exists already"
            )
        return SessionRecord(
            fork_id,
            agent_id,
            external_id,
            request.now,
            request.now,
            request.session_id,
            newest,
            json.loads(metadata),
        )

    async def _get_chat_history(
        self, session_id: str, limit: int | None, exclude_run_id: str | None
    ) -> list[ChatMsg]:
        if exclude_run_id is None:
            rows = await self._fetch(self._sql.history, session_id, limit)
        else:
            rows = await self._fetch(
                self._sql.history_excluding_run, session_id, limit, exclude_run_id
            )
        return _chat(reversed(rows))

    async def _get_chat_window(self, window: calls.HistoryWindow) -> list[ChatMsg]:
        session_id, limit, exclude_run_id, max_chars, max_tokens = window
        query, params = self._sql.history_within, (exclude_run_id, max_chars, max_tokens, limit)
        return newest_within(
            _chat(await self._fetch(query, session_id, *params)), None, max_chars, max_tokens
        )

    async def _get_chat_history_after(
        self, session_id: str, after_seq: int, limit: int | None
    ) -> list[ChatMsg]:
        return _chat(await self._fetch(self._sql.history_after, session_id, after_seq, limit))

    # -- search ----------------------------------------------------------------

    async def _search_candidates(
        self, search: calls.MessageSearch
    ) -> list[tuple[str | None, Any, int, str, tuple[ChatMsg, SessionRecord]]]:
        rows = await self._fetch(
            self._sql.search, search.terms, search.session_id, search.agent_id, search.external_id
        )
        width = len(CHAT.names)
        messages = _chat([row[:width] for row in rows])
        sessions = _read.sessions([row[width:] for row in rows])
        return [
            (m.content, m.created_at, m.seq or 0, s.id, (m, s))
            for m, s in zip(messages, sessions, strict=True)
        ]

    # -- agents and sessions ---------------------------------------------------

    async def _list_agents(self) -> list[AgentRecord]:
        return _read.agents(await self._fetch(self._sql.list_agents))

    async def _get_session(self, session_id: str) -> SessionRecord | None:
        row = await self._fetchrow(self._sql.get_session, session_id)
        return None if row is None else _read.sessions([row])[0]

    async def _list_sessions(self, query: calls.SessionQuery) -> list[SessionRecord]:
        statement = self._sql.list_sessions[query.filters]
        return _read.sessions(await self._fetch(statement, query.limit, *query.given))

    async def _update_session(self, session_id: str, metadata: str) -> SessionRecord:
        row = await self._fetchrow(self._sql.update_session, session_id, to_jsonb(metadata))
        if row is None:
            raise NotFoundError("session_id", session_id)
        return _read.sessions([row])[0]

    async def _delete_session(self, session_id: str) -> None:
        if await self._fetchval(self._sql.delete_session, session_id) is None:
            raise NotFoundError("session_id", session_id)

    async def _delete_agent(self, workflow_name: str) -> None:
        if await self._fetchval(self._sql.delete_agent, workflow_name) is None:
            raise NotFoundError("workflow_name", workflow_name)

    async def _delete_sessions(self, external_id: str) -> int:
        count: int = await self._fetchval(self._sql.delete_sessions, external_id)
        return count

    async def _purge_sessions(self, older_than: datetime) -> int:
        count: int = await self._fetchval(self._sql.purge_sessions, older_than)
        return count

    # -- export / import -------------------------------------------------------

    @asynccontextmanager
    async def _export_source(self, session_id: str | None) -> AsyncIterator[ExportSource]:
        """Pages read in one repeatable-read transaction: a snapshot of the store."""
        async with (
            self._lease(await self._get_pool()) as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield _Source(conn, self._sql.export, session_id)

    @asynccontextmanager
    async def _import_sink(self) -> AsyncIterator[ImportSink]:
        async with self._lease(await self._get_pool()) as conn:
            try:
                async with conn.transaction():
                    yield _Sink(conn, self._sql)
            except asyncpg.UniqueViolationError as exc:  # a concurrent writer took an id
                detail = f"an id or name exists already: {exc.detail}"
                raise InvalidDataError("records", detail) from None

    # -- lifecycle (the rules: _lifecycle) --------------------------------------

    async def _erase(self, external_id: str, now: datetime) -> ErasureReport:
        row = await self._fetchrow(self._sql.lifecycle["erase"], external_id, now)
        return ErasureReport(*row)

    async def _count_stats(
        self, external_id: str | None, agent_id: str | None, now: datetime
    ) -> StoreStats:
        given: list[object] = [value for value in (external_id, agent_id) if value is not None]
        if agent_id is None or external_id is not None:
            given.append(now)  # entries are counted: those live now
        statement = self._sql.lifecycle[f"stats {external_id is not None} {agent_id is not None}"]
        sessions, runs, messages, chars, entries, size = await self._fetchrow(statement, *given)
        return StoreStats(sessions, runs, messages, entries, chars + size)

    async def _prune_idle_batch(self, idle_before: datetime, limit: int) -> tuple[int, int, int]:
        row = await self._fetchrow(self._sql.lifecycle["prune_idle"], idle_before, limit)
        return row[0], row[1], row[2]

    async def _prune_cutoffs(
        self, after_id: str, keep_last: int, limit: int
    ) -> list[tuple[str, int | None]]:
        rows = await self._fetch(self._sql.lifecycle["prune_cutoffs"], after_id, keep_last, limit)
        return [(row[0], row[1]) for row in rows]

    async def _prune_messages_batch(self, session_id: str, through_seq: int, limit: int) -> int:
        q = self._sql.lifecycle["prune_messages"]
        removed: int = await self._fetchval(q, session_id, through_seq, limit)
        return removed

    async def _prune_expired_batch(self, now: datetime, limit: int) -> int:
        removed: int = await self._fetchval(self._sql.lifecycle["prune_expired"], now, limit)
        return removed

    # -- entries ---------------------------------------------------------------

    async def _put_entries(
        self, scope: str, rows: list[EntryRow], only_if_absent: bool, now: datetime
    ) -> int:
        written: int = await self._fetchval(
            self._sql.entries["put_if_absent" if only_if_absent else "put"],
            scope,
            [r.key for r in rows],
            [to_jsonb(r.value) for r in rows],
            [r.data for r in rows],
            [r.tag for r in rows],
            now,
            [r.owner for r in rows],
            [r.expires_at for r in rows],
            [_joined_terms(r.value) for r in rows],
        )
        return written

    async def _get_entry(self, scope: str, key: str, now: datetime) -> Entry | None:
        row = await self._fetchrow(self._sql.entries["get"], scope, key, now)
        return None if row is None else _read.entries([row])[0]

    async def _list_entries(
        self, scope: str, bounds: KeyRange, reverse: bool, limit: int | None, now: datetime
    ) -> list[Entry]:
        statement = self._sql.entries[f"list {bounds.upper is not None} {reverse}"]
        rows = await self._fetch(statement, *bounds.params(scope), limit, now)
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
        args: tuple[Any, ...] = (scope, key, to_jsonb(patch), now, owner, _text_terms(patch))
        if expect_version is None:
            row = await self._fetchrow(self._sql.entries["merge"], *args)
        elif expect_version == 0:
            row = await self._fetchrow(self._sql.entries["merge_if_absent"], *args)
        else:
            row = await self._fetchrow(self._sql.entries["merge_if_version"], *args, expect_version)
        return None if row is None else _read.entries([row])[0]

    async def _write_entries(
        self, scope: str, ops: list[EntryRow | PatchRow], expect: dict[str, int], now: datetime
    ) -> list[Entry] | None:
        q = self._sql.entries
        try:
            async with self._transaction() as conn:
                touched = sorted({*expect, *(op.key for op in ops)})
                await conn.execute(q["drop_expired"], scope, touched, now)
                claimed = set()
                for key in sorted(expect):  # one order, so two writers cannot deadlock
                    if await conn.fetchval(q["claim"], scope, key, now):
                        claimed.add(key)
                        version = 0
                    else:
                        version = await conn.fetchval(q["lock"], scope, key) or 0
                    if version != expect[key]:
                        raise _Unexpected
                rows = []
                for op in ops:
                    args: tuple[Any, ...]
                    if isinstance(op, PatchRow):
                        args = (scope, op.key, to_jsonb(op.patch), now, op.owner)
                        args += (_text_terms(op.patch),)
                        rows.append(await conn.fetchrow(q["merge"], *args))
                    else:
                        args = (scope, op.key, to_jsonb(op.value), op.data, op.tag, now)
                        args += (op.owner, op.expires_at, _text_terms(op.value))
                        rows.append(await conn.fetchrow(q["put_one"], *args))
                unused = sorted(claimed - {op.key for op in ops})
                if unused:
                    await conn.execute(q["drop_claims"], scope, unused)
        except _Unexpected:
            return None  # rolled back: the claims are gone
        return _read.entries(rows)

    async def _delete_entries(
        self, scope: str, bounds: KeyRange, tags: list[str] | None, now: datetime | None = None
    ) -> int:
        statement = self._sql.entries[f"delete {bounds.upper is not None} {tags is not None}"]
        args: tuple[Any, ...] = bounds.params(scope) + (() if tags is None else (tags,))
        args += (datetime.min.replace(tzinfo=UTC) if now is None else now,)
        deleted: int = await self._fetchval(statement, *args)
        return deleted

    async def _copy_entries(self, copy: EntryCopy) -> int:
        scope, bounds, prefix, to_scope, to_prefix, now = copy
        bounded = bounds.upper is not None
        args = (*bounds.params(scope), to_scope, to_prefix, len(prefix), now)
        target = key_range(to_prefix, None, None)
        q = self._sql.entries
        async with self._transaction() as conn:
            await conn.execute(
                q[f"drop_expired {target.upper is not None}"], *target.params(to_scope), now
            )
            longest = await conn.fetchval(q[f"longest {bounded}"], *bounds.params(scope), now)
            refuse_long_copies(longest, copy)
            copied: int = await conn.fetchval(q[f"copy {bounded}"], *args)
        return copied

    async def _search_entry_candidates(self, search: EntrySearch) -> list[Entry]:
        scope, terms, bounds, owner, now = search
        rows = await self._fetch(
            self._sql.entries["search"], scope, terms, bounds.lower, bounds.upper, owner, now
        )
        return _read.entries(rows)

    async def _refresh_entries(
        self, scope: str, keys: list[str], expires_at: datetime | None, now: datetime
    ) -> int:
        refreshed: int = await self._fetchval(
            self._sql.entries["refresh"], scope, keys, now, expires_at
        )
        return refreshed


class _Source:
    """Pages of an export, read with keyset pagination in one transaction."""

    def __init__(self, conn: Any, statements: dict[str, str], session_id: str | None) -> None:
        self._conn = conn
        self._sql = statements
        self._session_id = session_id

    def pages(self, kind: str) -> AsyncIterator[list[Any]]:
        fetch: Callable[[Any], Any] = getattr(self, f"_{kind}")
        return keyset_pages(fetch, _KEYS[kind])

    async def _rows(self, name: str, after: tuple[Any, ...]) -> list[Any]:
        if self._session_id is None:
            return await self._conn.fetch(self._sql[name], *after, BATCH)  # type: ignore[no-any-return]
        statement = self._sql[f"session {name}"]
        return await self._conn.fetch(statement, self._session_id, *after[1:], BATCH)  # type: ignore[no-any-return]

    async def _one(self, name: str, after: Any) -> list[Any]:
        if after is not None:
            return []
        return await self._conn.fetch(self._sql[name], self._session_id)  # type: ignore[no-any-return]

    async def _agent(self, after: Any) -> list[AgentRecord]:
        if self._session_id is not None:
            return _read.agents(await self._one("session agent", after))
        return _read.agents(await self._conn.fetch(self._sql["agents"], after or "", BATCH))

    async def _session(self, after: Any) -> list[tuple[SessionRecord, int]]:
        if self._session_id is not None:
            return _read.sessions_with_last_seq(await self._one("session", after))
        rows = await self._conn.fetch(self._sql["sessions"], after or "", BATCH)
        return _read.sessions_with_last_seq(rows)

    async def _run(self, after: Any) -> list[tuple[RunRecord, str | None]]:
        return _read.runs_with_state(await self._rows("runs", after or ("", _EPOCH, "")))

    async def _message(self, after: Any) -> list[MessageRow]:
        return _read.messages(await self._rows("messages", after or ("", 0)))

    async def _entry(self, after: Any) -> list[Entry]:
        if self._session_id is not None:
            return []
        now = datetime.now(UTC)  # entries expired by now are left out
        rows = await self._conn.fetch(self._sql["entries"], *(after or ("", "")), now, BATCH)
        return _read.entries(rows)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KEYS: dict[str, Callable[[Any], Any]] = {
    "agent": lambda agent: agent.name,
    "session": lambda row: row[0].id,
    "run": lambda row: (row[0].session_id, row[0].created_at, row[0].id),
    "message": lambda message: (message.session_id, message.seq),
    "entry": lambda entry: (entry.scope, entry.key),
}


class _Sink:
    """Writes an import in the transaction of ``_import_sink``."""

    def __init__(self, conn: Any, statements: sql.Statements) -> None:
        self._conn = conn
        self._sql = statements

    async def taken(self, ids: Ids) -> Ids:
        agents, sessions, runs, names, entries = await self._conn.fetchrow(
            self._sql.taken_ids,
            ids.agents,
            ids.sessions,
            ids.runs,
            ids.agent_names,
            [scope for scope, _ in ids.entries],
            [key for _, key in ids.entries],
            datetime.now(UTC),
        )
        return Ids(
            agents=list(agents),
            sessions=list(sessions),
            runs=list(runs),
            entries=[ids.entries[n - 1] for n in entries],
            agent_names=list(names),
        )

    async def write(self, batch: Batch) -> None:
        q = self._sql
        for statement, rows in (
            (q.import_agent, [encode_row(AGENTS, a, _ENCODE) for a in batch.agents]),
            (
                q.import_session,
                [(*encode_row(SESSIONS, s, _ENCODE), seq) for s, seq in batch.sessions],
            ),
            (
                q.import_run,
                [(*encode_row(RUNS, r, _ENCODE), to_jsonb(state)) for r, state in batch.runs],
            ),
            (
                q.import_entry,
                [(*encode_row(ENTRIES, e, _ENCODE), _terms(e.value)) for e in batch.entries],
            ),
        ):
            if rows:
                await self._conn.executemany(statement, rows)
        if batch.messages:  # the bulk: COPY (binary), several times faster than INSERTs
            await self._conn.copy_records_to_table(
                MESSAGES.name,
                schema_name=q.schema,
                columns=(*MESSAGES.names, "terms"),  # and each one's search terms
                records=[
                    (*encode_row(MESSAGES, m, _ENCODE), index_terms(m.content) or None)
                    for m in batch.messages
                ],
            )
            counts: dict[str, list[int]] = {}
            for m in batch.messages:
                count = counts.setdefault(m.session_id, [0, 0])
                count[0] += 1
                count[1] += utf8_size(m.content)
            await self._conn.execute(
                q.count_imported,
                list(counts),
                [n for n, _ in counts.values()],
                [size for _, size in counts.values()],
            )


def _terms(value: dict[str, Any] | None) -> list[str] | None:
    """An entry's search terms as stored (None: it has none)."""
    return entry_terms(value) or None


def _text_terms(text: str | None) -> list[str] | None:
    """The search terms of an entry's value (or a patch) given as JSON text."""
    return None if text is None else _terms(load_json(text))


def _joined_terms(text: str | None) -> str | None:
    """``_text_terms`` joined by spaces, as a put of many entries sends them."""
    found = _text_terms(text)
    return None if found is None else " ".join(found)


def _payload(value: dict[str, Any] | None, field: str) -> str | None:
    return to_jsonb(dump_optional(value, field))
