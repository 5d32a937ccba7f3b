"""The operation log of the durable browser store, in pure Python (no JavaScript here).

The durable store is the in-memory store plus a log: every call of a *mutating* hook is kept as
one record (the hook's name and its arguments, which base.py has already checked and serialised,
``now`` and new ids included), so replaying the records on a fresh in-memory store rebuilds it
exactly. A snapshot (the in-memory store's ``Dump``) replaces the records it covers.

Hooks are found, not listed: every abstract hook of ``DataStorage`` except the readers below is
recorded, so a new mutating hook needs no work here. Values are encoded as JSON with tags for
datetimes, runstore's dataclasses and named tuples (looked up by name among runstore's own
classes only; a field added later with a default reads old records fine).
"""

from __future__ import annotations

import base64
import dataclasses
import inspect
import json
import sys
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from .base import DataStorage
from .errors import InvalidDataError, StorageError

READER_PREFIXES = ("_get_", "_list_", "_load_", "_export", "_find_", "_count_", "_search_")
# base.py's ``_replace_messages`` checks its arguments and takes the time itself, then calls
# the ``_replace_history`` hook, which is the one recorded (checked arguments, fixed time).
# Records of it written before are still replayed.
REPLAYED_ONLY = frozenset({"_replace_messages"})
# ``_import_records`` checks a record stream and ends in the ``_import`` hook, which is recorded;
# ``_export_source`` and ``_import_sink`` return context managers (memory's read and build).
NOT_HOOKS = (
    frozenset({"_close", "_open", "_import_records", "_export_source", "_import_sink"})
    | REPLAYED_ONLY
)
SNAPSHOT_FORMAT = 1


def hook_names() -> frozenset[str]:
    """Every hook a backend implements or may override: the ``_``-prefixed coroutine methods
    of ``DataStorage``, abstract or not (not the context managers ``_export_source`` and
    ``_import_sink``: they call the ``_export`` and ``_import`` hooks)."""
    names = {
        name
        for name in DataStorage.__abstractmethods__
        if inspect.iscoroutinefunction(getattr(DataStorage, name))
    }
    for name, value in vars(DataStorage).items():
        if (
            name.startswith("_")
            and not name.startswith("__")
            and inspect.iscoroutinefunction(value)
        ):
            names.add(name)
    return frozenset(names - NOT_HOOKS)


def mutating_hooks() -> frozenset[str]:
    """The hooks whose calls are recorded: all but the readers."""
    return frozenset(name for name in hook_names() if not name.startswith(READER_PREFIXES))


class ReplayError(StorageError):
    """The stored log or snapshot cannot be read back by this version of runstore."""


def _classes() -> dict[str, type]:
    """runstore's own dataclasses and named tuples, by name (the only types a record names)."""
    found: dict[str, type] = {}
    for module_name, module in list(sys.modules.items()):
        if module is None or not (module_name == "runstore" or module_name.startswith("runstore.")):
            continue
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and value.__module__.startswith("runstore")
                and (dataclasses.is_dataclass(value) or hasattr(value, "_fields"))
            ):
                found[value.__name__] = value
    return found


_CLASSES: dict[str, type] = {}


def _class(name: str) -> type:
    if name not in _CLASSES:
        _CLASSES.update(_classes())
    try:
        return _CLASSES[name]
    except KeyError:
        raise ReplayError(f"stored data names an unknown type {name!r}") from None


def encode(value: Any) -> Any:
    """A JSON-ready form of a hook argument (see ``decode``)."""
    kind = type(value)
    if value is None or kind is str or kind is int or kind is float or kind is bool:
        return value
    if kind is datetime:
        return {"$t": value.isoformat()}
    if kind is bytes:
        return {"$b": base64.b64encode(value).decode("ascii")}
    if kind is list:
        if len(value) > 1 and dataclasses.is_dataclass(value[0]):
            first = type(value[0])
            if all(type(item) is first for item in value):
                return _rows(first, value)
        return [encode(item) for item in value]
    if kind is dict:
        return {"$m": {str(key): encode(item) for key, item in value.items()}}
    if isinstance(value, tuple):
        if hasattr(kind, "_fields"):
            return {"$n": kind.__name__, "v": [encode(item) for item in value]}
        return {"$u": [encode(item) for item in value]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"$d": kind.__name__, "v": fields}
    return _encode_subclass(value)


def _encode_subclass(value: Any) -> Any:
    """A subclass of a plain type (a StrEnum role, an IntEnum count, a datetime subclass),
    which the checks let through, is recorded as its plain value: what the other backends
    store."""
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__index__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, datetime):
        return {"$t": datetime.isoformat(value)}
    if isinstance(value, bytes):
        return {"$b": base64.b64encode(value).decode("ascii")}
    if isinstance(value, list):
        return [encode(item) for item in value]
    if isinstance(value, dict):
        return {"$m": {str(key): encode(item) for key, item in value.items()}}
    raise TypeError(f"cannot record a {type(value).__name__} in the browser store's log")


_PLAIN = (str, int, float, bool, type(None))


def _rows(kind: type, items: list[Any]) -> dict[str, Any]:
    """A list of records of one dataclass, by column (compact, fast to read back)."""
    columns: dict[str, Any] = {}
    for field in dataclasses.fields(kind):
        values = [getattr(item, field.name) for item in items]
        if all(type(v) is datetime for v in values):
            columns[field.name] = {"$ts": [v.isoformat() for v in values]}
        elif all(type(v) in _PLAIN for v in values):
            columns[field.name] = {"$p": values}
        else:
            columns[field.name] = [encode(v) for v in values]
    return {"$r": kind.__name__, "n": len(items), "c": columns}


def decode(value: Any) -> Any:
    """The value ``encode`` was given."""
    if type(value) is list:
        return [decode(item) for item in value]
    if type(value) is not dict:
        return value
    if "$t" in value:
        return datetime.fromisoformat(value["$t"])
    if "$b" in value:
        return base64.b64decode(value["$b"])
    if "$m" in value:
        return {key: decode(item) for key, item in value["$m"].items()}
    if "$n" in value:
        return _class(value["$n"])(*(decode(item) for item in value["v"]))
    if "$u" in value:
        return tuple(decode(item) for item in value["$u"])
    if "$d" in value:
        kind = _class(value["$d"])
        return kind(**{key: decode(item) for key, item in value["v"].items()})
    if "$r" in value:
        kind = _class(value["$r"])
        names = list(value["c"])
        columns = [_column(value["c"][name]) for name in names]
        if not columns:
            return [kind() for _ in range(value["n"])]
        if names == [field.name for field in dataclasses.fields(kind)]:
            return list(map(kind, *columns))  # the same fields as when written: by position
        return [kind(**dict(zip(names, row, strict=True))) for row in zip(*columns, strict=True)]
    raise ReplayError(f"stored data has an unknown tag {sorted(value)}")


def _column(column: Any) -> list[Any]:
    if type(column) is dict:
        if "$p" in column:
            plain: list[Any] = column["$p"]
            return plain
        return list(map(datetime.fromisoformat, column["$ts"]))
    return [decode(item) for item in column]


def encode_args(hook: str, args: tuple[Any, ...]) -> list[Any]:
    """A hook call's arguments, ready for ``encode_call``; taken before the call changes the
    store, so one the log cannot keep raises ``InvalidDataError`` and changes nothing."""
    try:
        return [encode(arg) for arg in args]
    except TypeError as exc:
        names = list(inspect.signature(getattr(DataStorage, hook)).parameters)[1:]
        for name, arg in zip(names, args, strict=False):
            where = _refused_at(arg)
            if where is not None:
                raise InvalidDataError(name + where, str(exc)) from None
        raise InvalidDataError(hook, str(exc)) from None


def _refused_at(value: Any) -> str | None:
    """Where in ``value`` is something ``encode`` refuses ("" for ``value`` itself)."""
    parts: Iterable[tuple[str, Any]]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        parts = ((f".{f.name}", getattr(value, f.name)) for f in dataclasses.fields(value))
    elif hasattr(type(value), "_fields"):
        parts = ((f".{name}", item) for name, item in zip(value._fields, value, strict=True))
    elif type(value) in (list, tuple):
        parts = ((f"[{i}]", item) for i, item in enumerate(value))
    elif type(value) is dict:
        parts = ((f"[{key!r}]", item) for key, item in value.items())
    else:
        try:
            encode(value)
        except TypeError:
            return ""
        return None
    for step, item in parts:
        inner = _refused_at(item)
        if inner is not None:
            return step + inner
    return None


def encode_call(
    hook: str, args: tuple[Any, ...], last_now: datetime, encoded: list[Any] | None = None
) -> str:
    """One log record: the hook, its arguments (or ``encode_args`` of them) and the store's
    clock after the call."""
    return json.dumps(
        [hook, last_now.isoformat(), encode_args(hook, args) if encoded is None else encoded],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def decode_call(record: str) -> tuple[str, datetime, list[Any]]:
    hook, last_now, args = json.loads(record)
    if hook not in mutating_hooks() and hook not in REPLAYED_ONLY:
        raise ReplayError(f"the log records a call of {hook!r}, which this runstore lacks")
    return hook, datetime.fromisoformat(last_now), [decode(arg) for arg in args]


def encode_snapshot(dump: Any, upto: int, last_now: datetime, version: str) -> str:
    return json.dumps(
        {
            "format": SNAPSHOT_FORMAT,
            "runstore": version,
            "upto": upto,
            "last_now": last_now.isoformat(),
            "dump": encode(dump),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def decode_snapshot(text: str) -> tuple[Any, int, datetime]:
    """The ``Dump``, the last log key it covers, and the store's clock."""
    snapshot = json.loads(text)
    if snapshot.get("format") != SNAPSHOT_FORMAT:
        raise ReplayError(f"snapshot format {snapshot.get('format')!r} is not supported")
    return (
        decode(snapshot["dump"]),
        int(snapshot["upto"]),
        datetime.fromisoformat(snapshot["last_now"]),
    )
