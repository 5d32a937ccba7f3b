"""A LangGraph checkpointer over any runstore store: ``RunstoreSaver(store)``.

Needs the ``langgraph`` extra (README, "Install"). Everything lives in the store's entries
(docs/contract.md, "Entries"), in one scope (default ``"langgraph"``), under keys built from
the thread, namespace and checkpoint ids joined by ``\\x1f`` (ids holding that character are
refused):

- checkpoint  ``{thread}\\x1fc\\x1f{ns}\\x1f{checkpoint_id}``: ``data`` is the serialised checkpoint
  (bytes, channel values included), ``value`` holds its metadata (JSON, so lists can filter on
  it), the serialiser's type and the parent id; ``tag`` is the metadata's ``run_id``.
- pending write ``{thread}\\x1fw\\x1f{ns}\\x1f{checkpoint_id}\\x1f{task_id}\\x1f{idx}``: one entry
  per write, put with ``only_if_absent`` (special channels replace), so concurrent ``put_writes``
  never lose each other; tagged with the checkpoint's ``run_id`` for ``delete_for_runs``.

Checkpoint ids sort by time, so "latest" is the last key of a namespace and ``before`` is a key
bound: every lookup is an index range read. Sync methods (``graph.invoke``) run the async ones
on the loop the store lives on when it runs in another thread, else on a private loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from .._entries import Entry, NewEntry
from ..base import DataStorage

__all__ = ["RunstoreSaver"]

SEP = "\x1f"
_CACHE_SIZE = 4096


def _part(value: Any, name: str) -> str:
    text = str(value)
    if SEP in text:
        raise ValueError(f"{name}: {text[:40]!r} contains the reserved character \\x1f")
    return text


def _thread(thread_id: Any) -> str:
    return _part(thread_id, "thread_id") + SEP


def _checkpoints(thread_id: str, ns: str) -> str:
    return f"{_thread(thread_id)}c{SEP}{_part(ns, 'checkpoint_ns')}{SEP}"


def _writes(thread_id: str, ns: str, checkpoint_id: str) -> str:
    return f"{_thread(thread_id)}w{SEP}{_part(ns, 'checkpoint_ns')}{SEP}{checkpoint_id}{SEP}"


class RunstoreSaver(BaseCheckpointSaver[str]):
    """LangGraph's ``BaseCheckpointSaver`` over a runstore ``DataStorage``."""

    def __init__(
        self,
        store: DataStorage,
        *,
        scope: str = "langgraph",
        serde: SerializerProtocol | None = None,
    ) -> None:
        super().__init__(serde=serde)
        self.store = store
        self.scope = scope
        self._run_tags: dict[str, str | None] = {}  # checkpoint key -> run_id, bounded
        self._loop: asyncio.AbstractEventLoop | None = None
        self._own_loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    # -- async API -----------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        self._note_loop()
        conf = config["configurable"]
        thread_id, ns = str(conf["thread_id"]), conf.get("checkpoint_ns", "")
        prefix = _checkpoints(thread_id, ns)
        checkpoint_id = get_checkpoint_id(config)
        entry: Entry | None
        if checkpoint_id:
            entry = await self.store.get_entry(self.scope, prefix + _part(checkpoint_id, "id"))
        else:
            found = await self.store.list_entries(self.scope, prefix=prefix, reverse=True, limit=1)
            entry = found[0] if found else None
        if entry is None:
            return None
        return await self._tuple(thread_id, ns, entry)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        self._note_loop()
        conf = config["configurable"] if config else {}
        thread_id = conf.get("thread_id")
        ns = conf.get("checkpoint_ns")
        only_id = conf.get("checkpoint_id")
        before_id = get_checkpoint_id(before) if before else None
        if thread_id is None:
            prefix = None
        elif ns is None:
            prefix = f"{_thread(thread_id)}c{SEP}"
        else:
            prefix = _checkpoints(str(thread_id), ns)
        bound = prefix + before_id if prefix is not None and ns is not None and before_id else None
        # The store applies prefix, bound and limit; anything else is checked here, by pages.
        scans = bool(filter or only_id or prefix is None or (before_id and bound is None))
        page = 100 if scans or limit is None else limit
        left = limit
        while left is None or left > 0:
            entries = await self.store.list_entries(
                self.scope, prefix=prefix, before=bound, reverse=True, limit=page
            )
            for entry in entries:
                parts = entry.key.split(SEP)
                if len(parts) != 4 or parts[1] != "c":
                    continue  # a pending write (when listing every thread)
                entry_thread, _, entry_ns, entry_id = parts
                if ns is not None and entry_ns != ns:
                    continue
                if only_id and entry_id != only_id:
                    continue
                if before_id and entry_id >= before_id:
                    continue
                metadata = (entry.value or {}).get("metadata", {})
                if filter and any(metadata.get(k) != v for k, v in filter.items()):
                    continue
                yield await self._tuple(entry_thread, entry_ns, entry)
                if left is not None:
                    left -= 1
                    if left == 0:
                        return
            if len(entries) < page:
                return
            bound = entries[-1].key

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        self._note_loop()
        conf = config["configurable"]
        thread_id, ns = str(conf["thread_id"]), conf.get("checkpoint_ns", "")
        checkpoint_id = _part(checkpoint["id"], "checkpoint id")
        kind, data = self.serde.dumps_typed(checkpoint)
        stored_metadata = dict(get_serializable_checkpoint_metadata(config, metadata))
        run_id = stored_metadata.get("run_id")
        tag = str(run_id) if run_id is not None else None
        key = _checkpoints(thread_id, ns) + checkpoint_id
        value = {"type": kind, "metadata": stored_metadata, "parent": conf.get("checkpoint_id")}
        await self.store.put_entries(self.scope, [NewEntry(key, value, data, tag)])
        self._remember(key, tag)
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint_id,
            }
        }

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._note_loop()
        conf = config["configurable"]
        thread_id, ns = str(conf["thread_id"]), conf.get("checkpoint_ns", "")
        checkpoint_id = _part(conf["checkpoint_id"], "checkpoint_id")
        tag = await self._run_tag(_checkpoints(thread_id, ns) + checkpoint_id)
        prefix = _writes(thread_id, ns, checkpoint_id) + _part(task_id, "task_id") + SEP
        regular: list[NewEntry] = []
        special: list[NewEntry] = []
        for idx, (channel, value) in enumerate(writes):
            kind, data = self.serde.dumps_typed(value)
            index = WRITES_IDX_MAP.get(channel, idx)
            entry = NewEntry(
                f"{prefix}{index}",
                {"channel": channel, "type": kind, "task_path": task_path, "idx": index},
                data,
                tag,
            )
            (special if channel in WRITES_IDX_MAP else regular).append(entry)
        if regular:
            await self.store.put_entries(self.scope, regular, only_if_absent=True)
        if special:
            await self.store.put_entries(self.scope, special)

    async def adelete_thread(self, thread_id: str) -> None:
        self._note_loop()
        await self.store.delete_entries(self.scope, prefix=_thread(thread_id))
        self._run_tags.clear()

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._note_loop()
        tags = [str(run_id) for run_id in run_ids]
        if tags:
            await self.store.delete_entries(self.scope, tags=tags)
            self._run_tags.clear()

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._note_loop()
        await self.store.copy_entries(
            self.scope, prefix=_thread(source_thread_id), to_prefix=_thread(target_thread_id)
        )

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``keep_latest``: keep each namespace's newest checkpoint and its writes;
        ``delete``: delete the threads."""
        self._note_loop()
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"strategy: {strategy!r} is not 'keep_latest' or 'delete'")
        for thread_id in thread_ids:
            if strategy == "delete":
                await self.adelete_thread(thread_id)
                continue
            # Visit namespaces newest key first: each step finds the next namespace's latest.
            every = f"{_thread(thread_id)}c{SEP}"
            bound: str | None = None
            while True:
                found = await self.store.list_entries(
                    self.scope, prefix=every, before=bound, reverse=True, limit=1
                )
                if not found:
                    break
                _, _, ns, latest = found[0].key.split(SEP)
                namespace = _checkpoints(str(thread_id), ns)
                await self.store.delete_entries(
                    self.scope, prefix=namespace, before=namespace + latest
                )
                own = f"{_thread(thread_id)}w{SEP}{ns}{SEP}"
                await self.store.delete_entries(self.scope, prefix=own, before=own + latest)
                bound = namespace
        self._run_tags.clear()

    # -- sync API (graph.invoke) -----------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        found: CheckpointTuple | None = self._sync(self.aget_tuple(config))
        return found

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        async def collect() -> list[CheckpointTuple]:
            return [t async for t in self.alist(config, filter=filter, before=before, limit=limit)]

        yield from self._sync(collect())

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        stored: RunnableConfig = self._sync(self.aput(config, checkpoint, metadata, new_versions))
        return stored

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._sync(self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        self._sync(self.adelete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._sync(self.adelete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._sync(self.acopy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._sync(self.aprune(thread_ids, strategy=strategy))

    def get_next_version(self, current: str | int | None, channel: None) -> str:
        """Zero-padded counters, so versions compare correctly as strings."""
        number = 0 if current is None else int(str(current).split(".")[0])
        return f"{number + 1:032}"

    # -- helpers -------------------------------------------------------------------

    async def _tuple(self, thread_id: str, ns: str, entry: Entry) -> CheckpointTuple:
        value = entry.value or {}
        checkpoint_id = entry.key.rsplit(SEP, 1)[1]
        checkpoint: Checkpoint = self.serde.loads_typed((value["type"], entry.data or b""))
        stored = await self.store.list_entries(
            self.scope, prefix=_writes(thread_id, ns, checkpoint_id)
        )
        stored.sort(
            key=lambda w: writes_sort_key(
                (w.value or {})["task_path"], w.key.split(SEP)[-2], (w.value or {})["idx"]
            )
        )
        pending = [
            (
                w.key.split(SEP)[-2],
                (w.value or {})["channel"],
                self.serde.loads_typed(((w.value or {})["type"], w.data or b"")),
            )
            for w in stored
        ]
        parent = value.get("parent")
        self._remember(entry.key, entry.tag)
        return CheckpointTuple(
            config={
                "configurable": {
                    "thread_id": thread_id,
                    "checkpoint_ns": ns,
                    "checkpoint_id": checkpoint_id,
                }
            },
            checkpoint=checkpoint,
            metadata=value.get("metadata", {}),
            parent_config=(
                {
                    "configurable": {
                        "thread_id": thread_id,
                        "checkpoint_ns": ns,
                        "checkpoint_id": parent,
                    }
                }
                if parent
                else None
            ),
            pending_writes=pending,
        )

    def _remember(self, key: str, tag: str | None) -> None:
        if len(self._run_tags) >= _CACHE_SIZE:
            self._run_tags.pop(next(iter(self._run_tags)))
        self._run_tags[key] = tag

    async def _run_tag(self, key: str) -> str | None:
        """The run_id of a checkpoint (its writes carry it, so delete_for_runs finds them)."""
        if key in self._run_tags:
            return self._run_tags[key]
        entry = await self.store.get_entry(self.scope, key)
        tag = None if entry is None else entry.tag
        self._remember(key, tag)
        return tag

    def _note_loop(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if loop is not self._own_loop:
            self._loop = loop

    def _sync(self, coroutine: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            coroutine.close()
            raise RuntimeError(
                "RunstoreSaver's sync methods cannot run inside an event loop: use the a* "
                "methods (graph.ainvoke / astream)"
            )
        loop = self._loop
        if loop is not None and loop.is_running():
            return asyncio.run_coroutine_threadsafe(coroutine, loop).result()
        with self._lock:
            if self._own_loop is None:
                self._own_loop = asyncio.new_event_loop()
            return self._own_loop.run_until_complete(coroutine)
