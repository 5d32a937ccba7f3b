"""``runstore.browser``: a durable store kept in the browser's IndexedDB (Pyodide only).

    from runstore.browser import open_store
    store = await open_store("chat")   # the same store after a reload or a kernel restart

Works wherever Pyodide runs with IndexedDB: a page's main thread, a Web Worker, JupyterLite's
Pyodide kernel. ``import runstore`` never imports this module.

How it works: a ``BrowserDataStorage`` is an ``InMemoryDataStorage`` (all reads are in memory)
whose every mutating hook call is also written to IndexedDB as one small record (see
``_oplog``); a write returns only once its IndexedDB transaction is complete. Opening reads the
latest snapshot and replays the records after it. When the records outgrow the snapshot, a new
snapshot replaces them in one transaction, so a write costs the same at any store size and
opening costs about one pass over the data.

Durability: ``"strict"`` (default) asks IndexedDB to flush to disk before completing.
``"relaxed"`` (opt-in, faster) completes once the browser has the data: it survives a reload,
a tab crash and a browser restart, but an operating system crash or power loss can lose the
last writes.

Several tabs: a store has one owner at a time, held with the Web Locks API until ``close()``
or until the page, worker or kernel goes away. ``open_store`` raises ``StoreLockedError`` at
once if another tab (or another store object) holds it, or waits up to ``lock_timeout``
seconds (``None``: as long as it takes). Nothing is ever written by two owners at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal, TypeVar

try:
    import js
    from pyodide.ffi import JsException, create_proxy, jsnull, to_js
except ImportError as exc:  # pragma: no cover - native Python
    raise ImportError(
        "runstore.browser needs Pyodide (a browser page, a Web Worker or a JupyterLite kernel)"
    ) from exc

from . import _oplog
from ._lifecycle import ErasureReport, PruneReport
from .errors import InvalidDataError, StorageError
from .memory import InMemoryDataStorage
from .models import check_name

T = TypeVar("T")
Durability = Literal["strict", "relaxed"]
DB_PREFIX = "runstore:"
LOCK_PREFIX = "runstore:"
COMPACT_MIN_CHARS = 4_000_000  # the log is folded into a new snapshot past this and past it


class StoreLockedError(StorageError):
    """Another tab, worker or store object has this store open."""


class BrowserStorageError(StorageError):
    """IndexedDB refused a read or write; after a failed write the store refuses further use."""


def _options(**values: Any) -> Any:
    return to_js(values, dict_converter=js.Object.fromEntries)


def _settled(target: Any, success: str) -> Any:
    """A Promise that resolves on ``target``'s ``success`` event and rejects on error/abort."""

    def executor(resolve: Any, reject: Any) -> None:
        setattr(target, success, resolve)
        target.onerror = reject
        if success == "oncomplete":
            target.onabort = reject

    return js.Promise.new(executor)


async def _finish(transaction: Any, what: str) -> None:
    try:
        await _settled(transaction, "oncomplete")
    except JsException as exc:
        error = transaction.error
        detail = f"{error.name}: {error.message}" if error else str(exc)
        raise BrowserStorageError(f"IndexedDB {what} failed: {detail}") from None


async def _on_this_loop(future: asyncio.Future[T]) -> T:
    """The outcome of ``future``, awaited from whichever event loop runs now.

    A store is not tied to the loop it was opened in (docs/contract.md, "Event loops"), but
    Pyodide returns a JavaScript call's Promise as a Future of the loop running at the call:
    one kept from an earlier call is waited for through a Future of this loop."""
    loop = asyncio.get_running_loop()
    if future.get_loop() is loop:
        return await future
    mirror: asyncio.Future[T] = loop.create_future()

    def copy(done: asyncio.Future[T]) -> None:
        if mirror.done():
            return
        if done.cancelled():
            mirror.cancel()
        elif (error := done.exception()) is not None:
            mirror.set_exception(error)
        else:
            mirror.set_result(done.result())

    future.add_done_callback(copy)
    return await mirror


def _indexed_db() -> Any:
    database = getattr(js, "indexedDB", None)
    if database is None:
        raise BrowserStorageError("this JavaScript environment has no IndexedDB")
    return database


class _Lock:
    """An exclusive Web Lock, held until ``release()``."""

    def __init__(self) -> None:
        self._release: Any = None
        self._released: Any = None  # the request's Future: done once the lock is free
        self._callback: Any = None

    async def acquire(self, name: str, wait_seconds: float | None) -> None:
        locks = getattr(js.navigator, "locks", None)
        if locks is None:
            raise BrowserStorageError("this JavaScript environment has no Web Locks API")
        box: dict[str, Any] = {}

        def hold(resolve: Any, reject: Any) -> None:
            box["release"] = resolve

        def grant(resolve: Any, reject: Any) -> None:
            box["granted"], box["failed"] = resolve, reject

        held = js.Promise.new(hold)
        granted = js.Promise.new(grant)

        def on_grant(lock: Any) -> Any:
            got = lock is not None and lock is not jsnull  # JavaScript null: not available
            box["granted"](got)
            return held if got else None

        self._callback = create_proxy(on_grant)
        if wait_seconds == 0:
            options = _options(mode="exclusive", ifAvailable=True)
        elif wait_seconds is None:
            options = _options(mode="exclusive")
        else:
            signal = js.AbortSignal.timeout(max(1, round(wait_seconds * 1000)))
            options = _options(mode="exclusive", signal=signal)
        request = locks.request(LOCK_PREFIX + name, options, self._callback)
        request.catch(box["failed"])
        try:
            ok = await granted
        except JsException:
            ok = False
        if not ok:
            self._callback.destroy()
            self._callback = None
            waited = f" (waited {wait_seconds} s)" if wait_seconds else ""
            raise StoreLockedError(
                f"name: store {name!r} is open in another tab, worker or store object{waited}"
            )
        self._release = box["release"]
        self._released = request

    async def release(self) -> None:
        """Let go of the lock; returns once another owner can take it."""
        if self._release is not None:
            self._release()
            self._release = None
            released, self._released = self._released, None
            await _on_this_loop(released)  # made by the call in acquire, maybe on another loop
        if self._callback is not None:
            self._callback.destroy()
            self._callback = None


class BrowserDataStorage(InMemoryDataStorage):
    """A durable store named ``name`` in this origin's IndexedDB. Use ``open_store``."""

    def __init__(
        self,
        name: str,
        *,
        durability: Durability = "strict",
        lock_timeout: float | None = 0,
    ) -> None:
        super().__init__()
        self.name = check_name(name, "name")
        if durability not in ("strict", "relaxed"):
            raise InvalidDataError("durability", "must be 'strict' or 'relaxed'")
        self.durability: Durability = durability
        self.lock_timeout = lock_timeout
        self._db: Any = None
        self._lock = _Lock()
        self._opening: asyncio.Future[None] | None = None
        self._write_options = _options(durability=durability)
        self._next_key = 1
        self._log_chars = 0
        self._compact_at = COMPACT_MIN_CHARS
        self._compacting = False
        self._broken: str | None = None
        self._applying = False  # inside a recorded hook (in-memory hooks never suspend)

    # -- opening and closing ---------------------------------------------------

    async def open(self) -> BrowserDataStorage:
        """Take the store's lock and load it from IndexedDB (done once; later calls return)."""
        self._check_open()
        if self._db is None:
            if self._opening is None:
                self._opening = asyncio.ensure_future(self._load())
            opening = self._opening
            try:
                await _on_this_loop(opening)
            except BaseException:
                if self._opening is opening:
                    self._opening = None
                raise
        return self

    async def __aenter__(self) -> BrowserDataStorage:
        return await self.open()

    async def _load(self) -> None:
        await self._lock.acquire(self.name, self.lock_timeout)
        try:
            db = await self._open_database()
            snapshot, records = await self._read(db)
            self._applying = True  # hooks that replay calls run as they are, not recorded
            try:
                await self._restore(snapshot, records)
            finally:
                self._applying = False
            self._db = db
        except BaseException:
            await self._lock.release()
            raise
        if self._log_chars >= self._compact_at:
            await self.compact()

    async def _open_database(self) -> Any:
        request = _indexed_db().open(DB_PREFIX + self.name, 1)

        def upgrade(event: Any) -> None:
            db = request.result
            db.createObjectStore("log")
            db.createObjectStore("snapshot")

        on_upgrade = create_proxy(upgrade)
        request.onupgradeneeded = on_upgrade
        try:
            await _settled(request, "onsuccess")
        except JsException:
            error = request.error
            raise BrowserStorageError(
                f"IndexedDB open of {self.name!r} failed: {error.name}: {error.message}"
                if error
                else f"IndexedDB open of {self.name!r} failed"
            ) from None
        finally:
            request.onupgradeneeded = None
            on_upgrade.destroy()
        db = request.result
        return db

    @staticmethod
    async def _read(db: Any) -> tuple[str | None, list[tuple[int, str]]]:
        transaction = db.transaction(to_js(["snapshot", "log"]), "readonly")
        snapshot = transaction.objectStore("snapshot").get("current")
        log = transaction.objectStore("log")
        keys = log.getAllKeys()
        values = log.getAll()
        await _finish(transaction, "read")
        text = snapshot.result
        found = list(zip(keys.result.to_py(), values.result.to_py(), strict=True))
        return (None if text is None else str(text)), found

    async def _restore(self, snapshot: str | None, records: list[tuple[int, str]]) -> None:
        last_key = 0
        if snapshot is not None:
            dump, last_key, last_now = _oplog.decode_snapshot(snapshot)
            await InMemoryDataStorage._import(self, dump)
            self._last_now = max(self._last_now, last_now)
            self._compact_at = max(COMPACT_MIN_CHARS, len(snapshot))
        for key, record in records:
            if key <= last_key:
                continue
            hook, last_now, args = _oplog.decode_call(record)
            await getattr(InMemoryDataStorage, hook)(self, *args)
            self._last_now = max(self._last_now, last_now)
            self._log_chars += len(record)
            last_key = key
        self._next_key = last_key + 1

    async def _close(self) -> None:
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()
        if self._db is not None:
            self._db.close()
            self._db = None
        await self._lock.release()
        await super()._close()

    # -- writing ---------------------------------------------------------------

    async def _ready(self) -> None:
        if self._broken is not None:
            raise BrowserStorageError(
                f"store {self.name!r} is unusable after a failed write: {self._broken}"
            )
        if self._db is None:
            await self.open()

    async def _record(self, hook: str, args: tuple[Any, ...], encoded: list[Any]) -> None:
        """Write one hook call (its arguments ``encoded`` before the call) to the log; returns
        once IndexedDB has it."""
        record = _oplog.encode_call(hook, args, self._last_now, encoded)
        key = self._next_key
        self._next_key = key + 1
        transaction = self._db.transaction("log", "readwrite", self._write_options)
        transaction.objectStore("log").put(record, key)
        try:
            await _finish(transaction, "write")
        except BrowserStorageError as exc:
            # Memory is ahead of IndexedDB now: refuse further use rather than diverge.
            self._broken = str(exc)
            raise
        self._log_chars += len(record)
        if self._log_chars >= self._compact_at and not self._compacting:
            await self.compact()

    async def erase(self, external_id: str) -> ErasureReport:
        """As every store's ``erase``; then the log is compacted, so that no record of the
        user's data is left in IndexedDB."""
        report = await super().erase(external_id)
        await self.compact()
        return report

    async def prune(
        self,
        *,
        idle_before: datetime | None = None,
        keep_last: int | None = None,
        expired_entries: bool = True,
    ) -> PruneReport:
        """As every store's ``prune``; then the log is compacted (what went is freed there)."""
        report = await super().prune(
            idle_before=idle_before, keep_last=keep_last, expired_entries=expired_entries
        )
        await self.compact()
        return report

    async def compact(self) -> None:
        """Replace the log with a snapshot of the whole store (done automatically when the
        log outgrows the last snapshot)."""
        await self._ready()
        from . import __version__

        self._compacting = True
        try:
            upto = self._next_key - 1
            covered = self._log_chars
            dump = await InMemoryDataStorage._export(self, None)
            text = _oplog.encode_snapshot(dump, upto, self._last_now, __version__)
            transaction = self._db.transaction(
                to_js(["snapshot", "log"]), "readwrite", self._write_options
            )
            transaction.objectStore("snapshot").put(text, "current")
            transaction.objectStore("log").delete(js.IDBKeyRange.upperBound(upto))
            await _finish(transaction, "snapshot")
            self._log_chars -= covered
            self._compact_at = max(COMPACT_MIN_CHARS, len(text))
        finally:
            self._compacting = False


def _hook(name: str, mutating: bool) -> Callable[..., Awaitable[Any]]:
    apply = getattr(InMemoryDataStorage, name)
    if mutating:

        async def hook(self: BrowserDataStorage, *args: Any) -> Any:
            if self._applying:  # called by another hook, which is the one recorded
                return await apply(self, *args)
            if self._db is None or self._broken is not None:
                await self._ready()
            encoded = _oplog.encode_args(name, args)  # before memory changes: may refuse
            self._applying = True
            try:
                result = await apply(self, *args)  # checks, then changes memory; never suspends
            finally:
                self._applying = False
            await self._record(name, args, encoded)
            return result

    else:

        async def hook(self: BrowserDataStorage, *args: Any) -> Any:
            if (self._db is None or self._broken is not None) and not self._applying:
                await self._ready()
            return await apply(self, *args)

    hook.__name__ = hook.__qualname__ = name
    return hook


_MUTATING = _oplog.mutating_hooks()
for _name in sorted(_oplog.hook_names()):
    setattr(BrowserDataStorage, _name, _hook(_name, _name in _MUTATING))


async def open_store(
    name: str, *, durability: Durability = "strict", lock_timeout: float | None = 0
) -> BrowserDataStorage:
    """Open (creating if needed) the durable store ``name`` of this origin."""
    return await BrowserDataStorage(name, durability=durability, lock_timeout=lock_timeout).open()


async def delete_store(name: str) -> None:
    """Delete the store ``name`` and everything in it. Raises ``StoreLockedError`` if open."""
    name = check_name(name, "name")
    lock = _Lock()
    await lock.acquire(name, 0)
    try:
        request = _indexed_db().deleteDatabase(DB_PREFIX + name)
        try:
            await _settled(request, "onsuccess")
        except JsException:
            raise BrowserStorageError(f"IndexedDB could not delete {name!r}") from None
    finally:
        await lock.release()


async def list_stores() -> list[str]:
    """The names of this origin's stores."""
    databases = (await _indexed_db().databases()).to_py()
    names = (str(entry["name"]) for entry in databases)
    return sorted(n[len(DB_PREFIX) :] for n in names if n.startswith(DB_PREFIX))


__all__ = [
    "BrowserDataStorage",
    "BrowserStorageError",
    "StoreLockedError",
    "delete_store",
    "list_stores",
    "open_store",
]
