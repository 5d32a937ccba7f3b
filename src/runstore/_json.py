"""JSON payload checks shared by every backend.

Payloads are checked once, then stored and returned as JSON text, so nothing a caller
holds can alias what is stored. The limits are those of docs/contract.md ("Limits").
"""

from __future__ import annotations

import json
import json.scanner
import math
import re
from typing import Any

from .errors import InvalidDataError, quote

MAX_DEPTH = 200  # containers in containers; deeper data (or data containing itself) is refused
MIN_INT = -(2**63)  # integers inside payloads: what SQLite and PostgreSQL keep as 64-bit ints
MAX_INT = 2**63 - 1
_PATH_STEPS = 10  # a field names at most this many steps into a payload, then ends in "…"


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored (PostgreSQL keeps no NUL, no lone surrogate), or None."""
    if "\x00" in value:
        return "contains a NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate"
    return None


def check_text(value: str, field: str) -> None:
    """Reject NUL characters and lone surrogates."""
    problem = text_problem(value)
    if problem is not None:
        raise InvalidDataError(field, problem)


class _Refused(Exception):
    """A part of a payload is refused; ``steps`` (innermost first) are added on the way out,
    so the common case, a valid payload, builds no strings."""

    def __init__(self, problem: str, step: str = "") -> None:
        self.problem = problem
        self.steps = [step] if step else []


def _check(value: Any, depth: int) -> None:
    if value is None or value is True or value is False:
        return
    kind = type(value)
    if kind is str:
        if not value.isascii() or "\x00" in value:
            problem = text_problem(value)
            if problem is not None:
                raise _Refused(problem)
    elif kind is int:
        if not MIN_INT <= value <= MAX_INT:
            raise _Refused("is an integer outside -2**63 .. 2**63-1")
    elif kind is float:
        if not math.isfinite(value):
            raise _Refused(f"{value!r} is not a finite number")
    elif depth >= MAX_DEPTH:
        raise _Refused(f"nested deeper than {MAX_DEPTH} levels")
    elif isinstance(value, dict):
        for key, item in value.items():
            if type(key) is not str:
                raise _Refused(f"a key of type {type(key).__name__} is not a string")
            if not key.isascii() or "\x00" in key:
                problem = text_problem(key)
                if problem is not None:
                    raise _Refused(problem, f" key {quote(key)}")
            try:
                _check(item, depth + 1)
            except _Refused as refused:
                refused.steps.append(f"[{quote(key)}]")
                raise
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            try:
                _check(item, depth + 1)
            except _Refused as refused:
                refused.steps.append(f"[{index}]")
                raise
    else:
        raise _Refused(f"{type(value).__name__} is not JSON")


def check_json(value: Any, field: str) -> None:
    """Raise ``InvalidDataError`` naming the first part of ``value`` that is not plain JSON
    within the limits, e.g. ``input_data['x'][1]``."""
    try:
        _check(value, 0)
    except _Refused as refused:
        steps = refused.steps[::-1]
        path = "".join(steps[:_PATH_STEPS]) + ("…" if len(steps) > _PATH_STEPS else "")
        raise InvalidDataError(field + path, refused.problem) from None


# json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")) without
# building an encoder on every call.
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


def to_text(value: Any) -> str:
    """JSON text of a value already checked by ``check_json``."""
    return _encode(value)


def dump_json(value: Any, field: str) -> str:
    """Check ``value`` is plain JSON and return its text."""
    check_json(value, field)
    return to_text(value)


def dump_optional(value: Any, field: str) -> str | None:
    return None if value is None else dump_json(value, field)


def dump_object(value: Any, field: str) -> str | None:
    """Like ``dump_optional`` but only a dict (or None) is accepted."""
    if value is not None and not isinstance(value, dict):
        raise InvalidDataError(field, f"must be a dict, not {type(value).__name__}")
    return dump_optional(value, field)


def load_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


# json.loads without its Python-level steps (two whitespace matches, two calls): for text the
# store wrote itself with ``to_text``, which starts with the value and ends with it. The
# scanner is the one json.loads uses (C where there is one), with its defaults.
_scan = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def load_stored(text: str) -> Any:
    """The value of JSON text written by ``to_text`` (a hot path: history reads)."""
    return _scan(text, 0)[0]


_JSON_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")


def nested_deeper_than(text: str, levels: int) -> bool:
    """Whether JSON text nests lists/objects more than ``levels`` deep, found without parsing
    it: parsing very deep text overflows Pyodide's stack (natively, a RecursionError)."""
    if text.count("[") + text.count("{") <= levels:
        return False
    depth = 0
    for char in _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)):
        if char in "[{":
            depth += 1
            if depth > levels:
                return True
        else:
            depth -= 1
    return False
