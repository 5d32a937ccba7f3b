"""A multi-host DSN where one host swallows packets (cut off by the network: the connection is
accepted, nothing ever answers) and the other is the primary: the store connects to the
primary within ``connect_timeout``, whichever comes first in the DSN. (asyncpg alone tries the
hosts in order within one timeout, so a silent first host would hide the primary.)"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest
from pg_helpers import new_schema
from pg_server import shared_dsn

from runstore import PostgresDataStorage, StorageUnavailableError
from runstore.postgres import one_dsn_per_host


async def _silent_host() -> asyncio.Server:
    held: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # read nothing, answer nothing, keep it open
        await reader.read()  # until the client gives up

    return await asyncio.start_server(swallow, "127.0.0.1", 0)


@pytest.mark.parametrize("silent_first", [True, False])
async def test_a_silent_host_does_not_hide_the_primary(silent_first: bool) -> None:
    real = urlsplit(shared_dsn())
    silent = await _silent_host()
    try:
        port = silent.sockets[0].getsockname()[1]
        hosts = [f"127.0.0.1:{port}", f"{real.hostname}:{real.port}"]
        if not silent_first:
            hosts.reverse()
        dsn = f"postgresql://{real.username}@{','.join(hosts)}{real.path}"
        dsn += "?target_session_attrs=read-write"
        async with PostgresDataStorage(dsn, schema=new_schema(), connect_timeout=3.0) as store:
            run = await store.initialize_run(workflow_name="multi-host")
            assert await store.get_session(run.session_id) is not None
    finally:
        silent.close()


async def test_only_silent_hosts_is_unavailable() -> None:
    silent = [await _silent_host() for _ in range(2)]
    try:
        ports = [s.sockets[0].getsockname()[1] for s in silent]
        dsn = f"postgresql://runstore@127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}/postgres"
        store = PostgresDataStorage(dsn, schema=new_schema(), connect_timeout=1.0)
        with pytest.raises(StorageUnavailableError):
            await store.open()
        await store.close()
    finally:
        for server in silent:
            server.close()


def test_one_dsn_per_host() -> None:
    assert one_dsn_per_host("postgresql://a:p@h1:1,h2:2/db?target_session_attrs=read-write") == [
        "postgresql://a:p@h1:1/db?target_session_attrs=read-write",
        "postgresql://a:p@h2:2/db?target_session_attrs=read-write",
    ]
    assert one_dsn_per_host("postgresql://a@h1:1/db") == ["postgresql://a@h1:1/db"]
    assert one_dsn_per_host("postgresql://h1,h2/db") == ["postgresql://h1/db", "postgresql://h2/db"]
