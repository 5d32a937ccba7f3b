"""A LangGraph checkpointer over any runstore store: ``RunstoreSaver(store)``.

Install with ``pip install runstore[langgraph]``. Everything lives in the store's entries
(docs/contract.md, "Entries"), in one scope (default ``"langgraph"``), under keys built from
the thread, namespace, channel and checkpoint ids joined by ``\\x1f`` (ids holding that
character are refused):

- checkpoint  ``{thread}\\x1fc\\x1f{ns}\\x1f{checkpoint_id}``: ``data`` is the serialised
  checkpoint with only its small channel values inline; ``value`` holds its metadata (JSON, so
  lists can filter on it), the serialiser's type, the parent id and ``blobs``: for each channel
  stored apart, ``[version, base version]``; ``tag`` is the metadata's ``run_id``.
- channel value ``{thread}\\x1fv\\x1f{ns}\\x1f{channel}\\x1f{version}``: one per channel
  version, written by the checkpoint that made the version and shared by every later checkpoint
  that still holds it. A list (``add_messages``' messages) that keeps a prefix of the previous
  version is stored as a delta (``keep`` items of ``prev``, then the new items); a full copy is
  written instead once the deltas since the last full copy (``base``) outweigh it, so the bytes
  stored grow linearly with the list and a read is one range read of ``[base, version]``.
- pending write ``{thread}\\x1fw\\x1f{ns}\\x1f{checkpoint_id}\\x1f{task_id}\\x1f{idx}``: one
  entry per write, put with ``only_if_absent`` (special channels replace), so concurrent
  ``put_writes`` never lose each other; tagged with the checkpoint's ``run_id`` for
  ``delete_for_runs``.

Checkpoints written before channel values were stored apart (no ``blobs``) hold every value
inline and still read. Checkpoint ids sort by time, so "latest" is the last key of a namespace
and ``before`` is a key bound: every lookup is an index range read. Sync methods
(``graph.invoke``) run the async ones on the loop the store lives on when it runs in another
thread, else on a private loop.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
    PendingWrite,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from .._entries import Entry, NewEntry
from ..base import DataStorage
from ..models import MAX_NAME_LENGTH
from ._loops import LoopBridge
from .langgraph_store import RunstoreStore

__all__ = ["RunstoreSaver", "RunstoreStore"]

SEP = "\x1f"
_CACHE_SIZE = 4096
_VALUES_CACHE_SIZE = 64  # checkpoints whose stored channel values a saver keeps track of
INLINE_MAX = 512  # a changed value that serialises to at most this many bytes stays inline


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


def _values(thread_id: str, ns: str) -> str:
    return f"{_thread(thread_id)}v{SEP}{_part(ns, 'checkpoint_ns')}{SEP}"


Items = list[tuple[str, bytes]]  # a list value, each item serialised


@dataclass(slots=True)
class _Stored:
    """One channel version stored apart, as far as this saver knows it."""

    version: str
    base: str  # the full copy its chain starts at (its own version for a full copy)
    items: Items | None = None  # a list's items; None: not a list, or not read yet
    base_size: int = -1  # bytes of the full copy; -1: not read yet
    run: int = 0  # bytes of the deltas since the full copy


def _concat(items: Items) -> bytes:
    return b"".join(data for _, data in items)


class RunstoreSaver(BaseCheckpointSaver[str]):
    """LangGraph's ``BaseCheckpointSaver`` over a runstore ``DataStorage``."""

    def __init__(
        self,
        store: DataStorage,
        *,
        scope: str = "langgraph",
        serde: SerializerProtocol | None = None,
        owner: str | None = None,
    ) -> None:
        """``owner``: the end user every entry written belongs to (``erase(owner)`` removes
        them), unless a call's ``config["configurable"]["user_id"]`` names another."""
        super().__init__(serde=serde)
        self.store = store
        self.scope = scope
        self.owner = owner
        self._run_tags: dict[str, str | None] = {}  # checkpoint key -> run_id, bounded
        # (thread, ns, checkpoint id) -> its channels stored apart, for the next put's deltas
        self._stored: OrderedDict[tuple[str, str, str], dict[str, _Stored]] = OrderedDict()
        self._bridge = LoopBridge("RunstoreSaver")

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
        parent_id = conf.get("checkpoint_id")
        stored_metadata = dict(get_serializable_checkpoint_metadata(config, metadata))
        run_id = stored_metadata.get("run_id")
        tag = str(run_id) if run_id is not None else None
        key = _checkpoints(thread_id, ns) + checkpoint_id
        parent = await self._parent_values(thread_id, ns, parent_id)
        versions = checkpoint["channel_versions"]
        inline: dict[str, Any] = {}
        apart: dict[str, _Stored] = {}
        entries: list[NewEntry] = []
        for channel, channel_value in checkpoint["channel_values"].items():
            version = versions.get(channel)
            old = parent.get(channel)
            if old is not None and channel not in new_versions and old.version == version:
                apart[channel] = old  # unchanged: the stored version is shared
                continue
            written = None
            if channel in new_versions and self._apart(thread_id, ns, channel, version):
                assert isinstance(version, str)
                written = await self._store_value(
                    thread_id, ns, channel, version, channel_value, old
                )
            if written is None:
                inline[channel] = channel_value
            else:
                apart[channel], entry = written
                entries.append(entry)
        kind, data = self.serde.dumps_typed({**checkpoint, "channel_values": inline})
        value = {
            "type": kind,
            "metadata": stored_metadata,
            "parent": parent_id,
            "blobs": {channel: [s.version, s.base] for channel, s in apart.items()},
        }
        entries.append(NewEntry(key, value, data, tag))
        await self.store.put_entries(self.scope, self._owned(conf, entries))
        self._remember(key, tag)
        self._note_values(thread_id, ns, checkpoint_id, apart)
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
            await self.store.put_entries(
                self.scope, self._owned(conf, regular), only_if_absent=True
            )
        if special:
            await self.store.put_entries(self.scope, self._owned(conf, special))

    def _owned(self, conf: Any, entries: list[NewEntry]) -> list[NewEntry]:
        """The entries, owned by the call's ``user_id`` (LangGraph's convention) or else
        by this saver's ``owner``."""
        user_id = conf.get("user_id")
        owner = str(user_id) if user_id is not None else self.owner
        if owner is None:
            return entries
        return [replace(entry, owner=owner) for entry in entries]

    async def adelete_thread(self, thread_id: str) -> None:
        self._note_loop()
        await self.store.delete_entries(self.scope, prefix=_thread(thread_id))
        self._run_tags.clear()
        self._stored.clear()

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._note_loop()
        tags = [str(run_id) for run_id in run_ids]
        if tags:
            await self.store.delete_entries(self.scope, tags=tags)
            self._run_tags.clear()
        self._stored.clear()

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
                # Channel values: keep the chains the latest checkpoint reads, nothing else.
                values = _values(str(thread_id), ns)
                blobs: dict[str, list[str]] = (found[0].value or {}).get("blobs") or {}
                lower: str | None = None
                for channel in sorted(blobs, key=lambda c: c + SEP):
                    version, base = blobs[channel]
                    start = f"{values}{channel}{SEP}{base}"
                    await self.store.delete_entries(
                        self.scope, prefix=values, after=lower, before=start
                    )
                    lower = f"{values}{channel}{SEP}{version}"
                await self.store.delete_entries(self.scope, prefix=values, after=lower)
                bound = namespace
        self._run_tags.clear()
        self._stored.clear()

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """``DeltaChannel`` (beta): each channel's writes on the parent chain of a checkpoint,
        oldest first, back to the nearest ancestor holding a value (its ``seed``). The
        ancestors are read newest first in pages of one range read, their writes in one range
        read, instead of one ``get_tuple`` per ancestor."""
        self._note_loop()
        if not channels:
            return {}
        conf = config["configurable"]
        thread_id, ns = str(conf["thread_id"]), conf.get("checkpoint_ns", "")
        prefix = _checkpoints(thread_id, ns)
        checkpoint_id = get_checkpoint_id(config)
        target: Entry | None
        if checkpoint_id:
            target = await self.store.get_entry(self.scope, prefix + _part(checkpoint_id, "id"))
        else:
            found = await self.store.list_entries(self.scope, prefix=prefix, reverse=True, limit=1)
            target = found[0] if found else None
        remaining = set(channels)
        stops: dict[str, str] = {}  # channel -> the ancestor its seed comes from
        seeds: dict[str, Any] = {}
        path: list[str] = []  # ancestors, newest first
        known: dict[str, Entry] = {}
        cursor = (target.value or {}).get("parent") if target else None
        bound = target.key if target else None
        while cursor and remaining:
            entry = known.get(cursor)
            if entry is None:
                page = await self.store.list_entries(
                    self.scope, prefix=prefix, before=bound, reverse=True, limit=100
                )
                if not page:
                    break
                known.update((e.key.rsplit(SEP, 1)[1], e) for e in page)
                bound = page[-1].key
                if cursor not in known:
                    continue
                entry = known[cursor]
            path.append(cursor)
            value = entry.value or {}
            blobs: dict[str, list[str]] = value.get("blobs") or {}
            inline: dict[str, Any] = self.serde.loads_typed((value["type"], entry.data or b""))[
                "channel_values"
            ]
            for channel in [c for c in channels if c in remaining]:
                if channel in inline:
                    seeds[channel] = inline[channel]
                elif channel in blobs:
                    version, base = blobs[channel]
                    seeds[channel] = (
                        await self._load_value(thread_id, ns, channel, version, base)
                    )[1]
                else:
                    continue
                stops[channel] = cursor
                remaining.discard(channel)
            cursor = value.get("parent")
        writes: dict[str, list[tuple[Any, PendingWrite]]] = {c: [] for c in channels}
        if path:
            on_path = set(path)
            own = f"{_thread(thread_id)}w{SEP}{_part(ns, 'checkpoint_ns')}{SEP}"
            stored = await self.store.list_entries(
                self.scope,
                prefix=own,
                after=own + path[-1][:-1],  # exclusive: from the oldest ancestor on
                before=own + path[0] + SEP + "\x7f",
            )
            order = {checkpoint: i for i, checkpoint in enumerate(reversed(path))}
            for w in stored:
                parts = w.key.split(SEP)
                meta = w.value or {}
                channel, owner, task_id = meta["channel"], parts[3], parts[4]
                if owner not in on_path or channel not in writes:
                    continue
                stop = stops.get(channel)
                if stop is not None and order[owner] < order[stop]:
                    continue  # older than the channel's seed
                sort_key = (order[owner], writes_sort_key(meta["task_path"], task_id, meta["idx"]))
                pending = (task_id, channel, self.serde.loads_typed((meta["type"], w.data or b"")))
                writes[channel].append((sort_key, pending))
        result: dict[str, DeltaChannelHistory] = {}
        for channel in channels:
            ordered = [p for _, p in sorted(writes[channel], key=lambda item: item[0])]
            history: DeltaChannelHistory = {"writes": ordered}
            if channel in seeds:
                history["seed"] = seeds[channel]
            result[channel] = history
        return result

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

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        found: Mapping[str, DeltaChannelHistory] = self._sync(
            self.aget_delta_channel_history(config=config, channels=channels)
        )
        return found

    def delete_thread(self, thread_id: str) -> None:
        self._sync(self.adelete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._sync(self.adelete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._sync(self.acopy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._sync(self.aprune(thread_ids, strategy=strategy))

    def get_next_version(self, current: str | int | None, channel: None) -> str:
        """Zero-padded counters, so versions compare correctly as strings, and a random part,
        so versions made on two branches of a thread never share a stored value's key."""
        number = 0 if current is None else int(str(current).split(".")[0])
        return f"{number + 1:032}.{random.getrandbits(64):016x}"

    # -- helpers -------------------------------------------------------------------

    async def _tuple(self, thread_id: str, ns: str, entry: Entry) -> CheckpointTuple:
        value = entry.value or {}
        checkpoint_id = entry.key.rsplit(SEP, 1)[1]
        checkpoint: Checkpoint = self.serde.loads_typed((value["type"], entry.data or b""))
        blobs: dict[str, list[str]] = value.get("blobs") or {}
        if blobs:
            apart: dict[str, _Stored] = {}
            for channel, (version, base) in blobs.items():
                known, loaded = await self._load_value(thread_id, ns, channel, version, base)
                checkpoint["channel_values"][channel] = loaded
                apart[channel] = known
            self._note_values(thread_id, ns, checkpoint_id, apart)
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

    def _apart(self, thread_id: str, ns: str, channel: str, version: Any) -> bool:
        """Whether a new version of the channel may be stored apart: versions made by
        ``get_next_version`` are unique in a thread (forks cannot collide) and fit a key."""
        return (
            isinstance(version, str)
            and "." in version
            and len(_values(thread_id, ns)) + len(channel) + len(version) < MAX_NAME_LENGTH
            and SEP not in channel
        )

    async def _store_value(
        self,
        thread_id: str,
        ns: str,
        channel: str,
        version: str,
        value: Any,
        previous: _Stored | None,
    ) -> tuple[_Stored, NewEntry] | None:
        """The entry storing a new channel version (a delta against ``previous`` when it keeps
        a prefix of it), or None when the value is small enough to stay inline."""
        key = f"{_values(thread_id, ns)}{channel}{SEP}{version}"
        if type(value) is not list:
            kind, data = self.serde.dumps_typed(value)
            if len(data) <= INLINE_MAX:
                return None
            return _Stored(version, version), NewEntry(key, {"type": kind, "base": version}, data)
        items: Items = [self.serde.dumps_typed(item) for item in value]
        old_items: Items | None = None
        if previous is not None and previous.base_size < 0:
            previous, _ = await self._load_value(
                thread_id, ns, channel, previous.version, previous.base, decode=False
            )
        if previous is not None:
            old_items = previous.items
        keep = 0
        if old_items is not None:
            limit = min(len(old_items), len(items))
            while keep < limit and old_items[keep] == items[keep]:
                keep += 1
            items[:keep] = old_items[:keep]  # share the bytes the previous version holds
        added = items[keep:]
        size = sum(len(data) for _, data in added)
        if (
            previous is None
            or old_items is None
            or keep == 0
            or (previous.run + size > previous.base_size)
        ):
            stored = _Stored(version, version, items, sum(len(d) for _, d in items), 0)
            meta = {"base": version, "base_size": stored.base_size, "run": 0, "prev": None}
            added, keep = items, 0
        else:
            stored = _Stored(version, previous.base, items, previous.base_size, previous.run + size)
            meta = {
                "base": previous.base,
                "base_size": previous.base_size,
                "run": stored.run,
                "prev": previous.version,
            }
        meta["keep"] = keep
        meta["items"] = [[kind, len(data)] for kind, data in added]
        return stored, NewEntry(key, meta, _concat(added))

    async def _load_value(
        self, thread_id: str, ns: str, channel: str, version: str, base: str, *, decode: bool = True
    ) -> tuple[_Stored, Any]:
        """A channel version stored apart: its chain (full copy, deltas) in one range read."""
        prefix = f"{_values(thread_id, ns)}{channel}{SEP}"
        found = await self.store.list_entries(
            self.scope,
            prefix=prefix,
            after=prefix + base[:-1],  # the bound is exclusive: from base on
            before=prefix + version + SEP,
        )
        by_version = {entry.key[len(prefix) :]: entry for entry in found}
        chain: list[Entry] = []
        at: str | None = version
        while at is not None:
            entry = by_version.get(at)
            if entry is None:
                raise LookupError(
                    f"channel {channel!r} version {at} of thread {thread_id!r} is not stored"
                )
            chain.append(entry)
            at = (entry.value or {}).get("prev")
        newest = chain[0].value or {}
        if "type" in newest:  # not a list: one full copy
            loaded = self.serde.loads_typed((newest["type"], chain[0].data or b""))
            return _Stored(version, version), loaded
        items: Items = []
        for entry in reversed(chain):
            meta, data, offset = entry.value or {}, entry.data or b"", 0
            del items[meta["keep"] :]
            for kind, length in meta["items"]:
                items.append((kind, data[offset : offset + length]))
                offset += length
        stored = _Stored(version, newest["base"], items, newest["base_size"], newest["run"])
        if not decode:
            return stored, None
        return stored, [self.serde.loads_typed(item) for item in items]

    async def _parent_values(
        self, thread_id: str, ns: str, parent_id: str | None
    ) -> dict[str, _Stored]:
        """The channels the parent checkpoint stores apart (from memory, else from its entry)."""
        if not parent_id:
            return {}
        known = self._stored.get((thread_id, ns, parent_id))
        if known is not None:
            return known
        entry = await self.store.get_entry(
            self.scope, _checkpoints(thread_id, ns) + _part(parent_id, "checkpoint_id")
        )
        blobs: dict[str, list[str]] = ((entry.value or {}) if entry else {}).get("blobs") or {}
        return {channel: _Stored(version, base) for channel, (version, base) in blobs.items()}

    def _note_values(
        self, thread_id: str, ns: str, checkpoint_id: str, apart: dict[str, _Stored]
    ) -> None:
        key = (thread_id, ns, checkpoint_id)
        self._stored[key] = apart
        self._stored.move_to_end(key)
        while len(self._stored) > _VALUES_CACHE_SIZE:
            self._stored.popitem(last=False)

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
        self._bridge.note()

    def _sync(self, coroutine: Any) -> Any:
        return self._bridge.run(coroutine)
