"""Entries: the ordered key-value store (docs/contract.md, "Entries")."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from helpers import start

from runstore import DataStorage, Entry, EntryPatch, InvalidDataError, NewEntry

KEYS = ["a", "a/1", "a/2", "a/10", "a\x01", "a\u00e9", "a\U0001f600", "a\uffff", "b", "ab"]


def keys_of(entries: list[Entry]) -> list[str]:
    return [e.key for e in entries]


async def put(store: DataStorage, scope: str, *keys: str, **fields: object) -> int:
    return await store.put_entries(scope, [NewEntry(k, **fields) for k in keys])  # type: ignore[arg-type]


async def test_put_get_round_trip_with_bytes(store: DataStorage) -> None:
    blob = bytes(range(256)) * 5
    written = await store.put_entries(
        "s", [NewEntry("k", value={"n": 1, "x": [1.5, None, "é"]}, data=blob, tag="t1")]
    )
    assert written == 1
    entry = await store.get_entry("s", "k")
    assert entry is not None
    assert (entry.scope, entry.key, entry.value, entry.data, entry.tag, entry.version) == (
        "s",
        "k",
        {"n": 1, "x": [1.5, None, "é"]},
        blob,
        "t1",
        1,
    )
    assert type(entry.data) is bytes
    assert isinstance(entry.updated_at, datetime) and entry.updated_at.tzinfo is not None
    assert await store.get_entry("s", "other") is None
    assert await store.get_entry("other", "k") is None


async def test_put_replaces_and_counts_versions(store: DataStorage) -> None:
    await store.put_entries("s", [NewEntry("k", value={"a": 1}, data=b"x", tag="t")])
    first = await store.get_entry("s", "k")
    await store.put_entries("s", [NewEntry("k", value={"b": 2})])
    entry = await store.get_entry("s", "k")
    assert entry is not None and first is not None
    assert (entry.value, entry.data, entry.tag, entry.version) == ({"b": 2}, None, None, 2)
    assert entry.updated_at > first.updated_at


async def test_only_if_absent_keeps_existing_entries(store: DataStorage) -> None:
    await store.put_entries("s", [NewEntry("k", value={"first": True})])
    written = await store.put_entries(
        "s", [NewEntry("k", value={"first": False}), NewEntry("new")], only_if_absent=True
    )
    assert written == 1
    entry = await store.get_entry("s", "k")
    assert entry is not None and entry.value == {"first": True} and entry.version == 1
    assert await store.get_entry("s", "new") is not None


async def test_fifty_racing_puts_lose_nothing(store: DataStorage) -> None:
    async def one(i: int) -> int:
        return await store.put_entries(
            "s", [NewEntry(f"w/{i:03}", value={"i": i})], only_if_absent=True
        )

    assert await asyncio.gather(*(one(i) for i in range(50))) == [1] * 50
    entries = await store.list_entries("s", prefix="w/")
    assert [e.value for e in entries] == [{"i": i} for i in range(50)]


async def test_list_is_in_code_point_order_with_bounds(store: DataStorage) -> None:
    await put(store, "s", *KEYS)
    await put(store, "other", "a/3")
    everything = sorted(KEYS)
    assert keys_of(await store.list_entries("s")) == everything
    assert keys_of(await store.list_entries("s", reverse=True)) == everything[::-1]
    with_a = [k for k in everything if k.startswith("a/")]
    assert keys_of(await store.list_entries("s", prefix="a/")) == with_a
    assert keys_of(await store.list_entries("s", prefix="a/", reverse=True, limit=2)) == [
        "a/2",
        "a/10",
    ]
    assert keys_of(await store.list_entries("s", prefix="a/", limit=1)) == ["a/1"]
    assert keys_of(await store.list_entries("s", after="a/1", before="a/2")) == ["a/10"]
    assert keys_of(await store.list_entries("s", prefix="a", after="a/2")) == [
        k for k in everything if k.startswith("a") and k > "a/2"
    ]
    assert keys_of(await store.list_entries("s", before="a/1", reverse=True, limit=2)) == [
        "a\x01",
        "a",
    ]
    assert keys_of(await store.list_entries("s", prefix="a\U0001f600")) == ["a\U0001f600"]
    assert await store.list_entries("s", prefix="zz") == []
    assert await store.list_entries("s", limit=0) == []
    assert await store.list_entries("s", after="b", before="a") == []


async def test_prefix_ending_in_the_highest_code_point(store: DataStorage) -> None:
    top = "\U0010ffff"
    await put(store, "s", "x" + top, "x" + top + "y", "x" + top + top, "y")
    found = keys_of(await store.list_entries("s", prefix="x" + top))
    assert found == ["x" + top, "x" + top + "y", "x" + top + top]
    assert keys_of(await store.list_entries("s", prefix=top)) == []


async def test_merge_sets_top_level_keys_atomically(store: DataStorage) -> None:
    first = await store.merge_entry("s", "state", {"a": 1, "b": {"x": 1}})
    assert first is not None and first.value == {"a": 1, "b": {"x": 1}} and first.version == 1

    async def one(i: int) -> None:
        await store.merge_entry("s", "state", {f"k{i}": i})

    await asyncio.gather(*(one(i) for i in range(50)))
    entry = await store.merge_entry("s", "state", {"b": {"y": 2}, "a": None})
    assert entry is not None
    assert entry.value == {"a": None, "b": {"y": 2}, **{f"k{i}": i for i in range(50)}}
    assert entry.version == 52
    assert (await store.get_entry("s", "state")) == entry


async def test_merge_keeps_data_and_tag(store: DataStorage) -> None:
    await store.put_entries("s", [NewEntry("k", data=b"\x00\xff", tag="t")])
    entry = await store.merge_entry("s", "k", {"x": 1})
    assert entry is not None and (entry.value, entry.data, entry.tag) == (
        {"x": 1},
        b"\x00\xff",
        "t",
    )


async def test_merge_with_expected_version(store: DataStorage) -> None:
    assert await store.merge_entry("s", "k", {"a": 1}, expect_version=1) is None
    assert await store.get_entry("s", "k") is None
    created = await store.merge_entry("s", "k", {"a": 1}, expect_version=0)
    assert created is not None and created.version == 1
    assert await store.merge_entry("s", "k", {"a": 2}, expect_version=0) is None
    updated = await store.merge_entry("s", "k", {"a": 2}, expect_version=1)
    assert updated is not None and updated.value == {"a": 2} and updated.version == 2

    async def racer(i: int) -> Entry | None:
        return await store.merge_entry("s", "k", {"winner": i}, expect_version=2)

    results = await asyncio.gather(*(racer(i) for i in range(10)))
    assert sum(r is not None for r in results) == 1


async def test_delete_ranges_and_tags(store: DataStorage) -> None:
    await put(store, "s", "a/1", "a/2", "a/3", "b/1")
    await store.put_entries("s", [NewEntry("c/1", tag="r1"), NewEntry("c/2", tag="r2")])
    await store.put_entries("s", [NewEntry("d/1", tag="r1")])
    await put(store, "keep", "a/1")
    assert await store.delete_entries("s", prefix="a/", before="a/3") == 2
    assert await store.delete_entries("s", tags=["r1", "nothing"]) == 2
    assert await store.delete_entries("s", tags=[]) == 0
    assert keys_of(await store.list_entries("s")) == ["a/3", "b/1", "c/2"]
    assert await store.delete_entries("s", after="a/3") == 2
    assert await store.delete_entries("s") == 1
    assert await store.list_entries("s") == []
    assert keys_of(await store.list_entries("keep")) == ["a/1"]
    assert await store.delete_entries("nothing-here") == 0


async def test_copy_refuses_to_make_keys_longer_than_a_key_may_be(store: DataStorage) -> None:
    longest = "k" + "🌍" * 255  # 256 characters: the longest key
    await store.put_entries("s", [NewEntry(longest, value={"v": 1})])
    before = await store.list_entries("s")
    with pytest.raises(InvalidDataError) as caught:
        await store.copy_entries("s", prefix="k", to_prefix="kk", to_scope="t")
    assert caught.value.field == "to_prefix"
    assert await store.list_entries("s") == before
    assert await store.list_entries("t") == []
    # the same keys under a prefix of the same length fit
    assert await store.copy_entries("s", prefix="k", to_prefix="j", to_scope="t") == 1


async def test_copy_entries_to_a_prefix_and_scope(store: DataStorage) -> None:
    await store.put_entries(
        "s",
        [
            NewEntry("t1/a", value={"v": 1}, data=b"1", tag="r"),
            NewEntry("t1/b", value={"v": 2}),
            NewEntry("t10/a", value={"v": 3}),
        ],
    )
    await store.put_entries("s", [NewEntry("t2/b", value={"old": True}), NewEntry("t2/z")])
    assert await store.copy_entries("s", prefix="t1/", to_prefix="t2/") == 2
    copied = await store.list_entries("s", prefix="t2/")
    assert [(e.key, e.value, e.data, e.tag) for e in copied] == [
        ("t2/a", {"v": 1}, b"1", "r"),
        ("t2/b", {"v": 2}, None, None),
        ("t2/z", None, None, None),
    ]
    assert await store.copy_entries("s", prefix="t1/", to_prefix="x/", to_scope="other") == 2
    assert keys_of(await store.list_entries("other")) == ["x/a", "x/b"]
    assert await store.copy_entries("s", prefix="none/", to_prefix="y/") == 0
    assert len(await store.list_entries("s")) == 6


async def test_entries_are_copies(store: DataStorage) -> None:
    value = {"list": [1, 2]}
    await store.put_entries("s", [NewEntry("k", value=value, data=bytearray(b"ab"))])
    value["list"].append(3)
    entry = await store.get_entry("s", "k")
    assert entry is not None and entry.value == {"list": [1, 2]} and entry.data == b"ab"
    entry.value["list"].append(4)  # type: ignore[index]
    again = await store.get_entry("s", "k")
    assert again is not None and again.value == {"list": [1, 2]}


async def test_entries_are_apart_from_sessions(store: DataStorage) -> None:
    run = await start(store)
    await store.put_entries(run.session_id, [NewEntry("k")])
    await store.delete_session(run.session_id)
    assert await store.get_entry(run.session_id, "k") is not None
    assert [e["key"] for e in (await store.export_data())["entries"]] == ["k"]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.put_entries("", [NewEntry("k")]), "scope"),
        (lambda s: s.put_entries("s", [NewEntry("")]), "entries[0].key"),
        (lambda s: s.put_entries("s", [NewEntry("k\x00")]), "entries[0].key"),
        (lambda s: s.put_entries("s", [NewEntry("k", value=[1])]), "entries[0].value"),
        (
            lambda s: s.put_entries("s", [NewEntry("k", value={"x": float("nan")})]),
            "entries[0].value['x']",
        ),
        (lambda s: s.put_entries("s", [NewEntry("k", data="text")]), "entries[0].data"),
        (lambda s: s.put_entries("s", [NewEntry("k", tag=3)]), "entries[0].tag"),
        (lambda s: s.put_entries("s", [NewEntry("k"), NewEntry("k")]), "entries[1].key"),
        (lambda s: s.put_entries("s", [NewEntry("k"), ("x",)]), "entries[1]"),
        (lambda s: s.put_entries("s", NewEntry("k")), "entries"),
        (lambda s: s.get_entry("s", "\ud800"), "key"),
        (lambda s: s.list_entries("s", limit=-1), "limit"),
        (lambda s: s.list_entries("s", prefix=b"a"), "prefix"),
        (lambda s: s.list_entries("s", before="a\x00"), "before"),
        (lambda s: s.merge_entry("s", "k", [1]), "patch"),
        (lambda s: s.merge_entry("s", "k", {"a": 1}, expect_version=-1), "expect_version"),
        (lambda s: s.delete_entries("s", tags="r1"), "tags"),
        (lambda s: s.copy_entries("s", prefix="a", to_prefix="ab"), "to_prefix"),
    ],
)
async def test_bad_arguments_are_refused_and_change_nothing(
    store: DataStorage, call: object, field: str
) -> None:
    await store.put_entries("s", [NewEntry("a", value={"x": 1})])
    before = await store.list_entries("s")
    with pytest.raises(InvalidDataError) as raised:
        await call(store)  # type: ignore[operator]
    assert raised.value.field == field
    assert await store.list_entries("s") == before


async def test_write_entries_all_or_nothing(store: DataStorage) -> None:
    await store.put_entries("s", [NewEntry("head", {"n": 1}, b"h", "t")])
    written = await store.write_entries(
        "s",
        [
            EntryPatch("head", {"m": 2}),
            NewEntry("log/1", {"e": 1}, b"\x00"),
            EntryPatch("new", {"x": 1}),
        ],
        expect={"head": 1, "log/1": 0},
    )
    assert written is not None
    assert [(e.key, e.value, e.data, e.tag, e.version) for e in written] == [
        ("head", {"n": 1, "m": 2}, b"h", "t", 2),
        ("log/1", {"e": 1}, b"\x00", None, 1),
        ("new", {"x": 1}, None, None, 1),
    ]
    assert written == [await store.get_entry("s", k) for k in ("head", "log/1", "new")]
    before = await store.list_entries("s")
    for expect in ({"head": 1}, {"log/1": 0}, {"head": 2, "absent": 1}):
        refused = await store.write_entries(
            "s", [EntryPatch("head", {"lost": True}), NewEntry("log/2")], expect=expect
        )
        assert refused is None
    assert await store.list_entries("s") == before


async def test_write_entries_expecting_one_version_lets_one_racer_win(store: DataStorage) -> None:
    await store.put_entries("s", [NewEntry("head", {"n": 0})])

    async def racer(i: int) -> list[Entry] | None:
        return await store.write_entries(
            "s",
            [EntryPatch("head", {"n": i}), NewEntry(f"log/{i}", {"i": i})],
            expect={"head": 1, "claimed": 0},
        )

    results = await asyncio.gather(*(racer(i) for i in range(10)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert len(await store.list_entries("s", prefix="log/")) == 1
    assert await store.get_entry("s", "claimed") is None  # expected absent, never written

    async def claimer(i: int) -> list[Entry] | None:
        return await store.write_entries(
            "s", [NewEntry("claimed", {"by": i})], expect={"claimed": 0}
        )

    claims = await asyncio.gather(*(claimer(i) for i in range(10)))
    assert sum(c is not None for c in claims) == 1
    entry = await store.get_entry("s", "claimed")
    assert entry is not None and entry.version == 1


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.write_entries("s", []), "writes"),
        (lambda s: s.write_entries("s", [NewEntry("k"), EntryPatch("k", {})]), "writes[1].key"),
        (lambda s: s.write_entries("s", [EntryPatch("k", [1])]), "writes[0].patch"),
        (lambda s: s.write_entries("s", ["k"]), "writes[0]"),
        (lambda s: s.write_entries("s", [NewEntry("k")], expect={"k": -1}), "expect['k']"),
        (lambda s: s.write_entries("s", [NewEntry("k")], expect=["k"]), "expect"),
    ],
)
async def test_write_entries_refuses_bad_arguments(
    store: DataStorage, call: object, field: str
) -> None:
    with pytest.raises(InvalidDataError) as raised:
        await call(store)  # type: ignore[operator]
    assert raised.value.field == field
    assert await store.list_entries("s") == []
