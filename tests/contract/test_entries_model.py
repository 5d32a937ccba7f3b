"""Model-based test of entries: random puts, merges, refreshes, deletes and copies against a
plain dict model, with range reads and search_entries (scored by brute force over the model)
compared after every step (docs/contract.md, "Entries", "Search")."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from backends import FACTORIES
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from runstore import DataStorage, Entry, EntryPatch, NewEntry, _search

T = TypeVar("T")
# Keys from a few characters that stress code point order: a control character, ASCII
# either side of "/", a 2-byte and a 4-byte UTF-8 character and the highest code point.
KEY = st.text(
    st.sampled_from(["\x01", "/", "a", "b", "é", "\U0001f600", "\U0010ffff"]),
    min_size=1,
    max_size=3,
)
SCOPE = st.sampled_from(["s", "t"])
# Text that words, case folding and spaceless runs tell apart, in leaves at any depth.
TEXT = st.sampled_from(["cat", "Cat dogs", "dog", "東京都", "京都", "STRASSE", "straße cat", ""])
VALUE = st.none() | st.dictionaries(
    st.sampled_from(["x", "y", "z"]),
    st.integers(-3, 3) | TEXT | st.lists(TEXT, max_size=2) | st.dictionaries(TEXT, TEXT),
    max_size=2,
)
QUERY = st.sampled_from(["cat", "dog cats", "strasse", "京都", "東京", "x"])
# Every search of the invariant: one of each word, all entries, in order.
EVERY_WORD = "cat dog dogs strasse 京都 東京"
DATA = st.none() | st.binary(max_size=4)
TAG = st.none() | st.sampled_from(["r1", "r2"])

OWNER = st.none() | st.sampled_from(["x", "y"])
PAST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE = datetime(9000, 1, 1, tzinfo=UTC)

# scope -> key -> (value, data, tag, version, owner); an expired entry is absent from it
Model = dict[
    str, dict[str, tuple[dict[str, Any] | None, bytes | None, str | None, int, str | None]]
]


class EntriesMachine(RuleBasedStateMachine):
    backend = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = Path(tempfile.mkdtemp(prefix="runstore-entries-"))
        self.store: DataStorage = self.run(FACTORIES[self.backend](self.folder))
        self.model: Model = {"s": {}, "t": {}}

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.store.close())
        self.loop.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def write(
        self, scope: str, key: str, value: Any, data: Any, tag: Any, owner: Any = None
    ) -> None:
        old = self.model[scope].get(key)
        self.model[scope][key] = (value, data, tag, 1 if old is None else old[3] + 1, owner)

    @rule(
        scope=SCOPE,
        items=st.lists(
            st.tuples(KEY, VALUE, DATA, TAG, OWNER), max_size=3, unique_by=lambda i: i[0]
        ),
        only_if_absent=st.booleans(),
    )
    def put(self, scope: str, items: list[Any], only_if_absent: bool) -> None:
        entries = [NewEntry(k, v, d, t, o) for k, v, d, t, o in items]
        written = self.run(self.store.put_entries(scope, entries, only_if_absent=only_if_absent))
        expected = 0
        for key, value, data, tag, owner in items:
            if only_if_absent and key in self.model[scope]:
                continue
            self.write(scope, key, value, data, tag, owner)
            expected += 1
        assert written == expected

    @rule(scope=SCOPE, key=KEY, owner=OWNER)
    def put_expired(self, scope: str, key: str, owner: str | None) -> None:
        """An expired entry is absent for every call from then on."""
        entry = NewEntry(key, {"gone": True}, b"x", "r1", owner, expires_at=PAST)
        assert self.run(self.store.put_entries(scope, [entry])) == 1
        self.model[scope].pop(key, None)

    @rule(owner=st.sampled_from(["x", "y"]))
    def erase(self, owner: str) -> None:
        owned = [
            (s, k) for s, entries in self.model.items() for k in entries if entries[k][4] == owner
        ]
        assert self.run(self.store.erase(owner)).entries == len(owned)
        for scope, key in owned:
            del self.model[scope][key]

    @rule(
        scope=SCOPE,
        keys=st.lists(KEY, max_size=3),
        expires_at=st.sampled_from([None, FUTURE, PAST]),
    )
    def refresh(self, scope: str, keys: list[str], expires_at: datetime | None) -> None:
        """Only the expiry changes (to the past: the entries are gone); not the version."""
        refreshed = self.run(self.store.refresh_entries(scope, keys, expires_at=expires_at))
        live = sorted({key for key in keys if key in self.model[scope]})
        assert refreshed == len(live)
        if expires_at == PAST:
            for key in live:
                del self.model[scope][key]

    @rule(scope=SCOPE, key=KEY, patch=VALUE, expect=st.none() | st.integers(0, 3), owner=OWNER)
    def merge(
        self, scope: str, key: str, patch: Any, expect: int | None, owner: str | None
    ) -> None:
        patch = patch or {}
        entry = self.run(
            self.store.merge_entry(scope, key, patch, expect_version=expect, owner=owner)
        )
        old = self.model[scope].get(key)
        if expect is not None and (0 if old is None else old[3]) != expect:
            assert entry is None
            return
        value = {**((old[0] or {}) if old else {}), **patch}
        kept = old[4] if old else None
        self.write(
            scope, key, value, old[1] if old else None, old[2] if old else None, owner or kept
        )
        assert (
            entry is not None
            and entry.value == value
            and entry.version == self.model[scope][key][3]
        )

    @rule(
        scope=SCOPE,
        items=st.lists(
            st.tuples(KEY, st.booleans(), VALUE, DATA),
            min_size=1,
            max_size=3,
            unique_by=lambda i: i[0],
        ),
        expect=st.dictionaries(KEY, st.integers(0, 2), max_size=2),
    )
    def write_batch(self, scope: str, items: list[Any], expect: dict[str, int]) -> None:
        writes = [
            EntryPatch(k, v or {}) if patch else NewEntry(k, v, d) for k, patch, v, d in items
        ]
        written = self.run(self.store.write_entries(scope, writes, expect=expect))
        held = {k: self.model[scope][k][3] if k in self.model[scope] else 0 for k in expect}
        if held != expect:
            assert written is None
            return
        for key, patch, value, data in items:
            old = self.model[scope].get(key)
            if patch:
                merged = {**((old[0] or {}) if old else {}), **(value or {})}
                self.write(
                    scope,
                    key,
                    merged,
                    old[1] if old else None,
                    old[2] if old else None,
                    old[4] if old else None,
                )
            else:
                self.write(scope, key, value, data, None)
        assert written is not None
        assert [(e.key, e.value, e.data, e.version) for e in written] == [
            (k, *self.model[scope][k][:2], self.model[scope][k][3]) for k, *_ in items
        ]

    @rule(
        scope=SCOPE,
        prefix=st.none() | KEY,
        after=st.none() | KEY,
        before=st.none() | KEY,
        tags=st.none() | st.lists(st.sampled_from(["r1", "r2", "r3"]), max_size=2),
    )
    def delete(
        self,
        scope: str,
        prefix: str | None,
        after: str | None,
        before: str | None,
        tags: list[str] | None,
    ) -> None:
        deleted = self.run(
            self.store.delete_entries(scope, prefix=prefix, after=after, before=before, tags=tags)
        )
        doomed = [
            k
            for k in self.model[scope]
            if self.within(k, prefix, after, before)
            and (tags is None or self.model[scope][k][2] in tags)
        ]
        for key in doomed:
            del self.model[scope][key]
        assert deleted == len(doomed)

    @rule(scope=SCOPE, prefix=KEY, to_prefix=KEY, to_scope=st.none() | SCOPE)
    def copy(self, scope: str, prefix: str, to_prefix: str, to_scope: str | None) -> None:
        target = to_scope or scope
        if target == scope and (prefix.startswith(to_prefix) or to_prefix.startswith(prefix)):
            return  # refused (tested in test_entries.py)
        copied = self.run(
            self.store.copy_entries(scope, prefix=prefix, to_prefix=to_prefix, to_scope=to_scope)
        )
        sources = {k: v for k, v in self.model[scope].items() if k.startswith(prefix)}
        for key, (value, data, tag, _, owner) in sorted(sources.items()):
            self.write(target, to_prefix + key[len(prefix) :], value, data, tag, owner)
        assert copied == len(sources)

    @staticmethod
    def within(key: str, prefix: str | None, after: str | None, before: str | None) -> bool:
        return (
            (prefix is None or key.startswith(prefix))
            and (after is None or key > after)
            and (before is None or key < before)
        )

    @rule(
        scope=SCOPE,
        prefix=st.none() | KEY,
        after=st.none() | KEY,
        before=st.none() | KEY,
        reverse=st.booleans(),
        limit=st.none() | st.integers(0, 3),
    )
    def read_range(
        self,
        scope: str,
        prefix: str | None,
        after: str | None,
        before: str | None,
        reverse: bool,
        limit: int | None,
    ) -> None:
        found = self.run(
            self.store.list_entries(
                scope, prefix=prefix, after=after, before=before, reverse=reverse, limit=limit
            )
        )
        keys = sorted(k for k in self.model[scope] if self.within(k, prefix, after, before))
        if reverse:
            keys.reverse()
        assert [e.key for e in found] == keys[:limit]

    def wanted(
        self,
        scope: str,
        query: str,
        prefix: str | None = None,
        owner: str | None = None,
        fields: list[str] | None = None,
        listed: list[Entry] | None = None,
    ) -> list[tuple[str, int]]:
        """(key, score) of the model's entries that match, in the contract's order (times are
        the store's, from ``listed`` or list_entries: the model has none; the invariant checks
        list_entries against the model)."""
        parsed = _search.parse(query)
        if listed is None:
            listed = self.run(self.store.list_entries(scope))
        times = {e.key: e.updated_at for e in listed}
        chosen = None if fields is None else frozenset(fields)
        found = []
        for key, (value, _, _, _, entry_owner) in self.model[scope].items():
            score = _search.score(parsed, _search.entry_text(value, chosen))
            if (
                score
                and (prefix is None or key.startswith(prefix))
                and (owner is None or owner == entry_owner)
            ):
                found.append((-score, -times[key].timestamp(), key))
        return [(key, -score) for score, _, key in sorted(found)]

    @rule(
        scope=SCOPE,
        query=QUERY,
        prefix=st.none() | KEY,
        owner=st.none() | st.sampled_from(["x", "y"]),
        fields=st.none() | st.lists(st.sampled_from(["x", "y", "z"]), max_size=2),
        limit=st.none() | st.integers(0, 3),
    )
    def search(
        self,
        scope: str,
        query: str,
        prefix: str | None,
        owner: str | None,
        fields: list[str] | None,
        limit: int | None,
    ) -> None:
        hits = self.run(
            self.store.search_entries(
                query, scope=scope, prefix=prefix, owner=owner, fields=fields, limit=limit
            )
        )
        assert [(h.entry.key, h.score) for h in hits] == self.wanted(
            scope, query, prefix, owner, fields
        )[:limit]

    @invariant()
    def everything_matches_and_search_matches_brute_force(self) -> None:
        for scope, entries in self.model.items():
            found = self.run(self.store.list_entries(scope))
            assert [(e.key, e.value, e.data, e.tag, e.version, e.owner) for e in found] == [
                (k, *entries[k]) for k in sorted(entries)
            ]
            hits = self.run(self.store.search_entries(EVERY_WORD, scope=scope, limit=None))
            assert [(h.entry.key, h.score) for h in hits] == self.wanted(
                scope, EVERY_WORD, listed=found
            )
            for hit in hits:
                entry = hit.entry
                assert (entry.value, entry.data, entry.tag, entry.version, entry.owner) == (
                    entries[entry.key]
                )


def test_entries_match_the_model(backend: str) -> None:
    machine = type(f"EntriesMachine_{backend}", (EntriesMachine,), {"backend": backend})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=30,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
