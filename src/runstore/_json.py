"""JSON payload checks shared by every backend.

Payloads are checked once, then stored and returned as JSON text, so nothing a caller
holds can alias what is stored.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .errors import InvalidDataError

_MAX_DEPTH = 200


def check_text(value: str, field: str) -> None:
    """Reject NUL characters and lone surrogates (PostgreSQL cannot store either)."""
    if "\x00" in value:
        raise InvalidDataError(field, "contains a NUL character")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidDataError(field, "contains a lone surrogate") from None


def _check(value: Any, field: str, depth: int) -> None:
    if value is None or value is True or value is False:
        return
    kind = type(value)
    if kind is str:
        check_text(value, field)
    elif kind is int:
        return
    elif kind is float:
        if not math.isfinite(value):
            raise InvalidDataError(field, f"{value!r} is not a finite number")
    elif depth >= _MAX_DEPTH:
        raise InvalidDataError(field, f"nested deeper than {_MAX_DEPTH} levels")
    elif isinstance(value, dict):
        for key, item in value.items():
            if type(key) is not str:
                raise InvalidDataError(field, f"key {key!r} is not a string")
            check_text(key, f"{field} key {key[:40]!r}")
            _check(item, f"{field}[{key[:40]!r}]", depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check(item, f"{field}[{index}]", depth + 1)
    else:
        raise InvalidDataError(field, f"{type(value).__name__} is not JSON")


def check_json(value: Any, field: str) -> None:
    """Raise ``InvalidDataError`` naming the first part of ``value`` that is not plain JSON."""
    _check(value, field, 0)


def to_text(value: Any) -> str:
    """JSON text of a value already checked by ``check_json``."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def dump_json(value: Any, field: str) -> str:
    """Check ``value`` is plain JSON and return its text."""
    _check(value, field, 0)
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
