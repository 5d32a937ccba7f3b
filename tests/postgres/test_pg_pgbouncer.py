"""Through a real PgBouncer in transaction pooling mode (the whole contract suite runs through it
as the backend ``postgres-pgbouncer``; these tests check what the suite cannot see)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from pg_helpers import new_schema, pgbouncer_console
from pg_server import shared_dsn, shared_pgbouncer_dsn

from runstore import InvalidDataError, PostgresDataStorage
from runstore._postgres_sql import MIGRATIONS

ROUNDS = 8


def transactions_through(dsn: str) -> int:
    stats = pgbouncer_console(dsn, "SHOW STATS")
    return sum(int(row["total_xact_count"]) for row in stats if row["database"] == "postgres")


async def test_the_store_goes_through_pgbouncer_in_transaction_mode() -> None:
    dsn = shared_pgbouncer_dsn()
    config = {row["key"]: row["value"] for row in pgbouncer_console(dsn, "SHOW CONFIG")}
    assert config["pool_mode"] == "transaction"
    before = transactions_through(dsn)
    async with PostgresDataStorage(dsn, schema=new_schema(), pooler="transaction") as store:
        run = await store.initialize_run(workflow_name="chat")
        for n in range(20):
            await store.add_chat_message(
                agent_id=run.agent_id, session_id=run.session_id, run_id=None,
                role="user", content=f"m{n}",
            )  # fmt: skip
        assert len(await store.get_chat_history(run.session_id, None)) == 20
    assert transactions_through(dsn) >= before + 22


async def test_stores_starting_together_through_pgbouncer_migrate_once_and_hold_no_lock() -> None:
    """The migration lock is transaction-level: a session-level one would stay held on a server
    connection that PgBouncer hands to other clients. Several rounds, as PgBouncer's server
    connections warm up (their catalog caches then lag behind other connections' work)."""
    for _ in range(ROUNDS):
        schema = new_schema()
        stores = [
            PostgresDataStorage(shared_pgbouncer_dsn(), schema=schema, pooler="transaction")
            for _ in range(6)
        ]
        direct = await asyncpg.connect(shared_dsn())
        try:
            await asyncio.gather(*(store.open() for store in stores))
            runs = await asyncio.gather(*(s.initialize_run(workflow_name="chat") for s in stores))
            assert len({run.session_id for run in runs}) == 6
            versions = await direct.fetch(
                f'SELECT version FROM "{schema}".runstore_migrations ORDER BY version'
            )
            locks = await direct.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            )
        finally:
            await direct.close()
            await asyncio.gather(*(store.close() for store in stores))
        assert [row[0] for row in versions] == [version for version, _ in MIGRATIONS]
        assert locks == 0


def test_pooler_is_checked() -> None:
    with pytest.raises(InvalidDataError) as caught:
        PostgresDataStorage(shared_dsn(), pooler="session")
    assert caught.value.field == "pooler"
