"""Owned and expiring entries (docs/contract.md, "Entries": owner and expiry)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from runstore import DataStorage, Entry, EntryPatch, InvalidDataError, NewEntry

PAST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE = datetime(9000, 1, 1, tzinfo=UTC)


async def test_owner_and_expiry_round_trip(store: DataStorage) -> None:
    later = datetime(9000, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))
    await store.put_entries(
        "s", [NewEntry("a", {"n": 1}, owner="ada", expires_at=later), NewEntry("b")]
    )
    a = await store.get_entry("s", "a")
    b = await store.get_entry("s", "b")
    assert a is not None and b is not None
    assert (a.owner, a.expires_at) == ("ada", FUTURE)
    assert a.expires_at is not None and a.expires_at.tzinfo is not None
    assert (b.owner, b.expires_at) == (None, None)
    listed = await store.list_entries("s")
    assert [(e.key, e.owner, e.expires_at) for e in listed] == [
        ("a", "ada", FUTURE),
        ("b", None, None),
    ]
    # a put replaces the whole entry, owner and expiry included
    await store.put_entries("s", [NewEntry("a", {"n": 2})])
    a = await store.get_entry("s", "a")
    assert a is not None and (a.owner, a.expires_at, a.version) == (None, None, 2)


async def test_merge_sets_or_keeps_the_owner(store: DataStorage) -> None:
    await store.put_entries("s", [NewEntry("k", {"a": 1}, owner="ada", expires_at=FUTURE)])
    merged = await store.merge_entry("s", "k", {"b": 2})
    assert merged is not None
    assert (merged.value, merged.owner, merged.expires_at) == ({"a": 1, "b": 2}, "ada", FUTURE)
    merged = await store.merge_entry("s", "k", {"c": 3}, owner="bob")
    assert merged is not None and merged.owner == "bob"
    created = await store.merge_entry("s", "new", {"x": 1}, owner="ada")
    assert created is not None and (created.owner, created.version) == ("ada", 1)
    written = await store.write_entries(
        "s", [EntryPatch("k", {"d": 4}, owner="cy"), EntryPatch("other", {"e": 5})]
    )
    assert written is not None
    assert [(e.key, e.owner) for e in written] == [("k", "cy"), ("other", None)]
    got = await store.get_entry("s", "k")
    assert got is not None and (got.owner, got.expires_at) == ("cy", FUTURE)


async def test_copy_keeps_owner_and_expiry(store: DataStorage) -> None:
    await store.put_entries(
        "s",
        [NewEntry("p/1", owner="ada", expires_at=FUTURE), NewEntry("p/2", owner="bob")],
    )
    assert await store.copy_entries("s", prefix="p/", to_prefix="q/") == 2
    copied = await store.list_entries("s", prefix="q/")
    assert [(e.key, e.owner, e.expires_at) for e in copied] == [
        ("q/1", "ada", FUTURE),
        ("q/2", "bob", None),
    ]


async def test_an_expired_entry_is_never_read(store: DataStorage) -> None:
    await store.put_entries(
        "s",
        [
            NewEntry("p/gone", {"secret": "x"}, expires_at=PAST),
            NewEntry("p/kept", {"n": 1}, expires_at=FUTURE),
        ],
    )
    assert await store.get_entry("s", "p/gone") is None
    assert [e.key for e in await store.list_entries("s")] == ["p/kept"]
    assert [e.key for e in await store.list_entries("s", reverse=True, limit=1)] == ["p/kept"]
    assert await store.copy_entries("s", prefix="p/", to_prefix="q/") == 1
    assert [e.key for e in await store.list_entries("s", prefix="q/")] == ["q/kept"]


async def test_an_expired_entry_counts_as_absent_for_writes(store: DataStorage) -> None:
    old = NewEntry("k", {"old": True}, data=b"d", tag="t", owner="ada", expires_at=PAST)
    await store.put_entries("s", [old])
    await store.put_entries("s", [old])  # version 2 of an expired entry
    assert await store.put_entries("s", [NewEntry("k", {"n": 1})], only_if_absent=True) == 1
    entry = await store.get_entry("s", "k")
    assert entry is not None and (entry.value, entry.version) == ({"n": 1}, 1)

    await store.put_entries("s", [old])
    merged = await store.merge_entry("s", "k", {"m": 1}, expect_version=0)
    assert merged is not None
    assert (merged.value, merged.data, merged.tag, merged.owner, merged.expires_at) == (
        {"m": 1},
        None,
        None,
        None,
        None,
    )
    assert merged.version == 1

    await store.put_entries("s", [old])
    assert await store.merge_entry("s", "k", {"m": 1}, expect_version=2) is None
    written = await store.write_entries("s", [NewEntry("k", {"w": 1})], expect={"k": 0})
    assert written is not None and (written[0].value, written[0].version) == ({"w": 1}, 1)

    await store.put_entries("s", [old])
    merged = await store.merge_entry("s", "k", {"m": 2})
    assert merged is not None and (merged.value, merged.owner, merged.version) == (
        {"m": 2},
        None,
        1,
    )


async def test_copy_over_an_expired_entry_starts_it_again(store: DataStorage) -> None:
    await store.put_entries("s", [NewEntry("q/1", expires_at=PAST), NewEntry("p/1", {"v": 1})])
    assert await store.copy_entries("s", prefix="p/", to_prefix="q/") == 1
    copied = await store.get_entry("s", "q/1")
    assert copied is not None and (copied.value, copied.version) == ({"v": 1}, 1)


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        (NewEntry("k", owner=5), "entries[0].owner"),  # type: ignore[arg-type]
        (NewEntry("k", owner="x" * 257), "entries[0].owner"),
        (NewEntry("k", owner="a\x00b"), "entries[0].owner"),
        (NewEntry("k", expires_at=datetime(2030, 1, 1)), "entries[0].expires_at"),
        (NewEntry("k", expires_at="2030-01-01"), "entries[0].expires_at"),  # type: ignore[arg-type]
    ],
)
async def test_bad_owner_or_expiry_is_refused(
    store: DataStorage, entry: NewEntry, field: str
) -> None:
    with pytest.raises(InvalidDataError) as caught:
        await store.put_entries("s", [NewEntry("first"), entry])
    assert caught.value.field == field.replace("[0]", "[1]")
    with pytest.raises(InvalidDataError) as caught:
        await store.write_entries("s", [entry])
    assert caught.value.field == field.replace("entries", "writes")
    with pytest.raises(InvalidDataError) as caught:
        await store.merge_entry("s", "k", {}, owner=5)  # type: ignore[arg-type]
    assert caught.value.field == "owner"
    with pytest.raises(InvalidDataError) as caught:
        await store.write_entries("s", [EntryPatch("k", {}, owner=5)])  # type: ignore[arg-type]
    assert caught.value.field == "writes[0].owner"
    assert await store.list_entries("s") == []


async def test_refresh_sets_only_the_expiry_of_live_entries(store: DataStorage) -> None:
    later = datetime(9500, 1, 1, 3, tzinfo=timezone(timedelta(hours=3)))
    await store.put_entries(
        "s",
        [
            NewEntry("a", {"n": 1}, b"d", tag="t", owner="ada", expires_at=FUTURE),
            NewEntry("b", {"n": 2}),
            NewEntry("gone", {"n": 3}, expires_at=PAST),
        ],
    )
    await store.put_entries("other", [NewEntry("a", {"n": 9}, expires_at=FUTURE)])
    before = await store.get_entry("s", "a")
    assert before is not None
    # a repeated key counts once; expired and missing keys are neither counted nor revived
    assert await store.refresh_entries("s", ["a", "b", "a", "gone", "nope"], expires_at=later) == 2
    after = await store.get_entry("s", "a")
    assert after is not None
    assert after.expires_at == datetime(9500, 1, 1, tzinfo=UTC)
    # not a write: value, data, tag, owner, version and updated_at are kept
    assert after == Entry(**{**_fields(before), "expires_at": after.expires_at})
    b = await store.get_entry("s", "b")
    assert b is not None and (b.version, b.expires_at) == (1, datetime(9500, 1, 1, tzinfo=UTC))
    assert await store.get_entry("s", "gone") is None
    assert await store.get_entry("s", "nope") is None
    other = await store.get_entry("other", "a")
    assert other is not None and other.expires_at == FUTURE  # another scope is untouched
    # None makes them permanent; an expectation of the version still holds afterwards
    assert await store.refresh_entries("s", ["a"], expires_at=None) == 1
    permanent = await store.get_entry("s", "a")
    assert permanent is not None and (permanent.expires_at, permanent.version) == (None, 1)
    assert await store.write_entries("s", [EntryPatch("a", {"m": 1})], expect={"a": 1})
    # a time in the past expires them now
    assert await store.refresh_entries("s", ["a", "b"], expires_at=PAST) == 2
    assert await store.list_entries("s") == []
    assert await store.refresh_entries("s", ["a", "b"], expires_at=FUTURE) == 0
    assert await store.refresh_entries("s", [], expires_at=FUTURE) == 0
    assert await store.refresh_entries("empty", ["a"], expires_at=FUTURE) == 0


def _fields(entry: Entry) -> dict[str, object]:
    return {name: getattr(entry, name) for name in Entry.__dataclass_fields__}
