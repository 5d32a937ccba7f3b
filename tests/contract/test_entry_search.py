"""search_entries: the matching rule over entries' text, the order, the filters, and the index
following every change (docs/contract.md, "Search")."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from helpers import NewStore

from runstore import DataStorage, EntryHit, EntryPatch, NewEntry

PAST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE = datetime(9000, 1, 1, tzinfo=UTC)


def keys(hits: list[EntryHit]) -> list[str]:
    return [hit.entry.key for hit in hits]


async def search(store: DataStorage, query: str, scope: str = "s", **kwargs: object) -> list[str]:
    return keys(await store.search_entries(query, scope=scope, **kwargs))  # type: ignore[arg-type]


async def test_string_leaves_are_matched_by_the_message_rule(store: DataStorage) -> None:
    await store.put_entries(
        "s",
        [
            NewEntry("a", {"text": "The cat sat.", "n": 7}),
            NewEntry("b", {"notes": ["Concatenate", {"deep": "cats"}]}),
            NewEntry("c", {"title": "CAT-like", "body": "Straße"}),
            NewEntry("d", {"cat": 1, "dog": True}, data=b"cat", tag="cat"),  # no string leaf
            NewEntry("e", {"x": "東京都に住んでいます"}),
            NewEntry("f", {"x": "東京", "y": "都"}),  # a run never spans two leaves
            NewEntry("g", None, data=b"cat"),
        ],
    )
    assert await search(store, "cat") == ["a", "c"]  # not object keys, data or tags
    assert await search(store, "CATS") == ["b"]
    assert await search(store, "conc") == []  # a partial word does not match
    assert await search(store, "strasse") == ["c"]
    assert await search(store, "京都") == ["e"]
    assert await search(store, "東京") == ["e", "f"]
    assert await search(store, "7") == []  # numbers are not text
    assert await search(store, "") == []
    assert await search(store, "cat", scope="other") == []


async def test_ranked_by_query_words_then_newest_then_key(store: DataStorage) -> None:
    await store.put_entries("s", [NewEntry("k1", {"t": "red apple"})])
    await store.put_entries("s", [NewEntry("k2", {"t": "green apple pie"})])
    await store.put_entries(
        "s", [NewEntry("k4", {"t": "red green apple"}), NewEntry("k3", {"t": "apple red"})]
    )
    await store.put_entries("s", [NewEntry("k5", {"t": "apple"})])
    hits = await store.search_entries("Red apple, green!", scope="s")
    assert [(h.entry.key, h.score) for h in hits] == [
        ("k4", 3),
        ("k3", 2),  # as new as k4: by key
        ("k2", 2),
        ("k1", 2),
        ("k5", 1),
    ]
    assert hits[0].entry == await store.get_entry("s", "k4")
    assert await search(store, "apple", limit=2) == ["k5", "k3"]
    assert await search(store, "apple", limit=0) == []
    assert len(await store.search_entries("apple", scope="s", limit=None)) == 5


async def test_fields_prefix_and_owner_narrow_the_search(store: DataStorage) -> None:
    await store.put_entries(
        "mem",
        [
            NewEntry("ada/1", {"text": "likes chess", "kind": "hobby"}, owner="ada"),
            NewEntry("ada/2", {"text": "plays go", "kind": "chess club"}, owner="ada"),
            NewEntry("bob/1", {"text": "likes chess"}, owner="bob"),
            NewEntry("nobody", {"text": "chess"}),
        ],
    )
    assert await search(store, "chess", "mem", limit=None) == ["ada/1", "ada/2", "bob/1", "nobody"]
    assert await search(store, "chess", "mem", owner="ada") == ["ada/1", "ada/2"]
    assert await search(store, "chess", "mem", owner="bob") == ["bob/1"]
    assert await search(store, "chess", "mem", owner="cy") == []
    assert await search(store, "chess", "mem", prefix="ada/") == ["ada/1", "ada/2"]
    assert await search(store, "chess", "mem", prefix="ada") == ["ada/1", "ada/2"]
    assert await search(store, "chess", "mem", prefix="bob/", owner="ada") == []
    assert await search(store, "chess", "mem", fields=["text"]) == ["ada/1", "bob/1", "nobody"]
    assert await search(store, "chess", "mem", fields=["kind"]) == ["ada/2"]
    assert await search(store, "chess", "mem", fields=["missing"]) == []
    assert await search(store, "chess", "mem", fields=[]) == []


async def test_expired_entries_are_never_found(store: DataStorage) -> None:
    await store.put_entries(
        "s",
        [
            NewEntry("gone", {"t": "secret word"}, expires_at=PAST),
            NewEntry("kept", {"t": "secret"}, expires_at=FUTURE),
        ],
    )
    assert await search(store, "secret") == ["kept"]
    assert await store.refresh_entries("s", ["kept"], expires_at=PAST) == 1
    assert await search(store, "secret") == []
    assert await search(store, "word") == []


async def test_the_index_follows_every_write(store: DataStorage) -> None:
    await store.put_entries("s", [NewEntry("a", {"t": "alpha beta"}), NewEntry("b", {"t": "beta"})])
    assert await search(store, "alpha") == ["a"]
    await store.put_entries("s", [NewEntry("a", {"t": "gamma"})])  # a put replaces the text
    assert await search(store, "alpha") == []
    assert await search(store, "gamma") == ["a"]
    await store.put_entries("s", [NewEntry("a", {"t": "delta"})], only_if_absent=True)
    assert await search(store, "delta") == []
    await store.merge_entry("s", "a", {"t": "epsilon", "u": "zeta"})  # replaces t
    assert await search(store, "gamma") == []
    assert await search(store, "epsilon zeta") == ["a"]
    await store.merge_entry("s", "a", {"u": 1})
    assert await search(store, "zeta") == []
    assert await search(store, "epsilon") == ["a"]
    await store.write_entries(
        "s", [EntryPatch("b", {"t": "eta"}), NewEntry("c", {"t": "theta"})], expect={"c": 0}
    )
    assert await search(store, "beta eta theta", limit=None) == ["b", "c"]  # same time: by key
    assert await store.copy_entries("s", prefix="c", to_prefix="copy/", to_scope="t") == 1
    assert await search(store, "theta", scope="t") == ["copy/"]
    await store.put_entries("t", [NewEntry("copy/", {"t": "iota"})])
    assert await search(store, "theta", scope="t") == []
    assert await store.copy_entries("s", prefix="c", to_prefix="copy/", to_scope="t") == 1
    assert await search(store, "iota", scope="t") == []  # the copy replaced it
    assert await search(store, "theta", scope="t") == ["copy/"]
    assert await store.delete_entries("s", prefix="c") == 1
    assert await search(store, "theta") == []
    assert await search(store, "theta", scope="t") == ["copy/"]
    await store.delete_entries("s")
    assert await search(store, "epsilon eta") == []
    await store.put_entries("s", [NewEntry("a", {"t": "epsilon"})])  # the key again
    assert await search(store, "epsilon") == ["a"]


async def test_erase_prune_and_import_keep_the_index(new_store: NewStore) -> None:
    store = await new_store()
    await store.put_entries(
        "s",
        [
            NewEntry("ada", {"t": "private note"}, owner="ada"),
            NewEntry("bob", {"t": "private note"}, owner="bob"),
            NewEntry("old", {"t": "note"}, expires_at=FUTURE),
        ],
    )
    assert await search(store, "private") == ["ada", "bob"]
    assert (await store.erase("ada")).entries == 1
    assert await search(store, "private") == ["bob"]
    await store.refresh_entries("s", ["old"], expires_at=PAST)
    assert (await store.prune()).entries == 1
    assert await search(store, "note") == ["bob"]
    copy = await new_store()
    await copy.import_records([record async for record in store.export_records()])
    assert await search(copy, "private note") == ["bob"]
    [hit] = await copy.search_entries("note", scope="s")
    assert (hit.entry, hit.score) == (await store.get_entry("s", "bob"), 1)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"query": 1, "scope": "s"}, "query"),
        ({"query": "x", "scope": ""}, "scope"),
        ({"query": "x", "scope": "s", "prefix": 3}, "prefix"),
        ({"query": "x", "scope": "s", "owner": "o" * 257}, "owner"),
        ({"query": "x", "scope": "s", "fields": "text"}, "fields"),
        ({"query": "x", "scope": "s", "fields": ["text", 1]}, "fields[1]"),
        ({"query": "x", "scope": "s", "limit": -1}, "limit"),
        ({"query": "x", "scope": "s", "limit": 2**63}, "limit"),
    ],
)
async def test_bad_arguments_are_refused(
    store: DataStorage, kwargs: dict[str, object], field: str
) -> None:
    from runstore import InvalidDataError

    with pytest.raises(InvalidDataError) as caught:
        await store.search_entries(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
