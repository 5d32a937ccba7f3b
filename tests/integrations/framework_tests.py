"""What the stages that run a framework's own test files share: the pinned sdist, downloaded
at test time (hash checked against the lock; nothing of it committed), and PostgreSQL used from
the many event loops those tests make."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def locked_hashes(lock: str, name: str, version: str) -> list[str]:
    """The ``--hash=`` options of name==version in locks/LOCK.txt (the sdist's among them): the
    downloaded sdist is checked against the lock like every other package."""
    lines = (ROOT / "locks" / f"{lock}.txt").read_text().splitlines()
    start = lines.index(f"{name}=={version} \\")
    hashes = []
    for line in lines[start + 1 :]:
        if not line.strip().startswith("--hash="):
            break
        hashes.append(line.strip().removesuffix("\\").strip())
    return hashes


def sdist(lock: str, name: str, version: str, build: Path) -> Path:
    """The extracted sdist of name==version in ``build``, downloaded on first use."""
    stem = f"{name.replace('-', '_')}-{version}"
    folder = build / stem
    if not (folder / "tests").is_dir():
        build.mkdir(parents=True, exist_ok=True)
        requirement = build / "requirement.txt"
        hashes = " ".join(locked_hashes(lock, name, version))
        requirement.write_text(f"{name}=={version} {hashes}\n")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
             "--require-hashes", "-r", str(requirement), "-d", str(build)],
            check=True,
        )  # fmt: skip
        with tarfile.open(build / f"{stem}.tar.gz") as archive:
            archive.extractall(build, filter="data")
    return folder


class PostgresPerLoop:
    """PostgreSQL used as docs/contract.md ("Event loops") prescribes: one PostgresDataStorage
    per event loop, since an asyncpg pool serves only the loop that opened it. Every call goes
    to the running loop's store (one schema for all of them). Upstream tests use a store from
    several loops (pytest-asyncio fixtures run in a session-wide loop, Runner.run_sync makes one
    per call, sync calls run a private loop, threads run their own)."""

    def __init__(self, dsn: str, schema: str) -> None:
        self._dsn, self._schema = dsn, schema
        self._stores: dict[asyncio.AbstractEventLoop, Any] = {}

    def _store(self) -> Any:
        from runstore import PostgresDataStorage

        loop = asyncio.get_running_loop()
        store = self._stores.get(loop)
        if store is None:
            store = self._stores[loop] = PostgresDataStorage(self._dsn, schema=self._schema)
        return store

    def __getattr__(self, name: str) -> Any:
        async def call(*args: Any, **kwargs: Any) -> Any:
            return await getattr(self._store(), name)(*args, **kwargs)

        return call

    def close_all(self) -> None:
        """Close every loop's store: in its loop when that can still run, else drop the pool's
        connections (a loop that is gone cannot run its pool's close)."""
        for loop, store in self._stores.items():
            with contextlib.suppress(Exception):
                if not loop.is_closed() and not loop.is_running():
                    loop.run_until_complete(asyncio.wait_for(store.close(), 10))
                    continue
                pool = getattr(store, "_pool", None)
                if pool is not None:
                    pool.terminate()
        self._stores.clear()
