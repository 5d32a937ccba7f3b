"""Runs INSIDE Pyodide in headless Chromium (driven by ``bench/browser.py``): the chat turn on
runstore's durable browser store (``runstore.browser``, IndexedDB) next to the in-memory store
in the same page, SQLite on Emscripten's IDBFS with a ``syncfs`` after each turn (what the
playground's persistent mode did before; for comparison), and the time to open a big store.

Every store is driven through the public API exactly like ``bench/runstore_stores.py``: the
durable store's pre-filled sessions come from ``import_data`` (then folded into a snapshot), so
a measured turn writes to a store that already holds them.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

from runstore import DataStorage, SqliteDataStorage

from .runstore_stores import AGENT_ID, RunstoreMemory, RunstoreSubject
from .timing import Settings, interleave, measure_turns, prepare
from .workload import runstore_document

_names = itertools.count()


class RunstoreBrowser(RunstoreSubject):
    """``runstore.browser.open_store`` on a fresh store name."""

    def __init__(self, durability: str) -> None:
        super().__init__()
        self.durability = durability
        self.name = f"runstore durable ({durability})"
        self.store_name = ""

    async def make(self, workdir: Path) -> DataStorage:
        from runstore.browser import delete_store, open_store

        self.store_name = f"bench-{time.time_ns()}-{next(_names)}"
        await delete_store(self.store_name)
        return await open_store(self.store_name, durability=self.durability)  # type: ignore[arg-type]

    async def close(self) -> None:
        from runstore.browser import delete_store

        await super().close()
        await delete_store(self.store_name)


async def _syncfs() -> None:
    """Emscripten's FS.syncfs(false): copy changed files to IndexedDB (whole files)."""
    import js
    from pyodide.ffi import create_once_callable
    from pyodide_js import FS

    def start(resolve: Any, reject: Any) -> None:
        FS.syncfs(False, create_once_callable(lambda error: reject(error) if error else resolve()))

    await js.Promise.new(start)


def _mount_idbfs(folder: str) -> None:
    from pyodide_js import FS

    if not Path(folder).exists():
        FS.mkdirTree(folder)
        FS.mount(FS.filesystems.IDBFS, {}, folder)


class IdbfsSqlite(RunstoreSubject):
    """``SqliteDataStorage`` (sqlite3 driver) on an IDBFS folder, ``syncfs`` after each write."""

    name = "SQLite file on IDBFS + syncfs"
    folder = "/idbfs"

    async def make(self, workdir: Path) -> DataStorage:
        _mount_idbfs(self.folder)
        path = Path(self.folder) / f"bench-{time.time_ns()}.db"
        self.path = path
        return await SqliteDataStorage(path, driver="sqlite3").open()

    async def add_sessions(self, count: int, size: int) -> list[Any]:
        handles = await super().add_sessions(count, size)
        await _syncfs()
        return handles

    async def turn(self, session: Any) -> None:
        await super().turn(session)
        await _syncfs()

    async def close(self) -> None:
        await super().close()
        self.path.unlink(missing_ok=True)
        await _syncfs()


async def turns(settings_json: str, sizes_json: str, idbfs_sizes_json: str) -> str:
    """µs per turn: {store name: {size: samples}}."""
    settings = Settings(**json.loads(settings_json))
    found: dict[str, dict[str, list[float]]] = {}
    for size in json.loads(sizes_json):
        subjects = [RunstoreMemory(), RunstoreBrowser("strict"), RunstoreBrowser("relaxed")]
        plans = []
        for subject in subjects:
            await subject.open(Path("/tmp"))
            plans.append(await prepare(subject, size, settings))
        await interleave(plans)
        for subject, plan in zip(subjects, plans, strict=True):
            found.setdefault(subject.name, {})[str(size)] = plan.samples
            await subject.close()
    brief = Settings(reps=3, budget=0.05, max_turns=20, max_seconds=4.0, min_reps=3)
    for size in json.loads(idbfs_sizes_json):
        idbfs = IdbfsSqlite()
        await idbfs.open(Path("/tmp"))
        figure = await measure_turns(idbfs, size, brief)
        found.setdefault(idbfs.name, {})[str(size)] = figure.samples
        await idbfs.close()
    return json.dumps(found)


async def open_times(size: int, reps: int) -> str:
    """Seconds to open a durable store holding one session of ``size`` messages."""
    from runstore.browser import delete_store, open_store

    name = f"bench-open-{time.time_ns()}"
    store = await open_store(name)
    await store.import_data(runstore_document(1, size, AGENT_ID, "open"))
    await store.close()
    samples: list[float] = []
    for _ in range(reps):
        started = time.perf_counter()
        store = await open_store(name)
        samples.append(time.perf_counter() - started)
        count = len(await store.get_chat_history("open-s0", None))
        await store.close()
        assert count == size, count
    await delete_store(name)
    return json.dumps(samples)
