"""The export document of ``export_data`` / ``import_data``: the record stream (``_records``)
gathered into one list per kind, and a document (version 1, 2 or 3) turned back into that
stream, each record named by its place in the document (``messages[3]``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ._records import FORMAT, READABLE_VERSIONS, VERSION, header
from .errors import InvalidDataError
from .models import MAX_SEQ

LISTS = {"agent": "agents", "session": "sessions", "run": "runs", "message": "messages"}
LISTS_V3 = {**LISTS, "entry": "entries"}


async def to_document(records: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {"format": FORMAT, "version": VERSION}
    document.update((name, []) for name in LISTS_V3.values())
    async for record in records:
        kind = record.pop("kind")
        if kind != "header":
            document[LISTS_V3[kind]].append(record)
    return document


def _items(document: dict[str, Any], key: str) -> list[Any]:
    items = document.get(key, [])
    if not isinstance(items, list):
        raise InvalidDataError(key, "must be a list")
    return items


def _text(raw: Any, key: str) -> str | None:
    value = raw.get(key) if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None


def _record(kind: str, raw: Any, **defaults: Any) -> Any:
    """The record of a document item (an item that is not an object is left for the checks
    to refuse)."""
    if not isinstance(raw, dict):
        return raw
    return {"kind": kind, **defaults, **raw}


def document_records(document: Any) -> list[tuple[str, Any]]:
    """A document as the (where, record) pairs ``import_records`` checks, in stream order."""
    if not isinstance(document, dict):
        raise InvalidDataError("document", "must be a dict")
    if document.get("format") != FORMAT:
        raise InvalidDataError("format", f"must be {FORMAT!r}")
    version = document.get("version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise InvalidDataError("version", "must be 1, 2 or 3")
    lists = {
        name: _items(document, name) for name in (LISTS_V3 if version == 3 else LISTS).values()
    }
    sessions = lists["sessions"]
    known = {_text(raw, "id") for raw in sessions} - {None}
    runs_of: dict[str | None, list[int]] = {}
    for index, raw in enumerate(lists["runs"]):
        session_id = _text(raw, "session_id")
        runs_of.setdefault(session_id if session_id in known else None, []).append(index)
    messages_of: dict[str | None, list[int]] = {}
    for index, raw in enumerate(lists["messages"]):
        session_id = _text(raw, "session_id")
        messages_of.setdefault(session_id if session_id in known else None, []).append(index)

    def seq(index: int) -> int:
        raw = lists["messages"][index]
        value = raw.get("seq") if isinstance(raw, dict) else None
        return value if type(value) is int and 0 < value <= MAX_SEQ else -1  # bad: first, refused

    pairs: list[tuple[str, Any]] = [("document", header())]
    pairs += [(f"agents[{i}]", _record("agent", raw)) for i, raw in enumerate(lists["agents"])]
    for index, raw in enumerate(sessions):
        session_id = _text(raw, "id")
        runs = runs_of.pop(session_id, []) if session_id is not None else []
        messages = sorted(
            messages_of.pop(session_id, []) if session_id is not None else [], key=seq
        )
        newest = max((seq(i) for i in messages), default=0)
        given = raw.get("last_seq") if isinstance(raw, dict) else None
        if type(given) is int and given < newest:
            raise InvalidDataError(
                f"sessions[{index}].last_seq", "is below the seq of one of its messages"
            )
        record = _record("session", raw)
        if version < 3 and isinstance(record, dict):
            record.setdefault("parent_session_id", None)
            record.setdefault("forked_from_seq", None)
            if given is None:
                record["last_seq"] = max(newest, 0)
        pairs.append((f"sessions[{index}]", record))
        pairs += [(f"runs[{i}]", _record("run", lists["runs"][i])) for i in runs]
        pairs += [(f"messages[{i}]", _record("message", lists["messages"][i])) for i in messages]
    # Runs and messages of no session of the document: the checks refuse them.
    strays = [(f"runs[{i}]", _record("run", lists["runs"][i])) for i in runs_of.pop(None, [])]
    strays += [
        (f"messages[{i}]", _record("message", lists["messages"][i]))
        for i in messages_of.pop(None, [])
    ]
    pairs += strays
    pairs += [
        (f"entries[{i}]", _record("entry", raw)) for i, raw in enumerate(lists.get("entries", []))
    ]
    return pairs
