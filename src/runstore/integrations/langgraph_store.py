"""LangGraph's long-term memory store over any runstore store: ``RunstoreStore(store)``.

Every item is one entry (docs/contract.md, "Entries") of one scope (default
``"langgraph-store"``). Its key is the namespace, each label followed by ``\\x01``, then
``\\x01``, then the item's key; a label's ``\\x01`` and ``\\x02`` are written ``\\x02\\x01`` and
``\\x02\\x02``. So any label round-trips, the keys of a namespace prefix are one key range that
stops at a label's end (``("a", "b")`` never reaches ``("a", "bc")``), and key order is
namespace order (as tuples), then key order. The entry's ``value`` is the item's value; its
``data`` the item's vectors (float64, little-endian, ``dims`` each) when an index is set; its
``tag`` the item's TTL in minutes (``ttl=5.0``); ``expires_at`` when it expires; ``owner`` the
user it belongs to, so ``erase(owner)`` removes it.
"""

from __future__ import annotations

import math
import struct
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from langchain_core.embeddings import Embeddings
from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    ensure_embeddings,
    get_text_at_path,
    tokenize_path,
    validate_op_namespace,
)

from .._entries import Entry, NewEntry
from ..base import DataStorage
from ..errors import InvalidDataError
from ..models import MAX_NAME_LENGTH
from ._loops import LoopBridge

__all__ = ["RunstoreStore"]

END = "\x01"  # after every label, and once more after the namespace
ESCAPE = "\x02"
_ESCAPED = str.maketrans({END: ESCAPE + END, ESCAPE: ESCAPE + ESCAPE})
_PAGE = 256  # entries read per call while a filter or a query needs more than a page
_TTL_TAG = "ttl="

Namespace = tuple[str, ...]
Owner = str | Callable[[Namespace], str | None] | None


def namespace_key(namespace: Namespace) -> str:
    """The key prefix of a namespace (of every namespace under it, too)."""
    return "".join(label.translate(_ESCAPED) + END for label in namespace)


def item_key(namespace: Namespace, key: str) -> str:
    return namespace_key(namespace) + END + key


def split_key(entry_key: str) -> tuple[Namespace, str]:
    """The namespace and item key an entry key holds."""
    if ESCAPE not in entry_key:  # no label is empty: the first END END ends the namespace
        namespace, _, key = entry_key.partition(END + END)
        return tuple(namespace.split(END)), key
    labels: list[str] = []
    label: list[str] = []
    i = 0
    while True:
        char = entry_key[i]
        i += 1
        if char == ESCAPE:
            label.append(entry_key[i])
            i += 1
        elif char == END:
            if not label:
                return tuple(labels), entry_key[i:]
            labels.append("".join(label))
            label = []
        else:
            label.append(char)


def _fits(entry_key: str) -> bool:
    return len(entry_key) <= MAX_NAME_LENGTH


class RunstoreStore(BaseStore):
    """LangGraph's ``BaseStore`` on a runstore ``DataStorage``: get, put, delete, search
    (filter, vector query), list_namespaces, TTL; sync and async."""

    supports_ttl = True

    def __init__(
        self,
        store: DataStorage,
        *,
        owner: Owner = None,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        scope: str = "langgraph-store",
    ) -> None:
        """``owner``: the user every item belongs to (``erase(owner)`` removes it): a string,
        or a function of the item's namespace (``lambda ns: ns[1]`` for
        ``("memories", user_id)``). ``index``: ``{"dims", "embed", "fields"}`` as for
        LangGraph's stores (exact cosine similarity). ``ttl``: LangGraph's ``TTLConfig``
        (``default_ttl`` minutes, ``refresh_on_read``)."""
        self.store = store
        self.scope = scope
        self.owner = owner
        self.ttl_config = ttl
        self.index_config: dict[str, Any] | None = None
        self.embeddings: Embeddings | None = None
        self._fields: list[tuple[str, str | list[str]]] = []
        if index:
            self.index_config = dict(index)
            self.embeddings = ensure_embeddings(index.get("embed"))
            self._fields = [
                (path, tokenize_path(path) if path != "$" else path)
                for path in (index.get("fields") or ["$"])
            ]
        self._bridge = LoopBridge("RunstoreStore", in_loop=True, tied=_tied_to_a_loop(store))
        self._bridge.note()  # made in a running loop: the store's

    # -- batch ---------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        ops = list(ops)
        plan = _Plan(self, ops)
        if self.embeddings is not None:
            if plan.texts:
                plan.vectors = self.embeddings.embed_documents(plan.texts)
            plan.queries = {q: self.embeddings.embed_query(q) for q in plan.query_texts}
        return self._bridge.run(self._execute(plan))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        self._bridge.note()
        ops = list(ops)
        plan = _Plan(self, ops)
        if self.embeddings is not None:
            if plan.texts:
                plan.vectors = await self.embeddings.aembed_documents(plan.texts)
            for query in plan.query_texts:
                plan.queries[query] = await self.embeddings.aembed_query(query)
        return await self._execute(plan)

    async def _execute(self, plan: _Plan) -> list[Result]:
        """Reads first, then the batch's writes (the last put of a key wins), as
        ``InMemoryStore`` does."""
        results: list[Result] = []
        refresh: dict[float, list[str]] = {}
        for op in plan.ops:
            if isinstance(op, GetOp):
                results.append(await self._get(op, refresh))
            elif isinstance(op, SearchOp):
                results.append(await self._search(op, plan.queries, refresh))
            elif isinstance(op, ListNamespacesOp):
                results.append(await self._list_namespaces(op))
            else:
                results.append(None)
        for minutes, keys in refresh.items():
            await self.store.refresh_entries(self.scope, keys, expires_at=_expiry(minutes))
        await self._write(plan)
        return results

    # -- reads ---------------------------------------------------------------------

    async def _get(self, op: GetOp, refresh: dict[float, list[str]]) -> Item | None:
        key = item_key(op.namespace, op.key)
        if not _fits(key):
            return None
        entry = await self.store.get_entry(self.scope, key)
        if entry is None:
            return None
        if op.refresh_ttl:
            self._note_refresh(entry, refresh)
        return _item(op.namespace, op.key, entry)

    async def _search(
        self, op: SearchOp, queries: dict[str, list[float]], refresh: dict[float, list[str]]
    ) -> list[SearchItem]:
        prefix = namespace_key(op.namespace_prefix)
        if not _fits(prefix):
            return []
        query = queries.get(op.query) if op.query else None
        everything = query is not None or op.offset < 0 or op.limit < 0
        wanted = None if everything else op.offset + op.limit
        found: list[Entry] = []
        after: str | None = None
        while wanted is None or len(found) < wanted:
            page = _PAGE if op.filter or wanted is None else wanted - len(found)
            entries = await self.store.list_entries(
                self.scope, prefix=prefix or None, after=after, limit=page
            )
            found.extend(e for e in entries if _matches(e.value or {}, op.filter))
            if len(entries) < page:
                break
            after = entries[-1].key
        if query is None:
            chosen: list[tuple[float | None, Entry]] = [
                (None, e) for e in found[op.offset : op.offset + op.limit]
            ]
        else:
            chosen = self._rank(query, found, op.offset, op.limit)
        if op.refresh_ttl:
            for _, entry in chosen:
                self._note_refresh(entry, refresh)
        items = []
        for score, entry in chosen:
            namespace, key = split_key(entry.key)
            items.append(
                SearchItem(
                    namespace,
                    key,
                    entry.value or {},
                    entry.updated_at,
                    entry.updated_at,
                    score,
                )
            )
        return items

    def _rank(
        self, query: list[float], found: list[Entry], offset: int, limit: int
    ) -> list[tuple[float | None, Entry]]:
        """By the best cosine similarity of an item's vectors, highest first; items without
        vectors after them while the page has room (as ``InMemoryStore``)."""
        scored: list[tuple[float, Entry]] = []
        scoreless: list[Entry] = []
        norm = math.sqrt(math.fsum(x * x for x in query))
        dims = len(query)
        for entry in found:
            vectors = _vectors(entry.data, dims)
            if not vectors:
                scoreless.append(entry)
                continue
            scored.append((max(_cosine(query, norm, v) for v in vectors), entry))
        scored.sort(key=lambda pair: pair[0], reverse=True)
        kept: list[tuple[float | None, Entry]] = list(scored[offset : offset + limit])
        if scoreless and len(kept) < limit:
            kept.extend((None, entry) for entry in scoreless[: limit - len(kept)])
        return kept

    async def _list_namespaces(self, op: ListNamespacesOp) -> list[Namespace]:
        """Each namespace costs one index read: walking down from the last key, the next
        namespace is the last key before the one just found (or before its first
        ``max_depth`` labels)."""
        conditions = op.match_conditions or ()
        literal: list[str] = []
        for condition in conditions:
            if condition.match_type == "prefix":
                for label in condition.path:
                    if label == "*":
                        break
                    literal.append(label)
                break
        prefix = namespace_key(tuple(literal))
        if not _fits(prefix):
            return []
        found: set[Namespace] = set()
        before: str | None = None
        while True:
            entries = await self.store.list_entries(
                self.scope, prefix=prefix or None, before=before, reverse=True, limit=1
            )
            if not entries:
                break
            namespace, _ = split_key(entries[0].key)
            if all(_does_match(c, namespace) for c in conditions):
                if op.max_depth is not None:
                    namespace = namespace[: op.max_depth]  # every namespace under it: the same
                found.add(namespace)
            # Namespaces under this one have greater keys: they were visited already.
            before = namespace_key(namespace)
        return sorted(found)[op.offset : op.offset + op.limit]

    # -- writes --------------------------------------------------------------------

    async def _write(self, plan: _Plan) -> None:
        """The puts first, in one atomic ``put_entries`` that checks them all (bad input
        leaves the store unchanged), then the deletes (other keys)."""
        now = datetime.now(UTC)
        puts: list[NewEntry] = []
        deletes: list[str] = []
        for (namespace, key), op in plan.puts.items():
            entry_key = item_key(namespace, key)
            if op.value is None:
                if _fits(entry_key):
                    deletes.append(entry_key)
                continue
            if not _fits(entry_key):
                raise InvalidDataError(
                    "key",
                    f"namespace and key take {len(entry_key)} characters as a key, more than "
                    f"{MAX_NAME_LENGTH}",
                )
            minutes = op.ttl
            puts.append(
                NewEntry(
                    entry_key,
                    dict(op.value),
                    plan.vector_bytes.get((namespace, key)),
                    None if minutes is None else f"{_TTL_TAG}{float(minutes)!r}",
                    self._owner_of(namespace),
                    None if minutes is None else now + timedelta(minutes=minutes),
                )
            )
        if puts:
            await self.store.put_entries(self.scope, puts)
        for entry_key in deletes:
            await self.store.delete_entries(self.scope, prefix=entry_key, before=entry_key + END)

    def _owner_of(self, namespace: Namespace) -> str | None:
        if callable(self.owner):
            return self.owner(namespace)
        return self.owner

    @staticmethod
    def _note_refresh(entry: Entry, refresh: dict[float, list[str]]) -> None:
        if entry.tag is not None and entry.tag.startswith(_TTL_TAG):
            refresh.setdefault(float(entry.tag[len(_TTL_TAG) :]), []).append(entry.key)


class _Plan:
    """A batch's ops checked and sorted out: its puts (the last of a key wins), the texts to
    embed for them, and the queries to embed."""

    def __init__(self, owner: RunstoreStore, ops: list[Op]) -> None:
        self.ops = ops
        self.puts: dict[tuple[Namespace, str], PutOp] = {}
        query_texts: dict[str, None] = {}
        for op in ops:
            if not isinstance(op, GetOp | PutOp | SearchOp | ListNamespacesOp):
                raise ValueError(f"Unknown operation type: {type(op)}")
            validate_op_namespace(op)
            if isinstance(op, PutOp):
                self.puts[(op.namespace, op.key)] = op
            elif isinstance(op, SearchOp) and op.query:
                query_texts[op.query] = None
        self.query_texts = list(query_texts)
        self.queries: dict[str, list[float]] = {}
        self.texts: list[str] = []
        self._owners: list[tuple[Namespace, str]] = []  # the item of each text
        self.vectors: list[list[float]] = []
        if owner.embeddings is not None:
            for (namespace, key), op in self.puts.items():
                if op.value is None or op.index is False:
                    continue
                paths = (
                    owner._fields
                    if op.index is None
                    else [(path, tokenize_path(path)) for path in op.index]
                )
                for _, field in paths:
                    for text in get_text_at_path(op.value, field):
                        self.texts.append(text)
                        self._owners.append((namespace, key))

    @property
    def vector_bytes(self) -> dict[tuple[Namespace, str], bytes]:
        if len(self.vectors) != len(self.texts):
            raise ValueError(
                f"Number of embeddings ({len(self.vectors)}) does not match number of "
                f"texts ({len(self.texts)})"
            )
        packed: dict[tuple[Namespace, str], bytes] = {}
        for item, vector in zip(self._owners, self.vectors, strict=True):
            data = struct.pack(f"<{len(vector)}d", *vector)
            packed[item] = packed.get(item, b"") + data
        return packed


def _tied_to_a_loop(store: Any) -> bool:
    """A PostgreSQL store serves only the loop that opened it (docs/contract.md)."""
    postgres = sys.modules.get("runstore.postgres")
    return postgres is not None and isinstance(store, postgres.PostgresDataStorage)


def _expiry(minutes: float) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


def _item(namespace: Namespace, key: str, entry: Entry) -> Item:
    return Item(
        value=entry.value or {},
        key=key,
        namespace=namespace,
        created_at=entry.updated_at,
        updated_at=entry.updated_at,
    )


def _vectors(data: bytes | None, dims: int) -> list[tuple[float, ...]]:
    if not data or dims == 0:
        return []
    size = 8 * dims
    return [struct.unpack_from(f"<{dims}d", data, at) for at in range(0, len(data), size)]


def _cosine(query: list[float], norm: float, vector: Sequence[float]) -> float:
    other = math.sqrt(math.fsum(x * x for x in vector))
    if norm == 0 or other == 0:
        return 0.0
    return math.fsum(a * b for a, b in zip(query, vector, strict=False)) / (norm * other)


def _does_match(condition: MatchCondition, namespace: Namespace) -> bool:
    path = condition.path
    if len(namespace) < len(path):
        return False
    if condition.match_type == "prefix":
        pairs = zip(namespace, path, strict=False)
    elif condition.match_type == "suffix":
        pairs = zip(reversed(namespace), reversed(path), strict=False)
    else:
        raise ValueError(f"Unsupported match type: {condition.match_type}")
    return all(label == "*" or got == label for got, label in pairs)


def _matches(value: dict[str, Any], filter: dict[str, Any] | None) -> bool:
    return not filter or all(_compare(value.get(k), v) for k, v in filter.items())


def _compare(value: Any, wanted: Any) -> bool:
    """LangGraph's filter rule (``InMemoryStore``, PostgreSQL's JSONB): equality, nested
    dicts, lists item by item, and the operators ``$eq $ne $gt $gte $lt $lte``."""
    if isinstance(wanted, dict):
        if any(k.startswith("$") for k in wanted):
            return all(_operator(value, op, operand) for op, operand in wanted.items())
        if not isinstance(value, dict):
            return False
        return all(_compare(value.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, list | tuple):
        return (
            isinstance(value, list | tuple)
            and len(value) == len(wanted)
            and all(_compare(a, b) for a, b in zip(value, wanted, strict=False))
        )
    return cast(bool, value == wanted)


def _operator(value: Any, operator: str, operand: Any) -> bool:
    """A comparison of numbers; a value that is missing or not a number does not match
    (``InMemoryStore`` raises TypeError there; PostgreSQL's JSONB does not match)."""
    if operator == "$eq":
        return cast(bool, value == operand)
    if operator == "$ne":
        return cast(bool, value != operand)
    compare = _COMPARISONS.get(operator)
    if compare is None:
        raise ValueError(f"Unsupported operator: {operator}")
    try:
        return compare(float(value), float(operand))
    except (TypeError, ValueError):
        return False


_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "$gt": float.__gt__,
    "$gte": float.__ge__,
    "$lt": float.__lt__,
    "$lte": float.__le__,
}
