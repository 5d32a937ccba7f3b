"""Schema version 9 (the search index of entries): a populated schema-8 file, written through
the API of the runstore of that schema, is upgraded in place with every row kept, its entries
indexed, and the index then follows new writes."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from runstore import DataStorage, NewEntry, SqliteDataStorage, _search
from runstore._sqlite_sql import SCHEMA_VERSION

FIXTURES = Path(__file__).parent / "fixtures"
# Every word of the fixture's entries that the tests look for.
WORDS = "chess likes go hobby strasse 東京 dark ada secret expired"


def pragma(path: Path, statement: str) -> list[tuple[object, ...]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(statement).fetchall()
    finally:
        connection.close()


def brute_force(export: dict[str, Any], scope: str, query: str) -> list[tuple[str, int]]:
    """(key, score) of the exported entries of ``scope`` that match, in the contract's order."""
    parsed = _search.parse(query)
    found = []
    for entry in export["entries"]:
        score = _search.score(parsed, _search.entry_text(entry["value"]))
        if entry["scope"] == scope and score:
            found.append((-score, entry["updated_at"], entry["key"]))
    found.sort(key=lambda f: (f[0], [-ord(c) for c in f[1]], f[2]))
    return [(key, -score) for score, _, key in found]


async def found(store: DataStorage, query: str, **filters: Any) -> list[tuple[str, int]]:
    hits = await store.search_entries(query, scope="memories", limit=None, **filters)
    return [(hit.entry.key, hit.score) for hit in hits]


@pytest.mark.parametrize("driver", ["sqlite3", "aiosqlite"])
async def test_a_version_8_file_is_upgraded_and_its_entries_indexed(
    tmp_path: Path, driver: str
) -> None:
    path = tmp_path / "v8.sqlite"
    shutil.copy(FIXTURES / "runstore-v8.sqlite", path)
    assert pragma(path, "PRAGMA user_version") == [(8,)]
    expected = json.loads((FIXTURES / "runstore-v8.expected.json").read_text(encoding="utf-8"))
    async with SqliteDataStorage(path, driver=driver) as store:
        export = await store.export_data()
        assert export == expected["export"]
        for scope in ("memories", "app", "adk", "langgraph"):
            hits = await store.search_entries(WORDS, scope=scope, limit=None)
            assert [(h.entry.key, h.score) for h in hits] == brute_force(export, scope, WORDS)
        assert await found(store, "chess") == [("ada/1", 1), ("bob/1", 1)]  # ada/1 is newer
        assert await found(store, "chess", owner="bob") == [("bob/1", 1)]
        assert await found(store, "東京 go") == [("ada/1", 1), ("ada/2", 1)]
        assert await found(store, "STRASSE") == [("bob/1", 1)]
        assert await found(store, "secret expired") == []  # stored, expired: never found
        # the index follows new writes, and the messages' index still works
        await store.put_entries("memories", [NewEntry("ada/1", {"text": "now checkers"})])
        assert await found(store, "chess checkers") == [("ada/1", 1), ("bob/1", 1)]
        assert await store.erase("bob") is not None
        assert await found(store, "chess") == []
        hello = await store.search_messages("hello", limit=None)
        assert sorted(h.message.content or "" for h in hello) == [
            "hello",
            "hello",
            "hello user two",
        ]  # a fork
    assert pragma(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert pragma(path, "PRAGMA integrity_check") == [("ok",)]
    names = {row[0] for row in pragma(path, "SELECT name FROM sqlite_master")}
    assert {"entry_terms", "entry_pending", "entries_pending", "entries_unindex"} <= names


@pytest.mark.parametrize("driver", ["sqlite3", "aiosqlite"])
async def test_entries_are_found_on_a_read_only_database(tmp_path: Path, driver: str) -> None:
    """Entries written since the last search of their scope wait to be indexed by the next
    one; a read-only database matches them without writing, as a writable one finds them."""
    path = tmp_path / "memories.sqlite"
    async with SqliteDataStorage(path, driver=driver) as store:
        await store.put_entries("memories", [NewEntry("a", {"t": "chess club"}, owner="ada")])
        assert await found(store, "chess") == [("a", 1)]  # indexed now
        await store.put_entries(
            "memories",
            [NewEntry("b", {"t": "chess"}, owner="bob"), NewEntry("c", {"t": "go club"})],
        )
        await store.put_entries("memories", [NewEntry("a", {"t": "tennis"}, owner="ada")])
    assert pragma(path, "SELECT count(*) FROM entry_pending") == [(3,)]
    async with SqliteDataStorage(path.as_uri() + "?mode=ro", driver=driver) as store:
        assert await found(store, "chess club tennis") == [("a", 1), ("b", 1), ("c", 1)]
        assert await found(store, "chess", owner="bob") == [("b", 1)]
        assert await found(store, "club", prefix="c") == [("c", 1)]
    assert pragma(path, "SELECT count(*) FROM entry_pending") == [(3,)]  # nothing written
    async with SqliteDataStorage(path, driver=driver) as store:
        assert await found(store, "chess club tennis") == [("a", 1), ("b", 1), ("c", 1)]
    assert pragma(path, "SELECT count(*) FROM entry_pending") == [(0,)]
