"""A writer process for the failover tests: TASKS tasks append to one session through one
store on a multi-host DSN until the test closes its stdin (at most SECONDS), each message
with an idempotency key. A call that raises ``StorageUnavailableError`` is retried with the same key
until it succeeds, as docs/postgres.md tells a caller to. Prints JSON: ``acknowledged``
([content, seq, when sent, when acknowledged] with wall-clock times), ``unavailable`` (how
many calls raised StorageUnavailableError), ``slowest`` (the longest such call, in seconds),
``other`` (any other exception, as text).

    python pg_ha_worker.py DSN SCHEMA SESSION_ID AGENT_ID TASKS SECONDS TAG
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from runstore import PostgresDataStorage, StorageUnavailableError


async def main(argv: list[str]) -> None:
    dsn, schema, session_id, agent_id, tasks, seconds, tag = argv
    deadline = time.monotonic() + float(seconds)
    acknowledged: list[list[object]] = []
    unavailable = 0
    slowest = 0.0
    other: list[str] = []
    stopping = asyncio.Event()

    async def watch() -> None:
        await asyncio.to_thread(sys.stdin.read)  # until the test closes our stdin
        stopping.set()

    async def task(number: int) -> None:
        nonlocal unavailable, slowest
        for i in range(10_000_000):  # bounded by the deadline far earlier
            content = f"{tag}-{number}-{i}"
            sent = time.time()
            while True:  # the same key until it is acknowledged
                if time.monotonic() > deadline:
                    return
                began = time.monotonic()
                try:
                    message = await store.add_chat_message(
                        agent_id=agent_id, session_id=session_id, run_id=None,
                        role="user", content=content, idempotency_key=content,
                    )  # fmt: skip
                except StorageUnavailableError:
                    unavailable += 1
                    slowest = max(slowest, time.monotonic() - began)
                    await asyncio.sleep(0.05)
                    continue
                except Exception as exc:  # the test fails on any
                    other.append(f"{type(exc).__name__}: {exc}")
                    return
                acknowledged.append([content, message.seq, sent, time.time()])
                break
            if stopping.is_set():
                return

    async with PostgresDataStorage(dsn, schema=schema, connect_timeout=2.0) as store:
        await asyncio.gather(watch(), *(task(n) for n in range(int(tasks))))
    print(
        json.dumps(
            {
                "acknowledged": acknowledged,
                "unavailable": unavailable,
                "slowest": slowest,
                "other": other,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
