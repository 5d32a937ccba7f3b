"""Entries: an ordered key-value store beside sessions and runs (docs/contract.md, "Entries").

``EntryStore`` holds the public methods and their argument checks; a backend implements the
``_*_entries`` hooks. Keys are compared by code point everywhere; a prefix becomes the key range
``[prefix, successor(prefix))`` and ``after`` the inclusive bound ``after + "\\x01"`` (no key holds
a NUL), so every backend only ever answers ``lower <= key < upper`` queries.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from bisect import bisect_left, insort
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from . import _search
from ._json import dump_object, load_json, to_text
from .errors import InvalidDataError, quote
from .models import (
    MAX_INT64,
    MAX_NAME_LENGTH,
    check_external_id,
    check_int_range,
    check_name,
    check_optional_text,
    check_stored_time,
)


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored entry. ``value`` is a fresh dict on every read; ``data`` is bytes.
    ``owner``: the end user it belongs to (a session's ``external_id``); ``expires_at``:
    from then on no read returns it."""

    scope: str
    key: str
    value: dict[str, Any] | None
    data: bytes | None
    tag: str | None
    version: int
    updated_at: datetime
    owner: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EntryHit:
    """One result of ``search_entries``: an entry and how many distinct query words its
    text contains."""

    entry: Entry
    score: int


@dataclass(frozen=True, slots=True)
class NewEntry:
    """What ``put_entries`` writes (the whole entry: owner and expiry too)."""

    key: str
    value: dict[str, Any] | None = None
    data: bytes | None = None
    tag: str | None = None
    owner: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EntryPatch:
    """A merge in ``write_entries``: the top-level keys of ``patch`` set in the entry's value
    (created when absent; its data, tag and expiry are kept; its owner becomes ``owner``
    when given, else is kept)."""

    key: str
    patch: dict[str, Any]
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class PatchRow:
    """A checked ``EntryPatch``: ``patch`` is JSON text."""

    key: str
    patch: str
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class EntryRow:
    """A checked entry on its way to a backend: ``value`` is JSON text."""

    key: str
    value: str | None
    data: bytes | None
    tag: str | None
    owner: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class KeyRange:
    """``lower <= key < upper``; ``upper=None`` is unbounded."""

    lower: str
    upper: str | None

    def __contains__(self, key: str) -> bool:
        return key >= self.lower and (self.upper is None or key < self.upper)

    @property
    def empty(self) -> bool:
        return self.upper is not None and self.upper <= self.lower

    def params(self, scope: str) -> tuple[str, ...]:
        """SQL parameters: scope, lower[, upper] (the statement for a bounded range)."""
        return (scope, self.lower) if self.upper is None else (scope, self.lower, self.upper)


_MAX_CODE_POINT = 0x10FFFF


def successor(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix`` (None: none)."""
    chars = list(prefix)
    while chars:
        point = ord(chars.pop()) + 1
        if 0xD800 <= point <= 0xDFFF:  # surrogates are never stored
            point = 0xE000
        if point <= _MAX_CODE_POINT:
            return "".join(chars) + chr(point)
    return None


class EntrySearch(NamedTuple):
    """A checked ``search_entries`` call: the live entries of ``scope`` in ``bounds`` (of
    ``owner`` when given) indexed under any of ``terms`` (never empty) are its candidates."""

    scope: str
    terms: list[str]
    bounds: KeyRange
    owner: str | None
    now: datetime


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class EntryCopy(NamedTuple):
    """A checked ``copy_entries`` call: the keys of ``scope`` in ``bounds`` (all starting
    with ``prefix``) go to ``to_scope`` with ``prefix`` replaced by ``to_prefix``."""

    scope: str
    bounds: KeyRange
    prefix: str
    to_scope: str
    to_prefix: str
    now: datetime


def refuse_long_copies(longest: int | None, copy: EntryCopy) -> None:
    """The copy rule every backend applies: no copied key may be longer than a key may be.
    ``longest`` is the length of the longest key in the copied range (None: it is empty)."""
    if longest is not None and longest - len(copy.prefix) + len(copy.to_prefix) > MAX_NAME_LENGTH:
        raise InvalidDataError(
            "to_prefix", f"would make copied keys longer than {MAX_NAME_LENGTH} characters"
        )


def key_range(prefix: str | None, after: str | None, before: str | None) -> KeyRange:
    lower = prefix or ""
    upper = None if not prefix else successor(prefix)
    if after is not None:
        lower = max(lower, after + "\x01")
    if before is not None and (upper is None or before < upper):
        upper = before
    return KeyRange(lower, upper)


def entry_value(text: str | None) -> dict[str, Any] | None:
    value: dict[str, Any] | None = load_json(text)
    return value


def entry_row(entry: NewEntry, key: str, field: str) -> EntryRow:
    """A checked ``NewEntry`` (its key checked already)."""
    expires_at = entry.expires_at
    if expires_at is not None:
        expires_at = check_stored_time(expires_at, f"{field}.expires_at")
    return EntryRow(
        key,
        dump_object(entry.value, f"{field}.value"),
        check_data(entry.data, f"{field}.data"),
        check_optional_text(entry.tag, f"{field}.tag", MAX_NAME_LENGTH),
        check_external_id(entry.owner, f"{field}.owner"),
        expires_at,
    )


def live(expires_at: datetime | None, now: datetime) -> bool:
    """The expiry rule: an entry is gone for every read from its ``expires_at`` on."""
    return expires_at is None or expires_at > now


def check_data(value: Any, field: str) -> bytes | None:
    if value is None or type(value) is bytes:
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise InvalidDataError(field, f"must be bytes or None, not {type(value).__name__}")


class EntryStore(ABC):
    """The public entry methods of ``DataStorage`` (mixed into it) and the hooks behind them."""

    if TYPE_CHECKING:  # provided by DataStorage

        def _check_open(self) -> None: ...

        def _now(self) -> datetime: ...

    async def put_entries(
        self, scope: str, entries: Sequence[NewEntry], *, only_if_absent: bool = False
    ) -> int:
        """Write entries atomically; with ``only_if_absent`` existing keys are kept.
        Returns how many were written."""
        self._check_open()
        scope = check_name(scope, "scope")
        if isinstance(entries, str | bytes) or not isinstance(entries, Sequence):
            raise InvalidDataError("entries", "must be a sequence of NewEntry")
        rows: list[EntryRow] = []
        seen: set[str] = set()
        for index, entry in enumerate(entries):
            if not isinstance(entry, NewEntry):
                raise InvalidDataError(f"entries[{index}]", "must be a NewEntry")
            key = check_name(entry.key, f"entries[{index}].key")
            if key in seen:
                raise InvalidDataError(f"entries[{index}].key", f"{quote(key)} is repeated")
            seen.add(key)
            rows.append(entry_row(entry, key, f"entries[{index}]"))
        if not isinstance(only_if_absent, bool):
            raise InvalidDataError("only_if_absent", "must be a bool")
        if not rows:
            return 0
        return await self._put_entries(scope, rows, only_if_absent, self._now())

    async def get_entry(self, scope: str, key: str) -> Entry | None:
        self._check_open()
        scope, key = check_name(scope, "scope"), check_name(key, "key")
        return await self._get_entry(scope, key, self._now())

    async def list_entries(
        self,
        scope: str,
        *,
        prefix: str | None = None,
        after: str | None = None,
        before: str | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[Entry]:
        """Entries in key order (descending with ``reverse``) within the given bounds."""
        self._check_open()
        scope = check_name(scope, "scope")
        bounds = self._key_range(prefix, after, before)
        if not isinstance(reverse, bool):
            raise InvalidDataError("reverse", "must be a bool")
        if limit is not None:
            limit = check_int_range(limit, "limit", 0, MAX_INT64)
        if limit == 0 or bounds.empty:
            return []
        return await self._list_entries(scope, bounds, reverse, limit, self._now())

    async def merge_entry(
        self,
        scope: str,
        key: str,
        patch: dict[str, Any],
        *,
        expect_version: int | None = None,
        owner: str | None = None,
    ) -> Entry | None:
        """Set the top-level keys of ``patch`` in the entry's value atomically (creating it).
        With ``expect_version`` only if the stored version matches (0: absent), else None.
        ``owner``, when given, becomes the entry's owner (else it is kept)."""
        self._check_open()
        scope = check_name(scope, "scope")
        key = check_name(key, "key")
        if not isinstance(patch, dict):
            raise InvalidDataError("patch", f"must be a dict, not {type(patch).__name__}")
        patch_text = dump_object(patch, "patch")
        assert patch_text is not None
        if expect_version is not None:
            expect_version = check_int_range(expect_version, "expect_version", 0, MAX_INT64)
        owner = check_external_id(owner, "owner")
        return await self._merge_entry(scope, key, patch_text, expect_version, self._now(), owner)

    async def write_entries(
        self,
        scope: str,
        writes: Sequence[NewEntry | EntryPatch],
        *,
        expect: Mapping[str, int] | None = None,
    ) -> list[Entry] | None:
        """Apply puts (``NewEntry``) and merges (``EntryPatch``) atomically, in order, only if
        every key of ``expect`` is at its version (0: absent). Returns the written entries, or
        None (nothing written) when an expectation does not hold."""
        self._check_open()
        scope = check_name(scope, "scope")
        if isinstance(writes, str | bytes) or not isinstance(writes, Sequence) or not writes:
            raise InvalidDataError("writes", "must be a non-empty sequence of NewEntry/EntryPatch")
        ops: list[EntryRow | PatchRow] = []
        seen: set[str] = set()
        for index, write in enumerate(writes):
            field = f"writes[{index}]"
            if not isinstance(write, NewEntry | EntryPatch):
                raise InvalidDataError(field, "must be a NewEntry or an EntryPatch")
            key = check_name(write.key, f"{field}.key")
            if key in seen:
                raise InvalidDataError(f"{field}.key", f"{key[:40]!r} is repeated")
            seen.add(key)
            if isinstance(write, EntryPatch):
                if not isinstance(write.patch, dict):
                    raise InvalidDataError(f"{field}.patch", "must be a dict")
                patch = dump_object(write.patch, f"{field}.patch")
                assert patch is not None
                ops.append(PatchRow(key, patch, check_external_id(write.owner, f"{field}.owner")))
            else:
                ops.append(entry_row(write, key, field))
        expected: dict[str, int] = {}
        if expect is not None:
            if not isinstance(expect, Mapping):
                raise InvalidDataError("expect", "must be a mapping of key to version")
            for key, version in expect.items():
                check_name(key, "expect key")
                if isinstance(version, bool) or not isinstance(version, int) or version < 0:
                    raise InvalidDataError(f"expect[{key[:40]!r}]", "must be an int >= 0")
                expected[key] = version
        return await self._write_entries(scope, ops, expected, self._now())

    async def delete_entries(
        self,
        scope: str,
        *,
        prefix: str | None = None,
        after: str | None = None,
        before: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> int:
        """Delete the entries in the key range (whole scope by default), only those tagged
        with one of ``tags`` when given; returns how many."""
        self._check_open()
        scope = check_name(scope, "scope")
        bounds = self._key_range(prefix, after, before)
        checked_tags: list[str] | None = None
        if tags is not None:
            if isinstance(tags, str) or not isinstance(tags, Sequence):
                raise InvalidDataError("tags", "must be a sequence of strings")
            checked_tags = [check_name(tag, f"tags[{i}]") for i, tag in enumerate(tags)]
            if not checked_tags:
                return 0
        if bounds.empty:
            return 0
        return await self._delete_entries(scope, bounds, checked_tags, self._now())

    async def copy_entries(
        self, scope: str, *, prefix: str, to_prefix: str, to_scope: str | None = None
    ) -> int:
        """Copy every entry whose key starts with ``prefix`` to ``to_prefix`` + the rest of its
        key (in ``to_scope``, default ``scope``), replacing entries there; returns how many."""
        self._check_open()
        scope = check_name(scope, "scope")
        prefix = check_name(prefix, "prefix")
        to_prefix = check_name(to_prefix, "to_prefix")
        target = scope if to_scope is None else check_name(to_scope, "to_scope")
        if target == scope and prefix == to_prefix:
            return 0
        bounds = key_range(prefix, None, None)
        if target == scope and (to_prefix.startswith(prefix) or prefix.startswith(to_prefix)):
            raise InvalidDataError("to_prefix", "overlaps prefix in the same scope")
        return await self._copy_entries(
            EntryCopy(scope, bounds, prefix, target, to_prefix, self._now())
        )

    async def refresh_entries(
        self, scope: str, keys: Sequence[str], *, expires_at: datetime | None
    ) -> int:
        """Set the expiry of the live entries of ``keys`` to ``expires_at`` (None: never),
        atomically, changing nothing else (not the version, not ``updated_at``). Expired and
        missing keys stay absent. Returns how many entries it refreshed."""
        self._check_open()
        scope = check_name(scope, "scope")
        if isinstance(keys, str | bytes) or not isinstance(keys, Sequence):
            raise InvalidDataError("keys", "must be a sequence of strings")
        checked = sorted({check_name(key, f"keys[{i}]") for i, key in enumerate(keys)})
        if expires_at is not None:
            expires_at = check_stored_time(expires_at, "expires_at")
        if not checked:
            return 0
        return await self._refresh_entries(scope, checked, expires_at, self._now())

    async def search_entries(
        self,
        query: str,
        *,
        scope: str,
        prefix: str | None = None,
        owner: str | None = None,
        fields: Sequence[str] | None = None,
        limit: int | None = 10,
    ) -> list[EntryHit]:
        """Live entries of ``scope`` whose text (the string leaves of their value; of the
        top-level ``fields`` only, when given) contains words of ``query``: most query words
        first, then newest, then by key; at most ``limit``. Only keys starting with
        ``prefix`` and entries owned by ``owner``, when given. The rule: docs/contract.md."""
        self._check_open()
        if not isinstance(query, str):
            raise InvalidDataError("query", f"must be a str, not {type(query).__name__}")
        scope = check_name(scope, "scope")
        bounds = self._key_range(prefix, None, None)
        owner = check_external_id(owner, "owner")
        chosen: frozenset[str] | None = None
        if fields is not None:
            if isinstance(fields, str | bytes) or not isinstance(fields, Sequence):
                raise InvalidDataError("fields", "must be a sequence of strings or None")
            chosen = frozenset(check_name(name, f"fields[{i}]") for i, name in enumerate(fields))
        if limit is not None:
            limit = check_int_range(limit, "limit", 0, MAX_INT64)
        parsed = _search.parse(query)
        if limit == 0 or not parsed.size or chosen == frozenset() or bounds.empty:
            return []
        request = EntrySearch(scope, parsed.candidates, bounds, owner, self._now())
        found = await self._search_entry_candidates(request)
        ranked = _search.rank_entries(
            parsed,
            (
                (
                    _search.entry_text(entry.value, chosen),
                    (entry.updated_at - _EPOCH) // _MICROSECOND,
                    entry.key,
                    entry,
                )
                for entry in found
            ),
            limit,
        )
        return [EntryHit(entry, score) for score, entry in ranked]

    @staticmethod
    def _key_range(prefix: Any, after: Any, before: Any) -> KeyRange:
        for name, value in (("prefix", prefix), ("after", after), ("before", before)):
            if value is not None and (not isinstance(value, str)):
                raise InvalidDataError(
                    name, f"must be a string or None, not {type(value).__name__}"
                )
            if value:
                check_optional_text(value, name)
        return key_range(prefix, after, before)

    # -- hooks a backend implements ------------------------------------------

    @abstractmethod
    async def _put_entries(
        self, scope: str, rows: list[EntryRow], only_if_absent: bool, now: datetime
    ) -> int: ...

    @abstractmethod
    async def _get_entry(self, scope: str, key: str, now: datetime) -> Entry | None: ...

    @abstractmethod
    async def _list_entries(
        self, scope: str, bounds: KeyRange, reverse: bool, limit: int | None, now: datetime
    ) -> list[Entry]: ...

    @abstractmethod
    async def _merge_entry(
        self,
        scope: str,
        key: str,
        patch: str,
        expect_version: int | None,
        now: datetime,
        owner: str | None = None,  # a default: the browser store's older logs lack it
    ) -> Entry | None: ...

    @abstractmethod
    async def _write_entries(
        self, scope: str, ops: list[EntryRow | PatchRow], expect: dict[str, int], now: datetime
    ) -> list[Entry] | None: ...

    @abstractmethod
    async def _delete_entries(
        self,
        scope: str,
        bounds: KeyRange,
        tags: list[str] | None,
        now: datetime | None = None,  # counts only entries live then (older logs lack it)
    ) -> int: ...

    @abstractmethod
    async def _copy_entries(self, copy: EntryCopy) -> int: ...

    @abstractmethod
    async def _search_entry_candidates(self, search: EntrySearch) -> list[Entry]:
        """The live entries of ``search.scope`` in ``search.bounds`` (of ``search.owner``
        when given) indexed under any of ``search.terms``; more is allowed (the ranking keeps
        only matches), never fewer."""

    @abstractmethod
    async def _refresh_entries(
        self, scope: str, keys: list[str], expires_at: datetime | None, now: datetime
    ) -> int: ...


@dataclass(slots=True)
class _Stored:
    value: str | None
    data: bytes | None
    tag: str | None
    version: int
    updated_at: datetime
    owner: str | None = None
    expires_at: datetime | None = None


class _TermIndex:
    """One scope's search index: term -> keys, and the terms of each indexed key. Writes only
    note the keys they change (``stale``); the next search of the scope indexes them."""

    __slots__ = ("indexed", "stale", "terms")

    def __init__(self) -> None:
        self.terms: dict[str, set[str]] = {}
        self.indexed: dict[str, list[str]] = {}
        self.stale: set[str] = set()

    def catch_up(self, stored: dict[str, _Stored]) -> None:
        terms = self.terms
        for key in self.stale:
            for term in self.indexed.pop(key, ()):
                keys = terms[term]
                keys.discard(key)
                if not keys:
                    del terms[term]
            entry = stored.get(key)
            if entry is not None and entry.value is not None:
                found = _search.entry_terms(load_json(entry.value))
                if found:
                    self.indexed[key] = found
                    for term in found:
                        terms.setdefault(term, set()).add(key)
        self.stale.clear()


class MemoryEntries(EntryStore):
    """The entry hooks over one sorted key list and one dict per scope (no thread, no await).
    An expired entry is treated as absent by every hook (it stays until a write or prune)."""

    def __init__(self) -> None:
        self._entry_scopes: dict[str, tuple[list[str], dict[str, _Stored]]] = {}
        self._entry_index: dict[str, _TermIndex] = {}  # by scope

    def _changed(self, scope: str, key: str) -> None:
        """Note a key whose entry was written (its terms are taken at the next search)."""
        index = self._entry_index.get(scope)
        if index is None:
            index = self._entry_index[scope] = _TermIndex()
        index.stale.add(key)

    def _removed(self, scope: str, key: str) -> None:
        index = self._entry_index.get(scope)
        if index is not None:
            if key in index.indexed:
                index.stale.add(key)
            else:
                index.stale.discard(key)

    def _scope(self, scope: str) -> tuple[list[str], dict[str, _Stored]]:
        found = self._entry_scopes.get(scope)
        if found is None:
            found = self._entry_scopes[scope] = ([], {})
        return found

    @staticmethod
    def _entry(scope: str, key: str, stored: _Stored) -> Entry:
        return Entry(
            scope,
            key,
            entry_value(stored.value),
            stored.data,
            stored.tag,
            stored.version,
            stored.updated_at,
            stored.owner,
            stored.expires_at,
        )

    @staticmethod
    def _slice(keys: list[str], bounds: KeyRange) -> tuple[int, int]:
        start = bisect_left(keys, bounds.lower)
        end = len(keys) if bounds.upper is None else bisect_left(keys, bounds.upper)
        return start, max(start, end)

    def _live(self, scope: str, key: str, now: datetime) -> _Stored | None:
        found = self._entry_scopes.get(scope)
        stored = None if found is None else found[1].get(key)
        return stored if stored is not None and live(stored.expires_at, now) else None

    def _write(self, scope: str, key: str, new: _Stored, now: datetime) -> _Stored:
        """Store ``new`` (its version is set here: 1, or the live entry's + 1)."""
        keys, stored = self._scope(scope)
        old = stored.get(key)
        if old is None:
            insort(keys, key)
        new.version = 1 if old is None or not live(old.expires_at, now) else old.version + 1
        new.updated_at = now
        stored[key] = new
        self._changed(scope, key)
        return new

    def _put(self, scope: str, row: EntryRow, now: datetime) -> _Stored:
        new = _Stored(row.value, row.data, row.tag, 0, now, row.owner, row.expires_at)
        return self._write(scope, row.key, new, now)

    async def _put_entries(
        self, scope: str, rows: list[EntryRow], only_if_absent: bool, now: datetime
    ) -> int:
        written = 0
        for row in rows:
            if only_if_absent and self._live(scope, row.key, now) is not None:
                continue
            self._put(scope, row, now)
            written += 1
        return written

    async def _get_entry(self, scope: str, key: str, now: datetime) -> Entry | None:
        stored = self._live(scope, key, now)
        return None if stored is None else self._entry(scope, key, stored)

    async def _list_entries(
        self, scope: str, bounds: KeyRange, reverse: bool, limit: int | None, now: datetime
    ) -> list[Entry]:
        found = self._entry_scopes.get(scope)
        if found is None:
            return []
        keys, stored = found
        start, end = self._slice(keys, bounds)
        # by index, not a copy of the range: a page costs what it returns, not the range
        indices = range(end - 1, start - 1, -1) if reverse else range(start, end)
        listed: list[Entry] = []
        for index in indices:
            if limit is not None and len(listed) >= limit:
                break
            key = keys[index]
            entry = stored[key]
            if live(entry.expires_at, now):
                listed.append(self._entry(scope, key, entry))
        return listed

    def _merge(self, scope: str, patch: PatchRow, now: datetime) -> Entry:
        old = self._live(scope, patch.key, now)
        merged: dict[str, Any] = {}
        if old is not None and old.value is not None:
            merged = load_json(old.value)
        merged.update(load_json(patch.patch))
        new = _Stored(to_text(merged), None, None, 0, now)
        if old is not None:
            new.data, new.tag, new.owner, new.expires_at = (
                old.data,
                old.tag,
                old.owner,
                old.expires_at,
            )
        if patch.owner is not None:
            new.owner = patch.owner
        return self._entry(scope, patch.key, self._write(scope, patch.key, new, now))

    def _version(self, scope: str, key: str, now: datetime) -> int:
        old = self._live(scope, key, now)
        return 0 if old is None else old.version

    async def _merge_entry(
        self,
        scope: str,
        key: str,
        patch: str,
        expect_version: int | None,
        now: datetime,
        owner: str | None = None,
    ) -> Entry | None:
        if expect_version is not None and self._version(scope, key, now) != expect_version:
            return None
        return self._merge(scope, PatchRow(key, patch, owner), now)

    async def _write_entries(
        self, scope: str, ops: list[EntryRow | PatchRow], expect: dict[str, int], now: datetime
    ) -> list[Entry] | None:
        for key, version in expect.items():
            if self._version(scope, key, now) != version:
                return None
        written = []
        for op in ops:
            if isinstance(op, PatchRow):
                written.append(self._merge(scope, op, now))
            else:
                written.append(self._entry(scope, op.key, self._put(scope, op, now)))
        return written

    async def _delete_entries(
        self, scope: str, bounds: KeyRange, tags: list[str] | None, now: datetime | None = None
    ) -> int:
        found = self._entry_scopes.get(scope)
        if found is None:
            return 0
        keys, stored = found
        start, end = self._slice(keys, bounds)
        if tags is None:
            doomed = keys[start:end]
            del keys[start:end]
        else:
            wanted = set(tags)
            doomed = [k for k in keys[start:end] if stored[k].tag in wanted]
            gone = set(doomed)
            keys[start:end] = [k for k in keys[start:end] if k not in gone]
        counted = len(doomed) if now is None else self._count_live(stored, doomed, now)
        for key in doomed:
            del stored[key]
            self._removed(scope, key)
        if not keys:
            del self._entry_scopes[scope]
        return counted

    @staticmethod
    def _count_live(stored: dict[str, _Stored], keys: list[str], now: datetime) -> int:
        return sum(1 for key in keys if live(stored[key].expires_at, now))

    def _drop_entries(self, doomed: list[tuple[str, str]]) -> None:
        """Remove these (scope, key) pairs (erasure and pruning)."""
        for scope, key in doomed:
            keys, stored = self._entry_scopes[scope]
            del stored[key]
            self._removed(scope, key)
            del keys[bisect_left(keys, key)]
            if not keys:
                del self._entry_scopes[scope]

    def _owned_entries(self, owner: str) -> list[tuple[str, str]]:
        return [
            (scope, key)
            for scope, (_, stored) in self._entry_scopes.items()
            for key, entry in stored.items()
            if entry.owner == owner
        ]

    def _expired_entries(self, now: datetime) -> list[tuple[str, str]]:
        return [
            (scope, key)
            for scope, (_, stored) in self._entry_scopes.items()
            for key, entry in stored.items()
            if not live(entry.expires_at, now)
        ]

    async def _copy_entries(self, copy: EntryCopy) -> int:
        scope, bounds, prefix, to_scope, to_prefix, now = copy
        found = self._entry_scopes.get(scope)
        if found is None:
            return 0
        keys, stored = found
        start, end = self._slice(keys, bounds)
        chosen = [key for key in keys[start:end] if live(stored[key].expires_at, now)]
        refuse_long_copies(max(map(len, chosen), default=None), copy)
        copies = [(to_prefix + key[len(prefix) :], stored[key]) for key in chosen]
        for key, source in copies:
            new = _Stored(source.value, source.data, source.tag, 0, now)
            new.owner, new.expires_at = source.owner, source.expires_at
            self._write(to_scope, key, new, now)
        return len(copies)

    async def _refresh_entries(
        self, scope: str, keys: list[str], expires_at: datetime | None, now: datetime
    ) -> int:
        refreshed = 0
        for key in keys:
            stored = self._live(scope, key, now)
            if stored is not None:
                stored.expires_at = expires_at
                refreshed += 1
        return refreshed

    def _all_entries(self, now: datetime) -> list[Entry]:
        """Every entry that has not expired by ``now``, by (scope, key) (export)."""
        return [
            self._entry(scope, key, stored[key])
            for scope, (keys, stored) in sorted(self._entry_scopes.items())
            for key in keys
            if live(stored[key].expires_at, now)
        ]

    def _import_entries(self, entries: list[Entry]) -> None:
        """Add checked entries as they are (version and times kept), in place of expired
        entries of their keys (no live entry has one)."""
        for entry in entries:
            keys, stored = self._scope(entry.scope)
            if entry.key not in stored:
                insort(keys, entry.key)
            value = None if entry.value is None else to_text(entry.value)
            stored[entry.key] = _Stored(
                value,
                entry.data,
                entry.tag,
                entry.version,
                entry.updated_at,
                entry.owner,
                entry.expires_at,
            )
            self._changed(entry.scope, entry.key)

    async def _search_entry_candidates(self, search: EntrySearch) -> list[Entry]:
        scope, terms, bounds, owner, now = search
        index = self._entry_index.get(scope)
        found = self._entry_scopes.get(scope)
        if index is None or found is None:
            return []
        stored = found[1]
        index.catch_up(stored)
        keys: set[str] = set()
        for term in terms:
            keys.update(index.terms.get(term, ()))
        candidates = []
        for key in keys:
            entry = stored[key]
            if (
                key in bounds
                and live(entry.expires_at, now)
                and (owner is None or entry.owner == owner)
            ):
                candidates.append(self._entry(scope, key, entry))
        return candidates

    def _clear_entries(self) -> None:
        self._entry_scopes.clear()
        self._entry_index.clear()
