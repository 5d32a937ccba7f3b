"""A writer process for the multi-process and crash tests (run as a script, not collected).

Usage: python writer.py PATH DRIVER NAME COUNT SIZE
Joins session "shared" of workflow "chat", prints "ready RUN_ID", waits for a line on
stdin (so that several writers start together), then appends COUNT messages (0: until killed)
with content "NAME:i:" plus SIZE filler characters. After each call returns it prints
"NAME:i SEQ": a printed line is an acknowledged message.
"""

from __future__ import annotations

import asyncio
import sys

from runstore import SqliteDataStorage


async def main(path: str, driver: str, name: str, count: int, size: int) -> None:
    async with SqliteDataStorage(path, driver=driver) as store:
        run = await store.initialize_run(workflow_name="chat", session_id="shared")
        print(f"ready {run.run_id}", flush=True)
        sys.stdin.readline()
        i = 0
        while count == 0 or i < count:
            message = await store.add_chat_message(
                agent_id=run.agent_id,
                session_id=run.session_id,
                run_id=run.run_id,
                role="user",
                content=f"{name}:{i}:" + "x" * size,
            )
            sys.stdout.write(f"{name}:{i} {message.seq}\n")
            sys.stdout.flush()
            i += 1


if __name__ == "__main__":
    path, driver, name, count, size = sys.argv[1:]
    asyncio.run(main(path, driver, name, int(count), int(size)))
