"""PostgreSQL-specific behaviour: schemas, pools, migrations, numbers, indexes, no server."""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pg_helpers import server
from pg_server import free_port, shared_dsn

from runstore import (
    InvalidDataError,
    PostgresDataStorage,
    StorageClosedError,
    StorageError,
    StorageUnavailableError,
)
from runstore._postgres_sql import MIGRATIONS, Statements


@pytest.mark.parametrize("bad", ["", "1abc", 'x"; DROP TABLE agents; --', "a-b", "é", "x" * 64])
def test_schema_must_be_a_plain_identifier(bad: str) -> None:
    dsn = shared_dsn()
    with pytest.raises(InvalidDataError) as caught:
        PostgresDataStorage(dsn, schema=bad)
    assert caught.value.field == "schema"


async def test_schemas_keep_apps_apart_and_stores_on_one_schema_share() -> None:
    dsn, schema = server()
    async with (
        PostgresDataStorage(dsn, schema=schema) as first,
        PostgresDataStorage(dsn, schema=schema + "_other") as other,
        PostgresDataStorage(dsn, schema=schema) as same,
    ):
        run = await first.initialize_run(workflow_name="chat", session_id="s")
        await first.add_chat_message(
            agent_id=run.agent_id, session_id="s", run_id=None, role="user", content="hi"
        )
        assert await other.list_sessions() == []
        assert await other.get_chat_history("s") == []
        assert [m.content for m in await same.get_chat_history("s")] == ["hi"]
        assert await same.list_agents() == await first.list_agents()


async def test_a_given_pool_is_used_and_left_open() -> None:
    dsn, schema = server()
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        store = PostgresDataStorage(pool, schema=schema)
        await store.initialize_run(workflow_name="chat")
        await store.close()
        assert await pool.fetchval(f'SELECT count(*) FROM "{schema}".agents') == 1
    finally:
        await pool.close()


def test_dsn_or_pool_is_checked() -> None:
    with pytest.raises(InvalidDataError) as caught:
        PostgresDataStorage(42)  # type: ignore[arg-type]
    assert caught.value.field == "dsn_or_pool"


async def test_reopening_a_schema_keeps_data_and_migrations() -> None:
    dsn, schema = server()
    async with PostgresDataStorage(dsn, schema=schema) as store:
        run = await store.initialize_run(workflow_name="chat")
    async with PostgresDataStorage(dsn, schema=schema) as store:
        assert (await store.get_run(run.run_id)) is not None
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(f'SELECT version FROM "{schema}".runstore_migrations')
        finally:
            await conn.close()
        assert [row[0] for row in rows] == [version for version, _ in MIGRATIONS]


async def test_a_schema_from_a_newer_runstore_is_refused() -> None:
    dsn, schema = server()
    async with PostgresDataStorage(dsn, schema=schema) as store:
        await store.list_agents()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'INSERT INTO "{schema}".runstore_migrations (version) VALUES (999)')
    finally:
        await conn.close()
    refused = PostgresDataStorage(dsn, schema=schema)
    with pytest.raises(StorageError, match="version 999"):
        async with refused:  # refused on entry, not at the first call
            pass
    with pytest.raises(StorageClosedError):  # and closed again
        await refused.list_agents()
    lazy = PostgresDataStorage(dsn, schema=schema)
    with pytest.raises(StorageError, match="version 999"):
        await lazy.list_agents()
    await lazy.close()


async def test_no_server_raises_storage_error_and_nothing_is_left_open() -> None:
    store = PostgresDataStorage(
        f"postgresql://nobody@127.0.0.1:{free_port()}/db", connect_timeout=2.0
    )
    for _ in range(2):  # and again: the store keeps trying, it does not get stuck
        with pytest.raises(StorageUnavailableError, match="PostgreSQL is unavailable"):
            await store.initialize_run(workflow_name="chat")
    await store.close()


def _bits(value: Any) -> Any:
    """Floats compared bit for bit (the sign of zero excepted, as the contract says)."""
    if isinstance(value, float):
        return ("float", struct.pack(">d", value) if value != 0 else 0)
    if isinstance(value, dict):
        return {k: _bits(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_bits(v) for v in value]
    return (type(value).__name__, value)


# Payload integers are 64-bit (docs/contract.md, Limits).
NUMBERS = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**63), 2**63 - 1)


async def test_numbers_round_trip_exactly_through_jsonb() -> None:
    dsn, schema = server()
    async with PostgresDataStorage(dsn, schema=schema) as store:
        extremes = [5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
                    -1.7976931348623157e308, 1e16, 1e22, 123456789.0, 0.1, 2**53 + 1.0,
                    2**63 - 1, -(2**63), 2**53 + 1]  # fmt: skip
        payloads: list[dict[str, Any]] = [{"x": extremes, "e+ in a key": {"1e+5": 1e5}}]

        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
        @given(st.dictionaries(st.text(max_size=4).filter(lambda s: "\x00" not in s),
                               st.lists(NUMBERS, max_size=4) | NUMBERS, max_size=4))  # fmt: skip
        def collect(payload: dict[str, Any]) -> None:
            payloads.append(payload)

        collect()  # Hypothesis draws the payloads; the store is then checked on each
        for payload in payloads:
            run = await store.initialize_run(workflow_name="numbers", input_data=payload)
            record = await store.get_run(run.run_id)
            assert record is not None
            assert _bits(record.input_data) == _bits(payload)


async def test_contract_reads_use_indexes() -> None:
    """With sequential scans priced out, every hot read still finds an index plan."""
    dsn, schema = server()
    async with PostgresDataStorage(dsn, schema=schema) as store:
        run = await store.initialize_run(workflow_name="chat", external_id="u")
        for i in range(3):
            await store.add_chat_message(
                agent_id=run.agent_id,
                session_id=run.session_id,
                run_id=run.run_id,
                role="user",
                content=str(i),
            )
    q = Statements(schema)
    reads: list[tuple[str, list[Any]]] = [
        (q.history, [run.session_id, 50]),
        (q.history_excluding_run, [run.session_id, 50, run.run_id]),
        (q.get_run, [run.run_id]),
        (q.list_runs, [run.session_id]),
        (q.get_session, [run.session_id]),
        (q.load_state, [run.run_id]),
        (q.list_sessions[(False, False, False)], [50]),
        (q.list_sessions[(True, False, False)], [50, "chat"]),
        (q.list_sessions[(False, True, False)], [50, "u"]),
        (q.list_sessions[(True, True, True)], [50, "chat", "u", run.session_id]),
        (q.list_sessions[(False, False, True)], [50, run.session_id]),
        (q.purge_sessions, [datetime(2000, 1, 1, tzinfo=UTC)]),
    ]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SET enable_seqscan = off")
        for statement, args in reads:
            plan = "\n".join(row[0] for row in await conn.fetch("EXPLAIN " + statement, *args))
            assert "Seq Scan" not in plan, f"{statement}\n{plan}"
    finally:
        await conn.close()


async def test_default_schema_is_runstore() -> None:
    dsn = shared_dsn()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP SCHEMA IF EXISTS runstore CASCADE")
        async with PostgresDataStorage(dsn) as store:
            await store.initialize_run(workflow_name="default schema")
        assert await conn.fetchval("SELECT name FROM runstore.agents") == "default schema"
        await conn.execute("DROP SCHEMA runstore CASCADE")
    finally:
        await conn.close()


async def test_a_version_1_schema_is_upgraded_with_its_messages() -> None:
    """Version 2 renamed chat_messages to messages (the SQLite name): nothing is lost."""
    dsn, schema = server()
    q = Statements(schema)
    when = datetime(2024, 1, 1, tzinfo=UTC)
    conn = await asyncpg.connect(dsn)
    try:
        version, v1 = q.migrations[0]
        await conn.execute(q.migrations_table)
        await conn.execute(v1)
        await conn.execute(q.record_migration, version)
        await conn.execute(
            f'INSERT INTO "{schema}".agents (id, name, created_at, updated_at)'
            " VALUES ('a', 'chat', $1, $1)",
            when,
        )
        await conn.execute(
            f'INSERT INTO "{schema}".sessions (id, agent_id, last_seq, created_at, updated_at)'
            " VALUES ('s', 'a', 1, $1, $1)",
            when,
        )
        await conn.execute(
            f'INSERT INTO "{schema}".chat_messages'
            " (session_id, seq, agent_id, role, content, created_at)"
            " VALUES ('s', 1, 'a', 'user', 'kept', $1)",
            when,
        )
    finally:
        await conn.close()
    async with PostgresDataStorage(dsn, schema=schema) as store:
        added = await store.add_chat_message(
            agent_id="a", session_id="s", run_id=None, role="user", content="new"
        )
        history = await store.get_chat_history("s")
    assert added.seq == 2
    assert [(m.seq, m.content, m.created_at) for m in history] == [
        (1, "kept", when),
        (2, "new", added.created_at),
    ]
