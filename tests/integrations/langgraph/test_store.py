"""RunstoreStore (LangGraph's BaseStore) on every backend, next to LangGraph's InMemoryStore:
the same puts and deletes, then every get, search (prefix, filter, pages, vector query) and
namespace listing compared; prefixes stop at label boundaries; odd labels round-trip; TTL and
refresh_on_read on the entries' expiry; owners and erase; sync calls from a thread while the
loop runs. LangGraph's own store tests run apart (upstream_store.py)."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from backends import FACTORIES
from langgraph.store.base import Item, PutOp
from langgraph.store.memory import InMemoryStore

from runstore import DataStorage, InvalidDataError
from runstore.integrations.langgraph import RunstoreStore
from runstore.integrations.langgraph_store import item_key, split_key

SCOPE = "langgraph-store"
NAMESPACES = [
    ("a",),
    ("a", "b"),
    ("a", "bc"),
    ("a", "b", "c"),
    ("a", "b", "d", "e"),
    ("ab",),
    ("a\x01", "b"),  # the separator inside a label
    ("a", "\x02b", "c\x02\x01"),  # the escape character too
    ("ünï", "日本語", "😀"),
    ("tenant", "a_%"),
    ("users", "u1", "memories"),
    ("users", "u2", "memories"),
    ("*", "f"),
]


def _value(i: int) -> dict[str, Any]:
    return {
        "i": i,
        "even": i % 2 == 0,
        "color": ["red", "green", "blue"][i % 3],
        "score": i * 0.5,
        "nested": {"k": i % 4, "tags": ["x", str(i % 2)]},
        "text": f"item {i} " + "abcdefgh"[i % 8] * (i % 5 + 1),
    }


def _embed(texts: list[str]) -> list[list[float]]:
    """A deterministic embedding: letter counts (a-h) and the length."""
    return [[float(t.count(c)) for c in "abcdefgh"] + [float(len(t) % 7)] for t in texts]


async def _runstore(backend: str, tmp_path: Path, **kwargs: Any) -> tuple[DataStorage, Any]:
    store = await FACTORIES[backend](tmp_path)
    return store, RunstoreStore(store, **kwargs)


async def _fill(stores: list[Any]) -> None:
    i = 0
    for namespace in NAMESPACES:
        for key in ("k1", "k2", "k\x01", "key with spaces", "10"):
            for store in stores:
                await store.aput(namespace, key, _value(i))
            i += 1
    for namespace, key in [(("a", "b"), "k2"), (("ab",), "10"), (("tenant", "a_%"), "k1")]:
        for store in stores:
            await store.adelete(namespace, key)
    replaced = {"i": 100, "score": 9.5, "text": "d", "nested": {"k": 0, "tags": ["y", "z"]}}
    for store in stores:  # a put replaces (every indexed field again: InMemoryStore keeps the
        # vectors of the fields a new value lacks; RunstoreStore keeps the new value's only)
        await store.aput(("a", "bc"), "k1", replaced)


def _items(items: list[Any]) -> list[tuple[Any, ...]]:
    return sorted((i.namespace, i.key, repr(sorted(i.value.items()))) for i in items)


FILTERS: list[dict[str, Any]] = [
    {"even": True},
    {"color": "red"},
    {"color": "red", "even": False},
    {"score": {"$gt": 10}},
    {"score": {"$gte": 10, "$lt": 20}},
    {"score": {"$lte": 3}},
    {"i": {"$eq": 7}},
    {"color": {"$ne": "red"}},
    {"nested": {"k": 1}},
    {"nested": {"tags": ["x", "0"]}},
    {"missing": None},
]


async def test_same_answers_as_in_memory_store(backend: str, tmp_path: Path) -> None:
    store, ours = await _runstore(backend, tmp_path)
    try:
        theirs = InMemoryStore()
        await _fill([ours, theirs])
        for namespace in NAMESPACES:
            for key in ("k1", "k2", "k\x01", "key with spaces", "10", "nope"):
                a, b = await ours.aget(namespace, key), await theirs.aget(namespace, key)
                assert (a and (a.namespace, a.key, a.value)) == (
                    b and (b.namespace, b.key, b.value)
                )
        prefixes = {ns[:n] for ns in NAMESPACES for n in range(len(ns) + 1)}
        for prefix in sorted(prefixes):
            found = await ours.asearch(prefix, limit=1000)
            assert _items(found) == _items(await theirs.asearch(prefix, limit=1000)), prefix
        for prefix in [(), ("a",), ("a", "b")]:
            found = await ours.asearch(prefix, limit=1000)
            # pages put together are the whole listing, in one order
            paged = [
                (i.namespace, i.key)
                for offset in range(0, len(found), 7)
                for i in await ours.asearch(prefix, limit=7, offset=offset)
            ]
            assert paged == [(i.namespace, i.key) for i in found]
            for filter in FILTERS:
                got = await ours.asearch(prefix, filter=filter, limit=1000)
                want = await theirs.asearch(prefix, filter=filter, limit=1000)
                assert _items(got) == _items(want), (prefix, filter)
        listings: list[dict[str, Any]] = [
            {},
            {"prefix": ("a",)},
            {"prefix": ("a", "b")},
            {"prefix": ("a", "*")},
            {"prefix": ("*", "f")},
            {"suffix": ("memories",)},
            {"suffix": ("*", "memories")},
            {"prefix": ("users",), "suffix": ("memories",)},
            {"max_depth": 1},
            {"max_depth": 2},
            {"prefix": ("a",), "max_depth": 2},
            {"suffix": ("c",), "max_depth": 2},
            {"limit": 3, "offset": 2},
            {"prefix": ("a",), "limit": 2, "offset": 1},
            {"prefix": ("nothing",)},
        ]
        for listing in listings:
            got_ns = await ours.alist_namespaces(**listing)
            assert got_ns == await theirs.alist_namespaces(**listing), listing
    finally:
        await store.close()


async def test_a_comparison_skips_what_is_not_a_number(backend: str, tmp_path: Path) -> None:
    store, ours = await _runstore(backend, tmp_path)
    try:
        for key, value in [("n", {"s": 3}), ("t", {"s": "x"}), ("m", {}), ("z", {"s": None})]:
            await ours.aput(("f",), key, value)
        assert [i.key for i in await ours.asearch(("f",), filter={"s": {"$gt": 1}})] == ["n"]
        assert [i.key for i in await ours.asearch(("f",), filter={"s": {"$ne": 3}})] == [
            "m",
            "t",
            "z",
        ]
        with pytest.raises(ValueError, match="Unsupported operator"):
            await ours.asearch(("f",), filter={"s": {"$regex": "x"}})
    finally:
        await store.close()


async def test_a_prefix_stops_at_a_label_boundary(backend: str, tmp_path: Path) -> None:
    store, ours = await _runstore(backend, tmp_path)
    try:
        await ours.aput(("a", "b"), "k", {"v": 1})
        await ours.aput(("a", "bc"), "k", {"v": 2})
        await ours.aput(("a", "b\x01c"), "k", {"v": 3})
        await ours.aput(("a", "b", "c"), "k", {"v": 4})
        found = await ours.asearch(("a", "b"))
        assert sorted(i.value["v"] for i in found) == [1, 4]
        assert await ours.alist_namespaces(prefix=("a", "b")) == [("a", "b"), ("a", "b", "c")]
        # the entries under the prefix are one key range, and nothing else
        prefix = item_key(("a", "b"), "")[:-1]
        entries = await store.list_entries(SCOPE, prefix=prefix)
        assert sorted((e.value or {})["v"] for e in entries) == [1, 4]
    finally:
        await store.close()


def test_any_label_and_key_round_trip() -> None:
    labels = ["a", "\x01", "\x02", "\x01\x02\x01", "x\x02\x02y", "ü", "😀", "*", "%_"]
    for first in labels:
        for second in labels:
            for key in ["k", "\x01", "\x02x", "a\x01\x01b", ""]:
                namespace = (first, second)
                assert split_key(item_key(namespace, key)) == (namespace, key)
    # key order is namespace order (as tuples), then key order
    pairs = [((a, b), k) for a in labels for b in labels for k in ["k", "\x01", "\x02x"]]
    assert sorted(pairs, key=lambda p: item_key(*p)) == sorted(pairs)


async def test_vector_search_ranks_as_in_memory_store(backend: str, tmp_path: Path) -> None:
    index: Any = {"dims": 9, "embed": _embed, "fields": ["text", "nested.tags[*]"]}
    store, ours = await _runstore(backend, tmp_path, index=index)
    try:
        theirs = InMemoryStore(index=index)
        await _fill([ours, theirs])
        for store_ in (ours, theirs):
            await store_.aput(("a",), "plain", {"text": "hhhh", "score": 6}, index=False)
            await store_.aput(
                ("a",), "own", {"title": "abab", "text": "zz", "score": 7}, index=["title"]
            )
        for prefix, query, filter in [
            ((), "aaa", None),
            (("a",), "item 3 ddd", {"even": True}),
            (("a",), "hhhh", {"score": {"$gt": 5}}),
            (("a", "b"), "abab", None),
            ((), "abab", {"color": "red"}),
        ]:
            for limit, offset in [(1000, 0), (3, 0), (3, 2)]:
                got = await ours.asearch(
                    prefix, query=query, filter=filter, limit=limit, offset=offset
                )
                want = await theirs.asearch(
                    prefix, query=query, filter=filter, limit=limit, offset=offset
                )
                _same_ranking(got, want, limit)
        found = await ours.asearch(("a",), query="hhhh", limit=1000)
        assert next(i for i in found if i.key == "plain").score is None
    finally:
        await store.close()


def _same_ranking(got: list[Any], want: list[Any], limit: int) -> None:
    """The same scores in the same order; items of equal score may come in any order."""
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        if b.score is None:
            assert a.score is None
        else:
            assert a.score == pytest.approx(b.score, abs=1e-9)
    by_score: Counter[tuple[Any, ...]] = Counter()
    for i in got:
        by_score[(None if i.score is None else round(i.score, 9), i.namespace, i.key)] += 1
    for i in want:
        by_score[(None if i.score is None else round(i.score, 9), i.namespace, i.key)] -= 1
    if limit >= 1000:  # a whole listing: the very same items
        assert all(v == 0 for v in by_score.values())
    else:  # a page: the same items, but for ties cut at the page's edges
        edges = {None if i.score is None else round(i.score, 9) for i in want[:1] + want[-1:]}
        for (score, *_), count in by_score.items():
            assert count == 0 or score in edges


async def test_ttl_sets_the_expiry_and_reads_refresh_it(backend: str, tmp_path: Path) -> None:
    store, ours = await _runstore(backend, tmp_path)
    try:
        before = datetime.now(UTC)
        await ours.aput(("t",), "k", {"v": 1}, ttl=10)
        await ours.aput(("t",), "forever", {"v": 2})
        after = datetime.now(UTC)
        entry = await store.get_entry(SCOPE, item_key(("t",), "k"))
        assert entry is not None and entry.expires_at is not None
        assert before + timedelta(minutes=10) <= entry.expires_at
        assert entry.expires_at <= after + timedelta(minutes=10)
        assert (await store.get_entry(SCOPE, item_key(("t",), "forever"))).expires_at is None  # type: ignore[union-attr]

        async def expiry() -> tuple[datetime, int]:
            found = await store.get_entry(SCOPE, item_key(("t",), "k"))
            assert found is not None and found.expires_at is not None
            return found.expires_at, found.version

        first, version = await expiry()
        await ours.aget(("t",), "k", refresh_ttl=False)
        assert await expiry() == (first, version)
        await ours.aget(("t",), "k")  # refresh_on_read: by default
        second, again = await expiry()
        assert second > first and again == version  # a refresh is not a write
        await ours.asearch(("t",), refresh_ttl=False)
        assert (await expiry())[0] == second
        await ours.asearch(("t",))
        assert (await expiry())[0] > second
        assert (await store.get_entry(SCOPE, item_key(("t",), "forever"))).expires_at is None  # type: ignore[union-attr]
        # refresh_on_read off in the store's TTLConfig; default_ttl for puts without ttl
        quiet = RunstoreStore(store, ttl={"refresh_on_read": False, "default_ttl": 5})
        await quiet.aput(("q",), "k", {"v": 3})
        entry = await store.get_entry(SCOPE, item_key(("q",), "k"))
        assert entry is not None and entry.expires_at is not None
        assert entry.expires_at <= datetime.now(UTC) + timedelta(minutes=5)
        assert entry.expires_at > datetime.now(UTC) + timedelta(minutes=4)
        await quiet.aget(("q",), "k")
        await quiet.asearch(("q",))
        assert (await store.get_entry(SCOPE, item_key(("q",), "k"))).expires_at == entry.expires_at  # type: ignore[union-attr]
        await quiet.aget(("q",), "k", refresh_ttl=True)
        assert (await store.get_entry(SCOPE, item_key(("q",), "k"))).expires_at > entry.expires_at  # type: ignore[union-attr, operator]
    finally:
        await store.close()


async def test_an_expired_item_is_gone(backend: str, tmp_path: Path) -> None:
    store, ours = await _runstore(backend, tmp_path)
    try:
        await ours.aput(("t",), "brief", {"v": 1}, ttl=0.5 / 60_000)  # half a millisecond
        await ours.aput(("t",), "kept", {"v": 2}, ttl=10)
        await asyncio.sleep(0.01)
        assert await ours.aget(("t",), "brief") is None
        assert [i.key for i in await ours.asearch(("t",))] == ["kept"]
        await ours.adelete(("t",), "kept")
        assert await ours.alist_namespaces() == []
    finally:
        await store.close()


async def test_items_belong_to_their_user(backend: str, tmp_path: Path) -> None:
    store = await FACTORIES[backend](tmp_path)
    try:
        by_namespace = RunstoreStore(store, owner=lambda namespace: namespace[1])
        fixed = RunstoreStore(store, owner="u3")
        for user in ("u1", "u2"):
            await by_namespace.aput(("users", user, "memories"), "m", {"text": f"{user} likes"})
        await fixed.aput(("notes",), "n", {"text": "u3 notes"})
        owners = {e.key: e.owner for e in await store.list_entries(SCOPE)}
        assert sorted(owners.values()) == ["u1", "u2", "u3"]
        report = await store.erase("u1")
        assert report.entries == 1
        assert await by_namespace.aget(("users", "u1", "memories"), "m") is None
        assert (await by_namespace.aget(("users", "u2", "memories"), "m")) is not None
        await store.erase("u3")
        assert await fixed.asearch(()) == [
            i for i in await fixed.asearch(()) if i.namespace[1] == "u2"
        ]
        assert [i.namespace for i in await fixed.asearch(())] == [("users", "u2", "memories")]
    finally:
        await store.close()


async def test_sync_calls_from_a_thread_while_the_loop_runs(backend: str, tmp_path: Path) -> None:
    """As LangGraph calls a store from a sync node, which runs in a thread."""
    store, ours = await _runstore(backend, tmp_path)
    try:

        def sync_node(i: int) -> tuple[Item | None, int, list[tuple[str, ...]]]:
            ours.put(("sync", str(i)), "k", {"i": i})
            found = ours.get(("sync", str(i)), "k")
            return found, len(ours.search(("sync",))), ours.list_namespaces(prefix=("sync",))

        for i in range(3):
            found, count, namespaces = await asyncio.to_thread(sync_node, i)
            assert found is not None and found.value == {"i": i}
            assert count == i + 1 and len(namespaces) == i + 1
        assert [i.value for i in await ours.asearch(("sync",))] == [{"i": 0}, {"i": 1}, {"i": 2}]
    finally:
        await store.close()


async def test_a_sync_call_inside_the_loop(backend: str, tmp_path: Path) -> None:
    """Blocks the loop, as a sync store does; a PostgreSQL store, whose pool serves its loop
    alone, refuses (as LangGraph's AsyncPostgresStore does)."""
    store, ours = await _runstore(backend, tmp_path)
    try:
        if backend.startswith("postgres"):
            with pytest.raises(RuntimeError, match="inside an event loop"):
                ours.put(("x",), "k", {"v": 1})
            assert await ours.aget(("x",), "k") is None
        else:
            ours.put(("x",), "k", {"v": 1})
            assert (await ours.aget(("x",), "k")).value == {"v": 1}  # type: ignore[union-attr]
            assert ours.get(("x",), "k").value == {"v": 1}  # type: ignore[union-attr]
    finally:
        await store.close()


def test_sync_calls_without_a_loop(tmp_path: Path) -> None:
    """A sync program: every call on a private loop (SQLite, which any loop may use)."""

    async def make() -> DataStorage:
        return await FACTORIES["sqlite-sqlite3"](tmp_path)

    store = asyncio.run(make())
    ours = RunstoreStore(store)
    theirs = InMemoryStore()
    for s in (ours, theirs):
        s.batch([PutOp(("a", str(i)), f"k{i}", {"i": i}) for i in range(5)])
        s.delete(("a", "3"), "k3")
    assert _items(ours.search(("a",))) == _items(theirs.search(("a",)))
    # (InMemoryStore still lists a namespace whose last item was deleted; a stored one does not)
    assert ours.list_namespaces() == [("a", str(i)) for i in (0, 1, 2, 4)]
    asyncio.run(store.close())


async def test_bad_input_is_refused_and_nothing_is_written(backend: str, tmp_path: Path) -> None:
    store, ours = await _runstore(backend, tmp_path)
    try:
        with pytest.raises(InvalidDataError, match="key"):
            await ours.aput(("a",), "k" * 300, {"v": 1})
        with pytest.raises(InvalidDataError):
            await ours.abatch(
                [PutOp(("a",), "fine", {"v": 1}), PutOp(("a",), "bad", {"v": object()})]
            )
        with pytest.raises(InvalidDataError):
            await ours.aput(("a",), "nan", {"v": math.nan})
        assert await store.list_entries(SCOPE) == []
        await ours.aput(("a",), "kept", {"v": 1})
        with pytest.raises(InvalidDataError):  # a delete beside a bad put is not applied
            await ours.abatch([PutOp(("a",), "kept", None), PutOp(("a",), "bad", {"v": {1}})])
        assert [e.value for e in await store.list_entries(SCOPE)] == [{"v": 1}]
        assert await ours.aget(("a",), "k" * 300) is None  # too long to exist
    finally:
        await store.close()


async def test_a_graph_remembers_across_threads(backend: str, tmp_path: Path) -> None:
    """A compiled graph with the store: a sync node (LangGraph runs it in a thread while its
    loop runs) writes a memory, an async node reads the user's memories, in another thread."""
    from typing import TypedDict

    from langgraph.graph import START, StateGraph
    from langgraph.store.base import BaseStore

    class State(TypedDict):
        user: str
        fact: str
        known: list[str]

    def remember(state: State, *, store: BaseStore) -> dict[str, Any]:
        if state["fact"]:
            count = len(store.search(("memories", state["user"]), limit=100))
            store.put(("memories", state["user"]), f"f{count}", {"text": state["fact"]})
        return {}

    async def recall(state: State, *, store: BaseStore) -> dict[str, Any]:
        found = await store.asearch(("memories", state["user"]), limit=100)
        return {"known": [item.value["text"] for item in found]}

    builder = StateGraph(State)
    builder.add_node("remember", remember)
    builder.add_node("recall", recall)
    builder.add_edge(START, "remember")
    builder.add_edge("remember", "recall")
    store = await FACTORIES[backend](tmp_path)
    try:
        graph = builder.compile(store=RunstoreStore(store, owner=lambda ns: ns[1]))
        await graph.ainvoke({"user": "u1", "fact": "likes tea", "known": []})
        await graph.ainvoke({"user": "u2", "fact": "likes maps", "known": []})
        await graph.ainvoke({"user": "u1", "fact": "lives by the sea", "known": []})
        out = await graph.ainvoke({"user": "u1", "fact": "", "known": []})
        assert out["known"] == ["likes tea", "lives by the sea"]
        assert {e.owner for e in await store.list_entries(SCOPE)} == {"u1", "u2"}
    finally:
        await store.close()
